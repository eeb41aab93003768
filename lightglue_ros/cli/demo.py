"""``lightglue-ros demo``: the whole product on the embedded synthetic sequence, no data needed.

1. the synthetic RGB-D sequence is written as a ROS 2 bag with its ground truth (make-bag);
2. the offline pipeline evaluates the bag (eval: trajectory, per-frame CSV, pictures, report);
3. the real tracker node runs in its own process and the bag is replayed into it over DDS in
   wait mode (replay), its odometry recorded and evaluated against the same ground truth.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from ..config import add_arguments, from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the product on the embedded synthetic sequence",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory")
    p.add_argument("--frames", type=int, default=45, help="frames of the synthetic sequence")
    p.add_argument("--no-live", action="store_true", help="skip the live node (step 3)")
    add_arguments(p, ("features", "matcher", "inference", "tracking"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..bags.convert import make_bag
    from ..bags.evaluate import evaluate_bag, figure_lines

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    bag_path = out / "synthetic_bag"
    given = from_args(args)
    config = given.resolved()
    print(f"tracking with {given.model}")
    if given.extractor == "auto":
        print(f"  extractor auto: {config.extractor} "
              + ("(real time on a CPU; --extractor aliked for more accuracy)"
                 if config.extractor == "xfeat" else f"(on {config.device})"))
    print("[1/3] writing the synthetic sequence as a bag")
    made = make_bag("synthetic", bag_path, "mcap", frames=args.frames, progress=True) \
        if not bag_path.exists() else None
    gt = made.groundtruth if made else bag_path.with_name(bag_path.name + ".gt.txt")
    print("[2/3] offline evaluation (the node's pipeline, frame by frame)")
    offline = evaluate_bag(bag_path, gt, config, out_dir=out / "eval",
                           depth_topic="/camera/depth/image_raw")
    for name, value in figure_lines(offline):
        print(f"  {name}: {value}")
    print(f"  report: {offline['report']}")
    figures = {"model": given.model, "frames": args.frames, "offline": offline}
    if args.no_live:
        return _save(figures, out)
    print("[3/3] live: tracker node in its own process, bag replayed into it (wait mode)")
    live = _live(bag_path, gt, out, config.extractor)
    for key in ("answered", "timeouts", "ate_rmse_m", "rpe_trans_m", "rel_rot_err_median_deg"):
        print(f"  {key}: {live[key]}")
    print(f"  node outputs recorded to {out / 'live_outputs'}; node log {out / 'node.log'}")
    figures["live"] = live
    _save(figures, out)
    return 0 if live["timeouts"] == 0 else 1


def _save(figures: dict, out: Path) -> int:
    """Both steps' figures in one file, ``OUT/figures.json``."""
    path = out / "figures.json"
    path.write_text(json.dumps(figures, indent=1, default=str))
    print(f"figures: {path}")
    return 0


def _live(bag: Path, gt: Path, out: Path, extractor: str) -> dict:
    from ..ros.replay import replay
    from .replay import _evaluate

    domain = str(os.environ.get("ROS_DOMAIN_ID") or 100 + os.getpid() % 100)
    env = {**os.environ, "ROS_DOMAIN_ID": domain, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    os.environ.update(ROS_DOMAIN_ID=domain, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    recorded = out / "live_outputs"
    if recorded.exists():
        import shutil
        shutil.rmtree(recorded)
    with open(out / "node.log", "w") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "lightglue_ros.node", "--ros-args", "-r", "__ns:=/camera",
             "-p", "input_qos:=reliable", "-p", "use_depth:=true", "-p", "use_sim_time:=true",
             "-p", f"extractor:={extractor}",  # the network the offline step ran
             "-r", "image:=/camera/image_raw", "-r", "depth:=/camera/depth/image_raw"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            stats = replay(bag, "/camera/lightglue_tracker", recorded, wait=True)
        finally:
            node.send_signal(signal.SIGINT)
            node.wait(30)
    figures = {"answered": stats.answered, "timeouts": stats.timeouts}
    figures.update(_evaluate(stats.odometry, gt, stats.metric))
    return figures
