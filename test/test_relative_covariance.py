"""The covariance of a pose located against the local map, relative to its reference keyframe
(``geometry.covariance.relative_pnp_covariance``), against the errors of the real estimators:
the map's bundle adjustment places the reference keyframe and the points among two held
keyframes from noisy keypoints, and PnP locates the current frame against those points seen from
the reference. The reference's own error relative to the map moves all its points together, so a
covariance that takes the reference as exact (``pnp_covariance`` with the points' covariances) is
overconfident whatever the number of points; the relative one gives the degrees of freedom."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from lightglue_ros.evaluation.consistency import nees, pose_error
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.geometry.covariance import (observation_information, pnp_covariance,
                                               relative_pnp_covariance)
from lightglue_ros.geometry.pnp import PnPConfig, estimate_pose_pnp
from lightglue_ros.geometry.se3 import invert_transform, make_transform

gtsam = pytest.importorskip("gtsam")

CAM = CameraModel(640, 480, np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]))
SIGMA_PX = 1.0


@dataclass
class _Frame:
    T_odom_cam: np.ndarray
    keypoints: np.ndarray
    ids: np.ndarray
    camera: CameraModel = CAM
    depth_points: None = None
    depth_noise: float = 0.0
    baseline_m: float = 0.0
    descriptors: np.ndarray = field(default_factory=lambda: np.ones((1, 4)))


def _nees(trials: int = 200, n: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(NEES with the relative covariance, NEES with the reference taken as exact), (trials, 2)
    each: 6 DOF pose and 3 DOF rotation. Four held keyframes 1-1.5 m around the reference,
    turned towards the scene, which they triangulate well: the reference's own error is then
    a large part of the relative pose's. The current frame is 0.3 m ahead of the reference;
    points 3-8 m deep."""
    from scipy.spatial.transform import Rotation

    from lightglue_ros.mapping import LocalMap, MapConfig
    from lightglue_ros.mapping.bundle_adjustment import Observations, adjust
    from lightglue_ros.mapping.local_map import MapKeyframe

    rng = np.random.default_rng(11)
    held = [([0, 0.25, 0], [-1.5, 0, 0]), ([0, -0.25, 0], [1.5, 0, 0]),
            ([-0.17, 0, 0], [0, -1.0, 0]), ([0.17, 0, 0], [0, 1.0, 0])]
    poses = [make_transform(Rotation.from_rotvec(r).as_matrix(), c) for r, c in held]
    poses.append(np.eye(4))  # T_odom_cam of the held keyframes, then the reference
    k = len(poses)
    T_ref_cur = make_transform(Rotation.from_rotvec([0.01, -0.02, 0.005]).as_matrix(),
                               [0.05, -0.02, 0.3])
    T_cur = T_ref_cur
    ids = np.arange(n)
    out_rel, out_exact = [], []
    for _ in range(trials):
        z = rng.uniform(3.0, 8.0, n)
        X_ref = np.c_[CAM.undistort_points(rng.uniform([40, 40], [600, 440], (n, 2))),
                      np.ones(n)] * z[:, None]
        X = X_ref  # odom = the reference's true camera frame
        seen = [CAM.project((X - T[:3, 3]) @ T[:3, :3]) + rng.normal(0, SIGMA_PX, (n, 2))
                for T in poses + [T_cur]]
        assert all(np.all(np.isfinite(u)) for u in seen)
        obs = Observations(np.repeat(np.arange(k), n), np.tile(ids, k),
                           np.concatenate(seen[:k]), np.full(k * n, np.nan))
        start = poses[:-1] + [make_transform(np.eye(3), [0.01, 0.01, 0])]
        result = adjust(np.array(start), np.arange(k) < k - 1, X + 0.02, obs,
                        np.array([CAM.K] * k), SIGMA_PX, 0.0, 10)
        frames = [_Frame(T, u, ids) for T, u in zip(result.poses, seen[:k])]
        local = LocalMap(MapConfig(sigma_px=SIGMA_PX))
        local.keyframes = [MapKeyframe.of(f) for f in frames]
        local.points = {int(i): p for i, p in zip(ids, result.points)}
        ref = frames[-1]
        Y = local.points_in(ref)  # the map points in the reference camera, as tracking sees them
        pnp = estimate_pose_pnp(Y, seen[k], CAM, PnPConfig(ransac_threshold_px=1000.0))
        assert pnp.num_inliers == n
        e = pose_error(make_transform(pnp.R, pnp.t), invert_transform(T_ref_cur))
        relative = relative_pnp_covariance(
            pnp.R, pnp.t, Y, seen[k], CAM, SIGMA_PX, local.point_covariances_in(ref, own=False),
            observation_information(Y, CAM, SIGMA_PX))
        exact = pnp_covariance(pnp.R, pnp.t, Y, seen[k], CAM, SIGMA_PX,
                               local.point_covariances_in(ref))
        out_rel.append((nees(e, relative), nees(e[3:], relative[3:, 3:])))
        out_exact.append((nees(e, exact), nees(e[3:], exact[3:, 3:])))
    return np.array(out_rel), np.array(out_exact)


def test_a_pose_located_against_the_map_counts_its_reference_keyframes_error():
    """Over 200 trials the mean of a chi-square(6) has a standard deviation of
    sqrt(12 / 200) = 0.24 (3 DOF: 0.17); the bounds allow 4 of them, the variance factor's floor
    (it only widens the covariance: -15%) and the linearisation (10%). Taking the reference as
    exact is overconfident here by about 1.6x in variance; the bound (1.3x) is 4 standard
    deviations of its mean below that."""
    relative, exact = _nees()
    pose, rotation = relative.mean(axis=0)
    assert 6 * 0.85 - 4 * 0.24 < pose < 6 * 1.1 + 4 * 0.24, pose
    assert 3 * 0.85 - 4 * 0.17 < rotation < 3 * 1.1 + 4 * 0.17, rotation
    assert exact[:, 0].mean() > 1.3 * 6, exact.mean(axis=0)
