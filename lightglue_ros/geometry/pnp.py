"""Metric pose from depth: back-project frame-0 keypoints with its depth image, PnP in frame 1.

Conventions: the result (R, t) maps camera-0 points to camera 1, X1 = R @ X0 + t, in metres
(SuperGlue's T_0to1); camera optical frames (REP 103: x right, y down, z forward); pixels follow
OpenCV (integer = pixel centre). Depth images follow REP 118: 16UC1 in millimetres or 32FC1 in
metres, holding the z coordinate (not the ray length), registered to the colour image: the same
(distorted) pixel grid and camera model as the keypoints.

Depth is sampled at the nearest pixel, not interpolated: at an object boundary a bilinear mix of
foreground and background depth is a point that exists on neither surface, and a keypoint detector
favours exactly those corners.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .camera import CameraModel
from .covariance import (DEFAULT_MIN_SIGMA_PX, lost_covariance, perturb_pose, pnp_covariance,
                         pose_jacobian)

MIN_POINTS = 6
# Samples of the quick classic RANSAC: at half the points inliers, 1 - (1 - 0.5^4)^100 =
# 99.8% of runs draw an outlier-free sample (P3P plus a fourth point to pick its solution).
QUICK_ITERATIONS = 100
_FISHEYE_GN_STEPS = 3
# Default valid depth range in metres: covers structured-light, active-stereo and ToF RGB-D
# sensors; nearer values are below every such sensor's minimum range, farther ones are noise.
DEFAULT_MIN_DEPTH = 0.1
DEFAULT_MAX_DEPTH = 20.0


def valid_depth(z_m: np.ndarray, min_depth: float = DEFAULT_MIN_DEPTH,
                max_depth: float = DEFAULT_MAX_DEPTH) -> np.ndarray:
    """Which depths (metres) are usable: finite and within [min_depth, max_depth] (0 = none)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(z_m) & (z_m >= min_depth) & (z_m <= max_depth)


def depth_coverage(depth_image: np.ndarray, depth_unit: float | None = None,
                   min_depth: float = DEFAULT_MIN_DEPTH,
                   max_depth: float = DEFAULT_MAX_DEPTH) -> float:
    """Share of the pixels of a depth image (REP 118 units, or ``depth_unit`` metres per value)
    that are usable; 0 when the whole image is NaN, Inf, 0 or out of range."""
    depth = np.asarray(depth_image)
    if depth.size == 0:
        return 0.0
    unit = depth_unit if depth_unit is not None else (0.001 if depth.dtype == np.uint16 else 1.0)
    return float(valid_depth(depth.astype(np.float64) * unit, min_depth, max_depth).mean())


def backproject(pts_px: np.ndarray, depth_image: np.ndarray, cam: CameraModel,
                depth_unit: float | None = None, min_depth: float = DEFAULT_MIN_DEPTH,
                max_depth: float = DEFAULT_MAX_DEPTH) -> tuple[np.ndarray, np.ndarray]:
    """3D points (N, 3) in the camera frame of keypoints (N, 2), and which are valid (N,).

    ``depth_unit`` is metres per depth value; None takes REP 118's (0.001 for uint16, 1 for float).
    Depth is read at the keypoint's raw (distorted) pixel and the point placed along its
    undistorted ray. Invalid: keypoints outside the image or non-finite, and depths that are 0,
    NaN, Inf or outside [min_depth, max_depth] metres; their rows are NaN.
    """
    depth = np.asarray(depth_image)
    if depth.shape != (cam.height, cam.width):
        raise ValueError(f"depth image is {depth.shape[::-1]} (w, h) but the camera is "
                         f"{cam.width}x{cam.height}: depth must be registered to the keypoints' "
                         "image")
    if depth.dtype == np.uint16:
        unit = 0.001 if depth_unit is None else depth_unit
    elif depth.dtype in (np.float32, np.float64):
        unit = 1.0 if depth_unit is None else depth_unit
    else:
        raise ValueError("depth image must be uint16 (16UC1) or float32 (32FC1), "
                         f"got {depth.dtype}")
    if not unit > 0:
        raise ValueError(f"depth_unit must be positive, got {unit}")

    pts = np.asarray(pts_px, dtype=np.float64).reshape(-1, 2)
    points = np.full((len(pts), 3), np.nan)
    col, row = np.rint(pts[:, 0]), np.rint(pts[:, 1])  # rint(NaN) stays NaN, and fails the test
    inside = (col >= 0) & (col < cam.width) & (row >= 0) & (row < cam.height)
    z = np.full(len(pts), np.nan)
    z[inside] = depth[row[inside].astype(int), col[inside].astype(int)].astype(np.float64) * unit
    valid = inside & valid_depth(z, min_depth, max_depth)
    if np.any(valid):
        rays = cam.undistort_points(pts[valid])
        points[valid] = np.concatenate([rays, np.ones((len(rays), 1))], axis=1) * z[valid, None]
        valid[valid] = np.all(np.isfinite(points[valid]), axis=1)
    return points, valid


