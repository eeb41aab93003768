"""The rules of the two backends people put behind visual odometry, written from their sources,
for the tests to assert the published odometry against:

* rtabmap, ``CoreWrapper::odomUpdate``: a message whose pose is the identity after a
  non-identity one, or whose ``pose.covariance[0]`` and ``twist.covariance[0]`` are both >= 9999
  (``BAD_COVARIANCE``), is an odometry reset: rtabmap starts a new map;
* robot_localization, ``RosFilter::preparePose`` with ``differential: true``: two consecutive
  poses become a velocity ``(prev^-1 cur) / dt`` with covariance ``(P_prev + P_cur) * dt``,
  fused as a twist.

Each takes odometry as (T 4x4, pose covariance 6x6, twist covariance 6x6) triples.
"""
from __future__ import annotations

import numpy as np

from lightglue_ros.geometry.se3 import invert_transform
from lightglue_ros.ros.odometry import se3_log

RTABMAP_BAD_VARIANCE = 9999.0  # rtabmap's BAD_COVARIANCE


def rtabmap_resets(odometry: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[int]:
    """Indices of the messages rtabmap takes for an odometry reset (its Transform::isIdentity
    compares with Eigen's float precision, 1e-5)."""
    resets, last = [], np.eye(4)
    for i, (T, pose_cov, twist_cov) in enumerate(odometry):
        identity = np.allclose(T, np.eye(4), atol=1e-5, rtol=0)
        if not np.allclose(last, np.eye(4), atol=1e-5, rtol=0) and (identity or (
                pose_cov[0, 0] >= RTABMAP_BAD_VARIANCE and
                twist_cov[0, 0] >= RTABMAP_BAD_VARIANCE)):
            resets.append(i)
        last = T
    return resets


def differential_twists(odometry: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                        stamps: list[float]) -> list[dict[str, float]]:
    """Linear and angular speed, and the largest variance of each, of every velocity
    robot_localization's differential mode makes of two consecutive odometry poses."""
    out = []
    for (a, ta), (b, tb) in zip(zip(odometry, stamps), zip(odometry[1:], stamps[1:])):
        dt = tb - ta
        delta = invert_transform(a[0]) @ b[0]
        variance = np.diag((a[1] + b[1]) * dt)
        out.append({"linear": float(np.linalg.norm(delta[:3, 3]) / dt),
                    "angular": float(np.linalg.norm(se3_log(delta)[3:]) / dt),
                    "linear_variance": float(variance[:3].max()),
                    "angular_variance": float(variance[3:].max())})
    return out


def no_differential_jump(twists: list[dict[str, float]]) -> str | None:
    """Why differential mode would fuse a jump, or None: every velocity it would fuse with
    weight (variance < 1) is within 5x the median of those (a return to the origin makes one
    tens of frame steps long). Monocular translations carry the scale's variance and are not
    fused at all; their rotation must be."""
    angular = [t["angular"] for t in twists if t["angular_variance"] < 1.0]
    if len(angular) < len(twists) // 2:
        return f"only {len(angular)} of {len(twists)} rotations would be fused: {twists}"
    for kind in ("angular", "linear"):
        trusted = [t[kind] for t in twists if t[f"{kind}_variance"] < 1.0]
        if trusted and max(trusted) > 5 * np.median(trusted):
            return f"{kind} jump: {trusted}"
    return None
