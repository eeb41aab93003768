"""``lightglue-ros weights``: where each checkpoint resolves from, and fetching missing ones."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list, verify and fetch network weights")
    wsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = wsub.add_parser("list", help="show each checkpoint, where it resolves and whether it "
                                      "matches its pinned sha256")
    ls.add_argument("--weights-dir", default="", help="local weights cache directory")
    ls.set_defaults(run=run_list)
    fe = wsub.add_parser("fetch", help="download checkpoints (needs internet)")
    fe.add_argument("name", help="superpoint, aliked, disk, xfeat (network and its LightGlue) or "
                                  "a key")
    fe.add_argument("--dest", type=Path, default=None, help="directory (default: weights cache)")
    fe.add_argument("--url", default="", help="download from this URL instead (one key only)")
    fe.set_defaults(run=run_fetch)


def run_list(args: argparse.Namespace) -> int:
    from ..errors import WeightsError
    from ..weights.registry import WEIGHTS
    from ..weights.resolve import resolve

    for key, spec in WEIGHTS.items():
        try:
            where = f"ok  {resolve(key, weights_dir=args.weights_dir)}"
        except WeightsError as exc:
            where = f"--  {exc}"
        print(f"{key:22s} {where}\n{'':22s} licence: {spec.licence}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from ..weights.fetch import fetch, keys_for
    from ..weights.registry import WEIGHTS

    keys = keys_for(args.name)
    if args.url and len(keys) != 1:
        raise SystemExit("--url needs a single weight key, e.g. superpoint_lightglue")
    for key in keys:
        print(f"{key}: {fetch(WEIGHTS[key], args.dest, args.url)}")
    return 0
