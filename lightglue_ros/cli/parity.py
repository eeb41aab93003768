"""``lightglue-ros parity --golden DIR``: agreement with the official implementation's outputs."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import add_arguments, from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parity", help="compare with golden outputs of the official LightGlue",
                       description="Run the extractors on the golden input images and the matcher "
                                   "on the golden features; report agreement.")
    p.add_argument("--golden", required=True, type=Path, help="directory like ../shared/golden")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    add_arguments(p, ("inference",))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.parity import run_parity

    report = run_parity(args.golden, from_args(args))
    if args.json:
        print(json.dumps(report))
        return 0
    for extractor, entry in report.items():
        print(f"{extractor}: keypoints within 1 px {entry['keypoints_within_1px']:.4f}, "
              f"descriptor cosine {entry['descriptor_cosine']:.5f} ({entry['images']} images)")
        for mode, m in entry.items():
            if isinstance(m, dict):
                print(f"  {mode:9s} match agreement {m['match_agreement']:.4f}, stop agreement "
                      f"{m['stop_agreement']:.3f}, max score diff {m['max_score_diff']:.2e} "
                      f"({m['pairs']} pairs)")
    return 0
