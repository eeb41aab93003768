"""Whether the published covariances mean what they say: the normalised estimation error squared
(NEES) of each relative pose against ground truth.

For an estimate with error e and covariance P, NEES = e^T P^-1 e. Over a sequence, a consistent
covariance gives a mean near the degrees of freedom (3 for the rotation, 6 for the pose); much
more means the covariance is overconfident, much less that it is too cautious. The error is in
the convention of the covariance (``lightglue_ros.messages.covariance``): dt = t_est - t_gt and
R_est = exp([dr]x) R_gt. The rotation is scored in every mode, the whole pose only in metric runs
(a monocular translation is up to scale).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from ..geometry.se3 import invert_transform, pose_at_time
from ..tracking import FrameRecord, TrackingStatus
from ..types import Trajectory

MAX_GT_GAP_S = 0.2  # no ground truth interpolated across a gap longer than this


def pose_error(T_est: np.ndarray, T_gt: np.ndarray) -> np.ndarray:
    """(dt, dr) of an estimate against ground truth, in the covariance convention."""
    dr = Rotation.from_matrix(T_est[:3, :3] @ T_gt[:3, :3].T).as_rotvec()
    return np.concatenate([T_est[:3, 3] - T_gt[:3, 3], dr])


def nees(error: np.ndarray, covariance: np.ndarray) -> float:
    """e^T P^-1 e (P must be positive definite)."""
    return float(error @ np.linalg.solve(covariance, error))


def relative_errors(records: list[FrameRecord], gt: Trajectory
                    ) -> list[tuple[FrameRecord, np.ndarray]]:
    """(record, error) of each tracked frame's relative pose with ground truth at both of its
    frames."""
    out = []
    for r in records:
        if r.status is TrackingStatus.LOST or r.T_ref_cam is None or r.ref_seconds is None:
            continue
        ref = pose_at_time(gt.stamps, gt.poses, r.ref_seconds, MAX_GT_GAP_S)
        cur = pose_at_time(gt.stamps, gt.poses, r.seconds, MAX_GT_GAP_S)
        if ref is not None and cur is not None:
            out.append((r, pose_error(r.T_ref_cam, invert_transform(ref) @ cur)))
    return out


def nees_summary(records: list[FrameRecord], gt: Trajectory) -> dict[str, Any]:
    """``nees_rotation_mean`` (3 DOF) over the relative poses with ground truth,
    ``nees_pose_mean`` (6 DOF) over the metric ones (None without any), and their counts."""
    errors = relative_errors(records, gt)
    rotation = [nees(e[3:], r.relative_covariance[3:, 3:]) for r, e in errors]
    pose = [nees(e, r.relative_covariance) for r, e in errors if r.metric]
    return {"nees_rotation_mean": float(np.mean(rotation)) if rotation else None,
            "nees_rotation_frames": len(rotation),
            "nees_pose_mean": float(np.mean(pose)) if pose else None,
            "nees_pose_frames": len(pose)}
