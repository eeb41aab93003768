"""A frame as the tracker keeps it: features extracted once, track ids, pose, 3D points; and as
the extraction stage hands it over."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..features import Features
from ..geometry.camera import CameraModel
from ..geometry.covariance import lost_covariance
from ..geometry.pnp import backproject
from ..types import FrameInput


@dataclass
class ExtractedFrame:
    """What the extraction stage hands to the tracking stage: the frame with its features, or
    the reason it has none (an unusable image), or none yet (``deferred``: the tracker expected
    to place it by optical flow, and extracts it itself if it must be matched after all)."""

    frame: FrameInput
    features: Features | None
    reason: str = ""
    seconds: float = 0.0  # extraction time
    deferred: bool = False

    @property
    def stamp_ns(self) -> int:
        return self.frame.stamp_ns


@dataclass(eq=False)  # a frame is itself, not its values (which hold tensors of any size)
class TrackedFrame:
    """Features of one image with its camera and pose; reused as keyframe and previous frame, so
    no image is ever extracted twice."""

    stamp_ns: int
    camera: CameraModel
    features: Features
    T_odom_cam: np.ndarray = field(default_factory=lambda: np.eye(4))
    covariance: np.ndarray = field(default_factory=lost_covariance)
    # Persistent track id of each keypoint: inherited from the frame it was matched against,
    # new where the keypoint was not matched (see ``mapping.tracks``).
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # 3D points (N, 3) in this camera's frame from its depth image, NaN where invalid.
    depth_points: np.ndarray | None = None
    # The map's points in this camera's frame when it stopped being tracked against (a keyframe
    # kept to return to after a restart), NaN where none.
    points3d: np.ndarray | None = None
    metric: bool = False  # its translation is in metres
    # A rectified stereo pair's right image and baseline: depth is measured from it when the
    # frame becomes a keyframe (``tracking.modes.stereo``), not for every frame.
    right: np.ndarray | None = None
    baseline_m: float = 0.0
    depth_noise: float = 0.0  # sigma_z = depth_noise z^2 of depth_points; 0: the configured one
    first_inliers: int = 0  # inliers of the first match against this frame as keyframe
    index: int = 0  # the record's ``index``: how later records name it as their reference
    began_anew: bool = False  # tracking (re)started at it: nothing links it to frames before

    @property
    def keypoints(self) -> np.ndarray:
        return self.features.keypoints.cpu().numpy().astype(np.float64)

    @property
    def descriptors(self) -> np.ndarray:
        return self.features.descriptors.cpu().numpy()

    def set_depth(self, depth: np.ndarray, depth_unit: float | None, min_m: float,
                  max_m: float) -> int:
        """Back-project the keypoints with a registered depth image; returns the valid count."""
        points, valid = backproject(self.keypoints, depth, self.camera, depth_unit, min_m, max_m)
        self.depth_points, self.metric = points, True
        return int(valid.sum())
