"""Frame-to-keyframe tracking on a local map: one call per camera frame, a pose and a record back.

Each frame is extracted once; its features are matched against the current keyframe (and the
previous frame when that fails), and the matches hand on the keypoints' track ids. The pose comes
from PnP against the points of the local map (``mapping``) that the matched keypoints carry:
points from depth images, from a stereo pair, or triangulated across the keyframe window
(monocular); before a monocular map exists, from two-view geometry (essential matrix or
homography, chosen per frame). A new keyframe joins the map, which triangulates its new tracks and
bundle-adjusts the window. Poses chain in the odom frame, which is the first camera's frame:
metric with depth or stereo, up to scale without (the unit is then the baseline of the first
keyframe pair). Nothing here raises on bad frames: they come back as LOST records with a reason,
and the next good frame recovers (against the old keyframe if it still overlaps, otherwise by
starting a new map at the last pose).

The tracker orchestrates (which reference, fallbacks, restarts, the map, the records); the parts
are units of their own: ``estimation`` (a frame's pose against a reference), ``modes`` (what each
kind of camera adds: depth points on every frame, stereo points on keyframes, the monocular
scale of frames without metric points), ``keyframes`` (when a new keyframe is due).

A frame goes through two stages: ``extract`` (image to features; it reads no tracker state, so the
next frame's extraction may run on another thread while this one is tracked, see
:mod:`.two_stage`) and ``track`` (matching, pose and state update, one frame at a time, in order).
``process`` runs both, one after the other. With ``track_by_flow`` a frame between keyframes is
placed without features (:mod:`.flow`: the keyframe's map points followed by optical flow, then
PnP): ``wants_features`` tells the extraction stage which frames to leave unextracted, and
``track`` extracts a frame itself when it must be matched after all, so that the records never
depend on that guess. With ``keyframe_lag_frames`` as well, a keyframe no longer holds up the
frames after it (:mod:`.keyframe_job`): a worker thread extracts and matches it while they are
placed by flow, and the tracker makes a later frame the keyframe. The worker computes only (an
extraction, a match, flow); the tracker's state and the map change on the tracking thread alone.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from ..config import Config, ConfigError
from ..errors import ImageError
from ..features import Features, Matches
from ..images import to_gray8
from ..geometry.camera import CameraModel
from ..geometry.common_shift import common_shift_covariance
from ..geometry.covariance import (compose_pose_covariance, invert_pose_covariance,
                                   lost_covariance, restart_covariance)
from ..geometry.se3 import invert_transform, make_transform
from ..mapping import LocalMap, MapConfig, TrackIds, common_ids, make_adjuster
from ..pipeline import Pipeline
from ..threads import name_os_thread
from ..types import FrameInput
from .estimate import Estimate
from .estimation import PoseEstimator
from .flow import FlowChain, matched_next
from .frames import ExtractedFrame, TrackedFrame
from .keyframe_job import KeyframeJob
from .keyframes import (KeyframeFigures, MapView, figures_reason, frames_to_keyframe,
                        keyframe_figures, keyframe_reason)
from .modes import CameraMode, CameraModes, MonocularScale, consecutive_rotation
from .records import FrameRecord, TrackingStatus


class Tracker:
    """The tracking front end; see the module docstring. ``track`` (and ``reset``,
    ``update_config``) one caller at a time; ``extract`` may run beside them on another thread."""

    # What a frame's tracking changes; restored when tracking a frame fails half-way. The map is
    # changed last, by a new keyframe, once nothing else can fail.
    STATE = ("keyframe", "previous", "recovery", "pose", "pose_covariance", "scale", "motion",
             "flow", "job")

    def __init__(self, pipeline: Pipeline, config: Config | None = None) -> None:
        self.pipeline = pipeline
        config = (config or pipeline.config).resolved()
        self.track_ids = TrackIds()
        self.map = LocalMap(self._map_config(config), make_adjuster(config.bundle_adjustment))
        self.estimator = PoseEstimator(pipeline, self.map, config, self._collect_adjustment)
        self.cameras = CameraModes(pipeline)
        self.pose = np.eye(4)
        self.pose_covariance = np.zeros((6, 6))  # the odom origin is exact by definition
        self.frames_done = 0  # records made: the next record's index (a reset goes on counting)
        # Called with {record index: T_odom_cam} of the keyframes a bundle adjustment refined
        # after their records went out (e.g. to evaluate the trajectory as the map left it).
        self.on_refined: Callable[[dict[int, np.ndarray]], None] | None = None
        # keyframe_lag_frames: the worker that extracts and matches keyframes
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="keyframes",
                                          initializer=name_os_thread, initargs=("keyframes",))
        self.job: KeyframeJob | None = None
        # Whether a frame due to become the keyframe waits for a late worker (the records then
        # do not depend on its speed: offline) or is placed by flow, the keyframe joining at the
        # first frame after the worker is done (live: no frame waits).
        self.wait_for_keyframes = True
        self.reset()

    @property
    def config(self) -> Config:
        """The resolved configuration (one copy, the pose estimator's)."""
        return self.estimator.config

    def reset(self, to_origin: bool | None = None) -> None:
        """Forget keyframes, map and motion. Odom stays continuous: the next good frame starts
        again at the last pose, or at the odom origin with ``to_origin`` (default:
        ``Config.reset_to_origin``)."""
        self.keyframe: TrackedFrame | None = None
        self.previous: TrackedFrame | None = None
        self.recovery: TrackedFrame | None = None  # the keyframe before a restart, to return to
        self.map.clear()
        if self.config.reset_to_origin if to_origin is None else to_origin:
            self.pose, self.pose_covariance = np.eye(4), np.zeros((6, 6))
        self.scale = MonocularScale()
        self.motion: np.ndarray | None = None  # T_prev_cur of the last two tracked frames
        self.flow: FlowChain | None = None  # track_by_flow: the map points to follow next
        self._drop_job()

    def close(self) -> None:
        """Stop the bundle adjustment worker (if any) and the keyframe worker; the tracker is
        not used afterwards."""
        self._drop_job()
        self._worker.shutdown(wait=True, cancel_futures=True)
        self.map.adjuster.close()

    def settle(self) -> None:
        """Wait until the work started in the background (a keyframe's extraction and match, a
        bundle adjustment) is computed; its results are applied when they would have been. For
        a caller that times the tracker: the work is then counted where it was started."""
        if self.job is not None:
            self.job.wait()
        self.map.settle()

    def check_config(self, config: Config) -> Config:
        """``config`` resolved, or ConfigError when it changes a parameter that cannot change
        while running (the network, the backend, ...)."""
        new = config.resolved()
        fixed = [f.name for f in Config.params() if not f.metadata["runtime"]
                 and getattr(new, f.name) != getattr(self.config, f.name)]
        if fixed:
            raise ConfigError(f"parameter(s) {', '.join(fixed)} cannot change at run time")
        return new

    def update_config(self, config: Config) -> None:
        """Apply changed run-time parameters: the matcher thresholds and the tracking ones."""
        new = self.check_config(config)
        names = ("depth_confidence", "width_confidence", "filter_threshold")
        thresholds = {k: getattr(new, k) for k in names if getattr(new, k) !=
                      getattr(self.pipeline.config, k)}
        if thresholds:
            self.pipeline.set_thresholds(**thresholds)
        self.estimator.config = new
        self.map.config = self._map_config(new)

    @staticmethod
    def _map_config(config: Config) -> MapConfig:
        return MapConfig(window=config.map_window, sigma_px=config.keypoint_sigma_px,
                         depth_sigma=config.depth_noise,
                         disparity_offset_prior_px=config.stereo_offset_prior_px)

    # --- public ---------------------------------------------------------------------------------
    def process(self, image: np.ndarray, stamp_ns: int, camera: CameraModel,
                depth: np.ndarray | None = None, depth_unit: float | None = None) -> FrameRecord:
        """Track one frame. ``depth`` (16UC1 mm or 32FC1 m, registered to ``image``) is optional."""
        frame = FrameInput(stamp_ns, image, camera, depth, depth_unit)
        return self.track(self.extract(frame, self.wants_features()))

    def extract(self, frame: FrameInput, features: bool = True) -> ExtractedFrame:
        """Stage 1: the frame's features. Reads no tracker state (only the networks). Without
        ``features`` (``wants_features`` said the frame will be placed by flow) nothing is
        extracted: ``track`` extracts the frame itself if it must be matched after all."""
        extracted = ExtractedFrame(frame, None, deferred=True)
        return self.complete(extracted) if features else extracted

    def complete(self, extracted: ExtractedFrame) -> ExtractedFrame:
        """A deferred frame extracted, in place (so that the caller sees its features too)."""
        if not extracted.deferred:
            return extracted
        start = time.perf_counter()
        try:
            extracted.features = self.pipeline.extract(extracted.frame.image)
        except ImageError as exc:
            extracted.reason = f"unusable image: {exc}"
        extracted.seconds, extracted.deferred = time.perf_counter() - start, False
        return extracted

    def wants_features(self, ahead: int = 0) -> bool:
        """Whether the frame ``ahead`` frames after the next one to track will be matched
        (needs its features) rather than placed by flow, as the state stands. A hint for the
        extraction stage, which may read it while a frame is tracked: a wrong guess costs time
        (the tracker extracts a frame it needs, or a frame's features go unused), never a
        different result."""
        if not self.config.track_by_flow:
            return True
        if self.config.keyframe_lag_frames:  # keyframes are extracted by their worker
            return self.flow is None
        # (frames placed by flow in a row, frames until a keyframe), or None: no flow to follow
        state = None if self.flow is None else (self.flow.steps, self.flow.keyframe_in)
        for _ in range(ahead + 1):
            matched = state is None or matched_next(*state, self.config.flow_max_frames)
            # after a match, likely a new chain; after a frame placed by flow, one step on
            state = (0, None) if matched or state is None else \
                (state[0] + 1, None if state[1] is None else state[1] - 1)
        return matched

    def track(self, extracted: ExtractedFrame) -> FrameRecord:
        """Stage 2: match against the keyframe (or the previous frame), estimate the pose and
        update the state. Frames must come in stamp order. Should it raise, the state is as
        before the frame."""
        saved = {name: getattr(self, name) for name in self.STATE}
        try:
            record = self._track(extracted)
        except Exception:
            self.__dict__.update(saved)
            raise
        return self._numbered(record)

    def lost(self, stamp_ns: int, reason: str) -> FrameRecord:
        """The record of a frame that could not be tracked at all: the last pose, lost."""
        return self._numbered(self._lost(stamp_ns, reason, {}))

    def relocalize(self, stamp_ns: int, camera: CameraModel, features: Features,
                   points_cam: np.ndarray, T_odom_cam: np.ndarray, metric: bool) -> None:
        """Track on from a remembered keyframe (a SLAM layer found the camera near it): the
        keyframe, placed at ``T_odom_cam``, and its points (N, 3, its camera frame, NaN where
        none) become the map, in their scale. Odom stays continuous: the caller places the
        keyframe where the current pose says it is."""
        frame = TrackedFrame(stamp_ns, camera, features, np.array(T_odom_cam, np.float64),
                             self.pose_covariance.copy(), ids=self.track_ids.fresh(len(features)),
                             points3d=np.array(points_cam, np.float64), metric=metric)
        self.keyframe = self.previous = frame
        self.recovery, self.motion, self.flow = None, None, None
        self._drop_job()
        self.map.seed(frame, frame.points3d)
        self.scale = self.scale.initialise()

    def _numbered(self, record: FrameRecord) -> FrameRecord:
        """``record`` with the next frame index (the one its TrackedFrame was given)."""
        record.index, self.frames_done = self.frames_done, self.frames_done + 1
        return record

    # --- one frame ------------------------------------------------------------------------------
    def _track(self, extracted: ExtractedFrame) -> FrameRecord:
        """Place the frame by flow when that is due and holds (or make it the keyframe a worker
        matched), else match it."""
        timings: dict[str, float] = {}
        gray = self._gray(extracted.frame)
        record = None
        if self.job is not None:
            record = self._with_job(extracted, gray, timings)
        elif gray is not None and self.flow is not None:
            due = self.flow.matches_next(self.config.flow_max_frames)
            if not due or self.config.keyframe_lag_frames:
                record = self._by_flow(extracted, gray, timings, due)
        return record or self._matched_on(self.complete(extracted), gray, timings)

    def _matched_on(self, extracted: ExtractedFrame, gray: np.ndarray | None,
                    timings: dict[str, float], matches: Matches | None = None, due: str = ""
                    ) -> FrameRecord:
        """``_matched``, and the flow begun again from the frame."""
        record = self._matched(extracted, timings, matches, due)
        self.flow = None if gray is None or record.status is TrackingStatus.LOST else \
            self._chain(gray)
        return record

    def _with_job(self, extracted: ExtractedFrame, gray: np.ndarray | None,
                  timings: dict[str, float]) -> FrameRecord | None:
        """A frame while a keyframe is matched in the background: placed by flow (no new
        keyframe meanwhile); or made the keyframe, as the ``lag``-th frame (live: the first
        after the worker is done) or when the flow loses the old keyframe. None (no keyframe
        made): the frame is to be matched in line."""
        job = self.job
        assert job is not None
        if gray is None:
            self._drop_job()
            return None
        if not (job.add(gray) and (self.wait_for_keyframes or job.done())):
            record = self._by_flow(extracted, gray, timings, on_its_way=True)
            if record is not None:
                return record
        self.job = None
        start = time.perf_counter()
        job.wait()  # a worker slower than the camera holds up this frame
        timings["keyframe_wait"] = time.perf_counter() - start
        start = time.perf_counter()
        made = job.keyframe(extracted)
        timings["flow"] = timings.get("flow", 0.0) + time.perf_counter() - start
        if isinstance(made, str):
            return None
        keyframe, matches = made
        return self._matched_on(keyframe, gray, timings, matches,
                                "the keyframe matched in the background")

    def _drop_job(self) -> None:
        if self.job is not None:
            self.job.cancel()
        self.job = None

    def _matched(self, extracted: ExtractedFrame, timings: dict[str, float],
                 matches: Matches | None = None, due: str = "") -> FrameRecord:
        """The frame matched against the keyframe (``matches``: the match made already; ``due``:
        it is to become a keyframe)."""
        stamp, features = extracted.stamp_ns, extracted.features
        if features is None:
            return self._lost(stamp, extracted.reason, timings)
        if matches is None:  # else the worker extracted it
            timings["extract"] = extracted.seconds
        frame = TrackedFrame(stamp, extracted.frame.camera, features,
                             ids=self.track_ids.fresh(len(features)), index=self.frames_done)
        camera = self.cameras.of(extracted.frame)
        reason = camera.attach(frame, extracted.frame, self.config)
        if len(features) < self.config.min_inliers:
            return self._lost(stamp, f"only {len(features)} keypoints", timings, len(features))
        if self.keyframe is None:
            return self._start(frame, camera, timings, reason=reason)
        ref = self.keyframe
        estimate = self._projected(frame, timings) if self.config.track_by_projection and \
            matches is None else None
        if isinstance(estimate, str):  # placed, but a keyframe is due: LightGlue gives it tracks
            estimate, due = None, estimate
        if estimate is None:
            estimate = self._estimate(self.keyframe, frame, timings, matches)
        for other in self._fallbacks():
            if estimate.status(self.config) is not TrackingStatus.LOST:
                break
            retry = self._estimate(other, frame, timings)
            if retry.num_inliers > estimate.num_inliers:
                estimate, ref = retry, other
        status = estimate.status(self.config)
        if status is TrackingStatus.LOST:
            record = self._lost(stamp, estimate.reason or f"{estimate.num_inliers} inliers",
                                timings, len(features), estimate)
            if len(features) >= self.config.good_inliers:  # a real view we cannot place
                self._restart_at_last_pose(frame, camera)
                record.keyframe = record.reinitialized = True
            return record
        if ref is self.recovery:  # back on the keyframe from before the restart
            self.keyframe, self.recovery = ref, None
            self.map.seed(ref, ref.points3d)
            self.scale = self.scale.initialise()
        if not estimate.metric:
            estimate, ref = consecutive_rotation(
                estimate, ref, self.previous, self.config,
                lambda prev: self._estimate(prev, frame, timings))
        return self._advance(ref, frame, camera, estimate, status, timings, reason, due)

    def _gray(self, frame: FrameInput) -> np.ndarray | None:
        """The grey image the flow follows points in (None: no flow, or an unusable image,
        which extraction then reports)."""
        if not self.config.track_by_flow:
            return None
        try:
            return to_gray8(frame.image)
        except ImageError:
            return None

    def _chain(self, gray: np.ndarray) -> FlowChain | None:
        """The keyframe's map points where the frame just matched sees them, to follow by flow
        into the next frames (None: too few to place a frame on)."""
        kf, cur = self.keyframe, self.previous
        if kf is None or cur is None:
            return None
        points = self.estimator.reference_points(kf)
        known = np.isfinite(points[:, 0])
        if cur is kf:
            kf_index = np.flatnonzero(known)
            at = kf.keypoints[kf_index]
        else:  # cur's keypoints that carry a keyframe keypoint's track id
            rows, kf_index = common_ids(kf.ids, cur.ids)
            keep = known[kf_index]
            kf_index, at = kf_index[keep], cur.keypoints[rows[keep]]
        if len(kf_index) < self.config.good_inliers:
            return None
        figures = None  # the keyframe's own: all its points, no motion yet
        if cur is kf:
            figures = KeyframeFigures(len(kf_index), 0.0, None if kf.metric or not
                                      self.config.keyframe_tracked_share else
                                      MapView(len(kf_index), len(kf_index), 0.0))
        return FlowChain(gray, at, kf_index, points, self.estimator.reference_covariances(kf),
                         figures=figures)

    def _by_flow(self, extracted: ExtractedFrame, gray: np.ndarray, timings: dict[str, float],
                 due: bool = False, on_its_way: bool = False) -> FrameRecord | None:
        """The frame placed by PnP on the keyframe's map points followed into it by flow; None
        when that places it on fewer than ``good_inliers``, or a keyframe is wanted (``due``
        already, or the policy asks now) and is matched in line (it needs new keypoints). With
        ``keyframe_lag_frames`` a wanted keyframe is placed by flow and its job starts, unless
        one is ``on_its_way``."""
        kf, chain, source = self.keyframe, self.flow, extracted.frame
        assert kf is not None and chain is not None
        start = time.perf_counter()
        at, kf_index = chain.followed(gray)
        timings["flow"] = time.perf_counter() - start
        if len(at) < self.config.good_inliers:
            return None
        h, w = gray.shape
        features = Features.from_numpy(at, np.ones(len(at)), kf.descriptors[kf_index], (w, h))
        cur = TrackedFrame(source.stamp_ns, source.camera, features,
                           ids=self.track_ids.fresh(len(at)), index=self.frames_done)
        camera = self.cameras.of(source)
        reason = camera.attach(cur, source, self.config)
        start = time.perf_counter()
        pairs = np.stack([kf_index, np.arange(len(at))], axis=1)
        estimate = self.estimator.pose_from_points(kf, cur, pairs, at, chain.points,
                                                   chain.covariances)
        timings["pose"] = time.perf_counter() - start
        if estimate is None or estimate.num_inliers < self.config.good_inliers:
            return None
        estimate.scores, estimate.verified = np.ones(len(at)), estimate.inliers.copy()
        flow = np.linalg.norm(at - kf.keypoints[kf_index], axis=1)
        estimate.flow_px = float(np.median(flow[estimate.inliers]))
        figures = keyframe_figures(self.config, self.map, kf, estimate)
        lag = self.config.keyframe_lag_frames
        wanted = not on_its_way and (due or bool(figures_reason(
            self.config, figures, kf.first_inliers or estimate.num_inliers)))
        if wanted and not lag:
            return None
        record = self._advance(kf, cur, camera, estimate, estimate.status(self.config), timings,
                               reason, keyframes=not (lag or on_its_way))
        inliers = estimate.inliers
        self.flow = chain.then(gray, at[inliers], kf_index[inliers], figures, frames_to_keyframe(
            self.config, figures, chain.figures, kf.first_inliers))
        if wanted:
            self.job = KeyframeJob(self._worker, extracted, gray, kf.features, lag,
                                   self.complete, self.pipeline.match)
        return record

    def _estimate(self, ref: TrackedFrame, cur: TrackedFrame, timings: dict[str, float],
                  matches: Matches | None = None) -> Estimate:
        return self.estimator.estimate(ref, cur, timings, self.scale.per_flow_px(self.config),
                                       matches)

    def _fallbacks(self) -> list[TrackedFrame]:
        """Frames to try when the keyframe match fails: the previous frame, then the keyframe
        tracking was on before its last restart."""
        out = []
        if self.config.match_previous and self.previous not in (None, self.keyframe):
            out.append(self.previous)
        if self.recovery is not None:
            out.append(self.recovery)
        return out

    def _projected(self, cur: TrackedFrame, timings: dict[str, float]) -> Estimate | str | None:
        """``cur`` placed on the keyframe's map points projected at its constant-velocity
        prediction. Returns the estimate when it holds and no keyframe is due; the policy's
        reason when one is (the keyframe is then matched, so that new tracks are born); None
        when the projection cannot place the frame."""
        kf, prev = self.keyframe, self.previous
        if prev is None:
            return None
        predicted = prev.T_odom_cam @ (np.eye(4) if self.motion is None else self.motion)
        estimate = self.estimator.project(kf, cur, predicted, timings)
        if estimate is None:
            return None
        return keyframe_reason(self.config, self.map, kf, estimate,
                               kf.first_inliers or estimate.num_inliers) or estimate

    def _collect_adjustment(self, timings: dict[str, float]) -> None:
        """Apply the bundle adjustment the last keyframe submitted, once this frame's match
        (which needs no map) is done: in the background it solved during that match. Applied
        at the first frame matched after its keyframe, whatever the timing, so that results do
        not depend on where it ran (frames placed by projection, which take a few
        milliseconds, are located on the map as it was and leave the adjustment solving)."""
        start = time.perf_counter()
        if self.map.collect(self.previous) is None:
            return
        if self.previous is not None:
            self.pose = self.previous.T_odom_cam
        timings["map"] = timings.get("map", 0.0) + time.perf_counter() - start
        if self.on_refined is not None:
            self.on_refined({kf.frame.index: kf.frame.T_odom_cam for kf in self.map.keyframes})

    # --- state changes --------------------------------------------------------------------------
    def _start(self, frame: TrackedFrame, camera: CameraMode, timings: dict[str, float],
               reason: str) -> FrameRecord:
        reason = camera.keyframe_points(frame, self.config, timings) or reason
        frame.T_odom_cam = self.pose.copy()
        frame.covariance = self.pose_covariance.copy()
        frame.began_anew = True
        self.keyframe = self.previous = frame
        self.motion = None
        self.map.insert(frame, self._triangulation_px)
        return FrameRecord(frame.stamp_ns, TrackingStatus.OK, frame.T_odom_cam.copy(),
                           frame.covariance.copy(), model="init", metric=frame.metric,
                           keyframe=True, reinitialized=False,
                           num_keypoints=len(frame.features), timings=timings, reason=reason)

    def _restart_at_last_pose(self, frame: TrackedFrame, camera: CameraMode) -> None:
        """Tracking failed on a real view: a new map from it, at the last pose, its uncertainty
        grown once by what the lost motion may have been."""
        frame.T_odom_cam = self.pose.copy()
        frame.covariance = self.pose_covariance = self.pose_covariance + restart_covariance()
        frame.began_anew = True
        if self.recovery is None and self.keyframe is not None:
            self.keyframe.points3d = self.estimator.reference_points(self.keyframe)
            self.recovery = self.keyframe
        self.keyframe = self.previous = frame
        self.motion = None
        camera.keyframe_points(frame, self.config, {})
        self.map.clear()
        self.map.insert(frame, self._triangulation_px)
        if not frame.metric:
            self.scale = MonocularScale()

    @property
    def _triangulation_px(self) -> float:
        return 2 * self.config.ransac_threshold_px

    def _advance(self, ref: TrackedFrame, cur: TrackedFrame, camera: CameraMode, est: Estimate,
                 status: TrackingStatus, timings: dict[str, float], reason: str,
                 due: str = "", keyframes: bool = True) -> FrameRecord:
        """``cur`` placed by ``est`` against ``ref``: its pose, track ids and record, and it made
        a keyframe when one is due (never without ``keyframes``)."""
        T_ref_cur = invert_transform(make_transform(est.R, est.t))
        rel_cov = invert_pose_covariance(est.R, est.t, est.covariance) + common_shift_covariance(
            T_ref_cur[:3, :3], cur.camera, self.config.common_shift_px)
        cur.T_odom_cam = ref.T_odom_cam @ T_ref_cur
        cur.covariance = compose_pose_covariance(ref.T_odom_cam[:3, :3], ref.T_odom_cam[:3, 3],
                                                 ref.covariance, T_ref_cur[:3, 3], rel_cov)
        cur.metric = cur.metric or (ref.metric and est.metric)
        cur.ids = self.track_ids.inherit(ref.ids, cur.ids, est.pairs, est.verified)
        self.scale = self.scale.located(est)
        if ref is self.keyframe and not ref.first_inliers:
            ref.first_inliers = est.num_inliers
        if not est.scaled and status is TrackingStatus.OK:
            status = TrackingStatus.WEAK
            reason = reason or "monocular: translation length from the motion model"
        ref_is_keyframe = ref is self.keyframe
        start = time.perf_counter()
        new_keyframe, why = self._maybe_keyframe(ref, cur, camera, est, timings, due) \
            if keyframes else (False, "")
        reason = reason or why
        if new_keyframe:
            timings["map"] = time.perf_counter() - start
            T_ref_cur = invert_transform(ref.T_odom_cam) @ cur.T_odom_cam  # as adjusted
        self.motion = None if self.previous is None else \
            invert_transform(self.previous.T_odom_cam) @ cur.T_odom_cam
        self.previous = cur
        self.pose, self.pose_covariance = cur.T_odom_cam, cur.covariance
        pairs = est.pairs
        return FrameRecord(
            cur.stamp_ns, status, cur.T_odom_cam.copy(), cur.covariance.copy(), ref.stamp_ns,
            ref_is_keyframe, T_ref_cur, rel_cov, est.model, est.metric,
            new_keyframe, False, len(cur.features), len(pairs), est.num_inliers, est.layers,
            est.flow_px, timings, reason,
            ref.keypoints[pairs[:, 0]].astype(np.float32),
            cur.keypoints[pairs[:, 1]].astype(np.float32), est.scores.astype(np.float32),
            est.inliers.copy(), np.where(est.verified, cur.ids[pairs[:, 1]], -1),
            ref_index=ref.index, ref_began_anew=ref.began_anew,
            disparity_offset_px=self.map.disparity_offset_px)

    def _maybe_keyframe(self, ref: TrackedFrame, cur: TrackedFrame, camera: CameraMode,
                        est: Estimate, timings: dict[str, float], due: str = ""
                        ) -> tuple[bool, str]:
        """Make ``cur`` a keyframe when the policy asks for it (or asked already, ``due``, on
        the projection's figures) or, monocular, when it completes the first keyframe pair: it
        joins the map, which gives its new tracks points and adjusts the window (``cur``'s pose
        included). Returns whether it did, and what went wrong on the way ('' if nothing)."""
        due = due or (keyframe_reason(self.config, self.map, ref, est, ref.first_inliers)
                      if ref is self.keyframe else "the keyframe no longer matches")
        starting = self.scale.starting(cur)
        if not (MonocularScale.first_pair(est, self.config) if starting else due):
            return False, ""
        why = camera.keyframe_points(cur, self.config, timings)
        self.map.insert(cur, self._triangulation_px)
        if self.config.publish_adjusted_keyframes:
            self._collect_adjustment(timings)
        if not cur.metric and len(self.map) >= self.config.min_inliers:
            self.scale = self.scale.initialise()
        self.keyframe = cur
        return True, why

    def _lost(self, stamp_ns: int, reason: str, timings: dict[str, float], keypoints: int = 0,
              est: Estimate | None = None) -> FrameRecord:
        record = FrameRecord(stamp_ns, TrackingStatus.LOST, self.pose.copy(), lost_covariance(),
                             num_keypoints=keypoints, timings=timings, reason=reason)
        if est is not None:
            record.num_matches, record.num_inliers = len(est.pairs), est.num_inliers
            record.layers, record.model = est.layers, est.model
        return record
