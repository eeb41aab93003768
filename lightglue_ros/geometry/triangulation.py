"""Triangulate matched keypoints of two views with a known relative pose.

Conventions as in ``two_view``: (R, t) maps camera-0 points to camera 1, X1 = R @ X0 + t; inputs
are normalized (undistorted) image coordinates. Used by monocular tracking to give a keyframe 3D
points, so later frames are located by PnP at a consistent scale instead of by ill-conditioned
small-baseline two-view geometry.
"""
from __future__ import annotations

import cv2
import numpy as np


def triangulate(R: np.ndarray, t: np.ndarray, x0: np.ndarray, x1: np.ndarray,
                focal: float, max_error_px: float = 2.0, min_angle_deg: float = 1.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 3) in camera-0 coordinates and a validity mask (N,).

    Valid points lie in front of both cameras, reproject within ``max_error_px`` (normalized error
    times ``focal``) in both views, and are seen under at least ``min_angle_deg`` of parallax:
    below that their depth is mostly noise.
    """
    x0 = np.asarray(x0, np.float64).reshape(-1, 2)
    x1 = np.asarray(x1, np.float64).reshape(-1, 2)
    points = np.full((len(x0), 3), np.nan)
    if len(x0) == 0:
        return points, np.zeros(0, bool)
    P0 = np.hstack([np.eye(3), np.zeros((3, 1))])
    P1 = np.hstack([R, np.reshape(t, (3, 1))])
    X = cv2.triangulatePoints(P0, P1, x0.T, x1.T)
    with np.errstate(divide="ignore", invalid="ignore"):
        X = (X[:3] / X[3]).T
        X1 = X @ R.T + np.reshape(t, 3)
        err0 = np.linalg.norm(X[:, :2] / X[:, 2:] - x0, axis=1) * focal
        err1 = np.linalg.norm(X1[:, :2] / X1[:, 2:] - x1, axis=1) * focal
        centre1 = -R.T @ np.reshape(t, 3)  # camera 1's centre in camera-0 coordinates
        ray0, ray1 = X, X - centre1
        cos = np.sum(ray0 * ray1, axis=1) / (np.linalg.norm(ray0, axis=1)
                                              * np.linalg.norm(ray1, axis=1))
        valid = ((X[:, 2] > 0) & (X1[:, 2] > 0) & (err0 < max_error_px) & (err1 < max_error_px)
                 & (cos < np.cos(np.radians(min_angle_deg))))
    valid &= np.all(np.isfinite(X), axis=1)
    points[valid] = X[valid]
    return points, valid
