"""What ``~/odometry`` says for each frame, under the rules of the backends that read it (numpy).

The pose is the tracker's (of the camera, or of the base with the extrinsic). The twist is the
velocity over the last frame interval: the constant body-frame velocity that moves the last
tracked pose to this one, ``log(T_prev_cur) / dt`` (linear, then angular; in ``child_frame_id``),
with the covariance of that motion from the relative-pose estimates, divided by dt^2.

The rules (documented in README; test/backend_rules.py writes them from the backends' sources):

* rtabmap (``CoreWrapper::odomUpdate``) starts a new map when a message's pose *and* twist
  variances are >= 9999, or its pose is the identity after a non-identity one. Every twist
  variance published here is at most ``UNKNOWN_TWIST_VARIANCE`` (< 9999), so no message is a reset
  signal, whatever the pose covariance says (a monocular pose's is large along the unknown
  scale); odom never returns to the origin (lost frames hold the pose, re-initialisation and
  ``~/reset`` keep it).
* A lost frame publishes the last pose with the tracker's lost covariance (1e6: no information)
  and a zero twist with ``UNKNOWN_TWIST_VARIANCE``: robot_localization in absolute mode gives it
  no weight, in differential mode the pose difference it makes is zero with a covariance of
  1e6; rtabmap keeps its map and weights that link by the twist covariance (no information).
* A frame with no motion link to the frame before (the first, a re-initialisation, the first
  after ``~/reset``) has the unknown twist too. So has a monocular twist's linear part: its
  direction is measured but its length is up to scale, and its variance says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..geometry.covariance import compose_pose_covariance, invert_pose_covariance, perturb_pose
from ..geometry.frames import base_covariance, base_pose
from ..geometry.se3 import invert_transform, skew
from ..tracking import FrameRecord, TrackingStatus
from ..types import NS

# Variance of a twist component that is not measured: (31 m/s)^2 or (31 rad/s)^2, no weight in a
# filter whose process noise is ~0.01-1, and below rtabmap's reset threshold (9999).
UNKNOWN_TWIST_VARIANCE = 1e3
_STEP = 1e-6


@dataclass
class OdometryOutput:
    """One odometry message: pose (child in odom) and twist (vx vy vz wx wy wz in child), each
    with its 6x6 covariance (ROS order)."""

    T: np.ndarray
    pose_covariance: np.ndarray
    twist: np.ndarray
    twist_covariance: np.ndarray
    twist_estimated: bool


def unknown_twist() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(6), np.eye(6) * UNKNOWN_TWIST_VARIANCE


def se3_log(T: np.ndarray) -> np.ndarray:
    """(rho, phi) with exp((rho, phi)^) = T: the constant body-frame twist over unit time."""
    phi = Rotation.from_matrix(T[:3, :3]).as_rotvec()  # exact near 0, unlike cv2.Rodrigues
    theta = float(np.linalg.norm(phi))
    K = skew(phi)
    if theta < 1e-8:
        V_inv = np.eye(3) - 0.5 * K
    else:
        V_inv = np.eye(3) - 0.5 * K + (1 - theta * np.sin(theta) / (2 * (1 - np.cos(theta)))) \
            / theta ** 2 * K @ K
    return np.concatenate([V_inv @ T[:3, 3], phi])


def twist_of_motion(T_prev_cur: np.ndarray, cov: np.ndarray, dt: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Velocity (linear, angular; body frame) and its covariance of a motion over ``dt`` seconds
    whose covariance ``cov`` is in the convention of ``geometry.covariance``; first order, the
    Jacobian of the logarithm by central differences."""
    R, t = T_prev_cur[:3, :3], T_prev_cur[:3, 3]
    columns = []
    for k in range(6):
        delta = np.zeros(6)
        delta[k] = _STEP
        plus, minus = (np.eye(4), np.eye(4))
        plus[:3, :3], plus[:3, 3] = perturb_pose(R, t, delta)
        minus[:3, :3], minus[:3, 3] = perturb_pose(R, t, -delta)
        columns.append((se3_log(plus) - se3_log(minus)) / (2 * _STEP))
    J = np.stack(columns, axis=1)
    out = J @ cov @ J.T / dt ** 2
    return se3_log(T_prev_cur) / dt, 0.5 * (out + out.T)


def cap_variance(cov: np.ndarray, cap: float = UNKNOWN_TWIST_VARIANCE) -> np.ndarray:
    """``cov`` with its eigenvalues clipped to ``cap`` (what is less known than that is unknown)."""
    w, V = np.linalg.eigh(0.5 * (cov + cov.T))
    return (V * np.clip(w, 0.0, cap)) @ V.T


class OdometryEstimator:
    """Turns the tracker's records into odometry messages, one frame after the other."""

    def __init__(self) -> None:
        self._last: FrameRecord | None = None  # the last frame with a pose

    def update(self, record: FrameRecord, T_base_cam: np.ndarray | None = None) -> OdometryOutput:
        """The odometry of ``record``: of the camera, or of the base with its pose in it."""
        T, cov = record.T_odom_cam, record.covariance
        if T_base_cam is not None:
            if record.status is not TrackingStatus.LOST:
                cov = base_covariance(T, cov, T_base_cam)
            T = base_pose(T, T_base_cam)
        twist, twist_cov = unknown_twist()
        if record.status is TrackingStatus.LOST:
            return OdometryOutput(T, cov, twist, twist_cov, False)
        motion = self._motion(record)
        self._last = record
        if motion is None:
            return OdometryOutput(T, cov, twist, twist_cov, False)
        T_inc, inc_cov, dt = motion
        if T_base_cam is not None:
            inc_cov = base_covariance(T_inc, inc_cov, T_base_cam)
            T_inc = base_pose(T_inc, T_base_cam)
        twist, twist_cov = twist_of_motion(T_inc, inc_cov, dt)
        if not record.metric:  # up to scale: the length of the velocity is not measured
            twist_cov[:3, :] = twist_cov[:, :3] = 0.0
            twist_cov[:3, :3] = np.eye(3) * UNKNOWN_TWIST_VARIANCE
        return OdometryOutput(T, cov, twist, cap_variance(twist_cov), True)

    def _motion(self, record: FrameRecord) -> tuple[np.ndarray, np.ndarray, float] | None:
        """(T_prev_cur, its covariance, dt) of the camera since the last frame with a pose, or
        None when the two frames are not linked by a measured relative pose."""
        last = self._last
        if last is None or record.reinitialized or record.T_ref_cam is None or \
                record.ref_stamp_ns is None or record.stamp_ns <= last.stamp_ns:
            return None
        T_inc = invert_transform(last.T_odom_cam) @ record.T_odom_cam
        dt = (record.stamp_ns - last.stamp_ns) / NS
        if record.ref_stamp_ns == last.stamp_ns:  # matched against that frame
            return T_inc, record.relative_covariance, dt
        if last.T_ref_cam is not None and record.ref_stamp_ns == last.ref_stamp_ns:
            # both against one reference: T_last_cur = T_ref_last^-1 T_ref_cur, the two
            # estimates taken as independent (they share the reference's points, so this
            # overstates the variance rather than understating it)
            R, t = last.T_ref_cam[:3, :3], last.T_ref_cam[:3, 3]
            inv_cov = invert_pose_covariance(R, t, last.relative_covariance)
            cov = compose_pose_covariance(R.T, -R.T @ t, inv_cov, record.T_ref_cam[:3, 3],
                                          record.relative_covariance)
            return T_inc, cov, dt
        return None

