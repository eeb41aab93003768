"""Tests of the geometry core and pose metrics on synthetic scenes with known poses."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from lightglue_ros.evaluation.pose_metrics import (homography_corner_error, pose_auc,
                                                   relative_pose_error)
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.geometry.covariance import (LARGE_VARIANCE, invert_pose_covariance,
                                               lost_covariance)
from lightglue_ros.geometry.pnp import backproject, estimate_pose_pnp
from lightglue_ros.geometry.se3 import (angle_between_deg, compose, interpolate_pose,
                                        invert_transform, make_transform, pose_at_time,
                                        quaternion_to_rotation, rotation_angle_deg,
                                        rotation_to_quaternion, skew, skew_rows)
from lightglue_ros.geometry.two_view import TwoViewConfig, estimate_relative_pose

W, H = 640, 480
K = np.array([[500.0, 0.0, 319.5], [0.0, 500.0, 239.5], [0.0, 0.0, 1.0]])
PINHOLE = CameraModel(W, H, K)
DISTORTED = {
    "plumb_bob": CameraModel.from_ros(W, H, K.ravel(), [-0.28, 0.08, 1e-3, -5e-4, -0.01],
                                      "plumb_bob"),
    # Azure-Kinect-like strong rational distortion, sent with 14 coefficients as ROS drivers do.
    "rational_polynomial": CameraModel.from_ros(
        W, H, K.ravel(), [0.6, -2.5, 1e-3, -5e-4, 1.4, 0.45, -2.4, 1.35, 0, 0, 0, 0, 0, 0],
        "rational_polynomial"),
    "equidistant": CameraModel.from_ros(W, H, [280.0, 0, 319.5, 0, 280.0, 239.5, 0, 0, 1],
                                        [0.02, -0.01, 3e-3, -5e-4], "equidistant"),
}
R_TRUE = cv2.Rodrigues(np.array([0.05, -0.1, 0.03]))[0]  # about 6.5 degrees


def rotation_error(R_a: np.ndarray, R_b: np.ndarray) -> float:
    return rotation_angle_deg(R_a.T @ R_b)


def rotation_vector(R: np.ndarray) -> np.ndarray:
    """log(R) without cv2.Rodrigues, which returns zero below about 1e-5 rad."""
    vee = 0.5 * np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    angle = np.arctan2(np.linalg.norm(vee), 0.5 * (np.trace(R) - 1.0))
    return vee * (angle / np.sin(angle) if angle > 1e-12 else 1.0)


def two_view_scene(rng: np.random.Generator, kind: str, cam: CameraModel = PINHOLE, n: int = 300,
                   noise: float = 0.5, outliers: float = 0.2, depth: tuple = (2.0, 8.0),
                   t: tuple = (0.4, 0.05, 0.1)):
    """Matches (pixels) of points seen by two cameras: 'general' 3D, 'plane' or 'rotation' only.

    The first ``outliers`` share of matches is replaced by random pixels in image 1.
    """
    t = np.zeros(3) if kind == "rotation" else np.asarray(t, dtype=float)
    px = rng.uniform([0, 0], [W - 1, H - 1], (3 * n, 2))
    rays = np.concatenate([cam.undistort_points(px), np.ones((3 * n, 1))], axis=1)
    if kind == "plane":  # n . X0 = 3 m, tilted about 20 degrees from fronto-parallel
        normal = np.array([-0.2, 0.3, 1.0]) / np.linalg.norm([-0.2, 0.3, 1.0])
        X0 = rays * (3.0 / (rays @ normal))[:, None]
    else:
        X0 = rays * rng.uniform(*depth, (3 * n, 1))
    X1 = X0 @ R_TRUE.T + t
    p0, p1 = cam.project(X0), cam.project(X1)
    seen = (X0[:, 2] > 0) & (X1[:, 2] > 0) & np.all((p1 >= 0) & (p1 <= [W - 1, H - 1]), axis=1)
    p0, p1 = p0[seen][:n], p1[seen][:n]
    p0 = p0 + rng.normal(0.0, noise, p0.shape)
    p1 = p1 + rng.normal(0.0, noise, p1.shape)
    k = int(outliers * n)
    p1[:k] = rng.uniform([0, 0], [W - 1, H - 1], (k, 2))
    return p0, p1, t, k


def assert_covariance(cov: np.ndarray) -> None:
    assert cov.shape == (6, 6)
    np.testing.assert_allclose(cov, cov.T, rtol=0, atol=1e-12 * np.abs(cov).max())
    assert np.linalg.eigvalsh(cov).min() >= -1e-9 * np.abs(cov).max()


# --- se3 -----------------------------------------------------------------------------------------

def test_quaternion_round_trip():
    rng = np.random.default_rng(0)
    quats = rng.normal(size=(200, 4))
    # near-identity and near-180-degree rotations, where naive formulas lose precision
    quats = np.vstack([quats, [[1e-9, 0, 0, 1]], [[1, 1e-9, 0, 1e-9]], [[0, 0, 1, 0]]])
    for q in quats:
        q = q / np.linalg.norm(q)
        R = quaternion_to_rotation(q)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        q2 = rotation_to_quaternion(R)
        assert q2[3] >= 0
        np.testing.assert_allclose(q2, q if q[3] >= 0 else -q, atol=1e-9)
        np.testing.assert_allclose(quaternion_to_rotation(q2), R, atol=1e-12)


def test_quaternion_order_is_xyzw():
    s = np.sqrt(0.5)
    np.testing.assert_allclose(quaternion_to_rotation([0, 0, s, s]),
                               [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    with pytest.raises(ValueError):
        quaternion_to_rotation([0, 0, 0, 0])


def test_transforms_invert_and_compose():
    T_a_b = make_transform(R_TRUE, [1.0, -2.0, 0.5])
    T_b_c = make_transform(quaternion_to_rotation([0.1, 0.2, -0.3, 0.9]), [0.0, 0.3, 2.0])
    np.testing.assert_allclose(compose(T_a_b, invert_transform(T_a_b)), np.eye(4), atol=1e-12)
    X_c = np.array([0.3, -0.2, 4.0, 1.0])
    np.testing.assert_allclose(compose(T_a_b, T_b_c) @ X_c, T_a_b @ (T_b_c @ X_c), atol=1e-12)


def test_angles_are_accurate_at_the_extremes():
    tiny = cv2.Rodrigues(np.array([1e-9, 0.0, 0.0]))[0]
    assert rotation_angle_deg(tiny) == pytest.approx(np.degrees(1e-9), rel=1e-6)
    assert rotation_angle_deg(np.diag([1.0, -1.0, -1.0])) == pytest.approx(180.0)
    expected = np.degrees(np.linalg.norm([0.05, -0.1, 0.03]))
    assert rotation_angle_deg(R_TRUE) == pytest.approx(expected)
    tiny_angle = angle_between_deg([1, 0, 0], [1, 1e-10, 0])
    assert tiny_angle == pytest.approx(np.degrees(1e-10), rel=1e-6)
    assert angle_between_deg([1, 0, 0], [-2, 0, 0]) == pytest.approx(180.0)
    assert angle_between_deg([1, 0, 0], [0, 3, 0]) == pytest.approx(90.0)
    assert np.isnan(angle_between_deg([0, 0, 0], [1, 0, 0]))


def test_pose_interpolation():
    T0 = make_transform(np.eye(3), [0.0, 0.0, 0.0])
    T1 = make_transform(quaternion_to_rotation([0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)]),
                        [2.0, 0.0, 0.0])
    mid = interpolate_pose(T0, T1, 0.5)
    assert rotation_angle_deg(mid[:3, :3]) == pytest.approx(45.0)
    np.testing.assert_allclose(mid[:3, 3], [1.0, 0.0, 0.0])
    stamps, poses = np.array([0.0, 1.0, 3.0]), np.stack([T0, T1, T0])
    np.testing.assert_allclose(pose_at_time(stamps, poses, 0.25)[:3, 3], [0.5, 0, 0])
    np.testing.assert_allclose(pose_at_time(stamps, poses, 1.0), T1)
    assert pose_at_time(stamps, poses, 3.5) is None
    assert pose_at_time(stamps, poses, 2.0, max_gap=1.0) is None  # samples 2 s apart


# --- camera --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["none", *DISTORTED])
def test_distortion_round_trip(model):
    cam = DISTORTED.get(model, PINHOLE)
    rng = np.random.default_rng(1)
    px = np.vstack([rng.uniform([0, 0], [W - 1, H - 1], (2000, 2)),
                    [[0, 0], [W - 1, 0], [0, H - 1], [W - 1, H - 1]]])  # corners: worst case
    xn = cam.undistort_points(px)
    depth = rng.uniform(0.5, 5, (len(xn), 1))
    points = np.concatenate([xn, np.ones((len(xn), 1))], axis=1) * depth
    reprojected = cam.project(points)
    np.testing.assert_allclose(reprojected, px, atol=1e-6)
    np.testing.assert_allclose(cam.undistort_points(reprojected), xn, atol=1e-5)
    assert cam.is_distorted == (model != "none")


def test_camera_from_ros_and_validation():
    cam = CameraModel.from_ros(W, H, K.ravel(), [], "plumb_bob")
    assert not cam.is_distorted and cam.D.shape == (5,)
    with pytest.raises(ValueError, match="focal"):
        CameraModel.from_ros(W, H, np.zeros(9), [], "plumb_bob")
    with pytest.raises(ValueError, match="NaN"):
        CameraModel(W, H, np.where(K == 500.0, np.nan, K))
    with pytest.raises(ValueError, match="needs 5 coefficients"):
        CameraModel.from_ros(W, H, K.ravel(), [0.1, 0.0, 0.0], "plumb_bob")
    with pytest.raises(ValueError, match="needs 4 coefficients"):
        CameraModel.from_ros(W, H, K.ravel(), [0.1] * 5, "equidistant")
    with pytest.raises(ValueError, match="must be zero"):
        CameraModel.from_ros(W, H, K.ravel(), [0.1] * 8 + [0.2] + [0.0] * 5, "rational_polynomial")
    with pytest.raises(ValueError, match="unknown distortion model"):
        CameraModel.from_ros(W, H, K.ravel(), [], "fisheye624")
    with pytest.raises(ValueError, match="9 values"):
        CameraModel.from_ros(W, H, K.ravel()[:8], [], "none")


def test_scaled_camera_matches_resized_pixels():
    cam = DISTORTED["plumb_bob"]
    half = cam.scaled(0.5, 0.5)
    assert (half.width, half.height) == (320, 240)
    points = np.array([[0.3, -0.2, 2.0], [-1.0, 0.5, 3.0]])
    # pixel centres at integers: u' = (u + 0.5) * s - 0.5
    np.testing.assert_allclose(half.project(points), (cam.project(points) + 0.5) * 0.5 - 0.5,
                               atol=1e-9)


def test_project_behind_camera_is_nan():
    assert np.all(np.isnan(PINHOLE.project(np.array([[0.0, 0.0, -1.0]]))))


# --- two-view ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cam", [PINHOLE, DISTORTED["plumb_bob"]], ids=["pinhole", "plumb_bob"])
def test_essential_for_general_scene(cam):
    rng = np.random.default_rng(3)
    # 1200 inliers: over 60 seeds the worst errors were 0.08 degrees (rotation and translation)
    p0, p1, t, k = two_view_scene(rng, "general", cam, n=1500, depth=(1.0, 3.0),
                                  t=(0.8, 0.05, 0.15))
    res = estimate_relative_pose(p0, p1, cam, cam)
    assert res.model == "essential", res.reason
    assert rotation_error(res.R, R_TRUE) < 0.1
    assert angle_between_deg(res.t, t) < 0.1
    assert np.linalg.norm(res.t) == pytest.approx(1.0)
    assert np.count_nonzero(res.inliers[:k]) <= 0.03 * k  # outliers rejected
    assert res.num_inliers >= 0.85 * (len(p0) - k)
    assert res.median_residual_px < 1.0
    assert_covariance(res.covariance)
    # the unknown scale: huge variance along t, small across it
    assert t @ res.covariance[:3, :3] @ t / (t @ t) > 0.5 * LARGE_VARIANCE
    assert res.covariance[3:, 3:].max() < 1e-4


def test_homography_for_planar_scene():
    rng = np.random.default_rng(4)
    p0, p1, t, _ = two_view_scene(rng, "plane", n=500)
    res = estimate_relative_pose(p0, p1, PINHOLE, PINHOLE)
    assert res.model == "homography" and not res.pure_rotation, res.reason
    assert res.homography is not None
    assert rotation_error(res.R, R_TRUE) < 0.3
    assert angle_between_deg(res.t, t) < 2.0
    assert_covariance(res.covariance)


@pytest.mark.parametrize("noise", [0.5, 1.0])
def test_homography_with_zero_translation_for_pure_rotation(noise):
    rng = np.random.default_rng(5)
    p0, p1, _, _ = two_view_scene(rng, "rotation", n=300, noise=noise)
    res = estimate_relative_pose(p0, p1, PINHOLE, PINHOLE)
    assert res.model == "homography" and res.pure_rotation, res.reason
    assert np.all(res.t == 0)
    assert rotation_error(res.R, R_TRUE) < 0.1
    assert_covariance(res.covariance)
    np.testing.assert_allclose(np.diag(res.covariance)[:3], LARGE_VARIANCE, rtol=1e-6)


def test_pure_rotation_with_fisheye():
    cam = DISTORTED["equidistant"]
    rng = np.random.default_rng(6)
    p0, p1, _, _ = two_view_scene(rng, "rotation", cam, n=300)
    res = estimate_relative_pose(p0, p1, cam, cam)
    assert res.pure_rotation, res.reason
    assert rotation_error(res.R, R_TRUE) < 0.1


def test_degenerate_two_view_inputs_fail_with_reason():
    rng = np.random.default_rng(7)
    p0, p1, _, _ = two_view_scene(rng, "general", n=100)
    cases = {
        "too few": (p0[20:25], p1[20:25]),
        "identical": (np.tile([100.0, 200.0], (50, 1)), np.tile([120.0, 210.0], (50, 1))),
        "nan": (np.full((50, 2), np.nan), p1[:50]),
        "empty": (np.zeros((0, 2)), np.zeros((0, 2))),
        "random": (rng.uniform(0, 480, (12, 2)), rng.uniform(0, 480, (12, 2))),
    }
    for name, (a, b) in cases.items():
        res = estimate_relative_pose(a, b, PINHOLE, PINHOLE)
        assert res.model == "none" and res.reason, name
        assert res.inliers.shape == (len(a),) and not res.inliers.any()
        np.testing.assert_array_equal(res.covariance, lost_covariance())
    with pytest.raises(ValueError):
        estimate_relative_pose(p0, p1[:-1], PINHOLE, PINHOLE)
    with pytest.raises(ValueError):
        TwoViewConfig(min_matches=3)


def test_non_finite_matches_are_ignored():
    rng = np.random.default_rng(8)
    p0, p1, t, _ = two_view_scene(rng, "general", n=300)
    p0[-10:, 0] = np.nan
    p1[-20:-10, 1] = np.inf
    res = estimate_relative_pose(p0, p1, PINHOLE, PINHOLE)
    assert res.model == "essential"
    assert not res.inliers[-20:].any()
    assert rotation_error(res.R, R_TRUE) < 0.3


# --- depth and PnP -------------------------------------------------------------------------------

def test_backproject_uint16_and_float32_with_holes():
    depth_m = np.full((H, W), 2.0, np.float32)
    depth_m[100, 200] = 0.0
    depth_m[101, 200] = np.nan
    depth_m[102, 200] = np.inf
    depth_m[103, 200] = 50.0  # beyond max_depth
    pts = np.array([[319.5 + 50, 239.5], [200, 100], [200.2, 100.6], [200, 102], [200, 103],
                    [-3, 10], [W + 2, 10], [np.nan, 5]])
    expected_valid = [True, False, False, False, False, False, False, False]
    depth_mm = np.nan_to_num(depth_m * 1000, posinf=0).astype(np.uint16)
    for image in (depth_m, depth_mm):
        points, valid = backproject(pts, image, PINHOLE)
        np.testing.assert_array_equal(valid, expected_valid)
        assert np.all(np.isnan(points[~valid]))
        np.testing.assert_allclose(points[0], [0.2, 0.0, 2.0], atol=1e-9)
    with pytest.raises(ValueError, match="registered"):
        backproject(pts, depth_m[:-1], PINHOLE)


def test_backproject_uses_raw_pixel_and_undistorted_ray():
    cam = DISTORTED["plumb_bob"]
    depth = np.ones((H, W), np.float32)
    depth[:, 600:] = 3.0
    pts = np.array([[610.3, 20.4], [30.0, 460.0]])
    points, valid = backproject(pts, depth, cam)
    assert valid.all()
    np.testing.assert_allclose(points[:, 2], [3.0, 1.0])
    np.testing.assert_allclose(points[:, :2] / points[:, 2:], cam.undistort_points(pts),
                               atol=1e-12)
    np.testing.assert_allclose(cam.project(points), pts, atol=1e-6)


def pnp_scene(rng, cam, n=300, noise=0.5, outliers=0.2):
    """3D points 0.8-3 m in front of camera 0 and their noisy pixels in camera 1."""
    px = rng.uniform([0, 0], [W - 1, H - 1], (n, 2))
    rays = np.concatenate([cam.undistort_points(px), np.ones((n, 1))], axis=1)
    X0 = rays * rng.uniform(0.8, 3, (n, 1))
    t = np.array([0.3, -0.05, 0.1])
    p1 = cam.project(X0 @ R_TRUE.T + t) + rng.normal(0.0, noise, (n, 2))
    k = int(outliers * n)
    p1[:k] = rng.uniform([0, 0], [W - 1, H - 1], (k, 2))
    return X0, p1, t, k


@pytest.mark.parametrize("cam", [PINHOLE, *DISTORTED.values()], ids=["none", *DISTORTED])
def test_pnp_metric_pose(cam):
    rng = np.random.default_rng(9)
    X0, p1, t, k = pnp_scene(rng, cam)
    res = estimate_pose_pnp(X0, p1, cam)
    assert res.success, res.reason
    assert np.linalg.norm(res.t - t) < 0.01  # 1 cm at 1-3 m
    assert rotation_error(res.R, R_TRUE) < 0.1
    assert not res.inliers[:k].any() and res.inliers[k:].mean() > 0.95
    assert res.median_residual_px < 1.0
    assert res.residuals_px.shape == (len(X0),)
    assert_covariance(res.covariance)
    bare = estimate_pose_pnp(X0, p1, cam, covariance=False)  # the tracker computes its own
    assert np.array_equal(bare.R, res.R) and np.array_equal(bare.t, res.t)
    assert np.array_equal(bare.inliers, res.inliers)
    assert np.array_equal(bare.covariance, lost_covariance())


def test_pnp_failures_have_reasons():
    rng = np.random.default_rng(10)
    X0, p1, _, _ = pnp_scene(rng, PINHOLE, outliers=0.0)
    line = np.outer(np.linspace(1, 2, 20), [0.1, 0.2, 1.0])
    X_nan = X0.copy()
    X_nan[5:] = np.nan
    noise = rng.uniform(0, 480, p1.shape)
    for X, u in ((X0[:5], p1[:5]), (line, p1[:20]), (X_nan, p1), (X0, noise)):
        res = estimate_pose_pnp(X, u, PINHOLE)
        assert not res.success and res.reason
        np.testing.assert_array_equal(res.covariance, lost_covariance())


# --- covariance ----------------------------------------------------------------------------------

def test_covariance_shrinks_with_more_inliers_and_less_noise():
    traces = {}
    for n, noise in ((60, 1.0), (600, 1.0), (600, 0.3)):
        X0, p1, _, _ = pnp_scene(np.random.default_rng(11), PINHOLE, n=n, noise=noise, outliers=0)
        res = estimate_pose_pnp(X0, p1, PINHOLE)
        assert_covariance(res.covariance)
        traces[n, noise] = np.trace(res.covariance)
    assert traces[600, 1.0] < 0.3 * traces[60, 1.0]
    assert traces[600, 0.3] < 0.2 * traces[600, 1.0]

    rot = {}
    for n in (60, 600):
        p0, p1, _, _ = two_view_scene(np.random.default_rng(12), "general", n=n, outliers=0)
        res = estimate_relative_pose(p0, p1, PINHOLE, PINHOLE)
        assert_covariance(res.covariance)
        rot[n] = np.trace(res.covariance[3:, 3:])
    assert rot[600] < 0.3 * rot[60]


def test_pnp_covariance_matches_the_actual_error():
    """Normalised estimation error squared over repeated noise draws: 6 for a calibrated 6-dof
    covariance (measured 6.2 over 400 draws at 0.5 px noise, the default 2 px threshold)."""
    rng = np.random.default_rng(13)
    X0, _, t, _ = pnp_scene(rng, PINHOLE, n=150, outliers=0)
    nees = []
    for _ in range(60):
        p1 = PINHOLE.project(X0 @ R_TRUE.T + t) + rng.normal(0.0, 0.5, (len(X0), 2))
        res = estimate_pose_pnp(X0, p1, PINHOLE)
        err = np.concatenate([res.t - t, rotation_vector(res.R @ R_TRUE.T)])
        nees.append(err @ np.linalg.solve(res.covariance, err))
    assert 4.5 < np.mean(nees) < 8.0


def test_inverse_pose_covariance_is_first_order_exact():
    t = np.array([0.3, -0.2, 1.0])
    A = np.zeros((6, 6))  # numeric Jacobian of the inverse pose's perturbation
    eps = 1e-7
    T_inv = invert_transform(make_transform(R_TRUE, t))
    for i in range(6):
        d = np.zeros(6)
        d[i] = eps
        T = make_transform(cv2.Rodrigues(d[3:])[0] @ R_TRUE, t + d[:3])
        Ti = invert_transform(T)
        A[:3, i] = (Ti[:3, 3] - T_inv[:3, 3]) / eps
        A[3:, i] = rotation_vector(Ti[:3, :3] @ T_inv[:3, :3].T) / eps
    cov = np.diag([1.0, 2.0, 3.0, 0.1, 0.2, 0.3]) * 1e-4
    np.testing.assert_allclose(invert_pose_covariance(R_TRUE, t, cov), A @ cov @ A.T, atol=1e-9)


def test_lost_covariance():
    np.testing.assert_array_equal(lost_covariance(), np.eye(6) * 1e6)


# --- pose metrics --------------------------------------------------------------------------------

def test_relative_pose_error():
    t = np.array([0.5, 0.0, 0.1])
    T = make_transform(R_TRUE, t)
    assert relative_pose_error(T, R_TRUE, t) == pytest.approx((0.0, 0.0), abs=1e-6)
    assert relative_pose_error(T, R_TRUE, -3 * t)[1] == pytest.approx(0.0, abs=1e-6)  # sign folded
    R_off = cv2.Rodrigues(np.array([0.0, np.radians(2.0), 0.0]))[0] @ R_TRUE
    t_off = cv2.Rodrigues(np.array([0.0, np.radians(10.0), 0.0]))[0] @ t
    err_R, err_t = relative_pose_error(T, R_off, t_off)
    assert err_R == pytest.approx(2.0) and err_t == pytest.approx(10.0)
    assert np.isnan(relative_pose_error(T, R_TRUE, np.zeros(3))[1])


def test_pose_auc_hand_computed():
    # sorted errors 1, 2, 3, 15 -> recall 0.25 .. 1; areas by hand: 2.625/5, 6.375/10, 16.625/20
    assert pose_auc([3.0, 15.0, 1.0, 2.0]) == pytest.approx([52.5, 63.75, 83.125])
    assert pose_auc([0.0, 0.0]) == pytest.approx([100.0, 100.0, 100.0])
    assert pose_auc([np.inf, np.nan]) == pytest.approx([0.0, 0.0, 0.0])
    assert pose_auc([1.0, np.inf], thresholds=(2,)) == pytest.approx([37.5])
    with pytest.raises(ValueError):
        pose_auc([])


def test_homography_corner_error():
    Hm = np.array([[1.1, 0.02, 5.0], [0.01, 0.95, -3.0], [1e-4, 2e-5, 1.0]])
    assert homography_corner_error(Hm, Hm, W, H) == 0.0
    assert homography_corner_error(Hm, 2.0 * Hm, W, H) == pytest.approx(0.0, abs=1e-9)
    shifted = np.array([[1.0, 0, 3.0], [0, 1.0, 4.0], [0, 0, 1.0]])
    assert homography_corner_error(shifted, np.eye(3), W, H) == pytest.approx(5.0)


# --- camera odometry as base odometry (REP 105) ----------------------------------------------------
# A forward-looking camera 0.2 m ahead of and 0.5 m above the base, tilted 10 degrees down: its
# optical axes (z forward, x right, y down) in the base's (x forward, y left, z up).
OPTICAL_IN_BASE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
TILT = cv2.Rodrigues(np.array([0.0, np.radians(10.0), 0.0]))[0]  # pitch down about base y
T_BASE_CAM = make_transform(TILT @ OPTICAL_IN_BASE, [0.2, 0.0, 0.5])


def base_trajectory(n: int = 12) -> list[np.ndarray]:
    """A base driving a curve on the floor with some roll and pitch (world frame, z up)."""
    poses = []
    for i in range(n):
        yaw, s = 0.15 * i, 0.3 * i
        R = cv2.Rodrigues(np.array([0.02 * np.sin(i), 0.03 * np.cos(i), yaw]))[0]
        poses.append(make_transform(R, [s * np.cos(yaw), s * np.sin(yaw), 0.01 * i]))
    return poses


def test_base_odometry_from_camera_odometry_is_the_base_trajectory():
    from lightglue_ros.geometry.frames import base_pose

    T_world_base = base_trajectory()
    T_world_cam = [T @ T_BASE_CAM for T in T_world_base]
    for T_wb, T_wc in zip(T_world_base, T_world_cam):
        T_odom_cam = invert_transform(T_world_cam[0]) @ T_wc  # what the tracker measures
        T_odom_base = base_pose(T_odom_cam, T_BASE_CAM)
        expected = invert_transform(T_world_base[0]) @ T_wb  # REP 105: the base's first pose
        np.testing.assert_allclose(T_odom_base, expected, atol=1e-12)
    # the camera odometry itself is not the base odometry (the test would notice a no-op)
    assert not np.allclose(invert_transform(T_world_cam[0]) @ T_world_cam[5],
                           invert_transform(T_world_base[0]) @ T_world_base[5], atol=1e-3)


def test_base_covariance_is_first_order_exact():
    """Each perturbation of the camera pose moves the base pose as the Jacobian says."""
    from lightglue_ros.geometry.covariance import perturb_pose
    from lightglue_ros.geometry.frames import base_covariance, base_pose

    rng = np.random.default_rng(3)
    T_odom_cam = invert_transform(base_trajectory()[0] @ T_BASE_CAM) @ base_trajectory()[7] \
        @ T_BASE_CAM
    T0 = base_pose(T_odom_cam, T_BASE_CAM)
    eps = 1e-6
    J = np.zeros((6, 6))
    for k in range(6):
        R, t = perturb_pose(T_odom_cam[:3, :3], T_odom_cam[:3, 3], eps * np.eye(6)[k])
        T1 = base_pose(make_transform(R, t), T_BASE_CAM)
        dr = rotation_vector(T1[:3, :3] @ T0[:3, :3].T)
        J[:, k] = np.concatenate([T1[:3, 3] - T0[:3, 3], dr]) / eps
    A = rng.normal(size=(6, 6))
    cov = A @ A.T * 1e-4
    np.testing.assert_allclose(base_covariance(T_odom_cam, cov, T_BASE_CAM), J @ cov @ J.T,
                               rtol=1e-5, atol=1e-12)


def test_pose_parameter_to_matrix():
    from lightglue_ros.config import ConfigError, parse_pose
    from lightglue_ros.geometry.frames import pose_matrix

    q = rotation_to_quaternion(T_BASE_CAM[:3, :3])
    text = " ".join(f"{v:.17g}" for v in [*T_BASE_CAM[:3, 3], *q])
    np.testing.assert_allclose(pose_matrix(parse_pose(text)), T_BASE_CAM, atol=1e-12)
    np.testing.assert_allclose(pose_matrix(parse_pose("1, 2, 3, 0, 0, 0, 1")),
                               make_transform(np.eye(3), [1, 2, 3]))
    for bad in ("1 2 3", "1 2 3 0 0 0 2", "a b c 0 0 0 1", "1 2 3 0 0 0 nan"):
        with pytest.raises(ConfigError, match="base_to_camera"):
            parse_pose(bad)


def test_skew_rows_is_the_cross_product_matrix_of_each_row():
    rng = np.random.default_rng(7)
    V, W = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    S = skew_rows(V)
    assert S.shape == (50, 3, 3)
    assert np.allclose(np.einsum("nij,nj->ni", S, W), np.cross(V, W), rtol=0, atol=1e-12)
    assert np.array_equal(S, np.array([skew(v) for v in V]))  # the same matrices, not close ones
