"""Bar chart of a benchmark run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_bench(figures: dict[str, Any], path: str | Path) -> Path:
    """Matching time per mode and frames per second (tracking end to end), per keypoint
    budget."""
    budgets = figures["budgets"]
    labels = [str(b["keypoints"]) for b in budgets]
    x = np.arange(len(budgets))
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_match, ax_fps = fig.subplots(1, 2)
    modes = (("match_adaptive", "lightglue_ros (early exit)"),
             ("match_full", "lightglue_ros (full depth)"),
             ("match_baseline", "kornia LightGlue (official algorithm)"))
    for i, (key, label) in enumerate(modes):
        ax_match.bar(x + (i - 1) * 0.27, [b[key]["median_ms"] for b in budgets], 0.27,
                     label=label)
    ax_match.set(xticks=x, xticklabels=labels, xlabel="keypoints", ylabel="median ms per pair",
                 title="LightGlue matching, consecutive frames")
    ax_match.legend(fontsize=8)
    rates = [("fps_two_stage", "tracking, two stages"),
             ("fps_tracking", "tracking, sequential"),
             ("fps_pairwise", "pairwise (extract both)")]
    if all("official" in b for b in budgets):
        rates.append(("official", "official pairwise code"))
    width = 0.8 / len(rates)
    for i, (key, label) in enumerate(rates):
        values = [b[key]["fps"] if key == "official" else b[key] for b in budgets]
        ax_fps.bar(x + (i - (len(rates) - 1) / 2) * width, values, width, label=label)
    ax_fps.set(xticks=x, xticklabels=labels, xlabel="keypoints", ylabel="frames per second",
               title=f"end to end, {figures['extractor']} on {figures['device']}")
    ax_fps.legend(fontsize=8)
    for ax in (ax_match, ax_fps):
        ax.grid(axis="y", alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
