"""An ORB vocabulary for ORB-SLAM3, trained on images of your choosing.

ORB-SLAM3 needs a DBoW2 vocabulary of ORB descriptors (``ORBvoc.txt``) that its PyPI binding does
not ship. This trains one of the same structure (k = 10 branches, L = 6 levels, TF-IDF weights,
L1 scoring): hierarchical k-majority clustering of OpenCV ORB descriptors (the rBRIEF of
ORB-SLAM's own extractor), written in DBoW2's text format. Train it on frames other than those
you evaluate on.

    python -m lightglue_ros_tools.peer.orb_vocabulary OUT.txt FOLDER [FOLDER ...]
"""
from __future__ import annotations

import argparse
from collections import deque
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

BRANCHES, LEVELS = 10, 6
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pgm")
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def orb_descriptors(image: np.ndarray, features: int = 2000) -> np.ndarray:
    """(N, 32) uint8 ORB descriptors with ORB-SLAM's settings (scale 1.2, 8 levels, FAST 20)."""
    orb = cv2.ORB_create(nfeatures=features, scaleFactor=1.2, nlevels=8, fastThreshold=20)
    _, desc = orb.detectAndCompute(image, None)
    return np.zeros((0, 32), np.uint8) if desc is None else desc


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, K) Hamming distances between the rows of ``a`` (N, 32) and ``b`` (K, 32)."""
    out = np.empty((len(a), len(b)), np.int32)
    for start in range(0, len(a), 4096):
        x = np.bitwise_xor(a[start:start + 4096, None, :], b[None])
        out[start:start + 4096] = _POPCOUNT[x].sum(-1, dtype=np.int32)
    return out


def majority(desc: np.ndarray) -> np.ndarray:
    """The bitwise majority of binary descriptors (DBoW2's mean of ORB descriptors)."""
    bits = np.unpackbits(desc, axis=1)
    return np.packbits(bits.sum(0) * 2 >= len(desc)).astype(np.uint8)


def k_majority(desc: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 8
               ) -> np.ndarray:
    """Cluster index of each descriptor: k-means++ seeding, then k-majority iterations."""
    centres = [desc[rng.integers(len(desc))]]
    nearest = hamming(desc, centres[0][None])[:, 0].astype(np.float64)
    for _ in range(1, k):
        weights = nearest ** 2
        if weights.sum() == 0:
            break
        centres.append(desc[rng.choice(len(desc), p=weights / weights.sum())])
        nearest = np.minimum(nearest, hamming(desc, centres[-1][None])[:, 0])
    c = np.array(centres)
    label = hamming(desc, c).argmin(1)
    for _ in range(iterations):
        c = np.array([majority(desc[label == j]) if np.any(label == j) else c[j]
                      for j in range(len(c))])
        new = hamming(desc, c).argmin(1)
        if np.array_equal(new, label):
            break
        label = new
    return label


def train(per_image: list[np.ndarray], seed: int = 0) -> list[tuple[int, bool, np.ndarray, float]]:
    """DBoW2 nodes in id order (the root, id 0, left out): (parent, is_leaf, descriptor,
    weight), built breadth first so that every parent precedes its children."""
    desc = np.concatenate(per_image)
    image_of = np.repeat(np.arange(len(per_image)), [len(d) for d in per_image])
    rng = np.random.default_rng(seed)
    nodes: list[tuple[int, bool, np.ndarray, float]] = []
    leaf_rows: list[np.ndarray] = []
    queue = deque([(0, np.arange(len(desc)), 0)])  # (node id, rows, level)
    bar = tqdm(total=len(desc), desc="vocabulary", unit="descriptor")
    while queue:
        node, rows, level = queue.popleft()
        if len(rows) <= BRANCHES:
            groups = [rows[i:i + 1] for i in range(len(rows))]
        else:
            label = k_majority(desc[rows], BRANCHES, rng)
            groups = [rows[label == j] for j in range(BRANCHES) if np.any(label == j)]
        for group in groups:
            leaf = level + 1 == LEVELS or len(group) == 1
            nodes.append((node, leaf, majority(desc[group]), 0.0))
            if leaf:
                leaf_rows.append(group)
                bar.update(len(group))
            else:
                queue.append((len(nodes), group, level + 1))
    bar.close()
    # TF-IDF: a word's weight is log(images / images that have it)
    leaves = [i for i, n in enumerate(nodes) if n[1]]
    for i, group in zip(leaves, leaf_rows):
        parent, _, d, _ = nodes[i]
        nodes[i] = (parent, True, d, float(np.log(len(per_image)
                                                  / len(np.unique(image_of[group])))))
    return nodes


def write(path: Path, nodes: list[tuple[int, bool, np.ndarray, float]]) -> None:
    """DBoW2's text format: "k L scoring weighting", then one line per node (no final newline:
    DBoW2 reads a trailing empty line as one more node)."""
    lines = [f"{BRANCHES} {LEVELS} 0 0"]  # L1 norm scoring, TF-IDF weighting
    lines += [f"{p} {int(leaf)} " + " ".join(str(int(b)) for b in d) + f" {w:.6f}"
              for p, leaf, d, w in nodes]
    path.write_text("\n".join(lines))


def images_in(folders: list[Path]) -> list[Path]:
    return sorted(p for f in folders for p in f.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the vocabulary text file to write")
    parser.add_argument("folders", type=Path, nargs="+", help="folders of training images")
    parser.add_argument("--features", type=int, default=2000, help="ORB features per image")
    args = parser.parse_args(argv)
    paths = images_in(args.folders)
    if not paths:
        parser.error("no images in the folders given")
    per_image = [orb_descriptors(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), args.features)
                 for p in tqdm(paths, desc="ORB", unit="image")]
    nodes = train(per_image)
    write(args.out, nodes)
    print(f"{args.out}: {sum(n[1] for n in nodes)} words from {len(paths)} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
