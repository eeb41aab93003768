"""``lightglue-ros demo``: the main job on the embedded synthetic sequence, no data needed."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import add_arguments, from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the product on the embedded synthetic sequence",
                       description="Render the embedded synthetic sequence, match frames with "
                                   "LightGlue and write pictures and figures to --out.")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory")
    p.add_argument("--frames", type=int, default=30, help="frames of the synthetic sequence")
    add_arguments(p, ("features", "matcher", "inference"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..pipeline import Pipeline
    from ..synthetic import make_sequence
    from ..viz.matches import draw_matches, save_rgb

    args.out.mkdir(parents=True, exist_ok=True)
    pipe = Pipeline(from_args(args))
    seq = make_sequence(num_frames=args.frames)
    first, last = seq.frame(0), seq.frame(len(seq) - 1)
    f0, f1, matches = pipe.match_images(first.rgb, last.rgb)
    text = (f"{pipe.config.extractor}+LightGlue, synthetic frames 0 and {len(seq) - 1}: "
            f"{len(matches)} matches, {matches.layers} layers")
    picture = args.out / "matches.png"
    save_rgb(picture, draw_matches(first.rgb, last.rgb, f0.keypoints.numpy(),
                                   f1.keypoints.numpy(), matches.pairs, matches.pair_scores,
                                   text=text))
    print(text)
    print(f"picture {picture}")
    return 0
