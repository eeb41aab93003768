"""Accuracy of camera trajectories against ground truth: ATE and RPE (computed by evo).

Estimates are associated with the ground truth by nearest stamp (``types.trajectory``) and
aligned (SE(3), or Sim(3) for monocular runs) before the errors are taken.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np
from evo import EvoException
from evo.core import geometry as evo_geometry
from evo.core import metrics as evo_metrics
from evo.core.trajectory import PoseTrajectory3D

from ..geometry.se3 import rotation_angle_deg
from ..types.trajectory import Trajectory, TrajectoryError, associate

MIN_MATCHED = 3     # fewer associated poses fix no alignment (Umeyama needs 3 non-collinear)
DRIFT_SEGMENTS_M = (25.0, 50.0)  # KITTI's segment lengths scaled to clips of about 100 m


@dataclass(frozen=True, eq=False)
class TrajectoryMetrics:
    """Accuracy of an estimated trajectory; lengths in metres, angles in degrees."""

    ate_rmse_m: float               # absolute trajectory error (translation) after alignment
    ate_mean_m: float
    ate_max_m: float
    rpe_trans_m: float              # RMSE of the relative translation error over rpe_delta frames
    rpe_rot_deg: float              # RMSE of the relative rotation error over rpe_delta frames
    rel_rot_err_median_deg: float   # median rotation error of consecutive relative poses
    path_length_m: float            # ground-truth path over the associated time span
    matched: int                    # associated poses
    scale: float                    # Sim(3) scale applied to the estimate (1 unless sim3)
    align: str
    aligned: Trajectory             # the associated estimate after alignment, for plots
    ate_errors_m: np.ndarray        # (matched,) translation error of each aligned pose
    # KITTI-style drift: mean translation error of the relative pose over every segment of this
    # ground-truth length, in percent of it (None where the path is shorter)
    segment_drift_percent: dict[float, float | None]
    # Metric runs (se3, none): how much longer than the truth the estimate is, in percent, by
    # the scale a Sim(3) alignment would apply (est * s fits best: 100 (1/s - 1)). None for sim3
    # runs, whose scale is not estimated.
    scale_error_percent: float | None = None

    def summary(self) -> dict[str, float | int | str | None]:
        """The scalar results, for JSON reports and logs."""
        out: dict[str, float | int | str | None] = {name: getattr(self, name) for name in (
            "ate_rmse_m", "ate_mean_m", "ate_max_m", "rpe_trans_m", "rpe_rot_deg",
            "rel_rot_err_median_deg", "path_length_m", "matched", "scale", "align",
            "scale_error_percent")}
        for length, drift in self.segment_drift_percent.items():
            out[f"drift_{length:g}m_percent"] = drift
        return out


def evaluate(est: Trajectory, gt: Trajectory, align: Literal["se3", "sim3", "none"] = "se3",
             max_diff: float = 0.02, rpe_delta: int = 1) -> TrajectoryMetrics:
    """ATE and RPE of ``est`` against ``gt`` with evo, after an optional Umeyama alignment.

    align: "se3" (rigid: a tracker's world frame is arbitrary), "sim3" (also scale: monocular
    estimates have none) or "none". rpe_delta: frames between the poses of each RPE pair, counted
    in associated poses. Raises TrajectoryError when the two do not overlap in time or fewer than
    3 poses associate.
    """
    if align not in ("se3", "sim3", "none"):
        raise ValueError(f"align must be 'se3', 'sim3' or 'none', got {align!r}")
    if int(rpe_delta) != rpe_delta or rpe_delta < 1:
        raise ValueError(f"rpe_delta must be a positive integer, got {rpe_delta}")
    if len(est) == 0 or len(gt) == 0:
        raise TrajectoryError(f"nothing to evaluate: the estimate has {len(est)} poses and the "
                              f"ground truth {len(gt)}")
    if est.stamps[-1] < gt.stamps[0] - max_diff or est.stamps[0] > gt.stamps[-1] + max_diff:
        raise TrajectoryError(
            f"the estimate ({_span(est)}) and the ground truth ({_span(gt)}) do not overlap in "
            "time; are they stamped by the same clock?")
    est_idx, gt_idx = associate(est, gt, max_diff)
    if len(est_idx) < max(MIN_MATCHED, rpe_delta + 1):
        raise TrajectoryError(
            f"only {len(est_idx)} of {len(est)} estimated poses have a ground-truth pose within "
            f"{max_diff} s; need at least {max(MIN_MATCHED, rpe_delta + 1)} (raise max_diff if "
            "the ground truth is sparse)")
    est_m, gt_m = est.subset(est_idx), gt.subset(gt_idx)
    ref, moved = _to_evo(gt_m), _to_evo(est_m)
    scale = 1.0
    with _quiet_evo():
        try:
            if align != "none":
                _, _, s = moved.align(ref, correct_scale=align == "sim3")
                scale = float(s)
            ape = _run(evo_metrics.APE(evo_metrics.PoseRelation.translation_part), ref, moved)
            rpe_t = _run(evo_metrics.RPE(evo_metrics.PoseRelation.translation_part,
                                         delta=int(rpe_delta)), ref, moved)
            rpe_r = _run(evo_metrics.RPE(evo_metrics.PoseRelation.rotation_angle_deg,
                                         delta=int(rpe_delta)), ref, moved)
        except EvoException as err:
            raise TrajectoryError(f"evo cannot evaluate the trajectory ({align} alignment): "
                                  f"{err} (a ground truth that does not move fixes no "
                                  "alignment)") from None
    stat = evo_metrics.StatisticsType
    gt_span = gt.positions[gt_idx[0]:gt_idx[-1] + 1]
    return TrajectoryMetrics(
        ate_rmse_m=float(ape.get_statistic(stat.rmse)),
        ate_mean_m=float(ape.get_statistic(stat.mean)),
        ate_max_m=float(ape.get_statistic(stat.max)),
        rpe_trans_m=float(rpe_t.get_statistic(stat.rmse)),
        rpe_rot_deg=float(rpe_r.get_statistic(stat.rmse)),
        rel_rot_err_median_deg=relative_rotation_error_median(est_m, gt_m),
        path_length_m=float(np.linalg.norm(np.diff(gt_span, axis=0), axis=1).sum()),
        matched=len(est_idx),
        scale=scale,
        align=align,
        aligned=Trajectory(est_m.stamps, np.array(moved.poses_se3)),
        ate_errors_m=np.asarray(ape.error, dtype=np.float64),
        segment_drift_percent={length: segment_drift_percent(np.array(moved.poses_se3),
                                                             gt_m.poses, length)
                               for length in DRIFT_SEGMENTS_M},
        scale_error_percent=None if align == "sim3" else scale_error_percent(est_m, gt_m),
    )


def scale_error_percent(est: Trajectory, gt: Trajectory) -> float | None:
    """How much longer than ``gt`` the metric trajectory ``est`` (associated) is, in percent:
    100 (1/s - 1) with s the scale of the Umeyama Sim(3) alignment of its positions to the
    ground truth's; None when the positions fix no alignment (a trajectory that stays put).
    Separates a wrong scale (a biased depth, a wrong baseline) from the rotation and drift that
    make up the rest of the ATE."""
    try:
        _, _, s = evo_geometry.umeyama_alignment(est.positions.T, gt.positions.T,
                                                 with_scale=True)
    except EvoException:
        return None
    return 100 * (1 / float(s) - 1) if s > 0 else None


def segment_drift_percent(est: np.ndarray, gt: np.ndarray, length_m: float) -> float | None:
    """Mean translation error of the relative pose across each ground-truth segment of
    ``length_m`` (one starting at every pose), in percent of the length; KITTI's odometry
    metric. ``est`` (aligned, with the Sim(3) scale for monocular runs) and ``gt`` are associated
    (N, 4, 4) camera-to-world poses. None when no segment is that long."""
    dist = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(gt[:, :3, 3], axis=0),
                                                           axis=1))])
    errors = []
    for i in range(len(gt)):
        j = int(np.searchsorted(dist, dist[i] + length_m))
        if j >= len(gt):
            break
        rel_gt = np.linalg.inv(gt[i]) @ gt[j]
        rel_est = np.linalg.inv(est[i]) @ est[j]
        errors.append(np.linalg.norm((np.linalg.inv(rel_gt) @ rel_est)[:3, 3]) / length_m)
    return 100 * float(np.mean(errors)) if errors else None


def relative_rotation_error_median(est: Trajectory, gt: Trajectory) -> float:
    """Median angle of (R_gt_i^T R_gt_i+1)^T (R_est_i^T R_est_i+1) over consecutive pose pairs.

    The two-view rotation error of a frame-to-frame tracker, comparable with the relative pose
    error of image pairs; it ignores alignment and scale. ``est`` and ``gt`` are associated.
    """
    R_est, R_gt = est.poses[:, :3, :3], gt.poses[:, :3, :3]
    rel_est = np.einsum("nji,njk->nik", R_est[:-1], R_est[1:])
    rel_gt = np.einsum("nji,njk->nik", R_gt[:-1], R_gt[1:])
    errors = [rotation_angle_deg(g.T @ e) for g, e in zip(rel_gt, rel_est)]
    return float(np.median(errors))


def _to_evo(traj: Trajectory) -> PoseTrajectory3D:
    return PoseTrajectory3D(poses_se3=list(traj.poses), timestamps=traj.stamps.copy())


def _run(metric: evo_metrics.PE, ref: PoseTrajectory3D, est: PoseTrajectory3D) -> evo_metrics.PE:
    metric.process_data((ref, est))
    return metric


def _span(traj: Trajectory) -> str:
    return f"{traj.stamps[0]:.6f} to {traj.stamps[-1]:.6f} s"


@contextmanager
def _quiet_evo() -> Iterator[None]:
    """evo logs every step (and warns on odd input); our callers report the results themselves."""
    logger = logging.getLogger("evo")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
