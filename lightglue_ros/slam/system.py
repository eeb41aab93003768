"""SLAM above the tracker: relocalization, loop closure and the map -> odom correction (REP 105).

The tracker gives odom: continuous, drifting, and after a loss restarted at the last pose on a new
map. This layer remembers every keyframe (``KeyframeDatabase``) and keeps them on a pose graph;
``T_map_odom`` maps the current odom frame into the map, so a frame's map pose is
``T_map_odom @ T_odom_cam`` and odom itself is never changed.

* Relocalization: after a restart the current odom segment is not placed in the map. Each frame
  is looked up in the database and verified; the first verified keyframe is handed back to the
  tracker (``Tracker.relocalize``), placed where the current odom pose puts it, so tracking goes
  on with the old keyframe's points (and, monocular, in the old map's scale), and ``T_map_odom``
  jumps to put the current frame on the old map.
* Loop closure: each new keyframe is looked up among the keyframes older than the last few; a
  verified match becomes a loop edge, the graph is optimised, and ``T_map_odom`` follows the
  optimised pose of the newest keyframe.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from ..features import Features
from ..geometry.camera import CameraModel
from ..geometry.covariance import LARGE_VARIANCE
from ..geometry.se3 import invert_transform
from ..tracking import FrameRecord, Tracker
from ..tracking.frames import TrackedFrame
from ..tracking.tracker import ExtractedFrame
from ..types import NS, FrameInput
from .keyframe_database import Keyframe, KeyframeDatabase
from .place_recognition import Vocabulary, vlad
from .pose_graph import Edge, PoseGraph
from .verification import VerificationConfig, verify

# Odometry edge covariance where the tracker's relative covariance is not that of the motion
# between the two keyframes: 5% of the distance (at least 1 cm) and 0.5 degree, 1 sigma.
DEFAULT_TRANSLATION_SIGMA = (0.05, 0.01)
DEFAULT_ROTATION_SIGMA = np.radians(0.5)


@dataclass(frozen=True)
class SlamConfig:
    top_k: int = 3  # candidates verified per relocalization query
    # Loop queries: the best candidate only, at most once per loop_period_s of stamps. Retrieval
    # ranks well (recall@1 1.0 on KITTI07) but its scores do not separate revisits from other
    # places (VLAD similarity 0.50-0.65 near, 0.53 median far), so each query costs a LightGlue
    # match; a monocular run makes nearly every frame a keyframe.
    loop_period_s: float = 1.0
    min_score: float = 0.1  # retrieval similarity below which a candidate is not worth a match
    # Loop candidates are keyframes older than both: over the last seconds the local map and
    # odometry already tie the newest keyframes together, and a "loop" there closes nothing.
    recent_keyframes: int = 10
    loop_min_age_s: float = 5.0
    verification: VerificationConfig = field(default_factory=VerificationConfig)


@dataclass
class SlamResult:
    """One frame: the tracker's record, its pose in the map, whether that pose is placed in the
    map (False between a restart and its relocalization), and 'loop' / 'relocalization' / ''."""

    record: FrameRecord
    T_map_cam: np.ndarray
    localized: bool
    event: str = ""
    seconds: float = 0.0  # spent in this layer (retrieval, verification, graph), not the tracker


class Slam:
    """Wraps a Tracker; ``track`` one frame at a time, in order."""

    def __init__(self, tracker: Tracker, config: SlamConfig = SlamConfig(),
                 database: KeyframeDatabase | None = None, graph: PoseGraph | None = None
                 ) -> None:
        """With a ``database`` and ``graph`` (a loaded map) the first frames are relocalized in
        it before anything is added."""
        self.tracker = tracker
        self.config = config
        self.db = database or KeyframeDatabase()
        self.graph = graph or PoseGraph()
        self.T_map_odom = np.eye(4)
        self.localized = not len(self.db)
        self.segment = 1 + max((kf.segment for kf in self.db.keyframes), default=-1)
        self.loop_closures = 0
        self.relocalizations: list[int] = []  # frames each took, from the restart on
        self._unplaced_frames = 0
        self._previous: tuple[int, np.ndarray, int] | None = None  # keyframe, T_odom_cam, stamp
        self._in_window: dict[int, int] = {}  # id(TrackedFrame) -> keyframe index
        self._vocabulary: Vocabulary | None = None
        self._loaded = len(self.db)  # keyframes of a loaded map
        self._last_loop_query_ns: int | None = None

    def reset(self) -> None:
        """Restart tracking (a stamp going back, a reset service): the tracker starts a new map
        at its last pose, which this layer then relocalizes like a restart after a loss."""
        self.tracker.reset()
        self._unplace()

    def _unplace(self) -> None:
        self.localized = not len(self.db)
        self._previous, self._unplaced_frames, self._last_loop_query_ns = None, 0, None
        self.segment += 1

    def extract(self, frame: FrameInput) -> ExtractedFrame:
        return self.tracker.extract(frame)

    def track(self, extracted: ExtractedFrame) -> SlamResult:
        record = self.tracker.track(extracted)
        start, event = time.perf_counter(), ""
        if record.reinitialized:
            self._unplace()
        if not self.localized:
            self._unplaced_frames += 1
            features = extracted.features
            if features is not None and len(self.db) and \
                    self._relocalize(features, extracted.frame.camera, record):
                event = "relocalization"
        elif record.keyframe and self.tracker.keyframe is not None:
            event = self._add_keyframe(self.tracker.keyframe, record)
        return SlamResult(record, self.T_map_odom @ record.T_odom_cam, self.localized, event,
                          time.perf_counter() - start)

    # --- relocalization -------------------------------------------------------------------------
    def _relocalize(self, features: Features, camera: CameraModel, record: FrameRecord) -> bool:
        for kf, _ in self.db.query(self.describe(features), self.config.top_k,
                                   min_score=self.config.min_score):
            v = verify(self.tracker.pipeline, kf.features, kf.points_cam, kf.camera, features,
                       camera, self.config.verification)
            if not v.accepted or v.T_kf_cam is None:
                continue
            T_odom_kf = record.T_odom_cam @ invert_transform(v.T_kf_cam)
            self.tracker.relocalize(kf.stamp_ns, kf.camera, kf.features, kf.points_cam, T_odom_kf,
                                    kf.metric)
            self.T_map_odom = kf.T_map_cam @ invert_transform(T_odom_kf)
            self.localized = True
            self.relocalizations.append(self._unplaced_frames)
            self._previous = (kf.index, T_odom_kf, kf.stamp_ns)
            self._in_window.clear()
            return True
        return False

    # --- keyframes and loops --------------------------------------------------------------------
    def _add_keyframe(self, frame: TrackedFrame, record: FrameRecord) -> str:
        self._refresh_window()
        desc = self.describe(frame.features)
        T_odom = record.T_odom_cam.copy()
        kf = self.db.add(Keyframe(0, record.stamp_ns, self.segment, frame.camera, frame.features,
                                  self._points(frame), T_odom, self.T_map_odom @ T_odom, desc,
                                  frame.metric))
        self.graph.add_node(kf.index, kf.T_map_cam)
        self._in_window[id(frame)] = kf.index
        if self._previous is not None:
            i, T_odom_i, stamp_i = self._previous
            T_i_j = invert_transform(T_odom_i) @ T_odom
            self.graph.add_edge(Edge(i, kf.index, T_i_j, self._odometry_covariance(
                record, stamp_i, T_i_j)))
        self._previous = (kf.index, T_odom, kf.stamp_ns)
        if self._last_loop_query_ns is not None and \
                kf.stamp_ns - self._last_loop_query_ns < self.config.loop_period_s * NS:
            return ""
        oldest_ns = kf.stamp_ns - round(self.config.loop_min_age_s * NS)
        exclude_from = kf.index - self.config.recent_keyframes
        while exclude_from > self._loaded and self.db[exclude_from - 1].stamp_ns > oldest_ns:
            exclude_from -= 1  # a loaded map's keyframes are all old, whatever their stamps
        if exclude_from <= 0:
            return ""
        self._last_loop_query_ns = kf.stamp_ns
        for old, _ in self.db.query(desc, 1, exclude_from, self.config.min_score):
            v = verify(self.tracker.pipeline, old.features, old.points_cam, old.camera,
                       kf.features, kf.camera, self.config.verification)
            if v.accepted and v.T_kf_cam is not None:
                self.graph.add_edge(Edge(old.index, kf.index, v.T_kf_cam, v.covariance, True))
                self._optimize(kf)
                self.loop_closures += 1
                return "loop"
        return ""

    def _optimize(self, newest: Keyframe) -> None:
        for key, T in self.graph.optimize().items():
            self.db[key].T_map_cam = T
        self.T_map_odom = newest.T_map_cam @ invert_transform(newest.T_odom_cam)

    def _refresh_window(self) -> None:
        """Keyframes still in the tracker's window have gained points since they were added
        (monocular: a keyframe's points are triangulated with the next ones)."""
        window = {id(mk.frame): cast(TrackedFrame, mk.frame) for mk in self.tracker.map.keyframes}
        for key in [k for k in self._in_window if k not in window]:
            del self._in_window[key]
        for key, index in self._in_window.items():
            self.db[index].points_cam = self._points(window[key])

    def _points(self, frame: TrackedFrame) -> np.ndarray:
        """The keyframe's 3D points in its camera frame: the map's, else its depth or kept
        points (NaN where none)."""
        X = self.tracker.map.points_in(frame)
        for fill in (frame.depth_points, frame.points3d):
            if fill is not None:
                gap = ~np.isfinite(X[:, 0])
                X[gap] = fill[gap]
        return X

    @staticmethod
    def _odometry_covariance(record: FrameRecord, stamp_i: int, T_i_j: np.ndarray) -> np.ndarray:
        """The tracker's covariance of the motion from keyframe i when the record measured it
        from there; otherwise the default model (its translation scales with the distance)."""
        cov = record.relative_covariance
        if record.ref_stamp_ns == stamp_i and np.all(np.isfinite(cov)) and \
                np.max(np.diag(cov)) < 0.1 * LARGE_VARIANCE:
            return cov
        sigma_t = max(DEFAULT_TRANSLATION_SIGMA[0] * float(np.linalg.norm(T_i_j[:3, 3])),
                      DEFAULT_TRANSLATION_SIGMA[1])
        return np.diag([sigma_t ** 2] * 3 + [DEFAULT_ROTATION_SIGMA ** 2] * 3)

    def describe(self, features: Features) -> np.ndarray:
        """The global descriptor of an image's features (the shipped vocabulary of their size)."""
        descriptors = features.descriptors.cpu().numpy()
        if self._vocabulary is None:
            self._vocabulary = Vocabulary.shipped(descriptors.shape[1])
        return vlad(descriptors, self._vocabulary)
