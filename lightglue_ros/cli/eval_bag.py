"""``lightglue-ros eval BAG``: the node's tracker over a recorded bag, against ground truth."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import add_arguments, from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="track a ROS 2 bag offline and evaluate it against ground truth",
        description="Run the tracker the node runs over every image of a bag (sqlite3 or MCAP; "
                    "camera_info and optional depth paired as the node pairs them) and write "
                    "trajectory.txt, frames.csv, figures.json, pictures and report.md to --out. "
                    "With ground truth (TUM format, camera-to-world) print ATE and RPE (SE(3) "
                    "alignment with depth, Sim(3) without) and the median relative rotation "
                    "error.")
    p.add_argument("bag", type=Path, help="bag folder, or a .db3 / .mcap file")
    p.add_argument("--gt", type=Path,
                   help="ground truth, TUM format (default: BAG.gt.txt when it exists, as "
                        "make-bag writes it)")
    p.add_argument("--image-topic", default="/camera/image_raw",
                   help="sensor_msgs/Image or CompressedImage topic (default /camera/image_raw)")
    p.add_argument("--camera-info-topic", default="/camera/camera_info",
                   help="sensor_msgs/CameraInfo topic (default /camera/camera_info)")
    p.add_argument("--depth-topic", help="depth Image topic (16UC1 mm or 32FC1 m); no depth "
                                         "unless given")
    p.add_argument("--right-image-topic",
                   help="the right eye's Image or CompressedImage topic of a stereo pair (e.g. "
                        "/camera/right/image_raw, as make-bag writes a stereo dataset); mono "
                        "unless given")
    p.add_argument("--right-camera-info-topic", default="/camera/right/camera_info",
                   help="the right eye's CameraInfo topic (default /camera/right/camera_info)")
    p.add_argument("--gap", type=float, default=1.0,
                   help="report a gap when no image came for this many seconds (default 1)")
    p.add_argument("--jump", type=float, default=10.0,
                   help="report a clock jump when the header stamps advance this many seconds "
                        "more than the bag's receive times (default 10)")
    p.add_argument("--out", type=Path, default=Path("out/eval"), help="output directory")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    add_arguments(p, ("features", "matcher", "inference", "tracking"),
                  names=("depth_sync_s", "stereo_sync_s", "image_rectification"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bags.evaluate import default_groundtruth, evaluate_bag, figure_lines

    gt = args.gt
    if gt is None and default_groundtruth(args.bag).is_file():
        gt = default_groundtruth(args.bag)
    figures = evaluate_bag(args.bag, gt, from_args(args), out_dir=args.out,
                           image_topic=args.image_topic,
                           camera_info_topic=args.camera_info_topic, depth_topic=args.depth_topic,
                           gap_s=args.gap, jump_s=args.jump, progress=True,
                           stereo_topics=(args.right_image_topic, args.right_camera_info_topic)
                           if args.right_image_topic else None)
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"ground truth: {gt}" if gt else "ground truth: none (give --gt)")
    for name, value in figure_lines(figures):
        print(f"{name}: {value}")
    for problem in figures["problems"]:
        print(f"bag problem: {problem}")
    print(f"outputs in {args.out} (report: {figures['report']})")
    return 0
