"""A relative pose over one frame's matches, and the tracking status its inliers earn."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import Config
from .records import TrackingStatus


@dataclass
class Estimate:
    """Relative pose of the current camera: X_cur = R X_ref + t, over the matched pairs."""

    R: np.ndarray
    t: np.ndarray
    covariance: np.ndarray  # of (R, t), see geometry.covariance
    model: str
    metric: bool
    inliers: np.ndarray  # (K,) over pairs
    pairs: np.ndarray  # (K, 2) indices (ref, cur)
    scores: np.ndarray
    layers: int
    flow_px: float
    scaled: bool = True  # False: monocular two-view, translation length guessed from the flow
    reason: str = ""
    verified: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # hand ids on

    @property
    def num_inliers(self) -> int:
        return int(self.inliers.sum())

    def status(self, config: Config) -> TrackingStatus:
        """LOST below ``min_inliers``, WEAK below ``good_inliers``, else OK."""
        if self.model == "none" or self.num_inliers < config.min_inliers:
            return TrackingStatus.LOST
        if self.num_inliers < config.good_inliers:
            return TrackingStatus.WEAK
        return TrackingStatus.OK
