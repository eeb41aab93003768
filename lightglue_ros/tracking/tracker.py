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

A frame goes through two stages: ``extract`` (image to features; it reads no tracker state, so the
next frame's extraction may run on another thread while this one is tracked, see
:mod:`.two_stage`) and ``track`` (matching, pose and state update, one frame at a time, in order).
``process`` runs both, one after the other.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..config import Config, ConfigError
from ..errors import ImageError
from ..features import Features
from ..geometry.camera import CameraModel
from ..geometry.common_shift import common_shift_covariance
from ..geometry.covariance import (compose_pose_covariance, invert_pose_covariance,
                                   lost_covariance, observation_information,
                                   relative_pnp_covariance, restart_covariance)
from ..geometry.epipolar import sampson_essential
from ..geometry.pnp import PnPConfig, estimate_pose_pnp
from ..geometry.se3 import invert_transform, make_transform, skew
from ..geometry.two_view import TwoViewConfig, estimate_relative_pose
from ..mapping import LocalMap, MapConfig, TrackIds, make_adjuster
from ..mapping.projection_search import search_by_projection
from ..pipeline import Pipeline
from ..types import FrameInput
from .frames import TrackedFrame
from .stereo import keyframe_stereo_depth
from .keyframes import KeyframePolicy, MapView
from .records import FrameRecord, TrackingStatus


# Projection search (``track_by_projection``): a point's best keypoint must be this much nearer
# in descriptor distance than its second; among look-alikes a wrong pick is a PnP outlier.
PROJECTION_MAX_RATIO = 0.9


@dataclass
class ExtractedFrame:
    """What the extraction stage hands to the tracking stage: the frame with its features, or
    the reason it has none (an unusable image)."""

    frame: FrameInput
    features: Features | None
    reason: str = ""
    seconds: float = 0.0  # extraction time

    @property
    def stamp_ns(self) -> int:
        return self.frame.stamp_ns


@dataclass
class _Estimate:
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


