"""A stereo pair from its messages, the same way in the node and in the bag reader: the right
image paired with the left by header stamp, both checked against their camera_infos, and the pair
rectified onto one grid (a raw pair from CameraInfo's R and P; a rectified one passes through)
with the baseline from the right camera's P (Tx = -fx * baseline).

What cannot give a metric pair raises ``FrameError`` with source ``stereo``: a swapped pair (the
baseline from P is negative: every disparity would be negative, the scale wrong), eyes of
different sizes or grids, a right camera_info that does not fit its image.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import LightGlueRosError
from ..geometry.camera import CameraModel
from ..geometry.rectify import StereoCalibrationError, StereoRectification, from_projections
from . import decode
from .assembly import FrameError

NO_RIGHT_CAMERA_INFO = "no right camera_info received yet: frames are dropped until it arrives"


def _key(msg: Any) -> tuple:
    roi = msg.roi
    return (int(msg.width), int(msg.height), msg.distortion_model, tuple(msg.k), tuple(msg.d),
            tuple(msg.r), tuple(msg.p), int(msg.binning_x), int(msg.binning_y),
            int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))


class StereoRectifier:
    """The rectification of the pair described by the latest left and right camera_infos,
    computed once per calibration (the resampling maps of a raw pair take milliseconds)."""

    def __init__(self, rectified: bool) -> None:
        self.rectified = rectified
        self._cached: tuple[tuple, StereoRectification] | None = None

    def rectification(self, left_info: Any, right_info: Any) -> StereoRectification:
        key = (_key(left_info), _key(right_info))
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, self._compute(left_info, right_info))
        return self._cached[1]

    def _compute(self, left_info: Any, right_info: Any) -> StereoRectification:
        eyes = []
        for side, info in (("left", left_info), ("right", right_info)):
            try:
                camera = decode.camera_model(info, self.rectified)
                A, _, _ = decode.window(info)
                P = A @ decode.projection(info)
                R = np.eye(3) if self.rectified else np.asarray(info.r, np.float64).reshape(3, 3)
            except ValueError as exc:
                raise FrameError("stereo", f"{side} camera_info: {exc}") from exc
            if not np.any(P[:, :3]):
                raise FrameError("stereo", f"{side} camera_info has no projection P: a stereo "
                                           "pair needs the calibration of both eyes")
            eyes.append((camera, R, P))
        (left, R1, P1), (right, R2, P2) = eyes
        try:
            return from_projections(left, right, R1, R2, P1, P2)
        except StereoCalibrationError as exc:
            raise FrameError("stereo", f"stereo calibration: {exc}") from exc


def stereo_frame(left: np.ndarray, right_msg: Any, compressed: bool,
                 rectification: StereoRectification
                 ) -> tuple[np.ndarray, CameraModel, np.ndarray, float]:
    """The rectified left image, the rectified camera, the rectified right image and the
    baseline (metres), in FrameInput's order, of a left image (decoded, already checked against
    its camera_info) and the right image message."""
    try:
        right = decode.compressed_to_array(right_msg) if compressed else \
            decode.image_to_array(right_msg)
    except LightGlueRosError as exc:
        raise FrameError("stereo", f"right image: {exc}") from exc
    if right.shape[:2] != left.shape[:2]:
        raise FrameError("stereo", f"the right image is {right.shape[1]}x{right.shape[0]} but "
                                   f"the left {left.shape[1]}x{left.shape[0]}: the eyes must "
                                   "send the same size")
    return rectification.left(left), rectification.camera, rectification.right(right), \
        rectification.baseline_m


def rectified_left(left: np.ndarray, rectification: StereoRectification
                   ) -> tuple[np.ndarray, CameraModel]:
    """The left image alone on the rectified grid (its right image missing), so that every frame
    of a stereo stream has the same camera."""
    return rectification.left(left), rectification.camera
