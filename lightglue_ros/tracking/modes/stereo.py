"""A rectified stereo pair: metric points of a keyframe from its right image."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from ...config import Config
from ...errors import ImageError
from ...pipeline import Pipeline
from ...types import FrameInput
from ..stereo import stereo_points

if TYPE_CHECKING:
    from ..frames import TrackedFrame


class StereoCamera:
    """Every frame keeps its right image; only a frame that becomes a keyframe has it extracted
    and matched (frames that do not become keyframes cost nothing more), and then drops it."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def attach(self, frame: "TrackedFrame", source: FrameInput, config: Config) -> str:
        frame.right, frame.baseline_m = source.right, float(source.baseline_m or 0.0)
        return ""

    def keyframe_points(self, frame: "TrackedFrame", config: Config,
                        timings: dict[str, float]) -> str:
        if frame.right is None:
            return ""
        start = time.perf_counter()
        reason = self._measure(frame, config)
        timings["stereo"] = time.perf_counter() - start
        return reason

    def _measure(self, frame: "TrackedFrame", config: Config) -> str:
        """The keyframe's points from its right image, which it then drops; why none, or ''."""
        right, frame.right = frame.right, None
        try:
            right_features = self.pipeline.extract(right)
        except ImageError as exc:
            return f"right image unusable: {exc}"
        pairs = self.pipeline.match(frame.features, right_features).pairs
        result = stereo_points(frame.keypoints, right_features.keypoints.cpu().numpy().astype(
            np.float64), pairs, frame.camera, frame.baseline_m, 2 * config.ransac_threshold_px,
            config.depth_min_m, config.depth_max_m)
        if result.reason:
            return result.reason
        frame.depth_points, frame.metric = result.points, True
        frame.depth_noise = config.keypoint_sigma_px / (frame.camera.fx * frame.baseline_m)
        return ""
