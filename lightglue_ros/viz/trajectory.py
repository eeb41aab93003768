"""Trajectory pictures: estimate against ground truth, and the translation error over time.

Figures are drawn on matplotlib's Agg canvas directly, not through pyplot, so plotting needs no
display, leaves no global figure state behind, and is safe from any thread.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..types import Trajectory

_AXES = "xyz"


def _views(positions: np.ndarray) -> tuple[tuple[str, int, int], ...]:
    """(title, horizontal axis, vertical axis) of the top and side views. "Up" is the axis along
    which the ground truth moves least: y for a camera-frame world (optical: y down, as KITTI's
    ground truth and optical-axis odom), z for a REP 103 world (TUM's motion capture, a base
    frame); the top view shows the ground plane of that convention."""
    spread = np.ptp(positions, axis=0) if len(positions) else np.array([0.0, 0.0, 1.0])
    up = int(np.argmin(spread))
    h, other = [a for a in range(3) if a != up]
    return ((f"top view ({_AXES[h]}-{_AXES[other]})", h, other),
            (f"side view ({_AXES[h]}-{_AXES[up]})", h, up))


def plot_trajectory(aligned_est: Trajectory, gt: Trajectory, path: str | Path,
                    title: str = "") -> Path:
    """Save a PNG of the camera paths seen from above and from the side (see ``_views``).

    ``aligned_est`` should already be in the ground truth's frame (``TrajectoryMetrics.aligned``);
    axes are equal so that drift and scale errors look as large as they are.
    """
    fig = Figure(figsize=(11, 5), layout="constrained")
    FigureCanvasAgg(fig)
    gt_xyz, est_xyz = gt.positions, aligned_est.positions
    for ax, (name, h, v) in zip(fig.subplots(1, 2), _views(gt_xyz)):
        ax.plot(gt_xyz[:, h], gt_xyz[:, v], "-", color="0.35", lw=1.5, label="ground truth")
        ax.plot(est_xyz[:, h], est_xyz[:, v], "-", color="tab:blue", lw=1.2, label="estimate")
        if len(est_xyz):
            ax.plot(*est_xyz[0, [h, v]], "o", color="tab:green", label="start")
        ax.set(title=name, xlabel=f"{_AXES[h]} [m]", ylabel=f"{_AXES[v]} [m]")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(loc="best")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_errors(aligned_est: Trajectory, errors_m: np.ndarray, rmse_m: float, align: str,
                path: str | Path, title: str = "") -> Path:
    """Save a PNG of each aligned pose's translation error over time, with the ATE RMSE."""
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    t = aligned_est.stamps - aligned_est.stamps[0]
    ax.plot(t, errors_m, "-", color="tab:red", lw=1.2, label="translation error")
    ax.axhline(rmse_m, color="0.3", ls="--", lw=1, label=f"ATE RMSE {rmse_m:.4f} m ({align})")
    ax.set(xlabel="time [s]", ylabel="error [m]", title=title or "absolute trajectory error")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
