"""``lightglue-ros bench-runtimes``: PyTorch, ONNX Runtime and OpenVINO per graph on this CPU."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# How the onnxruntime backend runs each model's graphs: the extractors with ONNX Runtime's
# rewrites, LightGlue's without (see inference/onnxruntime_backend.py).
BACKEND_LEVEL = {"extractor": "all", "matcher": "disabled"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-runtimes", help="speed per graph: torch, ONNX Runtime, OpenVINO",
                       description="Time each extractor's graphs on a synthetic frame and "
                                   "LightGlue's layer and assignment graphs at each keypoint "
                                   "count with PyTorch, ONNX Runtime (every graph optimisation "
                                   "level) and OpenVINO (FP32, and its default precision), "
                                   "interleaved in one run, and compare each runtime's outputs "
                                   "with PyTorch's. OpenVINO is skipped, with a message, when it "
                                   "is not installed.")
    p.add_argument("--extractors", default="xfeat,aliked",
                   help="comma-separated extractors (default xfeat,aliked)")
    p.add_argument("--keypoints", default="512,1024", help="comma-separated keypoint counts")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--threads", default="1",
                   help="comma-separated thread counts per runtime (default 1)")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per case and runtime")
    p.add_argument("--engine-dir", default="", help="where the ONNX graphs are exported")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument("--save", type=Path, help="also write the JSON object to this file")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.set_defaults(run=run)


def _role(model: str) -> str:
    return "matcher" if model.startswith("lightglue-") else "extractor"


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per case and thread count: each runtime's median and its speed-up over ONNX Runtime as
    the backend runs the graph (``BACKEND_LEVEL``)."""
    table: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r["model"], r["graph"], r["input"], r["threads"])
        entry = table.setdefault(key, {"model": r["model"], "graph": r["graph"],
                                       "input": r["input"], "threads": r["threads"],
                                       "median_ms": {}, "max_relative_difference": {}})
        entry["median_ms"][r["runtime"]] = r["median_ms"]
        entry["max_relative_difference"][r["runtime"]] = r["max_relative_difference"]
    for entry in table.values():
        base = entry["median_ms"].get(f"onnxruntime:{BACKEND_LEVEL[_role(entry['model'])]}")
        entry["speedup_over_backend_onnxruntime"] = {
            k: base / v for k, v in entry["median_ms"].items()} if base else {}
    return list(table.values())


def _markdown(entries: list[dict[str, Any]], runtimes: list[str]) -> str:
    head = "| graph | input | threads | " + " | ".join(runtimes) + " |"
    lines = [head, "|" + "---|" * (3 + len(runtimes))]
    for e in entries:
        cells = []
        for name in runtimes:
            ms = e["median_ms"].get(name)
            ratio = e["speedup_over_backend_onnxruntime"].get(name)
            cells.append("" if ms is None else f"{ms:.1f}" + (f" ({ratio:.2f}x)" if ratio else ""))
        lines.append(f"| {e['model']}.{e['graph']} | {e['input']} | {e['threads']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import sys

    from tqdm import tqdm

    from ..evaluation.runtimes import available_runtimes, cases_for, machine, run_comparison

    runtimes, missing = available_runtimes()
    for why in missing.values():
        print(f"bench-runtimes: {why}", file=sys.stderr)
    threads = [int(t) for t in args.threads.split(",")]
    keypoints = [int(k) for k in args.keypoints.split(",")]
    engine_dir = Path(args.engine_dir) if args.engine_dir else None
    before = machine()
    cases = [c for name in args.extractors.split(",")
             for c in cases_for(name.strip(), keypoints, (args.width, args.height), engine_dir)]
    rows = run_comparison(cases, runtimes, threads, args.repeats,
                          progress=lambda it: tqdm(it, desc="repeats", disable=args.json))
    entries = summary(rows)
    measured = {r["runtime"] for r in rows}
    names = [v for n in runtimes for v in (n, n + ",nospin") if v in measured]
    figures = {"machine": before, "load_average_after": list(machine()["load_average"]),
               "repeats": args.repeats, "threads": threads, "runtimes": names,
               "skipped": missing, "backend_onnxruntime_level": BACKEND_LEVEL,
               "summary": entries, "rows": rows}
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(figures, indent=1) + "\n")
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"{before['cpus']} CPUs, load average {before['load_average'][0]:.1f} before, "
          f"{figures['load_average_after'][0]:.1f} after; median ms (speed-up over ONNX Runtime "
          f"as the backend runs the graph), {args.repeats} repeats")
    if args.markdown:
        print(_markdown(entries, names))
        return 0
    for e in entries:
        cells = "  ".join(f"{n}={e['median_ms'][n]:.1f}" for n in names if n in e["median_ms"])
        print(f"{e['model']}.{e['graph']} {e['input']} ({e['threads']} thr): {cells}")
    return 0
