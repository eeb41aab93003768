"""``lightglue-ros track SOURCE``: run the tracker over a dataset folder or the synthetic scene."""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..config import add_arguments, from_args

if TYPE_CHECKING:
    from ..tracking import FrameRecord, Tracker
    from ..types import FrameInput, Trajectory


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track", help="track a TUM RGB-D / KITTI / EuRoC / image folder, or 'synthetic'",
        description="Run the tracker frame by frame; write trajectory.txt (TUM format), "
                    "frames.csv, figures.json and pictures to --out; with ground truth print "
                    "ATE, RPE (evo) and the median relative rotation error.")
    p.add_argument("source", help="dataset folder, or 'synthetic' for the embedded sequence")
    p.add_argument("--out", type=Path, default=Path("out/track"), help="output directory")
    p.add_argument("--preset", choices=("fr1", "fr2", "fr3"), help="TUM camera intrinsics")
    p.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"))
    p.add_argument("--distortion", type=float, nargs="+", metavar="K",
                   help="plumb_bob coefficients k1 k2 p1 p2 [k3]")
    p.add_argument("--rate", type=float, help="image-folder frame rate (Hz)")
    p.add_argument("--no-depth", action="store_true", help="ignore depth images (monocular)")
    p.add_argument("--no-stereo", action="store_true",
                   help="KITTI / EuRoC: track the left camera alone, without the right one")
    p.add_argument("--frames", type=int, default=90, help="synthetic: number of frames")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="track every Nth frame only: what a tracker that keeps up with one "
                   "camera frame in N sees")
    p.add_argument("--synthetic-depth-noise", type=float, default=0.0, metavar="A",
                   help="synthetic: Gaussian depth noise sigma_z = A z^2 (metres; the model of "
                   "--depth-noise), 0: exact depth")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    add_arguments(p, ("features", "matcher", "inference", "tracking"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..datasets import open_dataset
    from ..datasets.frames import dataset_frames, synthetic_frames
    from ..evaluation.tracking_run import format_figures, run_tracker, write_outputs
    from ..types import Trajectory
    from ..pipeline import Pipeline
    from ..synthetic import make_sequence
    from ..tracking import Tracker

    tracker = Tracker(Pipeline(from_args(args)))
    if args.source == "synthetic":
        seq = make_sequence(num_frames=args.frames, depth_noise=args.synthetic_depth_noise)
        frames, total = synthetic_frames(seq, not args.no_depth), len(seq)
        gt, name = Trajectory(seq.stamps, seq.poses), "synthetic"
    else:
        ds = open_dataset(args.source, intrinsics=args.intrinsics, distortion=args.distortion,
                          preset=args.preset, rate_hz=args.rate, stereo=not args.no_stereo)
        frames, total = dataset_frames(ds, not args.no_depth), len(ds.frames)
        gt, name = ds.groundtruth, ds.name
    if args.every < 1:
        raise SystemExit("--every must be at least 1")
    frames, total = itertools.islice(frames, 0, None, args.every), -(-total // args.every)
    refined: dict = {}
    tracker.on_refined = refined.update
    if tracker.config.slam:
        records, slam_figures = _run_slam(tracker, frames, total, gt)
    else:
        records, slam_figures = run_tracker(tracker, frames, total, progress=True), {}
    figures = write_outputs(records, args.out, gt, f"{name}: {tracker.config.extractor}",
                            refined)
    figures.update(slam_figures)
    if args.json:
        print(json.dumps(figures))
    else:
        for line in format_figures(figures):
            print(line)
        if slam_figures:
            print(json.dumps(slam_figures))
        print(f"outputs in {args.out}")
    return 0


def _run_slam(tracker: Tracker, frames: Iterable[FrameInput], total: int,
              gt: Trajectory | None) -> tuple[list[FrameRecord], dict[str, Any]]:
    """SLAM over the frames: the tracker's records and the SLAM figures. With ``map_path`` an
    existing map is localized in (and left as it is); otherwise the run's map is saved there."""
    from ..evaluation.slam_run import run_slam, slam_figures
    from ..evaluation.tracking_run import is_metric
    from ..slam.map_file import open_slam, save_slam

    path = tracker.config.map_path
    slam, loaded = open_slam(tracker, path)  # as eval and the node: MapFileError for a bad file
    results = run_slam(slam, frames, total)
    records = [r.record for r in results]
    if path and not loaded:
        save_slam(path, slam)
    return records, slam_figures(slam, results, gt, is_metric(records))
