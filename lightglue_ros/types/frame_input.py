"""One frame to track, as the node receives it (Image, optional depth, CameraInfo) and as the
dataset and bag readers produce it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.camera import CameraModel


@dataclass
class FrameInput:
    """One frame to track: what the node receives as Image (+ depth) and CameraInfo."""

    stamp: float
    image: np.ndarray
    camera: CameraModel
    depth: np.ndarray | None = None
    depth_unit: float | None = None
