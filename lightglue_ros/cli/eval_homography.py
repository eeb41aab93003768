"""``lightglue-ros eval-homography``: corner error of the estimated homographies on an
HPatches-style sequence (image 1 against images 2..6)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import add_arguments, from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-homography", help="HPatches homography corner error",
                       description="Match image 1 of an HPatches sequence with images 2..6, "
                                   "estimate each homography (MAGSAC++) and report the mean "
                                   "distance of the four corners from the ground truth, in "
                                   "pixels of the images resized to a 480-pixel short side.")
    p.add_argument("folder", type=Path, help="a sequence: 1.ppm..6.ppm and H_1_2..H_1_6")
    p.add_argument("--protocol", choices=("glue-factory", "defaults"), default="glue-factory",
                   help="glue-factory: the settings of LightGlue's evaluation (2048 keypoints, "
                        "threshold 0, all layers), under any flag given; defaults: the tracking "
                        "defaults (default: glue-factory)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    add_arguments(p, ("features", "matcher", "inference"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..config import Config
    from ..evaluation.homography import PROTOCOL, sequence_corner_errors
    from ..pipeline import Pipeline

    base = Config().replace(**PROTOCOL) if args.protocol == "glue-factory" else None
    pipe = Pipeline(from_args(args, base))
    errors = sequence_corner_errors(pipe, args.folder, range(2, 7))
    result = {"sequence": args.folder.name, "protocol": args.protocol, "model": pipe.config.model,
              "corner_error_px": {f"1-{k}": e for k, e in errors.items()}}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.folder.name} ({pipe.config.model}, {args.protocol}): " + ", ".join(
        f"1-{k} {e:.2f} px" for k, e in errors.items()))
    return 0
