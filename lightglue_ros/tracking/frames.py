"""A frame as the tracker keeps it: features extracted once, pose, and 3D points when known."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..features import Features
from ..geometry.camera import CameraModel
from ..geometry.covariance import lost_covariance
from ..geometry.pnp import backproject


@dataclass
class TrackedFrame:
    """Features of one image with its camera and pose; reused as keyframe and previous frame, so
    no image is ever extracted twice."""

    stamp: float
    camera: CameraModel
    features: Features
    T_odom_cam: np.ndarray = field(default_factory=lambda: np.eye(4))
    covariance: np.ndarray = field(default_factory=lost_covariance)
    # 3D points (N, 3) in this camera's frame, NaN where unknown: from the depth image, or
    # triangulated against the previous keyframe (monocular, up to the trajectory's scale).
    points3d: np.ndarray | None = None
    metric: bool = False
    first_inliers: int = 0  # inliers of the first match against this frame as keyframe

    @property
    def keypoints(self) -> np.ndarray:
        return self.features.keypoints.cpu().numpy().astype(np.float64)

    def has_points(self, minimum: int) -> bool:
        return self.points3d is not None and int(np.isfinite(self.points3d[:, 0]).sum()) >= minimum

    def set_depth(self, depth: np.ndarray, depth_unit: float | None, min_m: float,
                  max_m: float) -> int:
        """Back-project the keypoints with a registered depth image; returns the valid count."""
        points, valid = backproject(self.keypoints, depth, self.camera, depth_unit, min_m, max_m)
        self.points3d, self.metric = points, True
        return int(valid.sum())