@dataclass(frozen=True)
class PnPConfig:
    """Robust estimation settings; pixel values are in the (distorted) image of camera 1."""

    ransac_threshold_px: float = 2.0  # reprojection error of an inlier; depth noise adds to it
    confidence: float = 0.9999
    max_iterations: int = 2000
    min_points: int = MIN_POINTS  # fewer finite correspondences, or fewer inliers, fail
    # The keypoints' own noise (1 sigma), the floor of the residual sigma behind the covariance
    # (a fit on few points can leave residuals far below it by chance).
    min_sigma_px: float = DEFAULT_MIN_SIGMA_PX

    def __post_init__(self) -> None:
        if not self.ransac_threshold_px > 0:
            raise ValueError("ransac_threshold_px must be positive, "
                             f"got {self.ransac_threshold_px}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be at least 1, got {self.max_iterations}")
        if self.min_points < MIN_POINTS:
            raise ValueError(f"min_points must be at least {MIN_POINTS}, got {self.min_points}")


@dataclass
class PnPResult:
    """Metric pose (R, t), X1 = R X0 + t, with its inliers and reprojection errors."""

    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    t: np.ndarray = field(default_factory=lambda: np.zeros(3))  # metres
    inliers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # (N,)
    num_inliers: int = 0
    residuals_px: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (N,), NaN if unusable
    median_residual_px: float = float("nan")  # over the inliers
    rms_residual_px: float = float("nan")
    covariance: np.ndarray = field(default_factory=lost_covariance)  # 6x6, see ``covariance``
    reason: str = ""  # why the estimate failed; empty on success

    @property
    def success(self) -> bool:
        return not self.reason


