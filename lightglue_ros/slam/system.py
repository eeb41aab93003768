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
from ..tracking.frames import ExtractedFrame, TrackedFrame
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
class FrameJob:
    """One tracked frame as ``Slam.process`` needs it, taken on the tracking thread."""

    record: FrameRecord
    features: Features | None
    camera: CameraModel
    restarts: int  # tracking starts up to this frame: a new value starts a new segment
    keyframe: TrackedFrame | None = None  # the tracker's new keyframe, when the frame is one
    points: np.ndarray | None = None  # its 3D points (N, 3, its camera frame, NaN where none)
    window: dict[int, np.ndarray] = field(default_factory=dict)  # id(frame) -> points now


@dataclass
class Relocalization:
    """A verified keyframe for a frame of an unplaced segment: it is ``T_odom_kf`` in odom."""

    keyframe: Keyframe
    T_odom_kf: np.ndarray
    restarts: int  # the segment it places (``FrameJob.restarts``)
    stamp_ns: int  # of the frame it was found for
    covariance: np.ndarray  # of the frame's pose in the keyframe (verification's)


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
        self.pipeline = tracker.pipeline  # verification's matcher (stateless: any thread)
        self.config = config
        self.db = database or KeyframeDatabase()
        self.graph = graph or PoseGraph()
        self.T_map_odom = np.eye(4)
        self.localized = not len(self.db)
        self.segment = 1 + max((kf.segment for kf in self.db.keyframes), default=-1)
        self.loop_closures = 0
        self.relocalizations: list[int] = []  # frames each took, from the restart on
        self.last_relocalization: Relocalization | None = None
        self._restarts = 0  # tracking starts seen by ``snapshot`` (tracking thread)
        self._segment_restarts = 0  # the start the current segment began at (``process``)
        self._restart_index: int | None = None  # record index the unplaced segment began at
        self._previous: tuple[int, np.ndarray, int] | None = None  # keyframe, T_odom_cam, stamp
        self._in_window: dict[int, int] = {}  # id(TrackedFrame) -> keyframe index
        self._vocabulary: Vocabulary | None = None
        self._loaded = len(self.db)  # keyframes of a loaded map
        self._last_loop_query_ns: int | None = None

    def reset(self) -> None:
        """Restart tracking (a stamp going back, a reset service): the tracker starts a new map
        at its last pose (its next record starts it: ``snapshot`` sees that), which this layer
        then relocalizes like a restart after a loss."""
        self.tracker.reset()

    def extract(self, frame: FrameInput, features: bool = True) -> ExtractedFrame:
        return self.tracker.extract(frame, features)

    def wants_features(self, ahead: int = 0) -> bool:
        return self.tracker.wants_features(ahead)

    def track(self, extracted: ExtractedFrame) -> SlamResult:
        """Track one frame and do this layer's work on it, all on the calling thread."""
        record = self.tracker.track(extracted)
        start = time.perf_counter()
        job = self.snapshot(extracted, record)
        event, found = self.process(job)
        if found is not None:
            self.apply(found)
        return SlamResult(record, self.T_map_odom @ record.T_odom_cam, self.localized, event,
                          time.perf_counter() - start)

    # --- the three steps: snapshot (tracking thread), process (anywhere), apply (tracking) -------
    def snapshot(self, extracted: ExtractedFrame, record: FrameRecord) -> FrameJob:
        """What ``process`` needs of a tracked frame, read from the tracker right after it
        tracked it (the tracker's state is only read on its own thread): the frame's features,
        and at a keyframe its points and those of the keyframes still in the window."""
        if record.reinitialized or record.model == "init":
            self._restarts += 1  # a start after a loss or a reset: a new odom segment
        if not self.localized:  # a frame placed by flow still queries the database
            self.tracker.complete(extracted)
        job = FrameJob(record, extracted.features, extracted.frame.camera, self._restarts)
        frame = self.tracker.keyframe
        if record.keyframe and frame is not None and frame.stamp_ns == record.stamp_ns:
            job.keyframe, job.points = frame, self._points(frame)
            job.window = {id(mk.frame): self._points(cast(TrackedFrame, mk.frame))
                          for mk in self.tracker.map.keyframes if mk.frame is not frame}
        return job

    def process(self, job: FrameJob) -> tuple[str, Relocalization | None]:
        """Retrieval, verification and the graph for one frame: its event ('relocalization',
        'loop' or ''), and a relocalization found for ``apply`` to hand to the tracker. Touches
        this layer's state only, never the tracker's, so it may run on another thread (one
        call at a time, frames in order)."""
        if job.restarts != self._segment_restarts:
            self._unplace(job.record.index)
            self._segment_restarts = job.restarts
        if not self.localized:
            if self._restart_index is None:
                self._restart_index = job.record.index
            if job.features is not None and len(self.db):
                found = self._find_relocalization(job)
                if found is not None:
                    self._place(found, job.record.index)
                    return "relocalization", found
            return "", None
        if job.keyframe is not None and job.points is not None:
            return self._add_keyframe(job), None
        return "", None

    def apply(self, found: Relocalization) -> bool:
        """Hand a relocalization to the tracker (its thread): it tracks on from the keyframe,
        placed where the frame's odom pose put it. False when tracking restarted since the
        frame (the relocalization placed a segment that is gone)."""
        if found.restarts != self._restarts:
            return False
        kf = found.keyframe
        self.tracker.relocalize(kf.stamp_ns, kf.camera, kf.features, kf.points_cam,
                                found.T_odom_kf, kf.metric)
        return True

    def _unplace(self, index: int | None = None) -> None:
        self.localized = not len(self.db)
        self._previous, self._last_loop_query_ns = None, None
        self._restart_index = index
        self.segment += 1

    # --- relocalization -------------------------------------------------------------------------
    def _find_relocalization(self, job: FrameJob) -> Relocalization | None:
        assert job.features is not None
        for kf, _ in self.db.query(self.describe(job.features), self.config.top_k,
                                   min_score=self.config.min_score):
            v = verify(self.pipeline, kf.features, kf.points_cam, kf.camera, job.features,
                       job.camera, self.config.verification)
            if v.accepted and v.T_kf_cam is not None:
                T_odom_kf = job.record.T_odom_cam @ invert_transform(v.T_kf_cam)
                return Relocalization(kf, T_odom_kf, job.restarts, job.record.stamp_ns,
                                      v.covariance)
        return None

    def _place(self, found: Relocalization, index: int) -> None:
        """This layer's side of a relocalization: the segment is placed in the map."""
        kf = found.keyframe
        self.T_map_odom = kf.T_map_cam @ invert_transform(found.T_odom_kf)
        self.localized = True
        self.last_relocalization = found
        start = index if self._restart_index is None else self._restart_index
        self.relocalizations.append(index - start + 1)
        self._previous = (kf.index, found.T_odom_kf, kf.stamp_ns)
        self._in_window.clear()

    # --- keyframes and loops --------------------------------------------------------------------
    def _add_keyframe(self, job: FrameJob) -> str:
        frame, record = job.keyframe, job.record
        assert frame is not None and job.points is not None
        self._refresh_window(job.window)
        desc = self.describe(frame.features)
        T_odom = record.T_odom_cam.copy()
        kf = self.db.add(Keyframe(0, record.stamp_ns, self.segment, frame.camera, frame.features,
                                  job.points, T_odom, self.T_map_odom @ T_odom, desc,
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
            v = verify(self.pipeline, old.features, old.points_cam, old.camera,
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

    def _refresh_window(self, window: dict[int, np.ndarray]) -> None:
        """Keyframes still in the tracker's window have gained points since they were added
        (monocular: a keyframe's points are triangulated with the next ones); ``window``:
        their points now, by id of the tracker's frame."""
        for key in [k for k in self._in_window if k not in window]:
            del self._in_window[key]
        for key, index in self._in_window.items():
            self.db[index].points_cam = window[key]

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
