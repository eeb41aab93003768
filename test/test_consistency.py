"""NEES of relative poses against ground truth (``evaluation.consistency``): a covariance that
describes the errors gives a mean at the degrees of freedom; one 10x too small, ten times it."""
from __future__ import annotations

import numpy as np

from lightglue_ros.evaluation.consistency import nees_summary
from lightglue_ros.geometry.covariance import perturb_pose
from lightglue_ros.geometry.se3 import invert_transform, make_transform
from lightglue_ros.tracking import FrameRecord, TrackingStatus
from lightglue_ros.types import Trajectory, to_ns


def _run(scale: float, metric: bool, n: int = 3000):
    return nees_summary(*_records(scale, metric, n))


def _records(scale: float, metric: bool, n: int = 3000):
    """Ground truth moving 0.1 m and a little rotation per 0.1 s; each frame's relative pose
    to the one before perturbed with errors drawn from ``cov``, which the record claims is
    ``cov * scale``: (records, ground truth)."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    step = make_transform(Rotation.from_rotvec([0.01, 0.02, 0.0]).as_matrix(), [0.1, 0, 0.02])
    poses = [np.eye(4)]
    for _ in range(n):
        poses.append(poses[-1] @ step)
    stamps = np.arange(n + 1) * 0.1
    A = rng.normal(size=(6, 6)) * np.array([1e-2] * 3 + [1e-3] * 3)[:, None]
    cov = A @ A.T + np.eye(6) * 1e-9
    records = []
    for i in range(1, n + 1):
        T = invert_transform(poses[i - 1]) @ poses[i]
        R, t = perturb_pose(T[:3, :3], T[:3, 3], rng.multivariate_normal(np.zeros(6), cov))
        records.append(FrameRecord(to_ns(stamps[i]), TrackingStatus.OK, poses[i],
                                   ref_stamp_ns=to_ns(stamps[i - 1]),
                                   T_ref_cam=make_transform(R, t),
                                   relative_covariance=cov * scale, metric=metric))
    records.append(FrameRecord(to_ns(stamps[-1] + 0.1), TrackingStatus.LOST,
                               poses[-1]))  # skipped
    return records, Trajectory(stamps, np.array(poses))


def test_a_consistent_covariance_gives_the_degrees_of_freedom():
    out = _run(1.0, metric=True)
    assert out["nees_rotation_frames"] == out["nees_pose_frames"] == 3000
    assert abs(out["nees_rotation_mean"] - 3) < 0.3 and abs(out["nees_pose_mean"] - 6) < 0.5


def test_an_overconfident_covariance_is_seen_and_monocular_scores_rotation_only():
    out = _run(0.1, metric=False)
    assert abs(out["nees_rotation_mean"] - 30) < 3
    assert out["nees_pose_mean"] is None and out["nees_pose_frames"] == 0


# --- PnP's covariance with noisy 3D points -------------------------------------------------------
def _pnp_nees(depth_noise: float, sigma_px: float, with_points: bool, trials: int = 400,
              shift_px: float = 0.0, model_shift_px: float | None = None):
    """NEES of PnP poses (6 and 3 DOF) over ``trials`` scenes: 60 points 1-6 m deep seen by a
    VGA camera, their 3D positions from a depth measurement with noise sigma_z = depth_noise z^2
    and the reference keypoint's noise ``sigma_px`` across the ray, and their pixels in the
    moved camera with noise ``sigma_px`` (plus, with ``shift_px``, one shift of the whole frame
    drawn with that sigma per axis): the errors tracking against a depth map makes. PnP is given
    the points' covariances (or not, ``with_points``). With ``model_shift_px`` the NEES is the
    relative pose's (T_ref_cur, what the tracker publishes) with the common shift's term."""
    from scipy.spatial.transform import Rotation

    from lightglue_ros.evaluation.consistency import nees, pose_error
    from lightglue_ros.geometry.camera import CameraModel
    from lightglue_ros.geometry.common_shift import common_shift_covariance
    from lightglue_ros.geometry.covariance import depth_point_covariances, invert_pose_covariance
    from lightglue_ros.geometry.pnp import PnPConfig, estimate_pose_pnp

    cam = CameraModel(640, 480, np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]))
    rng = np.random.default_rng(3)
    conf = PnPConfig(ransac_threshold_px=1000.0, min_sigma_px=sigma_px)  # no outliers here
    pose, rotation = [], []
    for _ in range(trials):
        n = 60
        z = rng.uniform(1.0, 6.0, n)
        X = np.c_[cam.undistort_points(rng.uniform([0, 0], [640, 480], (n, 2))), np.ones(n)] * \
            z[:, None]
        R = Rotation.from_rotvec(rng.normal(0, 0.05, 3)).as_matrix()
        t = rng.normal(0, 0.1, 3)
        u = cam.project(X @ R.T + t) + rng.normal(0, sigma_px, (n, 2))
        if shift_px:
            u = u + rng.normal(0, shift_px, 2)
        S = depth_point_covariances(X, cam, sigma_px, depth_noise)
        noisy = X + np.einsum("nij,nj->ni", np.linalg.cholesky(S), rng.normal(size=(n, 3)))
        result = estimate_pose_pnp(noisy, u, cam, conf, S if with_points else None)
        assert result.num_inliers == n
        T_est, T_true, cov = make_transform(result.R, result.t), make_transform(R, t), \
            result.covariance
        if model_shift_px is not None:
            cov = invert_pose_covariance(result.R, result.t, cov)
            T_est, T_true = invert_transform(T_est), invert_transform(T_true)
            cov = cov + common_shift_covariance(T_est[:3, :3], cam, model_shift_px)
        e = pose_error(T_est, T_true)
        pose.append(nees(e, cov))
        rotation.append(nees(e[3:], cov[3:, 3:]))
    return float(np.mean(pose)), float(np.mean(rotation))


def test_pnp_covariance_with_noisy_depth_points_gives_the_degrees_of_freedom():
    """Depth noise of a structured-light sensor (0.0015 z^2) and of a poor one (0.01 z^2), 1 px
    keypoints: the NEES means are 6 and 3. Over 400 trials the mean of a chi-square(6) has a
    standard deviation of sqrt(12 / 400) = 0.17 (0.12 for 3 DOF); the bounds also allow the
    variance factor's floor (it only ever widens the covariance, by a few percent here) and
    the linearisation."""
    for depth_noise in (0.0015, 0.01):
        pose, rotation = _pnp_nees(depth_noise, 1.0, with_points=True)
        assert 6 * 0.85 < pose < 6 + 4 * 0.17, (depth_noise, pose)
        assert 3 * 0.85 < rotation < 3 + 4 * 0.12, (depth_noise, rotation)


def test_a_common_shift_of_the_frame_is_counted_as_a_turn_of_the_camera():
    """A 1 px shift of the whole frame (``geometry.common_shift``; the turn it makes, 2e-3 rad,
    is several times the rotation's error from 60 independent 1 px keypoints): without its term
    the relative pose's NEES is far above the target band ([0.5, 2] x the degrees of freedom,
    README), with it within it (the term takes the whole shift as a turn, while PnP on a 65
    degree field of view puts a little of it into the translation: a little cautious)."""
    pose, rotation = _pnp_nees(0.0015, 1.0, True, shift_px=1.0, model_shift_px=0.0)
    assert rotation > 2 * 3 and pose > 2 * 6, (rotation, pose)
    pose, rotation = _pnp_nees(0.0015, 1.0, True, shift_px=1.0, model_shift_px=1.0)
    assert 0.5 * 3 < rotation < 2 * 3 and 0.5 * 6 < pose < 2 * 6, (rotation, pose)


def test_the_common_shift_is_a_turn_about_the_current_cameras_x_and_y_axes():
    """Turned 90 degrees about the optical axis, the current camera's x axis is the
    reference's y: the narrower vertical field (fy larger) gives less variance about it, and
    the camera's centre (the translation) does not move."""
    from scipy.spatial.transform import Rotation

    from lightglue_ros.geometry.camera import CameraModel
    from lightglue_ros.geometry.common_shift import common_shift_covariance

    cam = CameraModel(640, 480, np.array([[500.0, 0, 320], [0, 1000, 240], [0, 0, 1]]))
    R = Rotation.from_rotvec([0, 0, np.pi / 2]).as_matrix()
    cov = common_shift_covariance(R, cam, 2.0)
    np.testing.assert_allclose(np.diag(cov), [0, 0, 0, (2 / 500) ** 2, (2 / 1000) ** 2, 0],
                               atol=1e-15)
    assert not cov[:3].any() and not cov[:, :3].any()


