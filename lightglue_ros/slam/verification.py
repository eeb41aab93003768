"""Is a retrieved keyframe really the place the camera sees? LightGlue, then geometry.

Retrieval only ranks keyframes by appearance; a look-alike (another stretch of the same road, a
repeated texture) can rank first. A candidate is accepted only when LightGlue matches enough of
its keypoints (early exit makes a hopeless pair cheap) and those matches agree with one rigid
motion: PnP against the candidate's 3D points, which also gives the relative pose in the
candidate's scale, or, where it has too few points, an essential matrix or homography (a
direction without length: enough to recognise a place, not to place the camera).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..features import Features
from ..geometry.camera import CameraModel
from ..geometry.covariance import invert_pose_covariance, lost_covariance
from ..geometry.pnp import PnPConfig, estimate_pose_pnp
from ..geometry.se3 import invert_transform, make_transform
from ..geometry.two_view import TwoViewConfig, estimate_relative_pose
from ..pipeline import Pipeline


@dataclass(frozen=True)
class VerificationConfig:
    # Inliers of one rigid motion needed to accept. A look-alike gives a few chance inliers
    # (RANSAC finds some consistent subset in any set of matches); a revisit gives hundreds.
    min_inliers: int = 60
    min_inlier_ratio: float = 0.5  # of the matches: a look-alike's matches mostly disagree
    ransac_threshold_px: float = 1.5
    min_sigma_px: float = 1.0  # keypoint noise floor of the pose covariance


@dataclass
class Verification:
    """The answer for one candidate. ``T_kf_cam``: the current camera in the candidate's camera
    frame (None unless accepted with a scale); ``covariance`` of it (module covariance
    convention)."""

    accepted: bool
    model: str  # pnp | essential | homography | none
    num_matches: int
    num_inliers: int
    layers: int
    T_kf_cam: np.ndarray | None = None
    covariance: np.ndarray = field(default_factory=lost_covariance)
    reason: str = ""


def verify(pipeline: Pipeline, kf_features: Features, kf_points: np.ndarray | None,
           kf_camera: CameraModel, features: Features, camera: CameraModel,
           config: VerificationConfig = VerificationConfig()) -> Verification:
    """Match the candidate keyframe (features, points (N, 3) in its camera frame or None) against
    the current frame and check the geometry."""
    matches = pipeline.match(kf_features, features)
    pairs = matches.pairs
    n = len(pairs)
    if n < config.min_inliers:
        return Verification(False, "none", n, 0, matches.layers, reason=f"only {n} matches")
    p1 = features.keypoints.cpu().numpy().astype(np.float64)[pairs[:, 1]]
    X = None if kf_points is None else kf_points[pairs[:, 0]]
    if X is not None and np.isfinite(X[:, 0]).sum() >= config.min_inliers:
        pnp = estimate_pose_pnp(X, p1, camera, PnPConfig(
            ransac_threshold_px=config.ransac_threshold_px, min_sigma_px=config.min_sigma_px))
        found = int(np.isfinite(X[:, 0]).sum())
        why = _reject(pnp.num_inliers, found, config) if pnp.success else pnp.reason
        if why:
            return Verification(False, "pnp", n, pnp.num_inliers, matches.layers, reason=why)
        T_cam_kf = make_transform(pnp.R, pnp.t)
        return Verification(True, "pnp", n, pnp.num_inliers, matches.layers,
                            invert_transform(T_cam_kf),
                            invert_pose_covariance(pnp.R, pnp.t, pnp.covariance))
    p0 = kf_features.keypoints.cpu().numpy().astype(np.float64)[pairs[:, 0]]
    two = estimate_relative_pose(p0, p1, kf_camera, camera,
                                 TwoViewConfig(ransac_threshold_px=config.ransac_threshold_px))
    why = _reject(two.num_inliers, n, config) if two.success else two.reason
    return Verification(not why, two.model, n, two.num_inliers, matches.layers, reason=why)


def _reject(inliers: int, candidates: int, config: VerificationConfig) -> str:
    if inliers < config.min_inliers:
        return f"{inliers} inliers, need {config.min_inliers}"
    if inliers < config.min_inlier_ratio * candidates:
        return f"{inliers} inliers of {candidates}, need {config.min_inlier_ratio:.0%}"
    return ""
