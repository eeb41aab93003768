"""Runs the parts of ``gpu-check`` one after the other, each in its own process group under a time
box (the smaller of its own limit and what is left of the whole budget), and gathers one JSON
report. A part that fails, hangs or crashes is reported with the reason and the end of its
stderr; the run goes on. The report is written after every part, so an interrupted run still
leaves what it did."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from ..files import atomic_write_bytes
from .measure import PARTIAL_ENV
from .parts import Part

MIN_PART_S = 10.0  # a part with less time than this left is skipped, not started
TAIL_CHARS = 3000


def last_json(text: str) -> dict[str, Any] | None:
    """The last line of ``text`` that is a JSON object (commands print exactly one)."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def bars_missed(result: dict[str, Any]) -> list[str]:
    """The parity bars a parity report says were missed, as ``extractor: failure``."""
    return [f"{e}: {f}" for e, entry in result.items() if isinstance(entry, dict)
            for f in entry.get("failures") or []]


def run_part(part: Part, limit_s: float, env: dict[str, str], work: Path) -> dict[str, Any]:
    """One part in its own process group, killed (the whole group) after ``limit_s``."""
    partial = work / f"{part.name}.partial.json"
    partial.unlink(missing_ok=True)
    entry: dict[str, Any] = {"claim": part.claim, "command": shlex.join(part.argv),
                             "limit_s": round(limit_s, 1)}
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(part.argv, stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**env, PARTIAL_ENV: str(partial)}, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=limit_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            timed_out = True
        err.seek(0)
        tail = err.read().decode(errors="replace")[-TAIL_CHARS:]
    entry.update(seconds=round(time.monotonic() - start, 1), rc=proc.returncode)
    result = last_json(out or "")
    if timed_out:
        entry.update(status="timeout", reason=f"stopped after {limit_s:.0f} s", stderr_tail=tail)
        if partial.is_file():
            entry["partial"] = json.loads(partial.read_text())
    elif result is None:
        entry.update(status="error", reason=f"exit code {proc.returncode} without a JSON result",
                     stderr_tail=tail)
    else:
        entry.update(status="ok", result=result)
        missed = bars_missed(result)
        if missed:
            entry["bars_missed"] = missed
    return entry


def engine_sidecars(folder: Path | None) -> list[dict[str, Any]]:
    """What the TensorRT engine cache recorded of each engine (build time, GPU, version)."""
    if folder is None or not (folder / "trt").is_dir():
        return []
    keep = ("model", "graph", "precision", "build_seconds", "tensorrt_version", "gpu")
    return [{k: meta.get(k) for k in keep} for meta in
            (json.loads(p.read_text()) for p in sorted((folder / "trt").glob("*.json")))]


def skip_reason(part: Part, device: str, done: dict[str, dict[str, Any]]) -> str | None:
    """Why ``part`` cannot run here (TensorRT absent, no CUDA device), or None."""
    if part.needs_tensorrt:
        env = done.get("environment", {}).get("result")
        if env is None:
            return "the environment part gave no result: cannot tell whether tensorrt imports"
        if not env["tensorrt"]["version"]:
            return f"tensorrt not importable: {env['tensorrt']['reason']}"
    if part.needs_cuda and not device.startswith("cuda"):
        return f"needs a CUDA device (this run: --device {device})"
    return None


def run_all(parts: list[Part], budget_s: float, device: str, env: dict[str, str], work: Path,
            report: dict[str, Any], out: Path | None = None, progress: TextIO | None = None,
            min_part_s: float = MIN_PART_S) -> dict[str, Any]:
    """Run ``parts`` within ``budget_s`` seconds in all; ``report`` (the header) gains ``parts``,
    ``summary`` and ``wall_s``, and is written to ``out`` after every part. Each part's time box
    leaves ``min_part_s`` for every later part that can run, so one hung part cannot take the
    time of all the others; a part left less than that is skipped."""
    from tqdm import tqdm

    start = time.monotonic()
    done: dict[str, dict[str, Any]] = {}
    report.update(parts=done, summary={})
    say: Callable[[str], None] = (lambda line: tqdm.write(line, file=progress)) \
        if progress is not None else (lambda line: None)
    bar = tqdm(parts, desc="gpu-check", unit="part", file=progress, disable=progress is None)
    for i, part in enumerate(bar):
        bar.set_postfix_str(part.name)
        reason = skip_reason(part, device, done)
        later = sum(skip_reason(p, device, done) is None for p in parts[i + 1:])
        left = budget_s - (time.monotonic() - start)
        limit = min(part.limit_s, left - min_part_s * later)
        if reason is None and limit < min_part_s:
            reason = (f"out of time: {left:.0f} s of the {budget_s:.0f} s budget left for this "
                      f"and {later} later parts")
        if reason is not None:
            entry: dict[str, Any] = {"claim": part.claim, "status": "skipped", "reason": reason}
        else:
            try:
                entry = run_part(part, limit, env, work)
            except Exception as exc:  # noqa: BLE001 - report it and go on with the next part
                entry = {"claim": part.claim, "status": "error",
                         "reason": f"{type(exc).__name__}: {exc}"}
            if part.engine_dir is not None:
                entry["engines"] = engine_sidecars(part.engine_dir)
        done[part.name] = entry
        say(f"{part.name}: {entry['status']}"
            + (f" ({entry['seconds']} s)" if "seconds" in entry else "")
            + (f": {entry['reason']}" if entry.get("reason") else ""))
        report.update(summary=summarize(done), wall_s=round(time.monotonic() - start, 1))
        if out is not None:
            atomic_write_bytes(out, json.dumps(report, indent=1).encode())
    return report


def summarize(done: dict[str, dict[str, Any]]) -> dict[str, Any]:
    by_status: dict[str, list[str]] = {s: [] for s in ("ok", "error", "timeout", "skipped")}
    for name, entry in done.items():
        by_status[entry["status"]].append(name)
    by_status["bars_missed"] = [n for n, e in done.items() if e.get("bars_missed")]
    return by_status