def test_map_point_covariance_is_the_scatter_of_its_triangulation():
    """A map point seen by two keyframes 0.5 m apart, 4 m away, 1 px keypoint noise: the
    covariance the map gives it (its observations' information, poses held) is the scatter of
    the point triangulated from noisy keypoints. NEES over 4000 draws: 3, within 4 standard
    deviations of the mean of a chi-square(3), sqrt(6 / 4000) = 0.04, plus 5% for the
    triangulation's nonlinearity."""
    from dataclasses import dataclass, field

    from lightglue_ros.geometry.camera import CameraModel
    from lightglue_ros.geometry.triangulation import triangulate
    from lightglue_ros.mapping import LocalMap, MapConfig
    from lightglue_ros.mapping.local_map import MapKeyframe

    cam = CameraModel(640, 480, np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]))

    @dataclass
    class Frame:
        T_odom_cam: np.ndarray
        keypoints: np.ndarray
        camera: CameraModel = cam
        ids: np.ndarray = field(default_factory=lambda: np.array([7]))
        depth_points: None = None
        depth_noise: float = 0.0
        baseline_m: float = 0.0
        descriptors: np.ndarray = field(default_factory=lambda: np.ones((1, 4)))

    X = np.array([0.4, -0.3, 4.0])  # odom = camera 0
    T1 = make_transform(np.eye(3), [0.5, 0.02, 0.1])  # camera 1 in odom
    frames = [Frame(np.eye(4), cam.project(X[None])),
              Frame(T1, cam.project((X - T1[:3, 3])[None]))]
    local = LocalMap(MapConfig(sigma_px=1.0))
    local.keyframes = [MapKeyframe.of(f) for f in frames]
    local.points = {7: X}
    cov = local.point_covariances_in(frames[0])[0]

    rng = np.random.default_rng(5)
    T_10 = invert_transform(T1)
    u0 = frames[0].keypoints + rng.normal(0, 1.0, (4000, 2))
    u1 = frames[1].keypoints + rng.normal(0, 1.0, (4000, 2))
    points, valid = triangulate(T_10[:3, :3], T_10[:3, 3], cam.undistort_points(u0),
                                cam.undistort_points(u1), cam.focal_mean, 100.0, 0.0)
    assert valid.all()
    e = points - X
    mean = float(np.mean(np.einsum("ni,ij,nj->n", e, np.linalg.inv(cov), e)))
    assert abs(mean - 3) < 4 * np.sqrt(6 / 4000) + 0.15, mean


