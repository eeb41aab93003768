"""``lightglue-ros gpu-check``: every GPU claim in one time-boxed run that prints one JSON object
(``run``), and the Markdown tables of its JSON (``tables``)."""
from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_EXTRACTORS = "aliked,xfeat"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gpu-check", help="check every GPU claim in one time-boxed run",
                       description="run: parity (torch fp32, fp16, CUDA graphs, TensorRT when "
                                   "it imports), FP16 keypoint loss, CUDA graphs speed and the "
                                   "bench at each keypoint budget, each part in its own "
                                   "time-boxed process; prints one JSON object (progress on "
                                   "stderr). tables: the JSON as Markdown tables.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run every part and print one JSON object")
    run.add_argument("--golden", type=Path, required=True,
                     help="folder of the official golden outputs (README.json, <extractor>/...)")
    run.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (parts "
                     "that need CUDA are then reported skipped)")
    run.add_argument("--extractors", default=DEFAULT_EXTRACTORS,
                     help=f"comma-separated (default {DEFAULT_EXTRACTORS})")
    run.add_argument("--budgets", default="512,1024,2048,4096", help="bench keypoint budgets")
    run.add_argument("--frames", type=int, default=30, help="bench: consecutive frames")
    run.add_argument("--hard-pairs", type=int, default=5, help="bench: far-apart pairs")
    run.add_argument("--bench-size", default="640x480", help="bench: frame size WIDTHxHEIGHT")
    run.add_argument("--graph-rounds", type=int, default=5,
                     help="CUDA graphs speed: passes over the golden frames")
    run.add_argument("--budget-s", type=float, default=480.0,
                     help="time for the whole run; each part is also boxed by its own limit")
    run.add_argument("--out", type=Path, help="also write the JSON here (after every part)")
    run.add_argument("--work", type=Path, help="folder for golden views, engines and partial "
                     "results (default: a temporary one)")
    run.set_defaults(run=_run)

    tables = actions.add_parser("tables", help="Markdown tables of gpu-check JSON files")
    tables.add_argument("json", type=Path, nargs="+")
    tables.add_argument("--into", type=Path, help="replace the gpu-check section of this file "
                        "(between its markers) instead of printing")
    tables.set_defaults(run=_tables)


def _run(args: argparse.Namespace) -> int:
    import json
    import os
    import shlex
    import sys
    import tempfile
    import time

    from ..gpucheck.golden import golden_view
    from ..gpucheck.parts import Settings, plan
    from ..gpucheck.runner import run_all

    report: dict = {"gpu_check": 1, "command": shlex.join(["lightglue-ros", *sys.argv[1:]]),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "device": args.device,
                    "budget_s": args.budget_s, "golden": str(args.golden)}
    settings = Settings([e for e in args.extractors.split(",") if e], args.device,
                        tuple(int(k) for k in args.budgets.split(",")), args.frames,
                        args.hard_pairs, args.graph_rounds,
                        tuple(int(v) for v in args.bench_size.lower().split("x")))
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        views = {e: golden_view(args.golden, e, work / "golden" / e)
                 for e in settings.extractors}
        run_all(plan(views, settings, work), args.budget_s, args.device, dict(os.environ), work,
                report, args.out, progress=sys.stderr)
    print(json.dumps(report))
    return 1 if report["summary"]["error"] or report["summary"]["timeout"] else 0


def _tables(args: argparse.Namespace) -> int:
    import json

    from ..gpucheck.tables import render, replace_section

    reports = [(path, json.loads(path.read_text())) for path in args.json]
    text = render(reports)
    if args.into is None:
        print(text)
    else:
        args.into.write_text(replace_section(args.into.read_text(), text))
        print(f"wrote the gpu-check tables into {args.into}")
    return 0
