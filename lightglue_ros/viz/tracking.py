"""Per-frame pictures of a tracking run: latency per stage and LightGlue layers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..tracking import FrameRecord


def plot_run(records: list[FrameRecord], path: str | Path, title: str = "") -> Path:
    """Stacked per-stage latency (ms) and the LightGlue layers used, frame by frame."""
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_time, ax_layers = fig.subplots(2, 1, sharex=True)
    index = np.arange(len(records))
    bottom = np.zeros(len(records))
    for stage, colour in (("extract", "tab:blue"), ("match", "tab:orange"), ("flow", "tab:cyan"),
                          ("pose", "tab:green")):
        ms = np.array([1e3 * r.timings.get(stage, 0.0) for r in records])
        ax_time.bar(index, ms, bottom=bottom, color=colour, width=1.0, label=stage)
        bottom += ms
    ax_time.set(ylabel="latency [ms]", title=title or "per-frame latency")
    ax_time.legend(loc="upper right")
    layers = np.array([r.layers for r in records])
    lost = np.array([r.status.value == "lost" for r in records])
    ax_layers.step(index, layers, where="mid", color="tab:purple", label="LightGlue layers")
    if lost.any():
        ax_layers.plot(index[lost], np.zeros(lost.sum()), "x", color="tab:red", label="lost")
    ax_layers.set(xlabel="frame", ylabel="layers", ylim=(-0.5, 9.5))
    ax_layers.legend(loc="lower right")
    for ax in (ax_time, ax_layers):
        ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
