"""``lightglue-ros replay BAG``: play a bag into the live tracker node and record its outputs."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="play a bag into the running tracker node",
                       description="Publish a ROS 2 bag (sqlite3 or MCAP) with /clock, in the "
                                   "bag's timing scaled by --rate or waiting for the node after "
                                   "each image (--wait true), and record the node's outputs.")
    p.add_argument("bag", type=Path)
    p.add_argument("--node", default="/camera/lightglue_tracker",
                   help="fully qualified name of the tracker node whose outputs are recorded")
    p.add_argument("--out", type=Path, help="record the node's outputs to this bag (MCAP)")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    p.add_argument("--wait", type=_bool, default=True,
                   help="wait for the node's odometry after each image (default true)")
    p.add_argument("--topics", nargs="+", help="only these bag topics")
    p.add_argument("--image-topic", default="/camera/image_raw",
                   help="the bag's image topic (the frames the node answers)")
    p.add_argument("--gt", type=Path, help="ground truth (TUM format) to evaluate the odometry")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..ros.replay import replay

    stats = replay(args.bag, args.node, args.out, args.rate, args.wait, args.topics,
                   args.image_topic, progress=not args.json)
    result = {"published": stats.published, "images": stats.images,
              "answered": stats.answered, "timeouts": stats.timeouts,
              "recorded": stats.recorded}
    if args.gt is not None:
        from ..evaluation.trajectory import TrajectoryError

        try:
            result.update(_evaluate(stats.odometry, args.gt, stats.metric))
        except TrajectoryError as exc:  # e.g. too few images answered at the camera's rate
            result["accuracy_error"] = str(exc)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def _evaluate(odometry: list, gt_path: Path, metric: bool) -> dict:
    """Trajectory figures of the odometry the node published. Lost frames (rotation variance at
    the lost value: the node holds the last pose) are excluded, as in offline evaluation."""
    import numpy as np

    from ..evaluation.trajectory import evaluate
    from ..types import Trajectory
    from ..geometry.covariance import LARGE_VARIANCE
    from ..geometry.se3 import make_transform, quaternion_to_rotation

    kept = sorted((stamp, msg) for stamp, msg in odometry
                  if msg.pose.covariance[21] < LARGE_VARIANCE)
    poses = []
    for _, msg in kept:
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        poses.append(make_transform(quaternion_to_rotation(np.array([q.x, q.y, q.z, q.w])),
                                    np.array([p.x, p.y, p.z])))
    est = Trajectory(np.array([s for s, _ in kept]), np.array(poses).reshape(-1, 4, 4))
    metrics = evaluate(est, Trajectory.read_tum(gt_path), align="se3" if metric else "sim3")
    return {"frames": len(odometry), "lost_frames": len(odometry) - len(kept),
            **metrics.summary()}
