"""Rigid transforms, quaternions and pose interpolation.

Conventions used throughout ``lightglue_ros.geometry``:

* A 4x4 transform ``T_a_b`` maps points from frame b into frame a: ``X_a = T_a_b @ X_b``.
  Composition therefore chains on the shared frame: ``T_a_c = T_a_b @ T_b_c``.
* A relative pose (R, t) between camera 0 and camera 1 maps camera-0 points to camera-1 points,
  ``X1 = R @ X0 + t``, i.e. it is ``T_1_0`` (SuperGlue's ``T_0to1``).
* Cameras use the optical frame of REP 103 (x right, y down, z forward).
* Quaternions are (x, y, z, w), the order of ROS ``geometry_msgs/Quaternion``.
"""
from __future__ import annotations

import numpy as np


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The 4x4 transform with rotation ``R`` (3x3) and translation ``t`` (3,)."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.reshape(t, 3)
    return T


def invert_transform(T: np.ndarray) -> np.ndarray:
    """``T_b_a`` from ``T_a_b``: R^T rather than a general inverse (exact for rigid motion)."""
    R, t = T[:3, :3], T[:3, 3]
    return make_transform(R.T, -R.T @ t)


def compose(*transforms: np.ndarray) -> np.ndarray:
    """The product of transforms, left to right: ``compose(T_a_b, T_b_c) == T_a_c``."""
    if not transforms:
        raise ValueError("compose needs at least one transform")
    out = np.eye(4)
    for T in transforms:
        out = out @ T
    return out


def skew(v: np.ndarray) -> np.ndarray:
    """The cross-product matrix: ``skew(a) @ b == np.cross(a, b)``."""
    return skew_rows(np.reshape(v, (1, 3)))[0]


def skew_rows(V: np.ndarray) -> np.ndarray:
    """(N, 3, 3): the cross-product matrix of each row of ``V`` (N, 3), without a Python loop."""
    V = np.asarray(V, dtype=np.float64).reshape(-1, 3)
    out = np.zeros((len(V), 3, 3))
    out[:, 0, 1], out[:, 0, 2] = -V[:, 2], V[:, 1]
    out[:, 1, 0], out[:, 1, 2] = V[:, 2], -V[:, 0]
    out[:, 2, 0], out[:, 2, 1] = -V[:, 1], V[:, 0]
    return out


def quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of the quaternion (x, y, z, w); the quaternion need not be unit length."""
    q = np.asarray(q, dtype=np.float64).reshape(4)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"quaternion {q.tolist()} has zero or non-finite length")
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation matrix, with w >= 0 so the result is unique.

    Shepperd's method: divides by the largest of the four candidate terms, so it stays accurate
    near 180 degrees where the trace formula loses all precision.
    """
    R = np.asarray(R, dtype=np.float64)
    tr = np.trace(R)
    diag = np.diag(R)
    i = int(np.argmax([tr, *diag]))
    if i == 0:
        s = 2.0 * np.sqrt(1.0 + tr)
        q = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1], 0.25 * s * s]) / s
    else:
        a = i - 1
        b, c = (a + 1) % 3, (a + 2) % 3
        s = 2.0 * np.sqrt(max(1.0 + R[a, a] - R[b, b] - R[c, c], 0.0))
        q = np.empty(4)
        q[a] = 0.25 * s
        q[b] = (R[b, a] + R[a, b]) / s
        q[c] = (R[c, a] + R[a, c]) / s
        q[3] = (R[c, b] - R[b, c]) / s
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def rotation_angle_deg(R: np.ndarray) -> float:
    """Rotation angle of ``R`` in degrees, in [0, 180].

    Uses atan2(|sin|, cos) instead of arccos of the trace, which loses half the significant digits
    for small angles (arccos(1 - e) ~ sqrt(2e)) and NaNs when rounding pushes the trace past 3.
    """
    R = np.asarray(R, dtype=np.float64)
    sin_axis = 0.5 * np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    cos = 0.5 * (np.trace(R) - 1.0)
    return float(np.degrees(np.arctan2(np.linalg.norm(sin_axis), cos)))


def angle_between_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two vectors in degrees, in [0, 180]; NaN when either has zero length.

    Kahan's formula 2*atan2(|a'-b'|, |a'+b'|) on the unit vectors is accurate at 0 and 180 degrees,
    where arccos of the dot product is not.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if not (na > 0 and nb > 0 and np.isfinite(na) and np.isfinite(nb)):
        return float("nan")
    a, b = a / na, b / nb
    return float(np.degrees(2.0 * np.arctan2(np.linalg.norm(a - b), np.linalg.norm(a + b))))


def slerp(q0: np.ndarray, q1: np.ndarray, alpha: float) -> np.ndarray:
    """Spherical linear interpolation between quaternions (x, y, z, w) along the shorter arc."""
    q0 = np.asarray(q0, dtype=np.float64) / np.linalg.norm(q0)
    q1 = np.asarray(q1, dtype=np.float64) / np.linalg.norm(q1)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:  # q and -q are the same rotation; flip to take the short way round
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: sin(theta) -> 0, normalised lerp is exact to rounding
        q = q0 + alpha * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1.0 - alpha) * theta) * q0 + np.sin(alpha * theta) * q1) / np.sin(theta)


def interpolate_pose(T0: np.ndarray, T1: np.ndarray, alpha: float) -> np.ndarray:
    """Pose a fraction ``alpha`` of the way from T0 to T1: SLERP rotation, linear translation.

    Both transforms must map into the same fixed frame (e.g. ``T_world_body``), as ground-truth
    trajectories do; then the interpolated translation is the body position at that time.
    """
    q = slerp(rotation_to_quaternion(T0[:3, :3]), rotation_to_quaternion(T1[:3, :3]), alpha)
    return make_transform(quaternion_to_rotation(q), (1.0 - alpha) * T0[:3, 3] + alpha * T1[:3, 3])


def pose_at_time(stamps: np.ndarray, poses: np.ndarray, t: float,
                 max_gap: float = np.inf) -> np.ndarray | None:
    """Interpolated pose of a trajectory at time ``t``, for associating ground truth with frames.

    ``stamps`` (N,) must be ascending, ``poses`` (N, 4, 4) map into one fixed frame. Returns None
    when ``t`` lies outside the trajectory or the two bracketing samples are more than ``max_gap``
    apart (interpolating across a tracking dropout would invent motion).
    """
    stamps = np.asarray(stamps, dtype=np.float64)
    poses = np.asarray(poses, dtype=np.float64)
    if stamps.ndim != 1 or poses.shape != (len(stamps), 4, 4):
        raise ValueError("need stamps (N,) and poses (N, 4, 4); "
                         f"got {stamps.shape} and {poses.shape}")
    if np.any(np.diff(stamps) < 0):
        raise ValueError("stamps must be sorted in ascending order")
    if len(stamps) == 0 or not stamps[0] <= t <= stamps[-1]:
        return None
    i = int(np.searchsorted(stamps, t, side="left"))
    if stamps[i] == t:
        return poses[i].copy()
    t0, t1 = stamps[i - 1], stamps[i]
    if t1 - t0 > max_gap:
        return None
    return interpolate_pose(poses[i - 1], poses[i], (t - t0) / (t1 - t0))
