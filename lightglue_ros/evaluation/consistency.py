"""Whether the published covariances mean what they say: the normalised estimation error squared
(NEES) of each relative pose against ground truth.

For an estimate with error e and covariance P, NEES = e^T P^-1 e. Over a sequence, a consistent
covariance gives a mean near the degrees of freedom (3 for the rotation, 6 for the pose); much
more means the covariance is overconfident, much less that it is too cautious. The error is in
the convention of the covariance (``lightglue_ros.messages.covariance``): dt = t_est - t_gt and
R_est = exp([dr]x) R_gt. The rotation is scored in every mode, the whole pose only in metric runs
(a monocular translation is up to scale).

Ground truth has errors of its own. Where it is sampled much faster than the frames (a motion
capture system), its noise is measured from the data: the second differences of consecutive
samples, where the motion is smooth, are noise (white noise of variance s^2 per axis gives
second differences of variance 6 s^2). The NEES is then also given against the covariance plus
that noise carried into the relative pose (``*_with_gt_noise``): the first figure says how the
covariance alone fares, the second how it fares against what the ground truth can tell. The
median and the share of frames above the chi-square 99% bound say whether a mean is a few
frames' doing.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation
from scipy.stats import chi2

from ..geometry.se3 import invert_transform, pose_at_time, skew
from ..tracking import FrameRecord, TrackingStatus
from ..types import Trajectory

MAX_GT_GAP_S = 0.2  # no ground truth interpolated across a gap longer than this
# Ground truth sampled this many times faster than the frames has its noise measured.
GT_NOISE_MIN_RATE_RATIO = 10.0


def pose_error(T_est: np.ndarray, T_gt: np.ndarray) -> np.ndarray:
    """(dt, dr) of an estimate against ground truth, in the covariance convention."""
    dr = Rotation.from_matrix(T_est[:3, :3] @ T_gt[:3, :3].T).as_rotvec()
    return np.concatenate([T_est[:3, 3] - T_gt[:3, 3], dr])


def nees(error: np.ndarray, covariance: np.ndarray) -> float:
    """e^T P^-1 e (P must be positive definite)."""
    return float(error @ np.linalg.solve(covariance, error))


def relative_errors(records: list[FrameRecord], gt: Trajectory, offset_s: float = 0.0
                    ) -> list[tuple[FrameRecord, np.ndarray]]:
    """(record, error) of each tracked frame's relative pose with ground truth at both of its
    frames (ground truth taken ``offset_s`` later than the frames' stamps)."""
    out = []
    for r in records:
        if r.status is TrackingStatus.LOST or r.T_ref_cam is None or r.ref_seconds is None:
            continue
        ref = pose_at_time(gt.stamps, gt.poses, r.ref_seconds + offset_s, MAX_GT_GAP_S)
        cur = pose_at_time(gt.stamps, gt.poses, r.seconds + offset_s, MAX_GT_GAP_S)
        if ref is not None and cur is not None:
            out.append((r, pose_error(r.T_ref_cam, invert_transform(ref) @ cur)))
    return out


def groundtruth_noise(gt: Trajectory, frame_interval_s: float
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """(rotation variances (3,) rad^2 about the body axes, position variances (3,) m^2 along
    the world axes) of one ground-truth sample, from the second differences of consecutive
    samples; None unless ground truth is sampled at least ``GT_NOISE_MIN_RATE_RATIO`` times
    faster than the frames (slower, the motion itself fills the second differences)."""
    if len(gt.stamps) < 3 or not np.median(np.diff(gt.stamps)) * GT_NOISE_MIN_RATE_RATIO \
            <= frame_interval_s:
        return None
    R = Rotation.from_matrix(gt.poses[:, :3, :3])
    steps = (R[:-1].inv() * R[1:]).as_rotvec()  # body-frame increments
    p = gt.poses[:, :3, 3]
    rotation = np.mean(np.diff(steps, axis=0) ** 2, axis=0) / 6
    position = np.mean((p[2:] - 2 * p[1:-1] + p[:-2]) ** 2, axis=0) / 6
    return rotation, position


def relative_groundtruth_covariance(T_ref_cur: np.ndarray, noise: tuple[np.ndarray, np.ndarray]
                                    ) -> np.ndarray:
    """6x6 covariance (this module's convention) of a ground-truth relative pose whose two
    samples each carry ``noise`` (``groundtruth_noise``); first order. The reference's rotation
    noise w turns the relative pose by -w and swings its translation by [t]x w."""
    rotation, position = noise
    R, t = T_ref_cur[:3, :3], T_ref_cur[:3, 3]
    Sr = np.diag(rotation)
    J = np.zeros((6, 3))
    J[:3] = skew(t)
    J[3:] = -np.eye(3)
    cov = J @ Sr @ J.T
    cov[3:, 3:] += R @ Sr @ R.T
    cov[:3, :3] += 2 * np.max(position) * np.eye(3)  # both samples; world axes are not the
    # reference's, so the largest axis's variance in every direction
    return cov


def time_offset_search(records: list[FrameRecord], gt: Trajectory,
                       max_offset_s: float = 0.03, step_s: float = 0.005) -> dict[str, float]:
    """Whether a time offset between frames and ground truth explains the rotation errors: the
    RMS relative rotation error (deg) with ground truth as stamped, and at the offset within
    +-``max_offset_s`` that minimises it."""
    def rms(offset: float) -> float:
        e = [np.linalg.norm(err[3:]) for _, err in relative_errors(records, gt, offset)]
        return float(np.degrees(np.sqrt(np.mean(np.square(e))))) if e else float("nan")

    offsets = np.arange(-max_offset_s, max_offset_s + step_s / 2, step_s)
    values = [rms(o) for o in offsets]
    best = int(np.nanargmin(values))
    return {"rms_rotation_error_deg": rms(0.0), "best_offset_ms": float(offsets[best] * 1e3),
            "rms_rotation_error_deg_at_best_offset": values[best]}


def _stats(values: list[float], dof: int, prefix: str) -> dict[str, Any]:
    if not values:
        return {f"{prefix}_mean": None, f"{prefix}_median": None, f"{prefix}_over_99": None}
    v = np.asarray(values)
    return {f"{prefix}_mean": float(np.mean(v)), f"{prefix}_median": float(np.median(v)),
            f"{prefix}_over_99": float(np.mean(v > chi2.ppf(0.99, dof)))}


def nees_summary(records: list[FrameRecord], gt: Trajectory) -> dict[str, Any]:
    """``nees_rotation_mean`` (3 DOF) over the relative poses with ground truth,
    ``nees_pose_mean`` (6 DOF) over the metric ones (None without any), their counts, medians
    and shares above the chi-square 99% bound (``*_over_99``), the rotation's mean by the model
    that estimated the pose (``nees_rotation_by_model``: PnP, essential matrix, pure rotation
    "homography"); where ground truth's noise can be
    measured (``groundtruth_noise``), the same against the covariance plus that noise
    (``*_with_gt_noise``), the noise itself (``gt_rotation_sigma_deg``, ``gt_position_sigma_m``,
    per sample and axis) and whether a time offset explains the errors (``time_offset_search``)."""
    errors = relative_errors(records, gt)
    rotation = [nees(e[3:], r.relative_covariance[3:, 3:]) for r, e in errors]
    pose = [nees(e, r.relative_covariance) for r, e in errors if r.metric]
    out = {**_stats(rotation, 3, "nees_rotation"), "nees_rotation_frames": len(rotation),
           **_stats(pose, 6, "nees_pose"), "nees_pose_frames": len(pose)}
    by_model: dict[str, list[float]] = {}
    for (r, _), value in zip(errors, rotation):
        by_model.setdefault(r.model, []).append(value)
    out["nees_rotation_by_model"] = {m: {"mean": float(np.mean(v)), "frames": len(v)}
                                     for m, v in sorted(by_model.items())}
    stamps = [r.seconds for r in records]
    noise = groundtruth_noise(gt, float(np.median(np.diff(stamps)))) \
        if len(stamps) > 1 else None
    out["gt_rotation_sigma_deg"] = None if noise is None else \
        np.degrees(np.sqrt(noise[0])).tolist()
    out["gt_position_sigma_m"] = None if noise is None else np.sqrt(noise[1]).tolist()
    out["gt_time_offset"] = None if noise is None or not errors else \
        time_offset_search(records, gt)
    with_gt = [(r, r.relative_covariance + relative_groundtruth_covariance(r.T_ref_cam, noise), e)
               for r, e in errors] if noise is not None else []
    out.update(_stats([nees(e[3:], P[3:, 3:]) for r, P, e in with_gt], 3,
                      "nees_rotation_with_gt_noise"))
    out.update(_stats([nees(e, P) for r, P, e in with_gt if r.metric], 6,
                      "nees_pose_with_gt_noise"))
    return out