def test_a_tighter_inlier_threshold_does_not_make_a_two_view_pose_look_more_certain():
    """Two views of 200 points with 1 px keypoint noise, the essential matrix estimated with the
    XFeat threshold (0.75 px, which cuts the noise) and with 3 px: the tight threshold keeps
    about half the matches, so its rotation covariance must be the larger. Taken from the
    inliers' residuals alone (cut at 0.75 px) it came out 3x smaller."""
    from scipy.spatial.transform import Rotation

    from lightglue_ros.geometry.camera import CameraModel
    from lightglue_ros.geometry.two_view import TwoViewConfig, estimate_relative_pose

    cam = CameraModel(640, 480, np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]))
    rng = np.random.default_rng(8)
    trace = {0.75: [], 3.0: []}
    for _ in range(20):
        X = np.c_[rng.uniform(-2, 2, 200), rng.uniform(-1.5, 1.5, 200), rng.uniform(3, 8, 200)]
        R = Rotation.from_rotvec(rng.normal(0, 0.03, 3)).as_matrix()
        t = np.array([0.3, 0.0, 0.05])
        u0 = cam.project(X) + rng.normal(0, 1.0, (200, 2))
        u1 = cam.project(X @ R.T + t) + rng.normal(0, 1.0, (200, 2))
        results = {threshold: estimate_relative_pose(
            u0, u1, cam, cam, TwoViewConfig(ransac_threshold_px=threshold)) for threshold in trace}
        if all(r.model == "essential" for r in results.values()):  # GRIC may pick a homography
            for threshold, result in results.items():
                trace[threshold].append(np.trace(result.covariance[3:, 3:]))
    assert len(trace[3.0]) >= 10
    assert np.mean(trace[0.75]) > np.mean(trace[3.0])


