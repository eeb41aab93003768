"""Train the place-recognition vocabularies that ship in lightglue_ros/slam/vocabulary/.

Trained only on images that may be redistributed: frames of the project's own synthetic renderer
(seeds other than the default 0, which the tests revisit) and the TUM RGB-D frames in ../shared
(CC BY 4.0). Prints each file's sha256 for ``place_recognition.VOCABULARIES``.

    .venv/bin/python tools/train_vocabulary.py [--shared ../shared] [--words 32]
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lightglue_ros.config import Config
from lightglue_ros.images import load_image
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.slam.place_recognition import VOCABULARY_DIR, train_vocabulary
from lightglue_ros.synthetic import make_sequence

EXTRACTORS = {"xfeat": 64, "aliked": 128}


def training_images(shared: Path) -> list[np.ndarray]:
    images = []
    for seed in (1, 2, 3):
        seq = make_sequence(num_frames=40, rate_hz=3.0, seed=seed)
        images += [f.rgb for f in seq]
    for folder in (shared / "data/images/freiburg", shared / "data/tum_fr2_desk/rgb"):
        images += [load_image(p) for p in sorted(folder.glob("*.png"))]
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--words", type=int, default=32)
    args = parser.parse_args()
    images = training_images(args.shared)
    for extractor, dim in EXTRACTORS.items():
        pipe = Pipeline(Config(extractor=extractor, max_keypoints=1024))
        desc = [pipe.extract(im).descriptors.cpu().numpy()
                for im in tqdm(images, desc=f"{extractor} features")]
        vocab = train_vocabulary(np.concatenate(desc), args.words)
        path = vocab.save(VOCABULARY_DIR / f"{extractor}_{dim}d_{args.words}w.npz")
        print(path.name, hashlib.sha256(path.read_bytes()).hexdigest(),
              f"{len(images)} images")


if __name__ == "__main__":
    main()
