"""``gpu-check`` JSON reports as the Markdown tables of BENCHMARKS.md's GPU section: parity (torch
fp32, fp16, CUDA graphs, TensorRT) against the official outputs, FP16 keypoint loss, CUDA graphs
speed, the bench per extractor, and every part's status. Each table names the JSON it comes from
and the command that made it; a figure a part did not produce is shown as a dash, never guessed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

BEGIN, END = "<!-- gpu-check: begin -->", "<!-- gpu-check: end -->"
PARITY_RUNS = (("parity_fp32", "torch fp32"), ("parity_fp16", "torch fp16"),
               ("cuda_graphs_parity", "torch CUDA graphs"), ("tensorrt_fp32", "TensorRT fp32"),
               ("tensorrt_fp16", "TensorRT fp16"))
DASH = "—"

Report = dict[str, Any]


def _f(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return DASH if value is None else ("yes" if value else "no")
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return str(value)


def _note(text: str | None, limit: int = 160) -> str:
    """A reason or message fit for one table cell."""
    return (text or DASH).replace("|", "/").replace("\n", " ")[:limit]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(r) + " |" for r in rows]


def _modes(entry: dict[str, Any]) -> dict[str, Any]:
    """Matcher modes of a parity entry (``entry["modes"]``, or the modes beside the figures)."""
    if isinstance(entry.get("modes"), dict):
        return entry["modes"]
    return {k: v for k, v in entry.items() if isinstance(v, dict) and "match_agreement" in v}


def _parts(reports: list[tuple[Path, Report]]) -> dict[str, tuple[Path, dict[str, Any]]]:
    return {name: (path, part) for path, report in reports
            for name, part in report.get("parts", {}).items()}


def _extractors(parts: dict[str, tuple[Path, dict[str, Any]]]) -> list[str]:
    return sorted({name.split(".")[0] for name in parts if "." in name})


def _result(parts: dict[str, tuple[Path, dict[str, Any]]], name: str) -> dict[str, Any] | None:
    found = parts.get(name)
    return found[1].get("result") if found else None


def parity_rows(parts: dict[str, tuple[Path, dict[str, Any]]]) -> list[list[str]]:
    rows = []
    for e in _extractors(parts):
        for key, label in PARITY_RUNS:
            if f"{e}.{key}" not in parts:
                continue
            part = parts[f"{e}.{key}"][1]
            entry = (_result(parts, f"{e}.{key}") or {}).get(e)
            if not isinstance(entry, dict) or "keypoints_within_1px" not in entry:
                rows.append([e, label, part["status"]] + [DASH] * 7
                            + [_note(part.get("reason"))])
                continue
            for mode, m in _modes(entry).items():
                rows.append([e, label, "ok", _f(entry["keypoints_within_1px"]),
                             _f(entry["descriptor_cosine"], 5), mode,
                             _f(m["match_agreement"]), _f(m["stop_agreement"], 3),
                             f"{m['max_score_diff']:.1e}", _f(m.get("near_tie_flips")),
                             "; ".join(entry.get("failures") or []) or "all met"
                             if "failures" in entry else DASH])
    return rows


def fp16_rows(parts: dict[str, tuple[Path, dict[str, Any]]]) -> list[list[str]]:
    rows = []
    for e in _extractors(parts):
        r = _result(parts, f"{e}.fp16_keypoints")
        if r is None:
            if f"{e}.fp16_keypoints" in parts:
                part = parts[f"{e}.fp16_keypoints"][1]
                rows.append([e, part["status"]] + [DASH] * 6 + [_note(part.get("reason"))])
            continue
        rows.append([e, "ok", _f(r["images"]), _f(r["reference_keypoints"]),
                     _f(r["candidate_keypoints"]), f"{r['lost']} ({100 * r['lost_fraction']:.2f}%)",
                     f"{100 * r['worst_image_lost_fraction']:.2f}%", _f(r["descriptor_cosine"], 5),
                     "ok" if r["ok"] else "FAILED"])
    return rows


def graphs_rows(parts: dict[str, tuple[Path, dict[str, Any]]]) -> list[list[str]]:
    rows = []
    for e in _extractors(parts):
        name = f"{e}.cuda_graphs_speed"
        if name not in parts:
            continue
        part = parts[name][1]
        r = part.get("result") or part.get("partial")
        if r is None:
            rows.append([e, part["status"]] + [DASH] * 9 + [_note(part.get("reason"))])
            continue
        t = r["times"]
        ref, cand = r["reference"], r["candidate"]
        rows.append([e, part["status"], "x".join(map(str, r["image_size"])),
                     f"{t[ref]['extract']['median_ms']:.2f}", f"{t[cand]['extract']['median_ms']:.2f}",
                     f"{r['extract_speedup']:.2f}x", f"{t[ref]['match']['median_ms']:.2f}",
                     f"{t[cand]['match']['median_ms']:.2f}", f"{r['match_speedup']:.2f}x",
                     _f(r["keypoints_within_1px"]), _f(r["match_agreement"]),
                     _f(r["stop_agreement"], 3)])
    return rows


def bench_rows(parts: dict[str, tuple[Path, dict[str, Any]]], extractor: str
               ) -> list[list[str]]:
    rows = []
    for name in sorted((n for n in parts if n.startswith(f"{extractor}.bench.")),
                       key=lambda n: int(n.rsplit(".", 1)[1])):
        part = parts[name][1]
        budgets = (part.get("result") or {}).get("budgets") or []
        if not budgets:
            rows.append([name.rsplit(".", 1)[1], part["status"]] + [DASH] * 10
                        + [_note(part.get("reason"))])
            continue
        for b in budgets:
            lat = b["tracking"]
            base, ours = b["match_baseline"]["median_ms"], b["match_adaptive"]["median_ms"]
            gpu = part["result"].get("peak_gpu_mb")
            rows.append([str(b["keypoints"]), "ok", f"{b['mean_keypoints']:.0f}",
                         f"{b['fps_tracking']:.1f}", f"{b['fps_pairwise']:.1f}",
                         f"{lat['median_ms']:.1f} / {lat['p90_ms']:.1f} / {lat['p99_ms']:.1f}",
                         f"{b['extract']['median_ms']:.2f}", f"{ours:.2f}",
                         f"{b['match_full']['median_ms']:.2f}", f"{base:.2f}",
                         f"{base / max(ours, 1e-9):.2f}x", f"{b['mean_layers']:.2f}",
                         DASH if gpu is None else f"{gpu:.0f}"])
    return rows


def status_rows(parts: dict[str, tuple[Path, dict[str, Any]]]) -> list[list[str]]:
    return [[name, part["status"], _f(part.get("seconds"), 1), _f(part.get("limit_s"), 1),
             _note(part.get("reason") or "; ".join(part.get("bars_missed") or []))]
            for name, (_, part) in parts.items()]


def render(reports: list[tuple[Path, Report]]) -> str:
    """The GPU section's Markdown for one or more gpu-check reports (e.g. one per machine)."""
    parts = _parts(reports)
    lines: list[str] = []
    for path, report in reports:
        env = (report.get("parts", {}).get("environment") or {}).get("result") or {}
        lines.append(f"- `{path}`: {env.get('gpu', 'no GPU')}, torch {env.get('torch', DASH)} "
                     f"(CUDA {env.get('torch_cuda', DASH)}), TensorRT "
                     f"{(env.get('tensorrt') or {}).get('version') or 'absent'}; "
                     f"{report.get('started', DASH)}, {report.get('wall_s', DASH)} s of a "
                     f"{report.get('budget_s', DASH)} s budget; command: "
                     f"`{report.get('command', DASH)}`")
    lines += ["", "Parity with the official implementation's golden outputs (as `lightglue-ros "
              "parity`):", ""]
    lines += _table(["extractor", "run", "status", "keypoints within 1 px", "descriptor cosine",
                     "mode", "match agreement", "stop agreement", "max score diff",
                     "near-tie flips", "bars"], parity_rows(parts))
    lines += ["", "FP16 extractor against FP32 (torch autocast; lost: FP32 keypoints without an "
              "FP16 keypoint within 1 px):", ""]
    lines += _table(["extractor", "status", "images", "FP32 keypoints", "FP16 keypoints", "lost",
                     "worst image", "descriptor cosine", "check"], fp16_rows(parts))
    lines += ["", "CUDA graphs against eager (median ms; both matchers fed the same features):",
              ""]
    lines += _table(["extractor", "status", "image", "extract eager", "extract graphs", "speedup",
                     "match eager", "match graphs", "speedup", "keypoints within 1 px",
                     "match agreement", "stop agreement"], graphs_rows(parts))
    for e in _extractors(parts):
        rows = bench_rows(parts, e)
        if rows:
            lines += ["", f"Bench, {e} (as `lightglue-ros bench`; times are medians in ms):", ""]
            lines += _table(["keypoints", "status", "mean keypoints", "tracking FPS",
                             "pairwise FPS", "frame latency median / p90 / p99",
                             "extract", "LightGlue adaptive", "full depth", "baseline",
                             "baseline / ours", "mean layers", "peak GPU MB"], rows)
    lines += ["", "Parts:", ""]
    lines += _table(["part", "status", "seconds", "limit (s)", "note"], status_rows(parts))
    return "\n".join(lines) + "\n"


def replace_section(document: str, section: str) -> str:
    """``document`` with the text between the gpu-check markers replaced by ``section``."""
    if BEGIN not in document or END not in document:
        raise ValueError(f"no {BEGIN} ... {END} markers in the document")
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{section}{END}{tail}"
