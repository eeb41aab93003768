"""Stereo rectification: a left/right pair brought onto one undistorted grid with horizontal
epipolar lines, as ``FrameInput`` wants a stereo pair.

The calibration comes in the form ROS ``CameraInfo`` carries it (per camera: the raw K and D, the
rectifying rotation R and the rectified projection P, the right one with P[0,3] = -fx * baseline),
or as the rigid transform between the raw cameras (EuRoC's sensor.yaml), which OpenCV's
``stereoRectify`` turns into the same R and P. Images are resampled only when they need it: a pair
already rectified (KITTI, a driver's ``image_rect`` topics) passes through untouched.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .camera import CameraModel

Maps = tuple[np.ndarray, np.ndarray]


class StereoCalibrationError(ValueError):
    """A stereo calibration that cannot give a metric pair (swapped eyes, mismatched grids)."""


@dataclass(frozen=True, eq=False)
class StereoRectification:
    """The rectified left camera (no distortion; the right one shares it), the baseline in
    metres (right camera at +x), the rotation from the raw left camera frame to the rectified
    one, and the resampling maps of each eye (None: that eye is already rectified)."""

    camera: CameraModel
    baseline_m: float
    left_rotation: np.ndarray
    left_maps: Maps | None = None
    right_maps: Maps | None = None

    @property
    def resamples(self) -> bool:
        return self.left_maps is not None or self.right_maps is not None

    def left(self, image: np.ndarray) -> np.ndarray:
        return _remap(image, self.left_maps)

    def right(self, image: np.ndarray) -> np.ndarray:
        return _remap(image, self.right_maps)


def _remap(image: np.ndarray, maps: Maps | None) -> np.ndarray:
    if maps is None:
        return image
    return cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def from_projections(left: CameraModel, right: CameraModel, R_left: np.ndarray,
                     R_right: np.ndarray, P_left: np.ndarray, P_right: np.ndarray
                     ) -> StereoRectification:
    """The rectification of a pair described as CameraInfo describes it (raw K and D in the
    models, R and P of each eye). Raises StereoCalibrationError for a pair whose right camera is
    not at +x (swapped topics) or whose rectified grids differ."""
    P_left = np.asarray(P_left, np.float64).reshape(3, 4)
    P_right = np.asarray(P_right, np.float64).reshape(3, 4)
    R_left = np.asarray(R_left, np.float64).reshape(3, 3)
    R_right = np.asarray(R_right, np.float64).reshape(3, 3)
    if (left.width, left.height) != (right.width, right.height):
        raise StereoCalibrationError(f"left camera is {left.width}x{left.height} but right "
                                     f"{right.width}x{right.height}")
    K = P_left[:, :3]
    if not np.allclose(K, P_right[:, :3], rtol=1e-6, atol=1e-6):
        raise StereoCalibrationError("left and right rectified projections P differ in their "
                                     "3x3 part: the pair is not on one rectified grid")
    try:
        camera = CameraModel(left.width, left.height, K)
    except ValueError as err:
        raise StereoCalibrationError(f"rectified projection P: {err}") from None
    baseline = -(P_right[0, 3] - P_left[0, 3]) / K[0, 0]
    if not baseline > 0:
        raise StereoCalibrationError(
            f"baseline from P is {baseline:.4g} m: the right camera is not to the right of the "
            "left one (left and right swapped?); disparities would be negative")
    return StereoRectification(camera, float(baseline), R_left,
                               _maps(left, R_left, camera), _maps(right, R_right, camera))


def from_extrinsics(left: CameraModel, right: CameraModel, R: np.ndarray, t: np.ndarray
                    ) -> StereoRectification:
    """The rectification of a raw pair from the transform of left-camera points into the right
    camera, x_right = R x_left + t (OpenCV's stereoRectify convention); the rectified images
    keep only valid pixels (alpha 0)."""
    size = (left.width, left.height)
    R = np.asarray(R, np.float64).reshape(3, 3)
    t = np.asarray(t, np.float64).reshape(3, 1)
    fisheye = {left.distortion_model, right.distortion_model} == {"equidistant"}
    if fisheye:
        R1, R2, P1, P2, _ = cv2.fisheye.stereoRectify(
            left.K, left.D, right.K, right.D, size, R, t, cv2.fisheye.CALIB_ZERO_DISPARITY,
            balance=0.0)
    elif "equidistant" in (left.distortion_model, right.distortion_model):
        raise StereoCalibrationError("a fisheye (equidistant) eye paired with a pinhole one "
                                     "cannot be rectified")
    else:
        R1, R2, P1, P2 = cv2.stereoRectify(left.K, _opencv_D(left), right.K, _opencv_D(right),
                                           size, R, t, flags=cv2.CALIB_ZERO_DISPARITY,
                                           alpha=0.0)[:4]
    return from_projections(left, right, R1, R2, P1, P2)


def _opencv_D(camera: CameraModel) -> np.ndarray:
    return camera.D if camera.D.size else np.zeros(5)


def _maps(raw: CameraModel, R: np.ndarray, rectified: CameraModel) -> Maps | None:
    """Resampling maps from the raw image onto the rectified grid; None when they would be the
    identity (no distortion, no rotation, same K)."""
    if not raw.is_distorted and np.allclose(R, np.eye(3), atol=1e-12) \
            and np.allclose(raw.K, rectified.K, atol=1e-9):
        return None
    size = (rectified.width, rectified.height)
    if raw.distortion_model == "equidistant":
        return cv2.fisheye.initUndistortRectifyMap(raw.K, raw.D, R, rectified.K, size,
                                                   cv2.CV_16SC2)
    return cv2.initUndistortRectifyMap(raw.K, _opencv_D(raw), R, rectified.K, size,
                                       cv2.CV_16SC2)
