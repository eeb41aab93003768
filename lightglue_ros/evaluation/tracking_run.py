"""Run the tracker over a finite sequence and turn its records into files, figures and pictures.

Shared by ``lightglue-ros track`` (dataset folders) and ``lightglue-ros eval`` (bags), so that
both give the same figures for the same frames.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from ..tracking import FrameRecord, StageOutput, Tracker, TrackingStatus, TwoStageTracker
from ..types import FrameInput, Trajectory
from .consistency import nees_summary
from .trajectory import TrajectoryMetrics, evaluate

log = logging.getLogger(__name__)


def run_tracker(tracker: Tracker, frames: Iterable[FrameInput], total: int | None = None,
                progress: bool = True, two_stage: bool = True,
                bind_reset: Callable[[Callable[[], None]], None] | None = None
                ) -> list[FrameRecord]:
    """Track every frame in order, with a progress bar: on the two-stage pipeline in offline
    mode (the next frame is extracted while one is tracked; no frame dropped), or with
    ``two_stage=False`` one frame after the other (``Tracker.extract`` then ``track``). Both
    give the same records: the stages are the same functions, in the same order.

    ``bind_reset`` receives the function that restarts tracking before the next frame handed
    in (e.g. for a bag reader that restarts on a stamp going back); calling ``tracker.reset``
    directly while the pipeline runs would race with the frame being tracked."""
    bar = tqdm(total=total, desc="tracking", unit="frame", disable=not progress)
    records: list[FrameRecord] = []

    def done(record: FrameRecord) -> None:
        records.append(record)
        bar.update()
        bar.set_postfix(status=record.status.value, inliers=record.num_inliers,
                        layers=record.layers)

    def out(outputs: list[StageOutput]) -> None:
        for output in outputs:
            if output.error:
                log.warning("frame %.6f: %s", output.record.seconds, output.error)
            done(output.record)

    with bar:
        if not two_stage:
            if bind_reset is not None:
                bind_reset(tracker.reset)
            for frame in frames:
                done(tracker.track(tracker.extract(frame, tracker.wants_features())))
            return records
        with TwoStageTracker(tracker, live=False) as stages:
            if bind_reset is not None:
                bind_reset(stages.reset)
            for frame in frames:
                stages.submit(frame)
                out(stages.poll())
        out(stages.poll())  # closed and drained: the last frames
    return records


def estimated_trajectory(records: list[FrameRecord]) -> Trajectory:
    """The poses of the frames that were tracked (lost frames hold a stale pose and are left
    out; their count is reported separately)."""
    kept = [r for r in records if r.status is not TrackingStatus.LOST]
    return Trajectory(np.array([r.seconds for r in kept]),
                      np.array([r.T_odom_cam for r in kept]).reshape(-1, 4, 4))


def write_records(records: list[FrameRecord], path: Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FrameRecord.CSV_FIELDS)
        writer.writeheader()
        for record in records:
            writer.writerow(record.csv_row())
    return path


def refined_records(records: list[FrameRecord], refined: dict[int, np.ndarray]
                    ) -> list[FrameRecord]:
    """The records with each pose as the bundle adjustment finally left the map: a keyframe's
    refined pose (``Tracker.on_refined``), any other frame placed on its reference's final pose
    by its relative pose. This is the trajectory a system that refines after publishing holds at
    the end (and what ORB-SLAM3 writes out); the records themselves are the live odometry."""
    final: dict[int, np.ndarray] = {}
    out = []
    for r in records:
        T = r.T_odom_cam
        if r.index in refined:
            T = refined[r.index]
        elif r.ref_index in final and r.T_ref_cam is not None:
            T = final[r.ref_index] @ r.T_ref_cam
        final[r.index] = T
        out.append(dataclasses.replace(r, T_odom_cam=T.copy()))
    return out


def is_metric(records: list[FrameRecord]) -> bool:
    """Whether the run's translations are in metres (every tracked frame after the first)."""
    tracked = [r for r in records if r.status is not TrackingStatus.LOST]
    return len(tracked) > 1 and all(r.metric for r in tracked[1:])


def evaluate_records(records: list[FrameRecord], gt: Trajectory,
                     max_diff: float = 0.02) -> TrajectoryMetrics:
    """Accuracy against ground truth: SE(3) alignment for metric runs, Sim(3) for monocular."""
    return evaluate(estimated_trajectory(records), gt,
                    align="se3" if is_metric(records) else "sim3", max_diff=max_diff)


def accuracy_figures(metrics: TrajectoryMetrics) -> dict[str, Any]:
    """A trajectory's accuracy figures (evo's, and the ATE as a share of the path)."""
    return {**metrics.summary(),
            "ate_percent_of_path": 100 * metrics.ate_rmse_m / max(metrics.path_length_m, 1e-9)}


