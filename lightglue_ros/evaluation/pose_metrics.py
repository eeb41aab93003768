"""Relative-pose and homography accuracy metrics, as reported by SuperGlue and LightGlue.

Conventions: a ground-truth relative pose ``T_0to1`` (4x4) maps camera-0 points to camera 1,
X1 = T_0to1 @ X0, the same direction as the estimated (R, t) of ``lightglue_ros.geometry``.
Homographies map image-0 pixels to image-1 pixels.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from lightglue_ros.geometry.se3 import angle_between_deg, rotation_angle_deg


def relative_pose_error(T_0to1: np.ndarray, R: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """(rotation error, translation direction error) in degrees of an estimate (R, t).

    The translation error is the angle between the directions, folded as min(err, 180 - err) like
    SuperGlue's ``compute_pose_error``: an essential matrix fixes t only up to sign, so a reversed
    direction is not counted against the matcher. It is NaN when either translation is zero (a
    pure-rotation estimate has no direction); ``pose_auc`` counts NaN as a failure.
    """
    T = np.asarray(T_0to1, dtype=np.float64)
    err_R = rotation_angle_deg(np.asarray(R, dtype=np.float64).T @ T[:3, :3])
    err_t = angle_between_deg(t, T[:3, 3])
    return err_R, float(min(err_t, 180.0 - err_t)) if np.isfinite(err_t) else float("nan")


def pose_auc(errors: Sequence[float], thresholds: Sequence[float] = (5, 10, 20)) -> list[float]:
    """Area under the recall-error curve up to each threshold, in percent (SuperGlue/LightGlue).

    Errors are sorted, recall at the k-th error is k/n, the curve starts at (0, 0), is integrated
    by the trapezoidal rule up to the threshold (holding the last recall), and divided by the
    threshold. Failures should be passed as inf (NaN is treated as inf): they lower the recall.
    """
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if errors.size == 0:
        raise ValueError("pose_auc needs at least one error")
    errors = np.sort(np.where(np.isnan(errors), np.inf, errors))
    recall = np.arange(1, len(errors) + 1) / len(errors)
    errors = np.concatenate([[0.0], errors])
    recall = np.concatenate([[0.0], recall])
    aucs = []
    for thr in thresholds:
        last = int(np.searchsorted(errors, thr))
        r = np.concatenate([recall[:last], [recall[last - 1]]])
        e = np.concatenate([errors[:last], [thr]])
        aucs.append(100.0 * float(np.trapezoid(r, x=e)) / thr)
    return aucs


def homography_corner_error(H_est: np.ndarray, H_gt: np.ndarray, width: int,
                            height: int) -> float:
    """Mean distance in pixels between the image corners mapped by ``H_est`` and by ``H_gt``.

    The corners are (0, 0), (w, 0), (w, h), (0, h) as in LightGlue's HPatches evaluation
    (glue-factory), so that numbers compare with the published ones.
    """
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], float)
    warped_est = corners @ np.asarray(H_est, dtype=np.float64).T
    warped_gt = corners @ np.asarray(H_gt, dtype=np.float64).T
    diff = warped_est[:, :2] / warped_est[:, 2:] - warped_gt[:, :2] / warped_gt[:, 2:]
    return float(np.mean(np.linalg.norm(diff, axis=1)))
