"""When the current frame should replace the keyframe it is tracked against."""
from __future__ import annotations

from dataclasses import dataclass

from ..config import Config


@dataclass(frozen=True)
class KeyframePolicy:
    """A new keyframe once the view has changed enough that the old one is losing its grip:
    too few inliers remain (absolutely, or as a share of the keyframe's first match), or the
    keypoints have moved far (more parallax for new 3D points, less overlap left)."""

    min_inliers: int = 150
    min_ratio: float = 0.5
    max_flow_px: float = 40.0

    @classmethod
    def from_config(cls, cfg: Config) -> "KeyframePolicy":
        return cls(cfg.keyframe_min_inliers, cfg.keyframe_min_ratio, cfg.keyframe_flow_px)

    def reason(self, inliers: int, first_inliers: int, flow_px: float) -> str:
        """Why a new keyframe is due ('' when it is not)."""
        if inliers < self.min_inliers:
            return f"{inliers} inliers < {self.min_inliers}"
        if first_inliers and inliers < self.min_ratio * first_inliers:
            return f"{inliers} inliers < {self.min_ratio:.2f} of {first_inliers}"
        if flow_px > self.max_flow_px:
            return f"median flow {flow_px:.1f} px > {self.max_flow_px:.1f}"
        return ""
