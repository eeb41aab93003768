"""Windowed bundle adjustment of keyframe poses and map points, on GTSAM.

Each observation is a keypoint on the ideal pinhole image (the camera's K, lens distortion
removed), so one calibration (Cal3_S2) serves every lens model. Observations with a metric depth
(an RGB-D depth image, later a stereo pair) become stereo factors on a virtual right camera
(uR = u - fx b / z) whose baseline b makes one pixel of disparity error as likely as the depth
sensor's error (sigma_z = a z^2, so b = sigma_px / (fx a)); the others are projection factors.
Every factor has a Huber kernel so that a wrong match bends the solution little, and observations
still far off after the solve are reported for removal. A point seen once, with a depth, is left
out of the solve: its one stereo factor pins all three of its coordinates, so it tells the poses
nothing, yet its elimination would cost as much as any point's (about half the points of an RGB-D
window); it is placed where that observation puts it, the factor's zero, after the solve.

Poses are camera-to-odom (T_odom_cam, optical frame: z forward), GTSAM's camera pose convention.
"""
from __future__ import annotations

from dataclasses import dataclass

import gtsam
import numpy as np

from ..geometry.se3 import invert_transform

# Huber threshold in whitened units: sqrt of the 95% chi-square quantile of 2 DOF.
HUBER_K = float(np.sqrt(5.991))
FIXED_SIGMA = 1e-6  # of a held pose (metres, radians): a prior this tight is a constraint


@dataclass
class Observations:
    """Keypoints of the window's keyframes that see a map point, one row each."""

    frame: np.ndarray  # (M,) index into the window's poses
    point: np.ndarray  # (M,) index into the points
    uv: np.ndarray  # (M, 2) ideal-pinhole pixels
    depth: np.ndarray  # (M,) metres from a depth sensor, NaN where none


@dataclass
class AdjustmentResult:
    poses: np.ndarray  # (F, 4, 4) T_odom_cam
    points: np.ndarray  # (P, 3) odom coordinates
    errors_px: np.ndarray  # (M,) reprojection error of each observation after the solve
    initial_error_px: float  # median over observations, before
    final_error_px: float  # median, after


