"""``lightglue-ros demo``: the main job on the embedded synthetic sequence, no data needed."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..config import add_arguments, from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the product on the embedded synthetic sequence",
                       description="Render the embedded synthetic RGB-D sequence, track it "
                                   "(offline pipeline, the same core the ROS node runs), "
                                   "evaluate against its exact ground truth and write "
                                   "pictures and figures to --out.")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory")
    p.add_argument("--frames", type=int, default=60, help="frames of the synthetic sequence")
    p.add_argument("--no-depth", action="store_true", help="monocular tracking")
    add_arguments(p, ("features", "matcher", "inference", "tracking"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..datasets.frames import synthetic_frames
    from ..evaluation.tracking_run import format_figures, run_tracker, write_outputs
    from ..evaluation.trajectory import Trajectory
    from ..pipeline import Pipeline
    from ..synthetic import make_sequence
    from ..tracking import Tracker
    from ..viz.matches import draw_matches, save_rgb

    pipe = Pipeline(from_args(args))
    seq = make_sequence(num_frames=args.frames)
    frames = list(synthetic_frames(seq, not args.no_depth))
    records = run_tracker(Tracker(pipe), frames, len(frames))
    figures = write_outputs(records, args.out, Trajectory(seq.stamps, seq.poses),
                            f"synthetic: {pipe.config.extractor}")
    shown = max(range(1, len(records)), key=lambda i: records[i].num_matches, default=0)
    r = records[shown]
    index = {f.stamp: i for i, f in enumerate(frames)}
    if r.ref_stamp is not None:
        picture = args.out / "matches.png"
        save_rgb(picture, draw_matches(
            frames[index[r.ref_stamp]].image, frames[shown].image, r.ref_points, r.cur_points,
            np.stack([np.arange(len(r.ref_points))] * 2, axis=1), r.match_scores, r.inliers,
            text=f"frame {shown} against {index[r.ref_stamp]}: {r.num_matches} matches, "
                 f"{r.num_inliers} inliers, {r.layers} layers"))
        figures["pictures"].append(str(picture))
    for line in format_figures(figures):
        print(line)
    for picture in figures["pictures"]:
        print(f"picture {picture}")
    return 0