class Tracker:
    """The tracking front end; see the module docstring. ``track`` (and ``reset``,
    ``update_config``) one caller at a time; ``extract`` may run beside them on another thread."""

    # What a frame's tracking changes; restored when tracking a frame fails half-way. The map is
    # changed last, by a new keyframe, once nothing else can fail.
    STATE = ("keyframe", "previous", "recovery", "pose", "pose_covariance", "initialised_scale",
             "metres_per_flow_px", "motion")

    def __init__(self, pipeline: Pipeline, config: Config | None = None) -> None:
        self.pipeline = pipeline
        self.config = (config or pipeline.config).resolved()
        self.track_ids = TrackIds()
        self.map = LocalMap(self._map_config(),
                            make_adjuster(self.config.bundle_adjustment))
        self.pose = np.eye(4)
        self.pose_covariance = np.zeros((6, 6))  # the odom origin is exact by definition
        self.frames_done = 0  # records made: the next record's index (a reset goes on counting)
        # Called with {record index: T_odom_cam} of the keyframes a bundle adjustment refined
        # after their records went out (e.g. to evaluate the trajectory as the map left it).
        self.on_refined: Callable[[dict[int, np.ndarray]], None] | None = None
        self.reset()

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
        self.initialised_scale = False  # monocular: first keyframe pair triangulated
        self.metres_per_flow_px = 0.0  # monocular fallback: translation per pixel of motion
        self.motion: np.ndarray | None = None  # T_prev_cur of the last two tracked frames

    def close(self) -> None:
        """Stop the bundle adjustment worker (if any); the tracker is not used afterwards."""
        self.map.adjuster.close()

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
        self.config = new
        self.map.config = self._map_config()

    def _map_config(self) -> MapConfig:
        return MapConfig(window=self.config.map_window, sigma_px=self.config.keypoint_sigma_px,
                         depth_sigma=self.config.depth_noise,
                         disparity_offset_prior_px=self.config.stereo_offset_prior_px)

    # --- public ---------------------------------------------------------------------------------
    def process(self, image: np.ndarray, stamp_ns: int, camera: CameraModel,
                depth: np.ndarray | None = None, depth_unit: float | None = None) -> FrameRecord:
        """Track one frame. ``depth`` (16UC1 mm or 32FC1 m, registered to ``image``) is optional."""
        return self.track(self.extract(FrameInput(stamp_ns, image, camera, depth, depth_unit)))

    def extract(self, frame: FrameInput) -> ExtractedFrame:
        """Stage 1: the frame's features. Reads no tracker state (only the networks)."""
        start = time.perf_counter()
        try:
            features = self.pipeline.extract(frame.image)
        except ImageError as exc:
            return ExtractedFrame(frame, None, f"unusable image: {exc}")
        return ExtractedFrame(frame, features, seconds=time.perf_counter() - start)

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

    def _numbered(self, record: FrameRecord) -> FrameRecord:
        """``record`` with the next frame index (the one its TrackedFrame was given)."""
        record.index, self.frames_done = self.frames_done, self.frames_done + 1
        return record

    def _track(self, extracted: ExtractedFrame) -> FrameRecord:
        stamp, features, timings = extracted.stamp_ns, extracted.features, {}
        if features is None:
            return self._lost(stamp, extracted.reason, timings)
        timings["extract"] = extracted.seconds
        source = extracted.frame
        frame = TrackedFrame(stamp, source.camera, features,
                             ids=self.track_ids.fresh(len(features)), index=self.frames_done)
        reason = ""
        if source.right is not None and source.depth is None:
            frame.right, frame.baseline_m = source.right, float(source.baseline_m or 0.0)
        if source.depth is not None:
            try:
                frame.set_depth(source.depth, source.depth_unit, self.config.depth_min_m,
                                self.config.depth_max_m)
            except ValueError as exc:
                reason = f"depth ignored: {exc}"
        if len(features) < self.config.min_inliers:
            return self._lost(stamp, f"only {len(features)} keypoints", timings, len(features))
        if self.keyframe is None:
            return self._start(frame, timings, reason=reason)
        ref, due = self.keyframe, ""
        estimate = self._projected(frame, timings) if self.config.track_by_projection else None
        if isinstance(estimate, str):  # placed, but a keyframe is due: LightGlue gives it tracks
            estimate, due = None, estimate
        if estimate is None:
            estimate = self._estimate(self.keyframe, frame, timings)
        for other in self._fallbacks():
            if self._status(estimate) is not TrackingStatus.LOST:
                break
            retry = self._estimate(other, frame, timings)
            if retry.num_inliers > estimate.num_inliers:
                estimate, ref = retry, other
        status = self._status(estimate)
        if status is TrackingStatus.LOST:
            record = self._lost(stamp, estimate.reason or f"{estimate.num_inliers} inliers",
                                timings, len(features), estimate)
            if len(features) >= self.config.good_inliers:  # a real view we cannot place
                self._restart_at_last_pose(frame)
                record.keyframe = record.reinitialized = True
            return record
        if ref is self.recovery:  # back on the keyframe from before the restart
            self.keyframe, self.recovery = ref, None
            self.map.seed(ref, ref.points3d)
            self.initialised_scale = True
        if not estimate.metric:
            estimate, ref = self._consecutive_rotation(ref, frame, estimate, timings)
        return self._advance(ref, frame, estimate, status, timings, reason, due)

    def _consecutive_rotation(self, ref: TrackedFrame, cur: TrackedFrame, est: _Estimate,
                              timings: dict[str, float]) -> tuple[_Estimate, TrackedFrame]:
        """Monocular, before the map gives PnP: take the motion from the previous frame's
        essential matrix when it is well conditioned. Measured directly, the rotation between
        consecutive frames is more accurate than the difference of two keyframe-relative
        two-view estimates; the keyframe estimate still gives the translation its length. Once
        the frame is located on map points this second match is not needed (nor run)."""
        prev = self.previous
        if prev is None or prev is ref or est.model == "pnp" or not self.config.match_previous:
            return est, ref
        direct = self._estimate(prev, cur, timings)
        if direct.model != "essential" or direct.scaled or not np.any(direct.t) or \
                direct.flow_px < self.config.mono_two_view_flow_px or \
                self._status(direct) is TrackingStatus.LOST:
            return est, ref
        T_prev_cur = invert_transform(prev.T_odom_cam) @ ref.T_odom_cam @ invert_transform(
            make_transform(est.R, est.t))
        T_cur_prev = invert_transform(T_prev_cur)
        length = float(T_cur_prev[:3, 3] @ direct.t)
        if length > 0:
            direct.t, direct.scaled = direct.t / np.linalg.norm(direct.t) * length, True
        return direct, prev

    def _fallbacks(self) -> list[TrackedFrame]:
        """Frames to try when the keyframe match fails: the previous frame, then the keyframe
        tracking was on before its last restart."""
        out = []
        if self.config.match_previous and self.previous not in (None, self.keyframe):
            out.append(self.previous)
        if self.recovery is not None:
            out.append(self.recovery)
        return out

    # --- estimation -----------------------------------------------------------------------------
    def _estimate(self, ref: TrackedFrame, cur: TrackedFrame, timings: dict[str, float]
                  ) -> _Estimate:
        start = time.perf_counter()
        matches = self.pipeline.match(ref.features, cur.features)
        timings["match"] = timings.get("match", 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        self._collect_adjustment(timings)
        pairs, scores = matches.pairs, matches.pair_scores
        p0, p1 = ref.keypoints[pairs[:, 0]], cur.keypoints[pairs[:, 1]]
        flow = np.linalg.norm(p1 - p0, axis=1)
        estimate = self._pose_from_points(ref, cur, pairs, p1)
        if estimate is None:
            estimate = self._pose_two_view(ref, cur, p0, p1)
        estimate.pairs, estimate.scores, estimate.layers = pairs, scores, matches.layers
        if estimate.num_inliers:
            estimate.flow_px = float(np.median(flow[estimate.inliers]))
        estimate.verified = self._verified(ref, cur, estimate, p0, p1)
        if not estimate.scaled:
            self._scale_monocular(estimate)
        timings["pose"] = timings.get("pose", 0.0) + time.perf_counter() - start
        return estimate

    def _projected(self, cur: TrackedFrame, timings: dict[str, float]) -> _Estimate | str | None:
        """The keyframe's map points projected at the constant-velocity prediction of ``cur``'s
        pose and found again by descriptor near there, then PnP: ``cur`` placed without a match.
        Returns the estimate when it holds (at least ``good_inliers``) and no keyframe is due;
        the policy's reason when one is (the keyframe is then matched, so that new tracks are
        born); None when the projection cannot place the frame (no map, too few inliers)."""
        start = time.perf_counter()
        kf, prev = self.keyframe, self.previous
        X = self._reference_points(kf)
        known = np.flatnonzero(np.isfinite(X[:, 0]))
        if len(known) < self.config.good_inliers or prev is None:
            return None
        predicted = prev.T_odom_cam @ (np.eye(4) if self.motion is None else self.motion)
        T_cur_kf = invert_transform(predicted) @ kf.T_odom_cam
        rows, cols, cosine = search_by_projection(
            X[known] @ T_cur_kf[:3, :3].T + T_cur_kf[:3, 3], kf.descriptors[known], cur.camera,
            cur.keypoints, cur.descriptors, self.config.projection_radius_px,
            self.map.config.min_cosine, PROJECTION_MAX_RATIO)
        pairs = np.stack([known[rows], cols], axis=1)
        timings["match"] = timings.get("match", 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        p1 = cur.keypoints[cols]
        estimate = self._pose_from_points(kf, cur, pairs, p1)
        timings["pose"] = timings.get("pose", 0.0) + time.perf_counter() - start
        if estimate is None or estimate.num_inliers < self.config.good_inliers:
            return None
        estimate.scores, estimate.verified = cosine, estimate.inliers.copy()
        flow = np.linalg.norm(p1 - kf.keypoints[pairs[:, 0]], axis=1)
        estimate.flow_px = float(np.median(flow[estimate.inliers]))
        first = kf.first_inliers or estimate.num_inliers
        return KeyframePolicy.from_config(self.config).reason(
            estimate.num_inliers, first, estimate.flow_px,
            self._map_view(kf, estimate)) or estimate

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

    def _reference_points(self, ref: TrackedFrame) -> np.ndarray:
        """3D points of ``ref``'s keypoints in its camera frame: the map's, else its own depth,
        else the points it kept from before a restart (NaN where none)."""
        X = self.map.points_in(ref)
        for fill in (ref.depth_points, ref.points3d):
            if fill is not None:
                gap = ~np.isfinite(X[:, 0])
                X[gap] = fill[gap]
        return X

    def _pose_from_points(self, ref: TrackedFrame, cur: TrackedFrame, pairs: np.ndarray,
                          p1: np.ndarray) -> _Estimate | None:
        """PnP from the 3D points ``ref`` sees, or None when it has too few of them. Each
        point's covariance (the map's, else its depth's) goes into the pose's covariance."""
        X = self._reference_points(ref)[pairs[:, 0]]
        known = np.isfinite(X[:, 0])
        if known.sum() < self.config.min_inliers:
            return None
        sigma = self.config.keypoint_sigma_px
        conf = PnPConfig(ransac_threshold_px=2 * self.config.ransac_threshold_px,
                         min_sigma_px=sigma)
        result = estimate_pose_pnp(X[known], p1[known], cur.camera, conf)
        if not result.success or result.num_inliers < self.config.min_inliers:
            return None
        inliers = np.zeros(len(pairs), bool)
        inliers[np.flatnonzero(known)[result.inliers]] = True
        # The covariance counts ref's own error relative to the map (the points move with it).
        depth_sigma = None if ref.depth_points is None else \
            (ref.depth_noise or self.config.depth_noise) * ref.depth_points[:, 2] ** 2
        k = pairs[inliers, 0]
        covariance = relative_pnp_covariance(
            result.R, result.t, X[inliers], p1[inliers], cur.camera, sigma,
            self.map.point_covariances_in(ref, own=False)[k],
            observation_information(X[inliers], ref.camera, sigma,
                                    None if depth_sigma is None else depth_sigma[k]))
        return _Estimate(result.R, result.t, covariance, "pnp", ref.metric, inliers,
                         pairs, np.zeros(0), 0, 0.0)

    def _pose_two_view(self, ref: TrackedFrame, cur: TrackedFrame, p0: np.ndarray,
                       p1: np.ndarray) -> _Estimate:
        conf = TwoViewConfig(ransac_threshold_px=self.config.ransac_threshold_px)
        if len(p0) < conf.min_matches:
            return _Estimate(np.eye(3), np.zeros(3), lost_covariance(), "none", False,
                             np.zeros(len(p0), bool), np.zeros((0, 2), int), np.zeros(0), 0, 0.0,
                             reason=f"only {len(p0)} matches")
        result = estimate_relative_pose(p0, p1, ref.camera, cur.camera, conf)
        return _Estimate(result.R, result.t, result.covariance, result.model, False,
                         result.inliers, np.zeros((0, 2), int), np.zeros(0), 0, 0.0,
                         scaled=False, reason=result.reason)

    def _verified(self, ref: TrackedFrame, cur: TrackedFrame, est: _Estimate, p0: np.ndarray,
                  p1: np.ndarray) -> np.ndarray:
        """Matches consistent with the estimated motion: the estimate's inliers, and the pairs
        it did not use (no 3D point yet) within the threshold of the epipolar line. These hand
        their track id on."""
        verified = est.inliers.copy()
        if est.model != "pnp" or not np.any(est.t) or verified.all():
            return verified
        rest = ~verified
        x0 = ref.camera.undistort_points(p0[rest])
        x1 = cur.camera.undistort_points(p1[rest])
        E = skew(est.t / np.linalg.norm(est.t)) @ est.R
        err = sampson_essential(E, x0, x1, np.diag(ref.camera.K)[:2], np.diag(cur.camera.K)[:2])
        verified[rest] = np.abs(err) < 2 * self.config.ransac_threshold_px
        return verified

    def _scale_monocular(self, est: _Estimate) -> None:
        """Give a unit two-view translation a length. Before the first triangulation the unit is
        'flow / mono_init_flow_px' so that the first keyframe baseline is about 1; afterwards the
        ratio of translation to flow measured by the last PnP pose."""
        per_px = self.metres_per_flow_px or 1.0 / self.config.mono_init_flow_px
        est.t = est.t * est.flow_px * per_px

    def _status(self, est: _Estimate) -> TrackingStatus:
        if est.model == "none" or est.num_inliers < self.config.min_inliers:
            return TrackingStatus.LOST
        if est.num_inliers < self.config.good_inliers:
            return TrackingStatus.WEAK
        return TrackingStatus.OK

    # --- state changes --------------------------------------------------------------------------
    def _start(self, frame: TrackedFrame, timings: dict[str, float], reason: str) -> FrameRecord:
        reason = self._stereo_depth(frame, timings) or reason
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

    def _restart_at_last_pose(self, frame: TrackedFrame) -> None:
        """Tracking failed on a real view: a new map from it, at the last pose, its uncertainty
        grown once by what the lost motion may have been."""
        frame.T_odom_cam = self.pose.copy()
        frame.covariance = self.pose_covariance = self.pose_covariance + restart_covariance()
        frame.began_anew = True
        if self.recovery is None and self.keyframe is not None:
            self.keyframe.points3d = self._reference_points(self.keyframe)
            self.recovery = self.keyframe
        self.keyframe = self.previous = frame
        self.motion = None
        self._stereo_depth(frame, {})
        self.map.clear()
        self.map.insert(frame, self._triangulation_px)
        if not frame.metric:
            self.initialised_scale = False
            self.metres_per_flow_px = 0.0

    @property
    def _triangulation_px(self) -> float:
        return 2 * self.config.ransac_threshold_px

    def _advance(self, ref: TrackedFrame, cur: TrackedFrame, est: _Estimate,
                 status: TrackingStatus, timings: dict[str, float], reason: str,
                 due: str = "") -> FrameRecord:
        T_ref_cur = invert_transform(make_transform(est.R, est.t))
        rel_cov = invert_pose_covariance(est.R, est.t, est.covariance) + common_shift_covariance(
            T_ref_cur[:3, :3], cur.camera, self.config.common_shift_px)
        cur.T_odom_cam = ref.T_odom_cam @ T_ref_cur
        cur.covariance = compose_pose_covariance(ref.T_odom_cam[:3, :3], ref.T_odom_cam[:3, 3],
                                                 ref.covariance, T_ref_cur[:3, 3], rel_cov)
        cur.metric = cur.metric or (ref.metric and est.metric)
        cur.ids = self.track_ids.inherit(ref.ids, cur.ids, est.pairs, est.verified)
        if est.model == "pnp" and est.flow_px > 0:
            self.metres_per_flow_px = float(np.linalg.norm(est.t)) / est.flow_px
        if ref is self.keyframe and not ref.first_inliers:
            ref.first_inliers = est.num_inliers
        if not est.scaled and status is TrackingStatus.OK:
            status = TrackingStatus.WEAK
            reason = reason or "monocular: translation length from the motion model"
        ref_is_keyframe = ref is self.keyframe
        start = time.perf_counter()
        new_keyframe, why = self._maybe_keyframe(ref, cur, est, timings, due)
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

    def _maybe_keyframe(self, ref: TrackedFrame, cur: TrackedFrame, est: _Estimate,
                        timings: dict[str, float], due: str = "") -> tuple[bool, str]:
        """Make ``cur`` a keyframe when the policy asks for it (or asked already, ``due``, on
        the projection's figures): it joins the map, which gives its new tracks points and
        adjusts the window (``cur``'s pose included). Returns whether it did, and what went
        wrong on the way ('' if nothing)."""
        policy = KeyframePolicy.from_config(self.config)
        due = due or (policy.reason(est.num_inliers, ref.first_inliers, est.flow_px,
                                    self._map_view(ref, est))
                      if ref is self.keyframe else "the keyframe no longer matches")
        if not cur.metric and not self.initialised_scale:
            # Monocular start: wait for enough parallax to triangulate a first map.
            if not (est.model == "essential" and est.flow_px >= self.config.mono_init_flow_px):
                return False, ""
        elif not due:
            return False, ""
        why = self._stereo_depth(cur, timings)
        self.map.insert(cur, self._triangulation_px)
        if self.config.publish_adjusted_keyframes:
            self._collect_adjustment(timings)
        if not cur.metric and len(self.map) >= self.config.min_inliers:
            self.initialised_scale = True
        self.keyframe = cur
        return True, why

    def _map_view(self, ref: TrackedFrame, est: _Estimate) -> MapView | None:
        """How the frame ``est`` places sees ``ref``'s triangulated map points (None when not
        located on them, or when they come from depth)."""
        if est.model != "pnp" or ref.metric or not self.config.keyframe_tracked_share:
            return None
        return MapView.of(self.map.points_in(ref), est.pairs[est.inliers, 0],
                          invert_transform(make_transform(est.R, est.t)))

    def _stereo_depth(self, frame: TrackedFrame, timings: dict[str, float]) -> str:
        """Metric points of a keyframe from its right image; why not, or ''."""
        if frame.right is None:
            return ""
        start = time.perf_counter()
        reason = keyframe_stereo_depth(frame, self.pipeline, self.config)
        timings["stereo"] = time.perf_counter() - start
        return reason

    def _lost(self, stamp_ns: int, reason: str, timings: dict[str, float], keypoints: int = 0,
              est: _Estimate | None = None) -> FrameRecord:
        record = FrameRecord(stamp_ns, TrackingStatus.LOST, self.pose.copy(), lost_covariance(),
                             num_keypoints=keypoints, timings=timings, reason=reason)
        if est is not None:
            record.num_matches, record.num_inliers = len(est.pairs), est.num_inliers
            record.layers, record.model = est.layers, est.model
        return record

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
        self.recovery, self.motion = None, None
        self.map.seed(frame, frame.points3d)
        self.initialised_scale = True
