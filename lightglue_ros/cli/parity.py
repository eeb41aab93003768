"""``lightglue-ros parity --golden DIR``: agreement with the official implementation's outputs."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import add_arguments, from_args

FLOAT32_ROUNDING = 2.0 ** -24  # unit roundoff of float32


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parity", help="compare with golden outputs of the official code",
                       description="Run each extractor found under --golden on the golden input "
                                   "images and the matcher on the golden features; report "
                                   "agreement, near-tie flips, bit-identity and the bars met. "
                                   "Exits 1 when a bar is missed.")
    p.add_argument("--golden", required=True, type=Path, help="directory like ../shared/golden")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument("--perturb-ulps", type=float, default=0.0, metavar="U",
                   help="multiply every matcher stage output by 1 + U * 2^-24 * uniform(-1, 1) "
                        "(fixed seeds): a simulated machine whose kernels round differently")
    add_arguments(p, ("inference",))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.parity import run_parity

    report = run_parity(args.golden, from_args(args), args.perturb_ulps * FLOAT32_ROUNDING)
    failed = any(entry.get("failures") for entry in report.values())
    if args.json:
        print(json.dumps(report))
        return int(failed)
    for extractor, entry in report.items():
        if "skipped" in entry:
            print(f"{extractor}: skipped: {entry['skipped']}")
            continue
        print(f"{extractor}: keypoints within 1 px {entry['keypoints_within_1px']:.4f}, "
              f"descriptor cosine {entry['descriptor_cosine']:.5f}, bit-identical "
              f"{_yes(entry['bit_identical'])} ({entry['images']} images)")
        for mode, m in entry["modes"].items():
            print(f"  {mode:9s} match agreement {m['match_agreement']:.4f} "
                  f"({m['near_tie_flips']} near-tie flips, {m['disagreements']} disagreements), "
                  f"stop agreement {m['stop_agreement']:.3f} ({m['exit_near_tie_flips']} "
                  f"near-tie flips), max score diff {m['max_score_diff']:.2e}, bit-identical "
                  f"{_yes(m['bit_identical'])} ({m['pairs']} pairs)")
        failures = entry["failures"]
        print(f"  bars: {'all met' if not failures else 'MISSED: ' + '; '.join(failures)}")
    return int(failed)


def _yes(value: bool) -> str:
    return "yes" if value else "no"
