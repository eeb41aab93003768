"""Camera odometry as robot-base odometry (REP 105): the frame arithmetic, without ROS.

The tracker measures the camera optical frame: ``T_odom_cam``, the camera's pose in the camera's
own first pose. A robot wants ``odom -> base_link``: the base's pose in the base's first pose,
so that odom has the base's axes (x forward, z up) and the TF tree stays ``odom -> base_link ->
... -> camera``. With the rigid extrinsic ``B = T_base_cam`` (the camera's pose in the base),

    T_odom_base = B @ T_odom_cam @ B^-1

and the covariance moves with the first-order Jacobian of that map (``base_covariance``).
With a monocular camera the translation of ``T_odom_cam`` is up to scale while B's is in metres:
the base trajectory is then right in rotation only (use depth for metric odometry).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .se3 import invert_transform, make_transform, quaternion_to_rotation, skew


def pose_matrix(values: Sequence[float]) -> np.ndarray:
    """4x4 transform of (x, y, z, qx, qy, qz, qw) (ROS order; the quaternion is normalised)."""
    values = np.asarray(values, np.float64)
    return make_transform(quaternion_to_rotation(values[3:]), values[:3])


def base_pose(T_odom_cam: np.ndarray, T_base_cam: np.ndarray) -> np.ndarray:
    """T_odom_base of a camera pose, with odom the base's pose at the camera's odom origin."""
    return T_base_cam @ T_odom_cam @ invert_transform(T_base_cam)


def base_covariance(T_odom_cam: np.ndarray, cov: np.ndarray, T_base_cam: np.ndarray
                    ) -> np.ndarray:
    """Covariance of ``base_pose`` from that of T_odom_cam, both in the convention of
    ``geometry.covariance`` (t' = t + dt, R' = exp([dr]x) R; order tx ty tz rx ry rz).

    First order: dr_base = R_B dr and dt_base = R_B dt + [R_odom_base t_B]x R_B dr.
    """
    R_B, t_B = T_base_cam[:3, :3], T_base_cam[:3, 3]
    R_ob = base_pose(T_odom_cam, T_base_cam)[:3, :3]
    J = np.zeros((6, 6))
    J[:3, :3] = J[3:, 3:] = R_B
    J[:3, 3:] = skew(R_ob @ t_B) @ R_B
    out = J @ np.asarray(cov, np.float64) @ J.T
    return 0.5 * (out + out.T)
