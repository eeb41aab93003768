"""Compare this implementation with golden outputs of the official LightGlue code.

The golden directory holds, per extractor, reference features of PNG images and reference matches
per matcher mode (see ``../shared/golden``). The matcher is fed the reference features, so matcher
and extractor are judged separately.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..config import EXTRACTORS, Config
from ..features import Features
from ..images import load_image
from ..pipeline import Pipeline


@dataclass
class GoldenSet:
    """Where one extractor's golden files and their input images are."""

    root: Path
    extractor: str
    images: Path  # folder holding <set>/<name>.png

    def feature_files(self) -> list[Path]:
        return sorted((self.root / self.extractor / "features").glob("*/*.npz"))

    def modes(self) -> list[str]:
        return sorted(p.name for p in (self.root / self.extractor / "matches").iterdir()
                      if p.is_dir())

    def pair_files(self, mode: str) -> list[Path]:
        return sorted((self.root / self.extractor / "matches" / mode).glob("*/*__*.npz"))

    def features(self, image_set: str, name: str) -> Features:
        d = np.load(self.root / self.extractor / "features" / image_set / f"{name}.npz")
        return Features.from_numpy(d["keypoints"], d["keypoint_scores"], d["descriptors"],
                                   tuple(d["image_size"].astype(int)))


def find_images(golden: Path) -> Path:
    for candidate in (golden / "images", golden.parent / "data" / "images"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no input images for {golden}: expected {golden / 'images'} or "
                            f"{golden.parent / 'data' / 'images'}")


def config_for(readme: dict[str, Any], extractor: str, mode: str, base: Config) -> Config:
    """The Config reproducing the golden run's extractor and matcher settings."""
    ext = dict(readme.get("extractor_conf", {}).get(extractor, {}))
    values: dict[str, Any] = {"extractor": extractor}
    if "model_name" in ext:
        values["aliked_model"] = ext["model_name"]
    if ext.get("max_num_keypoints"):
        values["max_keypoints"] = int(ext["max_num_keypoints"])
    if "detection_threshold" in ext:
        values["detection_threshold"] = float(ext["detection_threshold"])
    if "nms_radius" in ext:
        values["nms_radius"] = int(ext["nms_radius"])
    values.update(readme.get("matcher_conf", {}).get(mode, {}))
    return base.replace(**values)


def keypoint_agreement(ours: Features, ref: Features) -> tuple[np.ndarray, np.ndarray]:
    """Per reference keypoint: whether one of ours lies within 1 px, and the descriptor cosine
    with our nearest keypoint."""
    if len(ref) == 0:
        return np.zeros(0, bool), np.zeros(0)
    if len(ours) == 0:
        return np.zeros(len(ref), bool), np.zeros(len(ref))
    dist = torch.cdist(ref.keypoints.float(), ours.keypoints.float().cpu())
    nearest_dist, nearest = dist.min(1)
    cos = (ref.descriptors * ours.descriptors.cpu()[nearest]).sum(-1)
    return (nearest_dist <= 1.0).numpy(), cos.numpy()


def extractor_parity(pipe: Pipeline, gold: GoldenSet) -> dict[str, float]:
    within, cosines = [], []
    for path in tqdm(gold.feature_files(), desc=f"{gold.extractor} features", leave=False):
        image_set, name = path.parent.name, path.stem
        ours = pipe.extract(load_image(gold.images / image_set / f"{name}.png"))
        ok, cos = keypoint_agreement(ours, gold.features(image_set, name))
        within.append(ok)
        cosines.append(cos[ok])
    within_all = np.concatenate(within) if within else np.zeros(0)
    cos_all = np.concatenate(cosines) if cosines else np.zeros(0)
    return {"keypoints_within_1px": float(within_all.mean()) if within_all.size else 0.0,
            "descriptor_cosine": float(cos_all.mean()) if cos_all.size else 0.0,
            "images": len(within)}


def matcher_parity(pipe: Pipeline, gold: GoldenSet, mode: str) -> dict[str, float]:
    agree = total = same_stop = pairs = 0
    max_diff = 0.0
    for path in tqdm(gold.pair_files(mode), desc=f"{gold.extractor} {mode}", leave=False):
        name0, name1 = path.stem.split("__")
        ref = np.load(path)
        result = pipe.match(gold.features(path.parent.name, name0),
                            gold.features(path.parent.name, name1))
        agree += int((result.matches0 == ref["matches0"]).sum())
        total += len(ref["matches0"])
        same_stop += int(result.layers == int(ref["stop"]))
        max_diff = max(max_diff, float(np.abs(result.scores0 - ref["matching_scores0"]).max()))
        pairs += 1
    return {"match_agreement": agree / total if total else 0.0,
            "stop_agreement": same_stop / pairs if pairs else 0.0,
            "max_score_diff": max_diff, "pairs": pairs}


def run_parity(golden: Path, base: Config | None = None,
               extractors: tuple[str, ...] = EXTRACTORS) -> dict[str, Any]:
    """Parity figures per extractor present in ``golden``, in the documented JSON layout."""
    golden = Path(golden)
    readme = json.loads((golden / "README.json").read_text())
    images = find_images(golden)
    base = base or Config()
    report: dict[str, Any] = {}
    for extractor in extractors:
        if not (golden / extractor).is_dir():
            continue
        gold = GoldenSet(golden, extractor, images)
        modes = gold.modes()
        pipe = Pipeline(config_for(readme, extractor, modes[0], base))
        entry = extractor_parity(pipe, gold)
        for mode in modes:
            pipe.set_thresholds(**readme.get("matcher_conf", {}).get(mode, {}))
            entry[mode] = matcher_parity(pipe, gold, mode)
        report[extractor] = entry
    return report
