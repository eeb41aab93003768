"""Compare this implementation with golden outputs of the official code.

The golden directory holds one folder per extractor, each with reference features of PNG images
and reference matches per matcher mode (see ``../shared/golden``), and the configuration they were
made with (``<extractor>/README.json``, else the shared ``README.json``). The matcher is fed the
reference features, so matcher and extractor are judged separately.

Matching is judged decision by decision (see :mod:`lightglue_ros.evaluation.near_ties`): a point
whose match differs from the reference only by a near-tie that float32 rounding can flip counts
as a flip, not as a disagreement, and the score difference is taken over the points whose decision
did not flip. Each extractor and mode also says whether the outputs are bit-identical.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..config import EXTRACTORS, Config, ConfigError
from ..errors import WeightsError
from ..features import Features, Matches
from ..images import load_image
from ..pipeline import Pipeline
from .match_trace import MatchTrace, matcher_stages, traced_match
from .near_ties import SCORE_TOLERANCE, UNIT_ROUNDOFF, PairComparison, compare_pair


@dataclass(frozen=True)
class Bars:
    """What parity with the official code must reach for one extractor."""

    keypoints_within_1px: float
    descriptor_cosine: float
    match_agreement: float = 0.995  # in every mode
    stop_agreement: float = 0.95
    max_score_diff: float = SCORE_TOLERANCE


BARS = {"aliked": Bars(0.98, 0.99), "disk": Bars(0.98, 0.99), "superpoint": Bars(0.98, 0.99),
        "xfeat": Bars(0.99, 0.999)}


@dataclass
class GoldenSet:
    """Where one extractor's golden files and their input images are."""

    root: Path
    extractor: str
    images: Path  # folder holding <set>/<name>.png

    def feature_files(self) -> list[Path]:
        return sorted((self.root / self.extractor / "features").glob("*/*.npz"))

    def modes(self) -> list[str]:
        matches = self.root / self.extractor / "matches"
        return sorted(p.name for p in matches.iterdir() if p.is_dir()) if matches.is_dir() else []

    def pair_files(self, mode: str) -> list[Path]:
        return sorted((self.root / self.extractor / "matches" / mode).glob("*/*__*.npz"))

    def features(self, image_set: str, name: str) -> Features:
        d = np.load(self.root / self.extractor / "features" / image_set / f"{name}.npz")
        return Features.from_numpy(d["keypoints"], d["keypoint_scores"], d["descriptors"],
                                   tuple(d["image_size"].astype(int)))

    def readme(self) -> dict[str, Any]:
        """The configuration of this extractor's golden run."""
        for path in (self.root / self.extractor / "README.json", self.root / "README.json"):
            if path.is_file():
                readme = json.loads(path.read_text())
                if self.extractor in readme.get("extractor_conf", {}):
                    return readme
        raise FileNotFoundError(f"no README.json with extractor_conf.{self.extractor} in "
                                f"{self.root / self.extractor} or {self.root}")


def find_images(golden: Path) -> Path:
    for candidate in (golden / "images", golden.parent / "data" / "images"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no input images for {golden}: expected {golden / 'images'} or "
                            f"{golden.parent / 'data' / 'images'}")


def golden_extractors(golden: Path) -> list[str]:
    """The extractor folders of a golden directory (those holding features or matches)."""
    return sorted(p.name for p in golden.iterdir()
                  if p.is_dir() and ((p / "features").is_dir() or (p / "matches").is_dir()))


def config_for(readme: dict[str, Any], extractor: str, mode: str, base: Config) -> Config:
    """The Config reproducing the golden run's extractor and matcher settings (the official
    names: ``max_num_keypoints`` or XFeat's ``top_k``, ``detection_threshold``, ``nms_radius``,
    ALIKED's ``model_name``)."""
    ext = dict(readme.get("extractor_conf", {}).get(extractor, {}))
    values: dict[str, Any] = {"extractor": extractor}
    if "model_name" in ext:
        values["aliked_model"] = ext["model_name"]
    top_k = ext.get("max_num_keypoints") or ext.get("top_k")
    if top_k:
        values["max_keypoints"] = int(top_k)
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


def same_features(ours: Features, ref: Features) -> bool:
    """Keypoints, scores and descriptors bit-identical, in the same order."""
    return all(torch.equal(a.cpu(), b) for a, b in ((ours.keypoints, ref.keypoints),
                                                    (ours.scores, ref.scores),
                                                    (ours.descriptors, ref.descriptors)))


def extractor_parity(pipe: Pipeline, gold: GoldenSet) -> dict[str, Any]:
    within, cosines, identical = [], [], []
    for path in tqdm(gold.feature_files(), desc=f"{gold.extractor} features", leave=False):
        image_set, name = path.parent.name, path.stem
        ours = pipe.extract(load_image(gold.images / image_set / f"{name}.png"))
        ref = gold.features(image_set, name)
        ok, cos = keypoint_agreement(ours, ref)
        within.append(ok)
        cosines.append(cos[ok])
        identical.append(same_features(ours, ref))
    within_all = np.concatenate(within) if within else np.zeros(0)
    cos_all = np.concatenate(cosines) if cosines else np.zeros(0)
    return {"keypoints_within_1px": float(within_all.mean()) if within_all.size else 0.0,
            "descriptor_cosine": float(cos_all.mean()) if cos_all.size else 0.0,
            "images": len(within), "bit_identical": bool(identical) and all(identical)}


