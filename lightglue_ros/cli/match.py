"""``lightglue-ros match IMG0 IMG1``: match two images, print figures, draw the matches."""
from __future__ import annotations

import argparse

from ..config import add_arguments, from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("match", help="match two images and optionally draw the matches",
                       description="Extract features from two images, match them with LightGlue, "
                                   "print the number of matches, layers used and timings.")
    p.add_argument("image0")
    p.add_argument("image1")
    p.add_argument("--viz", metavar="PNG", help="write a side-by-side picture of the matches")
    add_arguments(p, ("features", "matcher", "inference"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..images import load_image
    from ..pipeline import Pipeline
    from ..viz.matches import draw_matches, save_rgb

    pipe = Pipeline(from_args(args))
    img0, img1 = load_image(args.image0), load_image(args.image1)
    f0 = pipe.extract(img0)
    t0 = pipe.timings["extract"]
    f1 = pipe.extract(img1)
    t1 = pipe.timings["extract"]
    matches = pipe.match(f0, f1)
    tm = pipe.timings["match"]
    c = pipe.config
    print(f"{from_args(args).model}")
    print(f"keypoints {len(f0)} / {len(f1)}")
    print(f"matches {len(matches)} | layers {matches.layers}")
    print(f"time extract {1e3 * t0:.1f} + {1e3 * t1:.1f} ms | match {1e3 * tm:.1f} ms")
    if args.viz:
        text = (f"{c.extractor}+LightGlue: {len(matches)} matches, {matches.layers} layers\n"
                f"{len(f0)} / {len(f1)} keypoints")
        save_rgb(args.viz, draw_matches(img0, img1, f0.keypoints.cpu().numpy(),
                                        f1.keypoints.cpu().numpy(), matches.pairs,
                                        matches.pair_scores, text=text))
        print(f"picture {args.viz}")
    return 0
