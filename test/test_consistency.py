"""NEES of relative poses against ground truth (``evaluation.consistency``): a covariance that
describes the errors gives a mean at the degrees of freedom; one 10x too small, ten times it."""
from __future__ import annotations

import numpy as np

from lightglue_ros.evaluation.consistency import nees_summary
from lightglue_ros.geometry.covariance import perturb_pose
from lightglue_ros.geometry.se3 import invert_transform, make_transform
from lightglue_ros.tracking import FrameRecord, TrackingStatus
from lightglue_ros.types import Trajectory, to_ns


def _run(scale: float, metric: bool, n: int = 3000):
    """Ground truth moving 0.1 m and a little rotation per 0.1 s; each frame's relative pose
    to the one before perturbed with errors drawn from ``cov``, which the record claims is
    ``cov * scale``."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    step = make_transform(Rotation.from_rotvec([0.01, 0.02, 0.0]).as_matrix(), [0.1, 0, 0.02])
    poses = [np.eye(4)]
    for _ in range(n):
        poses.append(poses[-1] @ step)
    stamps = np.arange(n + 1) * 0.1
    A = rng.normal(size=(6, 6)) * np.array([1e-2] * 3 + [1e-3] * 3)[:, None]
    cov = A @ A.T + np.eye(6) * 1e-9
    records = []
    for i in range(1, n + 1):
        T = invert_transform(poses[i - 1]) @ poses[i]
        R, t = perturb_pose(T[:3, :3], T[:3, 3], rng.multivariate_normal(np.zeros(6), cov))
        records.append(FrameRecord(to_ns(stamps[i]), TrackingStatus.OK, poses[i],
                                   ref_stamp_ns=to_ns(stamps[i - 1]),
                                   T_ref_cam=make_transform(R, t),
                                   relative_covariance=cov * scale, metric=metric))
    records.append(FrameRecord(to_ns(stamps[-1] + 0.1), TrackingStatus.LOST,
                               poses[-1]))  # skipped
    return nees_summary(records, Trajectory(stamps, np.array(poses)))


def test_a_consistent_covariance_gives_the_degrees_of_freedom():
    out = _run(1.0, metric=True)
    assert out["nees_rotation_frames"] == out["nees_pose_frames"] == 3000
    assert abs(out["nees_rotation_mean"] - 3) < 0.3 and abs(out["nees_pose_mean"] - 6) < 0.5


def test_an_overconfident_covariance_is_seen_and_monocular_scores_rotation_only():
    out = _run(0.1, metric=False)
    assert abs(out["nees_rotation_mean"] - 30) < 3
    assert out["nees_pose_mean"] is None and out["nees_pose_frames"] == 0
