"""A keypoint error shared by a whole frame, which a per-keypoint noise model does not carry.

On real cameras part of every keypoint's error is common to the frame: its stamp against the
exposure (rolling shutter, synchronisation), the lens calibration, the reference keyframe's
placement. Averaging over more inliers does not shrink it, while the covariance built from
independent keypoint noise (``covariance.pnp_covariance``) shrinks with them, and on a narrow
field of view that covariance couples the translation across the image tightly with the rotation
about the other image axis, more tightly than such errors do. A shift of the whole image by d
pixels is what a turn of the camera by d / f about its x or y axis does, and a pose estimate
absorbs it as that turn: its covariance gets (sigma / f)^2 about those two axes.
"""
from __future__ import annotations

import numpy as np

from .camera import CameraModel


def common_shift_covariance(R_ref_cur: np.ndarray, camera: CameraModel,
                            sigma_px: float) -> np.ndarray:
    """6x6 to add to the covariance of the relative pose T_ref_cur (``covariance`` convention:
    rotation about the reference's axes) for a shift of every keypoint of the current frame by
    ``sigma_px`` (1 sigma along each image axis). The turn is about the current camera's own
    axes and centre: the translation is unchanged."""
    turn = np.diag([(sigma_px / camera.fy) ** 2, (sigma_px / camera.fx) ** 2, 0.0])
    cov = np.zeros((6, 6))
    cov[3:, 3:] = R_ref_cur @ turn @ R_ref_cur.T
    return cov