# --- ground truth's own noise ---------------------------------------------------------------
def _noisy_groundtruth(rate_hz: float, sigma_rad: float, sigma_m: float, seconds: float = 20.0):
    """A smooth motion (0.3 rad/s yaw, 0.5 m/s) sampled at ``rate_hz`` with white noise of the
    given sigmas on each sample's rotation (body axes) and position."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(7)
    stamps = np.arange(0.0, seconds, 1.0 / rate_hz)
    poses = []
    for s in stamps:
        R = Rotation.from_rotvec([0, 0.3 * s + 0.1 * np.sin(s), 0]) * \
            Rotation.from_rotvec(rng.normal(0, sigma_rad, 3))
        poses.append(make_transform(R.as_matrix(), [0.5 * s, 0.1 * np.sin(s), 0]
                                    + rng.normal(0, sigma_m, 3)))
    return Trajectory(stamps, np.array(poses))


def test_groundtruth_noise_is_measured_from_fast_samples_only():
    """Motion-capture-like ground truth at 300 Hz with 0.05 deg and 0.2 mm of noise per sample:
    the second differences give both back (within 5%: 6000 samples, a variance estimate's
    relative standard deviation is sqrt(2 / 6000) * (70 / 36)^0.5 < 3%, second differences
    being correlated, and the smooth motion's own second differences are 1e-5 of it).
    Ground truth at the frame rate is not measured (None)."""
    from lightglue_ros.evaluation.consistency import groundtruth_noise

    gt = _noisy_groundtruth(300.0, np.radians(0.05), 2e-4)
    rotation, position = groundtruth_noise(gt, 0.1)
    np.testing.assert_allclose(np.degrees(np.sqrt(rotation)), 0.05, rtol=0.05)
    np.testing.assert_allclose(np.sqrt(position), 2e-4, rtol=0.05)
    assert groundtruth_noise(_noisy_groundtruth(10.0, 0.0, 0.0), 0.1) is None


def test_nees_with_groundtruth_noise_counts_it():
    """Estimates that are exact against the true motion, scored against noisy ground truth with
    a covariance 100x below the ground truth's noise: the plain NEES is far above 3, the one
    with the measured ground-truth noise near 3 (200 frames: the mean of a chi-square(3) has a
    standard deviation of 0.17; 4 of them, and 10% for the noise estimate and interpolation)."""
    gt = _noisy_groundtruth(300.0, np.radians(0.05), 2e-4)
    clean = _noisy_groundtruth(300.0, 0.0, 0.0)
    records = []
    for i in range(1, 200):
        a, b = 30 * (i - 1), 30 * i  # frames 0.1 s apart, on ground-truth samples
        T = invert_transform(clean.poses[a]) @ clean.poses[b]
        records.append(FrameRecord(to_ns(gt.stamps[b]), TrackingStatus.OK, clean.poses[b],
                                   ref_stamp_ns=to_ns(gt.stamps[a]), T_ref_cam=T,
                                   relative_covariance=np.eye(6) * np.radians(0.005) ** 2,
                                   metric=True))
    out = nees_summary(records, gt)
    assert out["nees_rotation_mean"] > 50
    assert abs(out["nees_rotation_with_gt_noise_mean"] - 3) < 0.1 * 3 + 4 * 0.17, out
    assert out["gt_rotation_sigma_deg"] is not None and out["nees_rotation_over_99"] > 0.5


def test_nees_is_also_given_by_the_model_that_estimated_the_pose():
    """Consistent records, every other one relabelled as a pure rotation with a covariance 10x
    too small: the by-model means are 3 and 30 (bounds as in the tests above)."""
    import dataclasses

    records, gt = _records(1.0, metric=False)
    records = [dataclasses.replace(r, model="homography",
                                   relative_covariance=r.relative_covariance * 0.1)
               if i % 2 else dataclasses.replace(r, model="pnp")
               for i, r in enumerate(records)]
    by_model = nees_summary(records, gt)["nees_rotation_by_model"]
    assert by_model["pnp"]["frames"] == by_model["homography"]["frames"] == 1500
    assert abs(by_model["pnp"]["mean"] - 3) < 0.4 and abs(by_model["homography"]["mean"] - 30) < 4


def test_a_pure_rotation_covariance_counts_the_translation_its_test_cannot_see():
    """Two views of 60-400 points 1-20 m away, 0.3-1.2 px keypoint noise, a small rotation and a
    translation from 1e-4 to 5e-2 of the nearest depth: where the parallax test calls it a pure
    rotation (t unseen), the rotation absorbed the translation, by up to 0.5 degrees, and its
    NEES over the draws must be at the 3 degrees of freedom (within [1.5, 6]); from the keypoint
    noise alone it was about 350."""
    from scipy.spatial.transform import Rotation

    from lightglue_ros.geometry.camera import CameraModel
    from lightglue_ros.geometry.two_view import estimate_relative_pose

    cam = CameraModel(640, 480, np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]))
    rng = np.random.default_rng(0)
    values = []
    for _ in range(150):
        n = int(rng.integers(60, 400))
        near = rng.uniform(1, 4)
        z = rng.uniform(near, near * rng.uniform(1.2, 5), n)
        X = np.c_[rng.uniform(-0.6, 0.6, n) * z, rng.uniform(-0.45, 0.45, n) * z, z]
        R = Rotation.from_rotvec(rng.normal(0, 0.03, 3)).as_matrix()
        direction = rng.normal(size=3)
        t = direction / np.linalg.norm(direction) * near * 10 ** rng.uniform(-4, -1.3)
        sigma = rng.uniform(0.3, 1.2)
        u0 = cam.project(X) + rng.normal(0, sigma, (n, 2))
        u1 = cam.project(X @ R.T + t) + rng.normal(0, sigma, (n, 2))
        result = estimate_relative_pose(u0, u1, cam, cam)
        if result.pure_rotation:
            error = Rotation.from_matrix(result.R @ R.T).as_rotvec()
            values.append(error @ np.linalg.solve(result.covariance[3:, 3:], error))
    assert len(values) >= 100
    assert 1.5 <= np.mean(values) <= 6.0, np.mean(values)