def estimate_pose_pnp(points3d_cam0: np.ndarray, pts1_px: np.ndarray, cam1: CameraModel,
                      conf: PnPConfig = PnPConfig(),
                      point_covariances: np.ndarray | None = None,
                      covariance: bool = True) -> PnPResult:
    """Pose of camera 1 from 3D points (N, 3) in camera-0 coordinates and their pixels (N, 2) in 1.

    RANSAC (``_ransac``) on undistorted pixels, then least squares of the reprojection error on
    the inliers (``_refine``), inliers re-selected through the real lens model, and refined once
    more. Rows with NaN/Inf (e.g. invalid depth) are ignored. ``point_covariances`` (N, 3, 3),
    camera-0 frame, is each point's uncertainty: it enters the covariance (``pnp_covariance``),
    never the pose. ``covariance=False`` leaves it out (``lost_covariance``) for a caller that
    computes its own.
    """
    X = np.asarray(points3d_cam0, dtype=np.float64)
    u = np.asarray(pts1_px, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 3 or u.shape != (len(X), 2):
        raise ValueError(f"need points (N, 3) and pixels (N, 2), got {X.shape} and {u.shape}")
    n = len(X)

    def fail(reason: str) -> PnPResult:
        return PnPResult(inliers=np.zeros(n, dtype=bool), residuals_px=np.full(n, np.nan),
                         reason=reason)

    idx = np.flatnonzero(np.all(np.isfinite(X), axis=1) & np.all(np.isfinite(u), axis=1))
    if len(idx) < conf.min_points:
        return fail(f"only {len(idx)} finite 3D-2D correspondences, need {conf.min_points}")
    Xf = X[idx]
    if np.linalg.svd(Xf - Xf.mean(axis=0), compute_uv=False)[1] < 1e-6 * np.sqrt(len(idx)):
        return fail("3D points are (nearly) coincident or collinear: the pose is not determined")
    # Undistorted pixels of an ideal pinhole camera with the same K: RANSAC needs no lens model.
    ideal = cam1.undistort_points(u[idx]) * np.diag(cam1.K)[:2] + cam1.K[:2, 2]
    try:
        ok, rvec, tvec, ransac_inl = _ransac(Xf, ideal, cam1.K, conf)
    except cv2.error as exc:
        return fail(f"solvePnPRansac failed: {exc}")
    if not ok or ransac_inl is None or len(ransac_inl) < conf.min_points:
        return fail("RANSAC found no pose with enough inliers")
    inl = np.zeros(len(idx), dtype=bool)
    inl[ransac_inl.ravel()] = True
    R, t = cv2.Rodrigues(rvec)[0], tvec.ravel()
    for _ in range(2):
        R, t = _refine(Xf[inl], u[idx][inl], ideal[inl], cam1, R, t)
        res = np.linalg.norm(cam1.project(Xf @ R.T + t) - u[idx], axis=1)  # NaN behind camera 1
        with np.errstate(invalid="ignore"):
            inl = res < conf.ransac_threshold_px
        if np.count_nonzero(inl) < conf.min_points:
            return fail(f"only {np.count_nonzero(inl)} inliers after refinement, "
                        f"need {conf.min_points}")

    residuals = np.full(n, np.nan)
    residuals[idx] = res
    mask = np.zeros(n, dtype=bool)
    mask[idx[inl]] = True
    return PnPResult(
        R=R, t=t, inliers=mask, num_inliers=int(np.count_nonzero(inl)), residuals_px=residuals,
        median_residual_px=float(np.median(res[inl])),
        rms_residual_px=float(np.sqrt(np.mean(res[inl] ** 2))),
        covariance=pnp_covariance(
            R, t, Xf[inl], u[idx][inl], cam1, conf.min_sigma_px,
            None if point_covariances is None else np.asarray(point_covariances)[idx][inl])
        if covariance else lost_covariance())


def _ransac(X: np.ndarray, ideal: np.ndarray, K: np.ndarray, conf: PnPConfig) -> tuple:
    """cv2.solvePnPRansac's answer, quickly where it can be. Tracking mostly sees few outliers:
    there the classic loop over P3P samples finds the pose within QUICK_ITERATIONS samples in a
    fraction of a millisecond, where MAGSAC++ spends 3-10 ms on its scoring (measured on 450
    points: 0.25 against 3.1 ms at 10% outliers). When that loop explains fewer than half the
    points, MAGSAC++ (cv2.USAC_MAGSAC) decides: it stays fast and robust at 50-85% outliers,
    where the classic loop needs thousands of samples. Either way ``_refine`` polishes the pose
    on the inliers after."""
    kwargs = {"reprojectionError": conf.ransac_threshold_px, "confidence": conf.confidence}
    quick = cv2.solvePnPRansac(X, ideal, K, None, iterationsCount=QUICK_ITERATIONS,
                               flags=cv2.SOLVEPNP_P3P, **kwargs)
    if quick[0] and quick[3] is not None and len(quick[3]) >= 0.5 * len(X):
        return quick
    return cv2.solvePnPRansac(X, ideal, K, None, iterationsCount=conf.max_iterations,
                              flags=cv2.USAC_MAGSAC, **kwargs)


def _refine(X: np.ndarray, u: np.ndarray, ideal: np.ndarray, cam: CameraModel, R: np.ndarray,
            t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of the reprojection error in raw pixels, where the keypoint noise is.

    OpenCV's pinhole lens models: cv2.solvePnPRefineLM with the distortion coefficients. Fisheye,
    which OpenCV cannot refine: LM on the undistorted pixels ``ideal``, which over-weights the
    stretched periphery, then Gauss-Newton steps on the raw pixels (3x lower translation error
    measured on a 110-degree lens).
    """
    rvec = cv2.Rodrigues(R)[0]
    if cam.distortion_model != "equidistant":
        D = cam.D if cam.is_distorted else None
        rvec, tvec = cv2.solvePnPRefineLM(X, u, cam.K, D, rvec, t.reshape(3, 1).copy())
        return cv2.Rodrigues(rvec)[0], tvec.ravel()
    rvec, tvec = cv2.solvePnPRefineLM(X, ideal, cam.K, None, rvec, t.reshape(3, 1).copy())
    R, t = cv2.Rodrigues(rvec)[0], tvec.ravel()

    def residuals(Ri: np.ndarray, ti: np.ndarray) -> np.ndarray:
        return (cam.project(X @ Ri.T + ti) - u).ravel()

    for _ in range(_FISHEYE_GN_STEPS):
        r = residuals(R, t)
        J = pose_jacobian(residuals, R, t, np.eye(6))
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(J))):
            break
        R, t = perturb_pose(R, t, np.linalg.lstsq(J, -r, rcond=None)[0])
    return R, t