def summarize(records: list[FrameRecord], metrics: TrajectoryMetrics | None = None,
              gt: Trajectory | None = None) -> dict[str, Any]:
    """The figures of a run: status counts, LightGlue layers, per-frame latency, the
    trajectory accuracy when ``metrics`` are given and the covariances' NEES with ``gt``."""
    tracked = [r for r in records if r.status is not TrackingStatus.LOST]
    matched = [r for r in records if r.layers > 0]
    # placed on the map without a LightGlue match: by projection (track_by_projection, a
    # descriptor search: "match" timed) or by optical flow (track_by_flow)
    unmatched = [r for r in tracked if r.model == "pnp" and r.layers == 0]
    latency = [sum(r.timings.values()) * 1e3 for r in records if r.timings]
    out: dict[str, Any] = {
        "frames": len(records),
        "tracked_frames": len(tracked),
        "lost_frames": len(records) - len(tracked),
        "weak_frames": sum(r.status is TrackingStatus.WEAK for r in records),
        "keyframes": sum(r.keyframe for r in records),
        "projected_frames": sum("match" in r.timings for r in unmatched),
        "flow_frames": sum("match" not in r.timings for r in unmatched),
        "metric": is_metric(records),
        "mean_layers": float(np.mean([r.layers for r in matched])) if matched else 0.0,
        "mean_latency_ms": float(np.mean(latency)) if latency else 0.0,
        "mean_matches": float(np.mean([r.num_matches for r in matched])) if matched else 0.0,
        "mean_inliers": float(np.mean([r.num_inliers for r in matched])) if matched else 0.0,
    }
    if metrics is not None:
        out.update(accuracy_figures(metrics))
    if gt is not None:
        out.update(nees_summary(records, gt))
    return out


def write_outputs(records: list[FrameRecord], out_dir: Path, gt: Trajectory | None,
                  title: str, refined: dict[int, np.ndarray] | None = None) -> dict[str, Any]:
    """Trajectory (TUM), per-frame CSV, figures as JSON and pictures into ``out_dir``. With
    ``refined`` (keyframe poses the bundle adjustment refined after publishing) also the
    trajectory as the map finally left it (``trajectory_refined.txt``) and its accuracy
    (``refined_*`` figures)."""
    from ..viz.tracking import plot_run
    from ..viz.trajectory import plot_errors, plot_trajectory

    out_dir.mkdir(parents=True, exist_ok=True)
    estimated_trajectory(records).write_tum(out_dir / "trajectory.txt",
                                            header="lightglue_ros estimate, T_odom_cam")
    write_records(records, out_dir / "frames.csv")
    metrics = evaluate_records(records, gt) if gt is not None else None
    figures = summarize(records, metrics, gt)
    if refined:
        final = refined_records(records, refined)
        estimated_trajectory(final).write_tum(out_dir / "trajectory_refined.txt",
                                              header="lightglue_ros, refined, T_odom_cam")
        if gt is not None:
            accuracy = accuracy_figures(evaluate_records(final, gt))
            figures.update({f"refined_{k}": v for k, v in accuracy.items()})
    pictures = [plot_run(records, out_dir / "latency_layers.png", title)]
    if metrics is not None:
        pictures.append(plot_trajectory(metrics.aligned, gt, out_dir / "trajectory.png", title))
        pictures.append(plot_errors(metrics.aligned, metrics.ate_errors_m, metrics.ate_rmse_m,
                                    metrics.align, out_dir / "errors.png", title))
    figures["pictures"] = [str(p) for p in pictures]
    (out_dir / "figures.json").write_text(json.dumps(figures, indent=2))
    return figures


def format_figures(figures: dict[str, Any]) -> Iterator[str]:
    """Human-readable lines of the figures."""
    yield (f"frames {figures['frames']} (tracked {figures['tracked_frames']}, weak "
           f"{figures['weak_frames']}, lost {figures['lost_frames']}, keyframes "
           f"{figures['keyframes']}), {'metric' if figures['metric'] else 'up to scale'}")
    yield (f"LightGlue layers {figures['mean_layers']:.2f} | matches "
           f"{figures['mean_matches']:.0f} | inliers {figures['mean_inliers']:.0f} | latency "
           f"{figures['mean_latency_ms']:.0f} ms/frame")
    if "ate_rmse_m" in figures:
        yield (f"ATE RMSE {figures['ate_rmse_m']:.4f} m ({figures['ate_percent_of_path']:.2f}% of "
               f"{figures['path_length_m']:.2f} m, {figures['align']} aligned) | RPE "
               f"{figures['rpe_trans_m']:.4f} m, {figures['rpe_rot_deg']:.3f} deg")
        yield f"median relative rotation error {figures['rel_rot_err_median_deg']:.3f} deg"
        drifts = [f"{k[len('drift_'):-len('_percent')]} {v:.2f}%" for k, v in figures.items()
                  if k.startswith("drift_") and v is not None]
        if drifts:
            yield "segment drift " + ", ".join(drifts)
        if figures.get("scale_error_percent") is not None:
            yield f"scale error {figures['scale_error_percent']:+.2f}% (longer than the truth)"
    if "refined_ate_rmse_m" in figures:
        yield (f"as the bundle adjustment left it: ATE RMSE {figures['refined_ate_rmse_m']:.4f} m, "
               f"median relative rotation error {figures['refined_rel_rot_err_median_deg']:.3f} "
               "deg (trajectory_refined.txt)")


__all__ = ["accuracy_figures", "estimated_trajectory", "evaluate_records", "format_figures",
           "is_metric", "refined_records", "run_tracker", "summarize", "write_outputs",
           "write_records"]
