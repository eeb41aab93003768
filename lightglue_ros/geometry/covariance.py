"""6x6 pose covariances from the residuals of an estimate's inliers, for PoseWithCovariance.

Conventions: the pose (R, t) maps camera-0 points to camera 1, X1 = R @ X0 + t (see ``se3``).
The covariance is ordered (tx, ty, tz, rx, ry, rz) like ROS ``geometry_msgs/PoseWithCovariance``
and describes the perturbation

    t' = t + dt,    R' = exp([dr]x) @ R,

i.e. the translation error and a small rotation about the fixed x, y, z axes of the frame the pose
maps into (camera 1). ``invert_pose_covariance`` gives it for the inverse pose (camera 1 in
camera 0, what a tracker publishes as the camera motion).

Method (Gauss-Newton): with the Jacobian J of the residual vector with respect to the perturbation
(central differences, generic over lens models and residual types), cov = sigma^2 (J^T J)^+ where
sigma^2 = sum(r^2) / (n - dof) is the residual variance of the inliers (n scalar residuals, dof =
parameters of the estimated model). More inliers make J^T J larger and smaller noise makes sigma^2
smaller, so the covariance shrinks with both. sigma is floored at ``min_sigma_px``: a near-zero
residual over few points is a lucky fit, not a keypoint located to better than 0.1 pixel, and a
SLAM backend must not be told the pose is exact.

PnP (``pnp_covariance``) also counts the error of its 3D points, which in tracking is most of the
error (a depth sensor's, a stereo disparity's, a triangulation's): each correspondence's residual
has the covariance C_i = s^2 I + J_X Sigma_X J_X^T (keypoint noise s, and the point's covariance
Sigma_X seen through the projection), the pose covariance is (sum J_i^T C_i^-1 J_i)^-1, scaled by
the a-posteriori variance factor of the fit (``variance_factor``).
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from .camera import CameraModel
from .epipolar import sampson_essential, sampson_homography
from .se3 import skew, skew_rows

# Variance (m^2 or rad^2) of what the measurement says nothing about: the scale of a monocular
# translation, the translation of a pure rotation, a lost pose. Large enough that a backend gives
# it no weight, small enough to keep the matrix well conditioned in float64.
LARGE_VARIANCE = 1e6
DEFAULT_MIN_SIGMA_PX = 0.1
_STEP = 1e-6  # central-difference step: radians, metres, or unit-translation units

Residuals = Callable[[np.ndarray, np.ndarray], np.ndarray]


def lost_covariance() -> np.ndarray:
    """Covariance of a pose the tracker could not estimate: LARGE_VARIANCE on the diagonal."""
    return np.eye(6) * LARGE_VARIANCE


# What the motion of a lost stretch may have been, added once to the pose covariance when
# tracking restarts at the last pose: 1 m and about 18 degrees (1 sigma). Large enough to free a
# backend's estimate, far below the variances backends read as "no estimate" (rtabmap: 9999).
RESTART_VARIANCE_M2 = 1.0
RESTART_VARIANCE_RAD2 = 0.1


def restart_covariance() -> np.ndarray:
    """Covariance added to the pose when tracking restarts without a motion link."""
    return np.diag([RESTART_VARIANCE_M2] * 3 + [RESTART_VARIANCE_RAD2] * 3)


def pnp_covariance(R: np.ndarray, t: np.ndarray, points3d: np.ndarray, pts_px: np.ndarray,
                   cam: CameraModel, min_sigma_px: float = DEFAULT_MIN_SIGMA_PX,
                   point_covariances: np.ndarray | None = None) -> np.ndarray:
    """Covariance of a metric pose from its 3D-2D inliers.

    ``min_sigma_px`` is the keypoints' noise; ``point_covariances`` (N, 3, 3), in the frame of
    ``points3d``, that of each point (None: exact points; a NaN row: a point of unknown origin,
    given ``unknown_point_covariance``). Each residual's covariance is
    C_i = s^2 I + J_X Sigma_X J_X^T; the pose's is f (sum J_i^T C_i^-1 J_i)^-1 with f the
    variance factor of the residuals (``variance_factor``).
    """
    X, t, residuals, r = _reprojection(R, t, points3d, pts_px, cam)
    n = len(X)
    if 2 * n <= 6 or not np.all(np.isfinite(r)):
        return lost_covariance()
    C = np.broadcast_to(np.eye(2) * min_sigma_px ** 2, (n, 2, 2)).copy()
    if point_covariances is not None:
        S = np.array(point_covariances, dtype=np.float64).reshape(n, 3, 3)
        unknown = ~np.all(np.isfinite(S), axis=(1, 2))
        S[unknown] = unknown_point_covariance(X[unknown])
        JX = _projection_jacobian(cam, R, t, X)  # (n, 2, 3)
        C += JX @ S @ JX.transpose(0, 2, 1)
    W = np.linalg.inv(C)
    J = pose_jacobian(residuals, R, t, np.eye(6)).reshape(n, 2, 6)
    if not np.all(np.isfinite(W)) or not np.all(np.isfinite(J)):
        return lost_covariance()
    information = np.einsum("nai,nab,nbj->ij", J, W, J)
    chi2 = float(np.einsum("na,nab,nb->", r, W, r))
    cov = variance_factor(chi2, 2 * n - 6) * np.linalg.pinv(information, hermitian=True)
    return _symmetric(cov)


def relative_pnp_covariance(R: np.ndarray, t: np.ndarray, points3d: np.ndarray,
                            pts_px: np.ndarray, cam: CameraModel, sigma_px: float,
                            other_covariances: np.ndarray, own_information: np.ndarray
                            ) -> np.ndarray:
    """Covariance of a PnP pose (R, t) from camera 0 (the reference) to camera 1, when the 3D
    points are the map's, expressed in camera 0 through camera 0's own estimated pose.

    ``pnp_covariance`` takes camera 0 as exact. It is not: camera 0 was placed among the map
    points by its own keypoints, so its error relative to the map moves every point seen from it
    together, and the relative pose inherits that shared error whatever the number of points.
    ``other_covariances`` (N, 3, 3, camera-0 axes) is what the rest of the map knows of each
    point (NaN rows: nothing, ``unknown_point_covariance``), ``own_information`` (N, 3, 3) what
    camera 0's own observation says (``observation_information``). Camera 0's pose and the
    points are estimated from both (their joint covariance: camera 0's pose error eta, and each
    point's error in camera 0 given eta); the pose of camera 1 is fitted to those points with
    pixel noise ``sigma_px``. The covariance is ``pnp_covariance``'s (each point's own error,
    weighted as the fit weighs it) plus the part of eta the fit passes on, K cov(eta) K^T, scaled
    by the variance factor of camera 1's residuals. With exact map points eta is camera 0's own
    PnP error; with nothing but camera 0's depth it vanishes. The other keyframes' pose errors
    are still taken as zero.
    """
    X, t, residuals, r = _reprojection(R, t, points3d, pts_px, cam)
    n = len(X)
    if 2 * n <= 6 or not np.all(np.isfinite(r)):
        return lost_covariance()
    other = np.array(other_covariances, dtype=np.float64).reshape(n, 3, 3)
    unknown = ~np.all(np.isfinite(other), axis=(1, 2))
    other[unknown] = unknown_point_covariance(X[unknown])
    Lambda = np.linalg.inv(other)  # the rest of the map's information on each point
    P_inv = np.linalg.inv(Lambda + np.asarray(own_information, np.float64).reshape(n, 3, 3))
    D = _projection_jacobian(cam, R, t, X)  # (n, 2, 3)
    W = np.linalg.inv(sigma_px ** 2 * np.eye(2) + D @ P_inv @ D.transpose(0, 2, 1))
    J = pose_jacobian(residuals, R, t, np.eye(6)).reshape(n, 2, 6)
    if not all(np.all(np.isfinite(a)) for a in (P_inv, W, J)):
        return lost_covariance()
    cov = np.linalg.pinv(np.einsum("nai,nab,nbj->ij", J, W, J), hermitian=True)
    G = np.zeros((n, 3, 6))  # a point in camera 0 by camera 0's pose: dX = dt - [X]x dr
    G[:, :, :3] = np.eye(3)
    G[:, :, 3:] = -skew_rows(X)
    # eta's information: each point's other information in series with camera 0's observation
    eta_info = np.einsum("nai,nab,nbj->ij", G, Lambda - Lambda @ P_inv @ Lambda, G)
    B = P_inv @ Lambda @ G  # (n, 3, 6): how eta moves each point's estimate in camera 0
    K = cov @ np.einsum("nai,nab,nbc,ncj->ij", J, W, D, B)
    shared = K @ np.linalg.pinv(_symmetric(eta_info), hermitian=True) @ K.T
    chi2 = float(np.einsum("na,nab,nb->", r, W, r))
    return _symmetric(variance_factor(chi2, 2 * n - 6) * (cov + shared))


def observation_information(points: np.ndarray, cam: CameraModel, sigma_px: float,
                            depth_sigma_m: np.ndarray | None = None) -> np.ndarray:
    """(N, 3, 3) information a camera's own observation gives on points in its frame: its
    keypoint (noise ``sigma_px``) across the ray, and its depth (noise ``depth_sigma_m`` per
    point, NaN or None where none) along z."""
    X = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    J = _projection_jacobian(cam, np.eye(3), np.zeros(3), X)
    info = J.transpose(0, 2, 1) @ J / sigma_px ** 2
    if depth_sigma_m is not None:
        s = np.asarray(depth_sigma_m, dtype=np.float64).reshape(-1)
        has = np.isfinite(s) & (s > 0)
        info[has, 2, 2] += 1.0 / s[has] ** 2
    return info


def _reprojection(R: np.ndarray, t: np.ndarray, points3d: np.ndarray, pts_px: np.ndarray,
                  cam: CameraModel) -> tuple[np.ndarray, np.ndarray, Residuals, np.ndarray]:
    """(points (N, 3), t (3,), the reprojection residuals as a function of the pose, their
    values (N, 2) at (R, t)) of a PnP problem."""
    X = np.asarray(points3d, dtype=np.float64).reshape(-1, 3)
    u = np.asarray(pts_px, dtype=np.float64).reshape(-1, 2)

    def residuals(Ri: np.ndarray, ti: np.ndarray) -> np.ndarray:
        return (cam.project(X @ Ri.T + ti) - u).ravel()

    t = np.reshape(np.asarray(t, dtype=np.float64), 3)
    return X, t, residuals, residuals(R, t).reshape(len(X), 2)


def variance_factor(chi2: float, redundancy: int) -> float:
    """A-posteriori variance factor of a fit: chi2 / redundancy, at least 1.

    With the prior noise model right (keypoint noise, point covariances) it is 1 in expectation;
    above 1 the residuals say the noise is larger than the model (an extractor noisier than
    ``keypoint_sigma_px``, a point worse than its covariance says), and the covariance grows with
    it. It never shrinks the model's covariance: residuals cannot see an error the fit absorbs
    (a point moved along the pose's own ambiguities), and a small chi2 over few points is chance.
    """
    return max(chi2 / redundancy, 1.0) if redundancy > 0 else LARGE_VARIANCE


def unknown_point_covariance(points: np.ndarray) -> np.ndarray:
    """(N, 3, 3) covariance of points whose measurements are no longer known (kept from before
    a restart): each known to no better than its own distance, sigma = |X| in every direction."""
    X = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return np.sum(X ** 2, axis=1)[:, None, None] * np.eye(3)


def depth_point_covariances(points: np.ndarray, cam: CameraModel, sigma_px: float,
                            depth_noise: float) -> np.ndarray:
    """(N, 3, 3) covariance of points back-projected from depth, X = z (x, y, 1): the keypoint's
    noise ``sigma_px`` across the ray and the depth noise sigma_z = depth_noise z^2 along z (a
    depth sensor's, or a stereo pair's from its disparity noise); NaN rows stay NaN."""
    X = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    z = X[:, 2]
    ray = X / z[:, None]
    lateral = np.zeros((len(X), 3, 3))
    lateral[:, 0, 0] = (z * sigma_px / cam.fx) ** 2
    lateral[:, 1, 1] = (z * sigma_px / cam.fy) ** 2
    return lateral + ((depth_noise * z ** 2) ** 2)[:, None, None] * np.einsum("ni,nj->nij",
                                                                             ray, ray)


def _projection_jacobian(cam: CameraModel, R: np.ndarray, t: np.ndarray,
                         X: np.ndarray) -> np.ndarray:
    """(N, 2, 3) derivative of each point's pixel in the camera (R, t) with respect to the point
    (central differences, steps relative to its distance: any lens model)."""
    h = _STEP * np.maximum(np.linalg.norm(X, axis=1), 1.0)
    columns = []
    for axis in range(3):
        d = np.zeros_like(X)
        d[:, axis] = h
        columns.append((cam.project((X + d) @ R.T + t) - cam.project((X - d) @ R.T + t))
                       / (2.0 * h[:, None]))
    return np.stack(columns, axis=2)


def two_view_covariance(R: np.ndarray, t: np.ndarray, x0: np.ndarray, x1: np.ndarray,
                        f0: np.ndarray, f1: np.ndarray,
                        min_sigma_px: float = DEFAULT_MIN_SIGMA_PX) -> np.ndarray:
    """Covariance of a monocular relative pose with unit ``t`` from the Sampson (epipolar) errors.

    ``x0``/``x1`` are the inliers' normalized coordinates, ``f0``/``f1`` each camera's (fx, fy).
    Epipolar residuals do not change with the length of t, so the translation is estimated on the
    two directions normal to t only, and the direction along t (the unknown scale) gets
    LARGE_VARIANCE instead of a singular matrix.
    """
    t = np.reshape(t, 3) / np.linalg.norm(t)
    basis = np.zeros((6, 5))
    basis[:3, :2] = np.linalg.svd(t[None, :])[2][1:].T  # orthonormal, normal to t
    basis[3:, 2:] = np.eye(3)

    def residuals(Ri: np.ndarray, ti: np.ndarray) -> np.ndarray:
        return sampson_essential(skew(ti) @ Ri, x0, x1, f0, f1)

    cov = _gauss_newton_covariance(residuals, R, t, basis, dof=5, min_sigma_px=min_sigma_px)
    cov[:3, :3] += LARGE_VARIANCE * np.outer(t, t)
    return cov


def rotation_covariance(R: np.ndarray, x0: np.ndarray, x1: np.ndarray, f0: np.ndarray,
                        f1: np.ndarray, min_sigma_px: float = DEFAULT_MIN_SIGMA_PX,
                        unseen_parallax_px: float = 0.0,
                        absorbed: np.ndarray | None = None) -> np.ndarray:
    """Covariance of a pure rotation (x1 ~ R x0) from its Sampson errors; translation unknown.

    A "pure" rotation is one whose translation a parallax test could not see, not one without
    translation: a sideways translation moves every point of a scene at one depth alike, which
    the fitted rotation absorbs as a turn about the other image axis. Two terms count it, about
    camera 1's x and y axes only (a turn about the optical axis is not what a translation looks
    like): ``unseen_parallax_px``, the image motion such a translation may cause unnoticed (the
    test's bound), as the variance (px / f)^2 on each axis; and ``absorbed`` (a rotation vector,
    this module's convention), the rotation from the essential matrix's R, which left the
    translation free on the same matches, to R: one sample of what the translation did, whose
    x and y part is added as its outer product. The bound alone holds where the scene's depths
    differ as much as they average; a scene at nearly one depth hides a translation many times
    larger, which the essential matrix's rotation still sees.
    """
    basis = np.zeros((6, 3))
    basis[3:] = np.eye(3)

    def residuals(Ri: np.ndarray, _t: np.ndarray) -> np.ndarray:
        return sampson_homography(Ri, x0, x1, f0, f1).ravel()

    cov = _gauss_newton_covariance(residuals, R, np.zeros(3), basis, dof=3,
                                   min_sigma_px=min_sigma_px)
    cov[:3, :3] += LARGE_VARIANCE * np.eye(3)
    cov[3, 3] += (unseen_parallax_px / f1[1]) ** 2  # about x: the image moves along y
    cov[4, 4] += (unseen_parallax_px / f1[0]) ** 2
    if absorbed is not None:
        cov[3:5, 3:5] += np.outer(absorbed[:2], absorbed[:2])
    return cov


def invert_pose_covariance(R: np.ndarray, t: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Covariance of the inverse pose (R^T, -R^T t), in the same (t, then rotation) convention.

    First order: dt_inv = -R^T dt - R^T [t]x dr and dr_inv = -R^T dr.
    """
    A = np.zeros((6, 6))
    A[:3, :3] = -R.T
    A[:3, 3:] = -R.T @ skew(t)
    A[3:, 3:] = -R.T
    return _symmetric(A @ cov @ A.T)


def compose_pose_covariance(R_ab: np.ndarray, t_ab: np.ndarray, cov_ab: np.ndarray,
                            t_bc: np.ndarray, cov_bc: np.ndarray) -> np.ndarray:
    """Covariance of T_a_c = T_a_b T_b_c from independent covariances of its factors.

    First order, in this module's convention: a perturbation (dt, dr) of T_a_b moves t_a_c by
    dt - [R_ab t_bc]x dr and rotates by dr; one of T_b_c is rotated into frame a by R_ab.
    """
    J = np.eye(6)
    J[:3, 3:] = -skew(R_ab @ np.reshape(t_bc, 3))
    B = np.zeros((6, 6))
    B[:3, :3] = B[3:, 3:] = R_ab
    return _symmetric(J @ cov_ab @ J.T + B @ cov_bc @ B.T)


def perturb_pose(R: np.ndarray, t: np.ndarray, delta: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(exp([dr]x) R, t + dt) for delta = (dt, dr): the perturbation the covariance describes."""
    dR, _ = cv2.Rodrigues(np.asarray(delta[3:], dtype=np.float64).reshape(3, 1))
    return dR @ R, t + delta[:3]


def pose_jacobian(residuals: Residuals, R: np.ndarray, t: np.ndarray,
                  basis: np.ndarray) -> np.ndarray:
    """Jacobian (m, k) of ``residuals(R, t)`` (m,) along the perturbations in ``basis`` (6, k)."""
    columns = [(residuals(*perturb_pose(R, t, _STEP * b))
                - residuals(*perturb_pose(R, t, -_STEP * b))) / (2.0 * _STEP) for b in basis.T]
    return np.stack(columns, axis=1)


def _gauss_newton_covariance(residuals: Residuals, R: np.ndarray, t: np.ndarray,
                             basis: np.ndarray, dof: int, min_sigma_px: float) -> np.ndarray:
    """sigma^2 (J^T J)^+ over the perturbations ``basis`` (6, k) spans, mapped back to 6x6."""
    t = np.reshape(np.asarray(t, dtype=np.float64), 3)
    r0 = residuals(R, t)
    if len(r0) <= dof or not np.all(np.isfinite(r0)):
        return lost_covariance()
    J = pose_jacobian(residuals, R, t, basis)
    sigma2 = max(float(r0 @ r0) / (len(r0) - dof), min_sigma_px ** 2)
    cov = sigma2 * np.linalg.pinv(J.T @ J, hermitian=True)
    return _symmetric(basis @ cov @ basis.T)


def _symmetric(M: np.ndarray) -> np.ndarray:
    return 0.5 * (M + M.T)
