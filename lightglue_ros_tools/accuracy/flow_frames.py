"""How well a frame placed by optical flow would be placed, on the same map: the accuracy half of
the measurement behind the 20 Hz design (``reliability.flow_budget`` is the cost half).

    python -m lightglue_ros_tools.accuracy.flow_frames ../shared/data/kitti07_0_159 \
        [--preset fr2] [--no-depth] [--steps 1] [--out docs/accuracy/flow_frames_kitti07.json]
    python -m lightglue_ros_tools.accuracy.flow_frames synthetic [--no-depth]

Tracks the sequence at the defaults, one frame after the other. After each frame is tracked, its
keypoints that carry a map point are followed by pyramidal Lucas-Kanade flow (``flow_budget``'s,
forward-backward checked) from frame to frame through the next ``--steps`` frames, and the last
of them is placed by PnP on those points, as the map had them when the chain began; the tracker
tracks every frame as always (the flow's poses are only scored, never used). Against ground
truth it prints the median rotation error of the relative pose over those frames, the flow's and
the tracker's, and of the direction of its translation (a monocular translation's length is the
map's scale), with the flow's PnP inliers. ``--steps 1`` is the previous frame to this one; more
steps are what frames between keyframes would see, with the flow's drift and the points it
loses, but on a map that does not follow the flow's frames.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from lightglue_ros.config import Config
from lightglue_ros.evaluation.consistency import MAX_GT_GAP_S
from lightglue_ros.geometry.pnp import PnPConfig, estimate_pose_pnp
from lightglue_ros.geometry.se3 import (angle_between_deg, invert_transform, make_transform,
                                        pose_at_time, rotation_angle_deg)
from lightglue_ros.images import to_gray8
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.tracking import FrameRecord, Tracker, TrackingStatus
from lightglue_ros.tracking.flow import follow
from lightglue_ros.types import FrameInput, Trajectory
from lightglue_ros_tools.accuracy import write_json


def _errors(T_prev_cur: np.ndarray, gt: np.ndarray) -> tuple[float, float | None]:
    """Rotation error and translation direction error (deg; None without a translation) of a
    relative pose."""
    direction = angle_between_deg(T_prev_cur[:3, 3], gt[:3, 3])
    return (rotation_angle_deg(T_prev_cur[:3, :3] @ gt[:3, :3].T),
            None if np.isnan(direction) else direction)


@dataclass
class _Chain:
    """The map points a tracked frame sees, followed by flow through the frames after it."""

    anchor: FrameRecord
    X: np.ndarray  # (M, 3) in the anchor's camera frame, as the map had them
    at: np.ndarray  # (M, 2) where they are in the latest frame
    alive: np.ndarray  # (M,) still followed
    steps: int = 0


def run(frames: Iterator[FrameInput], gt: Trajectory, config: Config, steps: int = 1
        ) -> dict[str, Any]:
    """Each tracked frame's map points followed by flow ``steps`` frames on, where that frame
    is placed by PnP on them; scored with the tracker's relative pose over the same frames."""
    tracker = Tracker(Pipeline(config))
    pnp = PnPConfig(ransac_threshold_px=2 * tracker.config.ransac_threshold_px)
    rows: list[dict[str, Any]] = []
    chains: list[_Chain] = []
    prev_gray = None
    try:
        for frame in frames:
            extracted = tracker.extract(frame)
            gray = to_gray8(frame.image)
            for chain in chains:
                idx = np.flatnonzero(chain.alive)
                landed, kept = follow(prev_gray, gray, chain.at[idx])
                chain.at[idx] = landed
                chain.alive[idx[~kept]] = False
                chain.steps += 1
            due = [c for c in chains if c.steps == steps]
            chains = [c for c in chains if c.steps < steps]
            placed = [(c, *_place(c, frame, pnp, tracker.config.min_inliers)) for c in due]
            record = tracker.track(extracted)
            if record.status is not TrackingStatus.LOST:
                for chain, T, inliers in placed:
                    row = _score(chain.anchor, record, T, inliers, gt)
                    if row is not None:
                        rows.append(row)
                X = tracker.map.points_in(tracker.previous)  # (a chain without points is
                has = np.flatnonzero(np.isfinite(X[:, 0]))  # scored as not placed)
                chains.append(_Chain(record, X[has], tracker.previous.keypoints[has],
                                     np.ones(len(has), bool)))
            prev_gray = gray
    finally:
        tracker.close()
    flowed = [r for r in rows if r["flow"] is not None]

    def median(values: list[float | None]) -> float | None:
        kept = [v for v in values if v is not None]
        return statistics.median(kept) if kept else None

    return {"steps": steps, "frames": len(rows), "flow_placed": len(flowed),
            "tracker_rotation_error_median_deg": median([r["tracker"][0] for r in flowed]),
            "flow_rotation_error_median_deg": median([r["flow"][0] for r in flowed]),
            "tracker_direction_error_median_deg": median([r["tracker"][1] for r in flowed]),
            "flow_direction_error_median_deg": median([r["flow"][1] for r in flowed]),
            "flow_inliers_median": median([r["flow_inliers"] for r in flowed]),
            "rows": rows}


