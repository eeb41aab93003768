"""One frame to track, as the node receives it (Image, optional depth or right image, CameraInfo)
and as the dataset and bag readers produce it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.camera import CameraModel
from .stamp_ns import seconds


@dataclass
class FrameInput:
    """One frame to track: what the node receives as Image (+ depth) and CameraInfo.

    A stereo pair comes rectified: ``image`` is the left image and ``camera`` its rectified model
    (no distortion), ``right`` the right image on the same rectified grid (same size and K), and
    ``baseline_m`` the distance between the two optical centres (right camera at +x), so that a
    point at depth z appears ``camera.fx * baseline_m / z`` pixels further left in ``right``.
    Readers of raw pairs rectify before handing frames in.

    ``stamp_ns`` is the header stamp in integer nanoseconds (see ``stamp_ns``).
    """

    stamp_ns: int
    image: np.ndarray
    camera: CameraModel
    depth: np.ndarray | None = None
    depth_unit: float | None = None
    right: np.ndarray | None = None
    baseline_m: float | None = None

    @property
    def seconds(self) -> float:
        return seconds(self.stamp_ns)
