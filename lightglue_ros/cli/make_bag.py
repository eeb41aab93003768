"""``lightglue-ros make-bag SOURCE OUT``: a dataset folder or the synthetic sequence as a bag."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "make-bag", help="write a TUM / KITTI / EuRoC folder or 'synthetic' as a ROS 2 bag",
        description="Convert a dataset into a ROS 2 bag (sqlite3 or MCAP) of sensor_msgs/Image "
                    "(rgb8, or mono8 for grey datasets), CameraInfo per frame and, with depth, "
                    "a 32FC1 depth Image, under --namespace (/camera/image_raw, "
                    "/camera/camera_info, /camera/depth/image_raw; a stereo dataset's rectified "
                    "right eye on /camera/right/image_raw and /camera/right/camera_info, whose P "
                    "holds the baseline); the ground truth is written "
                    "beside the bag as OUT.gt.txt (TUM format, camera-to-world, header clock).")
    p.add_argument("source", help="dataset folder, or 'synthetic' for the embedded sequence "
                                  "(with depth)")
    p.add_argument("out", type=Path, help="bag folder to create (must not exist)")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3",
                   help="bag storage (default sqlite3)")
    p.add_argument("--preset", choices=("fr1", "fr2", "fr3"), help="TUM camera intrinsics")
    p.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"))
    p.add_argument("--distortion", type=float, nargs="+", metavar="K",
                   help="plumb_bob coefficients k1 k2 p1 p2 [k3]")
    p.add_argument("--rate", type=float, help="image-folder frame rate (Hz)")
    p.add_argument("--frames", type=int,
                   help="only the first N frames (synthetic: the sequence length, default 90)")
    p.add_argument("--no-depth", action="store_true", help="leave depth images out")
    p.add_argument("--no-stereo", action="store_true",
                   help="KITTI / EuRoC: the left camera alone, without the right one")
    p.add_argument("--namespace", default="/camera", help="topic namespace (default /camera)")
    p.add_argument("--frame-id", default="camera_optical_frame", help="header frame_id")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bags.convert import make_bag

    made = make_bag(args.source, args.out, args.storage, preset=args.preset,
                    intrinsics=args.intrinsics, distortion=args.distortion, rate_hz=args.rate,
                    frames=args.frames, use_depth=not args.no_depth,
                    use_stereo=not args.no_stereo, namespace=args.namespace,
                    frame_id=args.frame_id, progress=not args.json)
    result = {"bag": str(made.path), "storage": args.storage, "source": made.kind,
              "frames": made.frames, "topics": made.counts,
              "groundtruth": str(made.groundtruth) if made.groundtruth else None}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"wrote {made.path} ({args.storage}): {made.frames} frames of {made.name}")
        for topic, count in made.counts.items():
            print(f"  {topic}: {count} messages")
        print(f"ground truth: {made.groundtruth}" if made.groundtruth
              else "ground truth: none (the source has none)")
    return 0