class _Matcher:
    """Matches a pair on the pipeline's backend with a trace of its decisions where the backend's
    matcher stages can be traced, else through ``Pipeline.match`` without one."""

    def __init__(self, pipe: Pipeline, perturb: float) -> None:
        self.pipe, self.perturb = pipe, perturb
        found = matcher_stages(pipe.backend)
        if found is None and perturb:
            raise ConfigError("--perturb needs a backend whose matcher stages can be traced (torch "
                             "FP32 without CUDA graphs, onnxruntime, tensorrt)")
        self.traced = found is not None
        self.stages, self.conf = found if found is not None else (None, None)

    def __call__(self, f0: Features, f1: Features, seed: int) -> tuple[Matches, MatchTrace | None]:
        if self.stages is None:
            return self.pipe.match(f0, f1), None
        return traced_match(self.stages, self.conf, self.pipe.device, f0, f1, self.perturb, seed)


def matcher_parity(pipe: Pipeline, gold: GoldenSet, mode: str, perturb: float = 0.0
                   ) -> dict[str, Any]:
    match = _Matcher(pipe, perturb)
    pairs: list[PairComparison] = []
    for k, path in enumerate(tqdm(gold.pair_files(mode), desc=f"{gold.extractor} {mode}",
                                  leave=False)):
        name0, name1 = path.stem.split("__")
        ours, trace = match(gold.features(path.parent.name, name0),
                            gold.features(path.parent.name, name1), seed=k)
        pairs.append(compare_pair(ours, trace, np.load(path), match.conf,
                                  getattr(match.stages, "n_layers", 0)))
    return summarize(pairs, match.traced)


def summarize(pairs: list[PairComparison], traced: bool = True) -> dict[str, Any]:
    """The figures of one mode. Match agreement: the share of points whose decision equals the
    reference's or differs by a near-tie flip, over the pairs that exit at the same layer or
    whose exit differs other than by a near-tie; stop agreement: the share of pairs exiting at
    the same layer or differing by a near-tie."""
    compared = [p for p in pairs if not p.exit_flip]
    points = sum(p.points for p in compared)
    n = len(pairs)
    return {"match_agreement": sum(p.same + p.flips for p in compared) / points if points else 0.0,
            "near_tie_flips": sum(p.flips for p in compared),
            "disagreements": sum(p.disagreements for p in compared),
            "stop_agreement": sum(p.stop_same or p.exit_flip for p in pairs) / n if n else 0.0,
            "exit_near_tie_flips": sum(p.exit_flip for p in pairs),
            "points_differing_after_exit_flips": sum(p.differ_after_exit_flip for p in pairs),
            "max_score_diff": max((p.max_score_diff for p in pairs), default=0.0),
            "bit_identical": bool(pairs) and all(p.identical for p in pairs),
            "pairs": n, "points": sum(p.points for p in pairs), "near_tie_analysis": traced,
            "score_tolerance": SCORE_TOLERANCE}


def check_bars(extractor: str, entry: dict[str, Any]) -> list[str]:
    """The bars an extractor's parity entry misses, in words (empty: all met)."""
    bars = BARS.get(extractor)
    if bars is None:
        return [f"no bars defined for {extractor}"]
    failures = []
    for key in ("keypoints_within_1px", "descriptor_cosine"):
        if key in entry and entry[key] < getattr(bars, key):
            failures.append(f"{key} {entry[key]:.5f} < {getattr(bars, key)}")
    for mode, m in entry["modes"].items():
        for key in ("match_agreement", "stop_agreement"):
            if m[key] < getattr(bars, key):
                failures.append(f"{mode}: {key} {m[key]:.4f} < {getattr(bars, key)}")
        if m["max_score_diff"] > bars.max_score_diff:
            failures.append(f"{mode}: max_score_diff {m['max_score_diff']:.2e} > "
                            f"{bars.max_score_diff}")
    return failures


def run_parity(golden: Path, base: Config | None = None, perturb_units: float = 0.0,
               matcher_only: bool = False) -> dict[str, Any]:
    """Parity figures per extractor folder in ``golden``; extractors this build does not have
    (or whose weights are missing) are reported as skipped with the reason. ``perturb_units``:
    every matcher stage output perturbed by up to that many units u of float32 rounding;
    ``matcher_only``: the extractors are not run (their bars are then not judged)."""
    golden = Path(golden)
    images = find_images(golden)
    base = base or Config()
    report: dict[str, Any] = {}
    for extractor in golden_extractors(golden):
        if extractor not in EXTRACTORS:
            report[extractor] = {"skipped": f"extractor '{extractor}' is not in this build "
                                            f"(it has {', '.join(EXTRACTORS)})"}
            continue
        gold = GoldenSet(golden, extractor, images)
        readme, modes = gold.readme(), gold.modes()
        if not gold.feature_files() and not modes:
            report[extractor] = {"skipped": f"no golden features or matches in "
                                            f"{golden / extractor}"}
            continue
        try:
            pipe = Pipeline(config_for(readme, extractor, modes[0] if modes else "", base))
        except WeightsError as exc:
            report[extractor] = {"skipped": f"weights unavailable: {exc}"}
            continue
        entry = {} if matcher_only else extractor_parity(pipe, gold)
        entry["modes"] = {}
        for mode in modes:
            pipe.set_thresholds(**readme.get("matcher_conf", {}).get(mode, {}))
            entry["modes"][mode] = matcher_parity(pipe, gold, mode, perturb_units * UNIT_ROUNDOFF)
        entry["perturb_units"] = perturb_units
        entry["bars"] = asdict(BARS[extractor]) if extractor in BARS else None
        entry["failures"] = check_bars(extractor, entry)
        report[extractor] = entry
    return report