def _place(chain: _Chain, frame: FrameInput, pnp: PnPConfig, min_inliers: int
           ) -> tuple[np.ndarray | None, int]:
    """T_anchor_frame by PnP on the chain's live points, and its inliers (None, 0: not placed)."""
    ok = np.flatnonzero(chain.alive)
    if len(ok) < min_inliers:
        return None, 0
    result = estimate_pose_pnp(chain.X[ok], chain.at[ok], frame.camera, pnp, covariance=False)
    if not result.success:
        return None, 0
    return invert_transform(make_transform(result.R, result.t)), int(result.num_inliers)


def _score(anchor: FrameRecord, record: FrameRecord, flow_T: np.ndarray | None, inliers: int,
           gt: Trajectory) -> dict[str, Any] | None:
    a = pose_at_time(gt.stamps, gt.poses, anchor.seconds, MAX_GT_GAP_S)
    b = pose_at_time(gt.stamps, gt.poses, record.seconds, MAX_GT_GAP_S)
    if a is None or b is None:
        return None
    truth = invert_transform(a) @ b
    ours = invert_transform(anchor.T_odom_cam) @ record.T_odom_cam
    return {"seconds": record.seconds, "keyframe": record.keyframe,
            "tracker": _errors(ours, truth), "flow_inliers": inliers,
            "flow": _errors(flow_T, truth) if flow_T is not None else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a dataset folder as track reads it, or 'synthetic'")
    parser.add_argument("--preset", help="camera preset of a TUM folder (as for track)")
    parser.add_argument("--no-depth", action="store_true", help="monocular (as for track)")
    parser.add_argument("--steps", type=int, default=1,
                        help="frames the points are followed by flow before placing one")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    config = Config()
    if args.source == "synthetic":
        from lightglue_ros.datasets.frames import synthetic_frames
        from lightglue_ros.synthetic import make_sequence

        seq = make_sequence()
        frames, gt = synthetic_frames(seq, not args.no_depth), Trajectory(seq.stamps, seq.poses)
    else:
        from lightglue_ros.datasets import open_dataset
        from lightglue_ros.datasets.frames import dataset_frames

        ds = open_dataset(args.source, preset=args.preset)
        frames, gt = dataset_frames(ds, not args.no_depth), ds.groundtruth
    out = {"argv": ["python", "-m", "lightglue_ros_tools.accuracy.flow_frames", args.source]
           + (["--preset", args.preset] if args.preset else [])
           + (["--no-depth"] if args.no_depth else []) + ["--steps", str(args.steps)],
           "model": config.model, **run(frames, gt, config, args.steps)}
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=1))
    write_json(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
