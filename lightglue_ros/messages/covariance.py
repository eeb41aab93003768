"""What the published pose covariances mean, and the same covariance in GTSAM's convention.

Every 6x6 pose covariance lightglue_ros publishes (``~/odometry`` pose, ``~/relative_pose``,
KeyframeEdge) is that of ``geometry_msgs/PoseWithCovariance``: order (x, y, z, rx, ry, rz), for
the perturbation of a pose T = (R, t)

    t' = t + dt,    R' = exp([dr]x) R

(translation error, and a small rotation about the FIXED axes of the frame the pose is expressed
in). GTSAM's ``Pose3`` orders rotation first and perturbs in the body frame, T' = T Exp(xi) with
xi = (w, v). To first order the two are related by w = R^T dr and v = R^T dt.
"""
from __future__ import annotations

import numpy as np


def to_gtsam(T: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """The covariance of pose ``T`` (4x4) as GTSAM's Pose3 wants it, e.g. for
    ``gtsam.noiseModel.Gaussian.Covariance`` in a ``BetweenFactorPose3``."""
    R = np.asarray(T, np.float64)[:3, :3]
    J = np.zeros((6, 6))
    J[:3, 3:] = R.T  # w from dr
    J[3:, :3] = R.T  # v from dt
    out = J @ np.asarray(covariance, np.float64).reshape(6, 6) @ J.T
    return 0.5 * (out + out.T)
