"""How well a frame placed by optical flow would be placed, on the same map: the accuracy half of
the measurement behind the 20 Hz design (``reliability.flow_budget`` is the cost half).

    python -m lightglue_ros_tools.accuracy.flow_frames ../shared/data/kitti07_0_159 \
        [--preset fr2] [--no-depth] [--out docs/accuracy/flow_frames_kitti07.json]
    python -m lightglue_ros_tools.accuracy.flow_frames synthetic [--no-depth]

Tracks the sequence at the defaults, one frame after the other. Before each frame is tracked, the
previous frame's keypoints that carry a map point are followed into it by pyramidal Lucas-Kanade
flow (``flow_budget``'s, forward-backward checked) and the frame is placed by PnP on those points,
the map as tracking has it then; the tracker then tracks the frame as always (the flow's pose is
only scored, never used). Against ground truth it prints the median rotation error of the
relative pose from the previous frame, the flow's and the tracker's, and of the direction of its
translation (a monocular translation's length is the map's scale), with the flow's PnP inliers.
One step only: a chain of flow-placed frames, with no LightGlue match between keyframes, is not
what this measures.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from scipy.spatial.transform import Rotation

from lightglue_ros.config import Config
from lightglue_ros.geometry.pnp import PnPConfig, estimate_pose_pnp
from lightglue_ros.geometry.se3 import invert_transform, make_transform, pose_at_time
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.tracking import Tracker, TrackingStatus
from lightglue_ros.types import FrameInput, Trajectory
from lightglue_ros_tools.accuracy import write_json
from lightglue_ros_tools.reliability.flow_budget import follow, to_gray

MAX_GT_GAP_S = 0.2


def _angle_deg(R: np.ndarray) -> float:
    return float(np.degrees(np.linalg.norm(Rotation.from_matrix(R).as_rotvec())))


def _direction_deg(a: np.ndarray, b: np.ndarray) -> float | None:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < 1e-9 or nb < 1e-9:
        return None
    return float(np.degrees(np.arccos(np.clip(a @ b / (na * nb), -1.0, 1.0))))


def _errors(T_prev_cur: np.ndarray, gt: np.ndarray) -> tuple[float, float | None]:
    """Rotation error and translation direction error (deg) of a relative pose."""
    return (_angle_deg(T_prev_cur[:3, :3] @ gt[:3, :3].T),
            _direction_deg(T_prev_cur[:3, 3], gt[:3, 3]))


def run(frames: Iterator[FrameInput], gt: Trajectory, config: Config) -> dict[str, Any]:
    tracker = Tracker(Pipeline(config))
    pnp = PnPConfig(ransac_threshold_px=2 * tracker.config.ransac_threshold_px)
    rows: list[dict[str, Any]] = []
    prev_image, prev_record = None, None
    try:
        for frame in frames:
            extracted = tracker.extract(frame)
            prev = tracker.previous
            flow_T = None
            inliers = 0
            if prev is not None and prev_image is not None:
                X = tracker.map.points_in(prev)
                has = np.flatnonzero(np.isfinite(X[:, 0]))
                if len(has) >= tracker.config.min_inliers:
                    landed, kept = follow(to_gray(prev_image), to_gray(frame.image),
                                         prev.keypoints[has])
                    result = estimate_pose_pnp(X[has][kept], landed[kept], frame.camera, pnp,
                                               covariance=False)
                    if result.success:
                        flow_T = invert_transform(make_transform(result.R, result.t))
                        inliers = int(result.num_inliers)
            record = tracker.track(extracted)
            if prev_record is not None and record.status is not TrackingStatus.LOST:
                a = pose_at_time(gt.stamps, gt.poses, prev_record.seconds, MAX_GT_GAP_S)
                b = pose_at_time(gt.stamps, gt.poses, record.seconds, MAX_GT_GAP_S)
                if a is not None and b is not None:
                    truth = invert_transform(a) @ b
                    ours = invert_transform(prev_record.T_odom_cam) @ record.T_odom_cam
                    row = {"seconds": record.seconds, "keyframe": record.keyframe,
                           "tracker": _errors(ours, truth), "flow_inliers": inliers,
                           "flow": _errors(flow_T, truth) if flow_T is not None else None}
                    rows.append(row)
            prev_image, prev_record = frame.image, record
    finally:
        tracker.close()
    placed = [r for r in rows if r["flow"] is not None]

    def median(values: list[float | None]) -> float | None:
        kept = [v for v in values if v is not None]
        return statistics.median(kept) if kept else None

    return {"frames": len(rows), "flow_placed": len(placed),
            "tracker_rotation_error_median_deg": median([r["tracker"][0] for r in placed]),
            "flow_rotation_error_median_deg": median([r["flow"][0] for r in placed]),
            "tracker_direction_error_median_deg": median([r["tracker"][1] for r in placed]),
            "flow_direction_error_median_deg": median([r["flow"][1] for r in placed]),
            "flow_inliers_median": median([r["flow_inliers"] for r in placed]),
            "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a dataset folder as track reads it, or 'synthetic'")
    parser.add_argument("--preset", help="camera preset of a TUM folder (as for track)")
    parser.add_argument("--no-depth", action="store_true", help="monocular (as for track)")
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
           + (["--no-depth"] if args.no_depth else []),
           "model": config.model, **run(frames, gt, config)}
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=1))
    write_json(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
