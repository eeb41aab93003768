"""``lightglue-ros export``: write the ONNX graphs of the extractors and LightGlue."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import EXTRACTORS, add_arguments, from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", conflict_handler="resolve",
                       help="export the extractor and LightGlue graphs to ONNX",
                       description="Export each extractor's graphs (dynamic image size, keypoint "
                                   "ranking with TopK) and LightGlue's per-stage graphs (dynamic "
                                   "keypoint counts) to <engine_dir>/onnx. Exports are cached "
                                   "under a key of weights, options and versions.")
    add_arguments(p, ("features", "inference"))  # our --extractor replaces its own
    p.add_argument("--extractor", dest="extractors", action="append", choices=EXTRACTORS,
                   help="extractor to export (repeatable; default: the configured one)")
    p.add_argument("--force", action="store_true", help="export again even when cached")
    p.set_defaults(run=run)


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:8.2f} MB"


def run(args: argparse.Namespace) -> int:
    from ..inference.export import engine_dir_for, export_for_config

    base = from_args(args).resolved()
    folder = engine_dir_for(base)
    for extractor in args.extractors or [base.extractor]:
        cfg = base.replace(extractor=extractor)
        exported_extractor, exported_matcher, _, _ = export_for_config(cfg, folder,
                                                                       force=args.force)
        for exported in (exported_extractor, exported_matcher):
            total = sum(p.stat().st_size for p in exported.files()) / 1e6
            print(f"{exported.model} (key {exported.key}): {len(exported.graphs)} graph(s), "
                  f"{total:.1f} MB, manifest {exported.manifest}")
            for name, graph in exported.graphs.items():
                print(f"  {name:16s} {_size(graph.path)}  {graph.path}")
    return 0
