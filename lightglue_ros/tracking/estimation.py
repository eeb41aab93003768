"""Where a frame is relative to a reference frame: PnP on the 3D points the reference sees (the
local map's, its depth's or stereo's), else two-view geometry (essential matrix or homography)
with a translation of guessed length. The matches come from LightGlue, or from the reference's
map points projected at a predicted pose (``track_by_projection``)."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..config import Config
from ..features import Matches
from ..geometry.covariance import (lost_covariance, observation_information,
                                   relative_pnp_covariance)
from ..geometry.epipolar import sampson_essential
from ..geometry.pnp import PnPConfig, estimate_pose_pnp
from ..geometry.se3 import invert_transform, skew
from ..geometry.two_view import TwoViewConfig, estimate_relative_pose
from ..mapping import LocalMap
from ..mapping.projection_search import search_by_projection
from ..pipeline import Pipeline
from .estimate import Estimate
from .frames import TrackedFrame

# Projection search (``track_by_projection``): a point's best keypoint must be this much nearer
# in descriptor distance than its second; among look-alikes a wrong pick is a PnP outlier.
PROJECTION_MAX_RATIO = 0.9


class PoseEstimator:
    """Relative poses of frames against references, on the tracker's map and configuration.
    ``after_match`` runs once a LightGlue match is done, before the pose: the time to apply a
    bundle adjustment that solved during the match."""

    def __init__(self, pipeline: Pipeline, local_map: LocalMap, config: Config,
                 after_match: Callable[[dict[str, float]], None]) -> None:
        self.pipeline, self.map, self.config = pipeline, local_map, config
        self.after_match = after_match

    def estimate(self, ref: TrackedFrame, cur: TrackedFrame, timings: dict[str, float],
                 metres_per_flow_px: float, matches: Matches | None = None) -> Estimate:
        """``cur`` against ``ref`` through a LightGlue match (or ``matches``, its result made
        elsewhere); a two-view translation gets the length ``metres_per_flow_px`` times the
        median flow."""
        if matches is None:
            start = time.perf_counter()
            matches = self.pipeline.match(ref.features, cur.features)
            timings["match"] = timings.get("match", 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        self.after_match(timings)
        pairs, scores = matches.pairs, matches.pair_scores
        p0, p1 = ref.keypoints[pairs[:, 0]], cur.keypoints[pairs[:, 1]]
        flow = np.linalg.norm(p1 - p0, axis=1)
        estimate = self.pose_from_points(ref, cur, pairs, p1)
        if estimate is None:
            estimate = self._pose_two_view(ref, cur, p0, p1)
        estimate.pairs, estimate.scores, estimate.layers = pairs, scores, matches.layers
        if estimate.num_inliers:
            estimate.flow_px = float(np.median(flow[estimate.inliers]))
        estimate.verified = self._verified(ref, cur, estimate, p0, p1)
        if not estimate.scaled:
            estimate.t = estimate.t * estimate.flow_px * metres_per_flow_px
        timings["pose"] = timings.get("pose", 0.0) + time.perf_counter() - start
        return estimate

    def project(self, kf: TrackedFrame, cur: TrackedFrame, T_odom_predicted: np.ndarray,
                timings: dict[str, float]) -> Estimate | None:
        """``kf``'s map points projected at ``cur``'s predicted pose and found again by
        descriptor near there, then PnP: ``cur`` placed without a match. None when that does
        not place it on at least ``good_inliers``."""
        X = self.reference_points(kf)
        known = np.flatnonzero(np.isfinite(X[:, 0]))
        if len(known) < self.config.good_inliers:
            return None
        start = time.perf_counter()
        T_cur_kf = invert_transform(T_odom_predicted) @ kf.T_odom_cam
        rows, cols, cosine = search_by_projection(
            X[known] @ T_cur_kf[:3, :3].T + T_cur_kf[:3, 3], kf.descriptors[known], cur.camera,
            cur.keypoints, cur.descriptors, self.config.projection_radius_px,
            self.map.config.min_cosine, PROJECTION_MAX_RATIO)
        pairs = np.stack([known[rows], cols], axis=1)
        timings["match"] = timings.get("match", 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        p1 = cur.keypoints[cols]
        estimate = self.pose_from_points(kf, cur, pairs, p1)
        timings["pose"] = timings.get("pose", 0.0) + time.perf_counter() - start
        if estimate is None or estimate.num_inliers < self.config.good_inliers:
            return None
        estimate.scores, estimate.verified = cosine, estimate.inliers.copy()
        flow = np.linalg.norm(p1 - kf.keypoints[pairs[:, 0]], axis=1)
        estimate.flow_px = float(np.median(flow[estimate.inliers]))
        return estimate

    def reference_points(self, ref: TrackedFrame) -> np.ndarray:
        """3D points of ``ref``'s keypoints in its camera frame: the map's, else its own depth
        (depth image or stereo), else the points it kept from before a restart (NaN where
        none)."""
        X = self.map.points_in(ref)
        for fill in (ref.depth_points, ref.points3d):
            if fill is not None:
                gap = ~np.isfinite(X[:, 0])
                X[gap] = fill[gap]
        return X

    def reference_covariances(self, ref: TrackedFrame) -> np.ndarray:
        """(N, 3, 3) what the map knows of ``reference_points(ref)``, ``ref``'s own
        observations left out (see ``pose_from_points``)."""
        return self.map.point_covariances_in(ref, own=False)

    def pose_from_points(self, ref: TrackedFrame, cur: TrackedFrame, pairs: np.ndarray,
                         p1: np.ndarray, points: np.ndarray | None = None,
                         covariances: np.ndarray | None = None) -> Estimate | None:
        """PnP from the 3D points ``ref`` sees, or None when it has too few of them. Each
        point's covariance (the map's, else its depth's) goes into the pose's covariance.
        ``points`` and ``covariances``: ``reference_points(ref)`` and
        ``reference_covariances(ref)`` when the caller has them (the map has not changed)."""
        points = self.reference_points(ref) if points is None else points
        X = points[pairs[:, 0]]
        known = np.isfinite(X[:, 0])
        if known.sum() < self.config.min_inliers:
            return None
        sigma = self.config.keypoint_sigma_px
        conf = PnPConfig(ransac_threshold_px=2 * self.config.ransac_threshold_px,
                         min_sigma_px=sigma)
        # its covariance is relative_pnp_covariance's, below
        result = estimate_pose_pnp(X[known], p1[known], cur.camera, conf, covariance=False)
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
            (self.reference_covariances(ref) if covariances is None else covariances)[k],
            observation_information(X[inliers], ref.camera, sigma,
                                    None if depth_sigma is None else depth_sigma[k]))
        return Estimate(result.R, result.t, covariance, "pnp", ref.metric, inliers,
                        pairs, np.zeros(0), 0, 0.0)

    def _pose_two_view(self, ref: TrackedFrame, cur: TrackedFrame, p0: np.ndarray,
                       p1: np.ndarray) -> Estimate:
        """Essential matrix or homography: a rotation and the translation's direction."""
        conf = TwoViewConfig(ransac_threshold_px=self.config.ransac_threshold_px)
        if len(p0) < conf.min_matches:
            return Estimate(np.eye(3), np.zeros(3), lost_covariance(), "none", False,
                            np.zeros(len(p0), bool), np.zeros((0, 2), int), np.zeros(0), 0, 0.0,
                            reason=f"only {len(p0)} matches")
        result = estimate_relative_pose(p0, p1, ref.camera, cur.camera, conf)
        return Estimate(result.R, result.t, result.covariance, result.model, False,
                        result.inliers, np.zeros((0, 2), int), np.zeros(0), 0, 0.0,
                        scaled=False, reason=result.reason)

    def _verified(self, ref: TrackedFrame, cur: TrackedFrame, est: Estimate, p0: np.ndarray,
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
