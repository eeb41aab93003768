"""Which frames make a sequence's NEES mean, and whether the ground truth there measured the motion.

    python -m lightglue_ros_tools.accuracy.nees_frames ../shared/data/kitti06_stereo_0_50 \
        --extractor xfeat --extractor aliked --out docs/accuracy/nees_frames_kitti06.json

Tracks the dataset at the defaults once per extractor (the figures of ``lightglue-ros track``),
then prints per frame the relative rotation error against ground truth, its rotation (3 DOF) and
pose (6 DOF) NEES, and the ground truth's own rotation increment and how much it changed from the
previous frame's. Ground truth whose rotation increments repeat to within ``--constant-deg`` over
at least ``--constant-run`` frames is marked as a constant-rate stretch: a camera on a moving
vehicle or in a hand never turns at a constant rate to a thousandth of a degree, so there the
ground truth was filled in, not measured. With two extractors it also gives the cosine between
their error vectors on each frame: two networks' errors that point the same way are the camera's
real motion, not either network's error. The means are given over all frames (the figure
``track`` prints) and over the frames whose relative pose spans no constant-rate stretch.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from lightglue_ros.config import Config
from lightglue_ros.datasets import Dataset, open_dataset
from lightglue_ros.datasets.frames import dataset_frames
from lightglue_ros.evaluation.consistency import nees, relative_errors
from lightglue_ros.evaluation.tracking_run import run_tracker
from lightglue_ros.geometry.se3 import invert_transform
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.tracking import Tracker
from lightglue_ros.types import Trajectory
from lightglue_ros_tools.accuracy import write_json


def rotation_increments_deg(gt: Trajectory) -> np.ndarray:
    """(N-1, 3) rotation vector, degrees, of each ground-truth sample relative to the one before."""
    return np.array([np.degrees(Rotation.from_matrix(
        (invert_transform(a) @ b)[:3, :3]).as_rotvec()) for a, b in zip(gt.poses, gt.poses[1:])])


def constant_rate(increments: np.ndarray, tolerance_deg: float, run: int) -> np.ndarray:
    """(N,) per ground-truth sample: True inside a stretch of at least ``run`` increments that
    each differ from the one before by less than ``tolerance_deg``."""
    steady = np.linalg.norm(np.diff(increments, axis=0), axis=1) < tolerance_deg
    marked = np.zeros(len(increments) + 1, bool)
    start = None
    for i, s in enumerate(np.append(steady, False)):  # steady[i]: increments i and i+1 alike
        if s and start is None:
            start = i
        elif not s and start is not None:
            if i - start + 1 >= run:  # increments start..i, samples start..i+1
                marked[start:i + 2] = True
            start = None
    return marked


def frames_of(ds: Dataset, extractor: str, gt_marked: np.ndarray) -> list[dict]:
    tracker = Tracker(Pipeline(Config(extractor=extractor)))
    try:
        records = run_tracker(tracker, dataset_frames(ds, True), len(ds.frames))
    finally:
        tracker.close()
    stamps = ds.groundtruth.stamps
    rows = []
    for r, e in relative_errors(records, ds.groundtruth):
        P = r.relative_covariance
        span = (stamps >= r.ref_seconds - 1e-6) & (stamps <= r.seconds + 1e-6)
        rows.append({"seconds": r.seconds, "ref_seconds": r.ref_seconds, "keyframe": r.keyframe,
                     "inliers": r.num_inliers, "error_deg": np.degrees(e[3:]).tolist(),
                     "nees_rotation": nees(e[3:], P[3:, 3:]),
                     "nees_pose": nees(e, P) if r.metric else None,
                     "on_constant_rate_gt": bool(gt_marked[span].any())})
    return rows


def summary(rows: list[dict]) -> dict:
    def stats(subset: list[dict]) -> dict:
        pose = [r["nees_pose"] for r in subset if r["nees_pose"] is not None]
        return {"frames": len(subset),
                "nees_rotation_mean": float(np.mean([r["nees_rotation"] for r in subset])),
                "nees_pose_mean": float(np.mean(pose)) if pose else None,
                "median_error_deg": float(np.median(
                    [np.linalg.norm(r["error_deg"]) for r in subset]))}
    measured = [r for r in rows if not r["on_constant_rate_gt"]]
    filled = [r for r in rows if r["on_constant_rate_gt"]]
    return {"all": stats(rows), "measured_gt": stats(measured) if measured else None,
            "constant_rate_gt": stats(filled) if filled else None}


def error_agreement(a: list[dict], b: list[dict]) -> dict:
    """Cosine between two runs' rotation error vectors on the frame pairs both have, and its
    median on constant-rate and on measured ground truth."""
    by_time = {r["seconds"]: r for r in b}
    pairs = []
    for r in a:
        o = by_time.get(r["seconds"])
        if o is not None and o["ref_seconds"] == r["ref_seconds"]:
            u, v = np.array(r["error_deg"]), np.array(o["error_deg"])
            pairs.append({"seconds": r["seconds"],
                          "cosine": float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v))),
                          "on_constant_rate_gt": r["on_constant_rate_gt"]})

    def median(filled: bool) -> float | None:
        c = [p["cosine"] for p in pairs if p["on_constant_rate_gt"] == filled]
        return float(np.median(c)) if c else None

    return {"pairs": pairs, "median_cosine_measured_gt": median(False),
            "median_cosine_constant_rate_gt": median(True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--extractor", action="append", default=None)
    parser.add_argument("--preset", help="camera preset of a TUM folder (as for track)")
    parser.add_argument("--constant-deg", type=float, default=0.002)
    parser.add_argument("--constant-run", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    extractors = args.extractor or ["xfeat"]
    ds = open_dataset(args.dataset, preset=args.preset)
    increments = rotation_increments_deg(ds.groundtruth)
    marked = constant_rate(increments, args.constant_deg, args.constant_run)
    print(f"ground truth: {int(marked.sum())} of {len(marked)} samples in constant-rate "
          f"stretches (rotation increments alike to {args.constant_deg} deg over "
          f">= {args.constant_run} frames)")
    runs = {e: frames_of(ds, e, marked) for e in extractors}
    summaries = {e: summary(rows) for e, rows in runs.items()}
    out = {"dataset": str(args.dataset), "constant_deg": args.constant_deg,
           "constant_run": args.constant_run,
           "gt_constant_rate_samples": np.flatnonzero(marked).tolist(),
           "gt_rotation_increments_deg": increments.tolist(),
           "extractors": {e: {"summary": summaries[e], "frames": rows}
                          for e, rows in runs.items()}}
    if len(extractors) == 2:
        agreement = error_agreement(*(runs[e] for e in extractors))
        out["error_agreement"] = agreement
        print(f"error vectors of {extractors[0]} and {extractors[1]} on the same frame pairs: "
              f"median cosine {agreement['median_cosine_constant_rate_gt']} on constant-rate "
              f"ground truth, {agreement['median_cosine_measured_gt']} elsewhere "
              f"({len(agreement['pairs'])} pairs)")
    for e, parts in summaries.items():
        for part, s in parts.items():
            if s is not None:
                print(f"{e} {part}: {s}")
    write_json(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
