"""Run SLAM over a finite sequence and measure it: the map trajectory against the odom one.

The figures say what the SLAM layer adds: loop closures and relocalizations (with the frames each
relocalization took), and the ATE of the map poses (with them) beside that of the odom poses
(without them), both against the same ground truth and aligned the same way.
"""
from __future__ import annotations

from typing import Any, Iterable, Literal

import numpy as np
from tqdm import tqdm

from ..slam import Slam, SlamResult
from ..tracking import TrackingStatus
from ..types import FrameInput, Trajectory, seconds
from .trajectory import evaluate


def run_slam(slam: Slam, frames: Iterable[FrameInput], total: int | None = None,
             progress: bool = True) -> list[SlamResult]:
    """Track every frame in order, one after the other, with a progress bar."""
    results = []
    with tqdm(total=total, desc="slam", unit="frame", disable=not progress) as bar:
        for frame in frames:
            results.append(slam.track(slam.extract(frame)))
            bar.update()
            bar.set_postfix(status=results[-1].record.status.value, loops=slam.loop_closures,
                            relocalized=len(slam.relocalizations))
    return results


def map_trajectory(results: list[SlamResult]) -> Trajectory:
    """Map poses of the frames placed in the map (tracked, or relocalized on a lost record)."""
    kept = [r for r in results if r.localized and
            (r.record.status is not TrackingStatus.LOST or r.event == "relocalization")]
    return Trajectory(np.array([seconds(r.record.stamp_ns) for r in kept]),
                      np.array([r.T_map_cam for r in kept]).reshape(-1, 4, 4))


def odom_trajectory(results: list[SlamResult]) -> Trajectory:
    """Odom poses of the tracked frames (what the front end alone gives)."""
    kept = [r for r in results if r.record.status is not TrackingStatus.LOST]
    return Trajectory(np.array([seconds(r.record.stamp_ns) for r in kept]),
                      np.array([r.record.T_odom_cam for r in kept]).reshape(-1, 4, 4))


def slam_figures(slam: Slam, results: list[SlamResult], gt: Trajectory | None,
                 metric: bool) -> dict[str, Any]:
    """``loop_closures``, ``relocalizations`` (and the frames each took), the time per frame
    the SLAM layer adds (mean and max, ms), and with ground truth
    ``slam_ate_rmse_m`` of the map poses (with them) and ``odom_ate_rmse_m`` of the odom poses
    (without them; SE(3) alignment when ``metric``, Sim(3) otherwise)."""
    out: dict[str, Any] = {
        "loop_closures": slam.loop_closures,
        "relocalizations": len(slam.relocalizations),
        "relocalization_frames": list(slam.relocalizations),
        "slam_keyframes": len(slam.db),
        "localized_frames": sum(r.localized for r in results),
        "slam_mean_ms": float(np.mean([r.seconds for r in results])) * 1e3 if results else 0.0,
        "slam_max_ms": max((r.seconds for r in results), default=0.0) * 1e3,
    }
    if gt is not None:
        align: Literal["se3", "sim3"] = "se3" if metric else "sim3"
        out["slam_ate_rmse_m"] = evaluate(map_trajectory(results), gt, align).ate_rmse_m
        out["odom_ate_rmse_m"] = evaluate(odom_trajectory(results), gt, align).ate_rmse_m
    return out
