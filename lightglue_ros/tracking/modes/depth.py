"""RGB-D: every frame's keypoints back-projected with its registered depth image."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...config import Config
from ...types import FrameInput

if TYPE_CHECKING:
    from ..frames import TrackedFrame


class DepthCamera:
    """Metric points on every frame, so any frame can be a keyframe with points at once."""

    def attach(self, frame: "TrackedFrame", source: FrameInput, config: Config) -> str:
        """A depth image that cannot be read leaves the frame monocular, with the reason."""
        try:
            frame.set_depth(source.depth, source.depth_unit, config.depth_min_m,
                            config.depth_max_m)
        except ValueError as exc:
            return f"depth ignored: {exc}"
        return ""

    def keyframe_points(self, frame: "TrackedFrame", config: Config,
                        timings: dict[str, float]) -> str:
        """Nothing more: the frame has its points from ``attach``."""
        return ""
