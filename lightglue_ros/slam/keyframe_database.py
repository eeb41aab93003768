"""The keyframes a SLAM run remembers, and the query that finds the ones that look like an image.

A keyframe keeps what verification needs long after the tracker has forgotten it: its features,
the 3D points it saw (in its own camera frame, so that they stay valid while its pose in the map is
optimised), its pose in odom (as tracked) and in the map (as optimised), and its global descriptor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..features import Features
from ..geometry.camera import CameraModel


@dataclass
class Keyframe:
    """One remembered keyframe. Poses are camera-to-frame, 4x4."""

    index: int  # position in the database, also its pose-graph key
    stamp_ns: int
    segment: int  # tracking segment: consecutive keyframes of one segment share an odom chain
    camera: CameraModel
    features: Features
    points_cam: np.ndarray  # (N, 3) of its keypoints in its camera frame, NaN where none
    T_odom_cam: np.ndarray
    T_map_cam: np.ndarray
    descriptor: np.ndarray  # global (place-recognition) descriptor, unit length
    metric: bool = False
    odom_covariance: np.ndarray | None = None  # 6x6 of the motion from the segment's previous one

    @property
    def num_points(self) -> int:
        return int(np.isfinite(self.points_cam[:, 0]).sum())


class KeyframeDatabase:
    """Keyframes in insertion order, searchable by global descriptor."""

    def __init__(self) -> None:
        self.keyframes: list[Keyframe] = []
        self._descriptors: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.keyframes)

    def __getitem__(self, index: int) -> Keyframe:
        return self.keyframes[index]

    def add(self, keyframe: Keyframe) -> Keyframe:
        keyframe.index = len(self.keyframes)
        self.keyframes.append(keyframe)
        self._descriptors.append(keyframe.descriptor.astype(np.float32))
        return keyframe

    def query(self, descriptor: np.ndarray, top_k: int = 5, exclude_from: int | None = None,
              min_score: float = 0.0) -> list[tuple[Keyframe, float]]:
        """The ``top_k`` keyframes most similar to ``descriptor`` (cosine), best first, among
        those before index ``exclude_from`` (None: all), scoring at least ``min_score``."""
        end = len(self.keyframes) if exclude_from is None else max(0, min(exclude_from,
                                                                           len(self.keyframes)))
        if end == 0:
            return []
        scores = np.stack(self._descriptors[:end]) @ descriptor.astype(np.float32)
        order = np.argsort(-scores)[:top_k]
        return [(self.keyframes[i], float(scores[i])) for i in order if scores[i] >= min_score]
