"""``lightglue-ros eval-pairs``: relative pose AUC on a SuperGlue-format pairs file."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import add_arguments, from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-pairs", help="pose AUC at 5/10/20 degrees on image pairs",
                       description="Match each pair, estimate the relative pose (essential "
                                   "matrix or homography, MAGSAC++) and report the AUC of the "
                                   "pose error, matches and inlier ratios.")
    p.add_argument("--pairs", required=True, type=Path, help="SuperGlue-format pairs file")
    p.add_argument("--images", required=True, type=Path, help="folder holding the images")
    p.add_argument("--reference", type=Path, metavar="GOLDEN_DIR",
                   help="also report the official implementation's matches from this golden "
                        "folder (e.g. ../shared/golden/aliked) with the OpenCV reference "
                        "estimator (RANSAC essential matrix, 0.5 px): the figure to beat")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    add_arguments(p, ("features", "matcher", "inference"), names=("ransac_threshold_px",))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.pairs import evaluate_pairs, golden_reference_auc, read_pairs
    from ..pipeline import Pipeline

    pipe = Pipeline(from_args(args))

    def matcher(img0, img1):
        f0, f1, m = pipe.match_images(img0, img1)
        return (f0.keypoints.numpy()[m.pairs[:, 0]].astype(float),
                f1.keypoints.numpy()[m.pairs[:, 1]].astype(float))

    pairs = read_pairs(args.pairs)
    result = evaluate_pairs(pairs, args.images, matcher, pipe.config.ransac_threshold_px)
    result["model"] = pipe.config.model
    if args.reference is not None:
        result["reference"] = golden_reference_auc(pairs, args.reference)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['pairs']} pairs | AUC@5 {result['auc@5']:.2f} | AUC@10 "
          f"{result['auc@10']:.2f} | AUC@20 {result['auc@20']:.2f} | matches "
          f"{result['mean_matches']:.0f} | inlier ratio {result['mean_inlier_ratio']:.2f}")
    if "reference" in result:
        ref = result["reference"]
        print(f"official matches + OpenCV reference: AUC@5 {ref['auc@5']:.2f} | AUC@10 "
              f"{ref['auc@10']:.2f} | AUC@20 {ref['auc@20']:.2f}")
    return 0
