"""One unit per kind of camera (monocular, RGB-D, stereo): how its frames get metric points.
The monocular scale applies to every frame that has none."""
from __future__ import annotations

from ...pipeline import Pipeline
from ...types import FrameInput
from .base import CameraMode
from .depth import DepthCamera
from .monocular import MonocularCamera, MonocularScale, consecutive_rotation
from .stereo import StereoCamera

__all__ = ["CameraMode", "CameraModes", "DepthCamera", "MonocularCamera", "MonocularScale",
           "StereoCamera", "consecutive_rotation"]


class CameraModes:
    """The tracker's camera units, made once; each frame is tracked by the one of the camera
    that took it, as the frame says (a depth image beats a right image)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.monocular = MonocularCamera()
        self.depth = DepthCamera()
        self.stereo = StereoCamera(pipeline)

    def of(self, source: FrameInput) -> CameraMode:
        if source.depth is not None:
            return self.depth
        if source.right is not None:
            return self.stereo
        return self.monocular
