"""``lightglue-ros parity --golden DIR``: agreement with the official implementation's outputs."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import add_arguments, from_args

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parity", help="compare with golden outputs of the official code",
                       description="Run each extractor found under --golden on the golden input "
                                   "images and the matcher on the golden features; report "
                                   "agreement, near-tie flips, bit-identity and the bars met. "
                                   "Exits 1 when a bar is missed.")
    p.add_argument("--golden", required=True, type=Path, help="directory like ../shared/golden")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument("--perturb", type=float, default=0.0, metavar="U",
                   help="multiply every matcher stage output by 1 + U * u * uniform(-1, 1), u = 2^-24 "
                        "(fixed seeds): a simulated machine whose kernels round differently "
                        "(see evaluation/near_ties.py)")
    p.add_argument("--matcher-only", action="store_true",
                   help="judge the matcher alone (on the golden features); no extraction")
    add_arguments(p, ("inference",))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.parity import run_parity

    report = run_parity(args.golden, from_args(args), args.perturb, args.matcher_only)
    failed = any(entry.get("failures") for entry in report.values())
    if args.json:
        print(json.dumps(report))
        return int(failed)
    for extractor, entry in report.items():
        if "skipped" in entry:
            print(f"{extractor}: skipped: {entry['skipped']}")
            continue
        if "images" in entry:
            print(f"{extractor}: keypoints within 1 px {entry['keypoints_within_1px']:.4f}, "
                  f"descriptor cosine {entry['descriptor_cosine']:.5f}, bit-identical "
                  f"{_yes(entry['bit_identical'])} ({entry['images']} images)")
        else:
            print(f"{extractor}: matcher only")
        for mode, m in entry["modes"].items():
            print(f"  {mode:9s} match agreement {m['match_agreement']:.4f} "
                  f"({m['near_tie_flips']} near-tie flips, {m['disagreements']} disagreements), "
                  f"stop agreement {m['stop_agreement']:.3f} ({m['exit_near_tie_flips']} "
                  f"near-tie flips), max score diff {m['max_score_diff']:.2e}, bit-identical "
                  f"{_yes(m['bit_identical'])} ({m['pairs']} pairs)")
            if m["exit_near_tie_flips"]:
                print(f"            {m['points_differing_after_exit_flips']} points differ in "
                      f"the pairs whose exit flipped (other depth, not compared)")
        failures = entry["failures"]
        print(f"  bars: {'all met' if not failures else 'MISSED: ' + '; '.join(failures)}")
    return int(failed)


def _yes(value: bool) -> str:
    return "yes" if value else "no"
