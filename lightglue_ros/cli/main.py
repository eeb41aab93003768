"""Entry point of ``lightglue-ros``: dispatches to the subcommand modules."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..config import ConfigError
from ..errors import LightGlueRosError

# Subcommand modules; each has register(subparsers) and keeps heavy imports inside its run().
COMMANDS = ("demo", "match", "track", "eval_pairs", "eval_homography", "make_bag", "eval_bag",
            "replay", "bench", "stress", "parity", "weights", "config_cmd", "export",
            "build_engines", "bench_runtimes", "gpu_check", "bundle")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightglue-ros",
        description="Learned-feature camera tracking (SuperPoint/ALIKED/DISK + LightGlue).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (LightGlueRosError, ConfigError, FileNotFoundError) as exc:
        print(f"lightglue-ros {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