def adjust(poses: np.ndarray, fixed: np.ndarray, points: np.ndarray, obs: Observations,
           K: np.ndarray, sigma_px: float, depth_sigma: np.ndarray | float = 0.0,
           iterations: int = 10) -> AdjustmentResult:
    """Refine the poses not ``fixed`` and all points to minimise the robust reprojection error.

    ``K`` (F, 3, 3) is each keyframe's camera matrix (a driver may change resolution).
    ``depth_sigma`` is the depth noise coefficient of each keyframe's depth observations
    (sigma_z = depth_sigma z^2, metres; a stereo pair's is sigma_px / (fx b)); 0 ignores depth.
    """
    calib = [gtsam.Cal3_S2(k[0, 0], k[1, 1], 0.0, k[0, 2], k[1, 2]) for k in K]
    depth_sigma = np.broadcast_to(np.asarray(depth_sigma, np.float64), (len(K),))
    baseline = [sigma_px / (k[0, 0] * a) if a > 0 else 0.0 for k, a in zip(K, depth_sigma)]
    stereo_calib = [gtsam.Cal3_S2Stereo(k[0, 0], k[1, 1], 0.0, k[0, 2], k[1, 2], b)
                    for k, b in zip(K, baseline)]
    huber = gtsam.noiseModel.mEstimator.Huber.Create(HUBER_K)
    pixel_noise = gtsam.noiseModel.Robust.Create(
        huber, gtsam.noiseModel.Isotropic.Sigma(2, sigma_px))
    stereo_noise = gtsam.noiseModel.Robust.Create(
        huber, gtsam.noiseModel.Isotropic.Sigma(3, sigma_px))
    graph, values = gtsam.NonlinearFactorGraph(), gtsam.Values()
    held = gtsam.noiseModel.Isotropic.Sigma(6, FIXED_SIGMA)
    pose_keys = [gtsam.symbol("x", i) for i in range(len(poses))]
    point_keys = [gtsam.symbol("l", j) for j in range(len(points))]
    for key, T, hold in zip(pose_keys, poses, fixed):
        values.insert(key, gtsam.Pose3(T))
        if hold:
            graph.add(gtsam.PriorFactorPose3(key, gtsam.Pose3(T), held))
    use_depth = np.isfinite(obs.depth) & (depth_sigma[obs.frame] > 0)
    alone = _pinned(obs, use_depth, len(points), len(poses))
    solved = np.ones(len(points), bool)
    solved[obs.point[alone]] = False
    for j in np.flatnonzero(solved).tolist():
        values.insertPoint3(point_keys[j], points[j])
    # one factor per observation, in their order; the loop holds only what varies per row
    fxb = np.array([k[0, 0] * b for k, b in zip(K, baseline)]).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        right = obs.uv[:, 0] - fxb[obs.frame] / obs.depth
    add, projection, stereo = graph.add, gtsam.GenericProjectionFactorCal3_S2, \
        gtsam.GenericStereoFactor3D
    rows = ~alone
    for f, j, uv, has_depth, u, ur, v in zip(
            obs.frame[rows].tolist(), obs.point[rows].tolist(), obs.uv[rows],
            use_depth[rows].tolist(), obs.uv[rows, 0].tolist(), right[rows].tolist(),
            obs.uv[rows, 1].tolist()):
        if has_depth:
            add(stereo(gtsam.StereoPoint2(u, ur, v), stereo_noise, pose_keys[f], point_keys[j],
                       stereo_calib[f]))
        else:
            add(projection(uv, pixel_noise, pose_keys[f], point_keys[j], calib[f]))
    before = _errors(poses, points, obs, K)
    params = gtsam.LevenbergMarquardtParams()
    params.setMaxIterations(iterations)
    result = gtsam.LevenbergMarquardtOptimizer(graph, values, params).optimize()
    # Values keep their entries in key order: the poses x0.., the points l0.. (Point3 only)
    flat = gtsam.utilities.extractPose3(result).reshape(-1, 12)  # R row by row, then t
    new_poses = np.zeros((len(poses), 4, 4))
    new_poses[:, :3, :3] = flat[:, :9].reshape(-1, 3, 3)
    new_poses[:, :3, 3] = flat[:, 9:]
    new_poses[:, 3, 3] = 1.0
    new_points = points.astype(np.float64)  # a copy
    new_points[solved] = gtsam.utilities.extractPoint3(result).reshape(-1, 3)
    # each pinned point where its one observation puts it: the zero of its stereo factor
    f, j, z = obs.frame[alone], obs.point[alone], obs.depth[alone]
    Kf = K[f]
    X = np.stack([(obs.uv[alone, 0] - Kf[:, 0, 2]) / Kf[:, 0, 0] * z,
                  (obs.uv[alone, 1] - Kf[:, 1, 2]) / Kf[:, 1, 1] * z, z], axis=1)
    new_points[j] = np.einsum("mij,mj->mi", new_poses[f, :3, :3], X) + new_poses[f, :3, 3]
    after = _errors(new_poses, new_points, obs, K)
    return AdjustmentResult(new_poses, new_points, after, float(np.median(before)),
                            float(np.median(after)))


def _pinned(obs: Observations, use_depth: np.ndarray, num_points: int, num_poses: int
            ) -> np.ndarray:
    """The observations (rows) that are their point's only one and have a depth, except where
    they are all a keyframe has (its pose would have no factor left)."""
    alone = use_depth & (np.bincount(obs.point, minlength=num_points)[obs.point] == 1)
    kept = np.bincount(obs.frame[~alone], minlength=num_poses)
    return alone & (kept[obs.frame] > 0)


def _errors(poses: np.ndarray, points: np.ndarray, obs: Observations, K: np.ndarray
            ) -> np.ndarray:
    """Pixel error of each observation (inf behind the camera)."""
    # the rigid inverse: defined for any pose a solve returns, unlike a general one
    T_cam_odom = np.array([invert_transform(T) for T in poses]).reshape(-1, 4, 4)[obs.frame]
    X = np.einsum("mij,mj->mi", T_cam_odom[:, :3, :3], points[obs.point]) + T_cam_odom[:, :3, 3]
    Kf = K[obs.frame]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = X[:, :2] / X[:, 2:] * Kf[:, [0, 1], [0, 1]] + Kf[:, :2, 2]
        err = np.linalg.norm(uv - obs.uv, axis=1)
    return np.where(X[:, 2] > 0, err, np.inf)
