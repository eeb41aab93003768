"""Metric points from a rectified stereo pair: left keypoints matched to the right image.

On a rectified pair a point lies on the same row in both images, a disparity d = u_left - u_right
pixels to the left in the right image, at depth z = fx b / d. LightGlue's left-right matches are
kept where that holds: rows within the threshold, a positive disparity, a depth in the valid
range. A pair whose matches mostly have negative disparities is a swapped pair (left and right
exchanged in the launch file or the driver): that is reported, never turned into a wrong scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.camera import CameraModel

MIN_DISPARITY_PX = 0.5  # below this the depth is beyond anything the pair can measure


@dataclass
class StereoPoints:
    """3D points (N, 3) of the left keypoints in the left camera frame, NaN where the pair gave
    none; ``reason`` says why there are none at all."""

    points: np.ndarray
    matched: int  # left-right matches
    valid: int  # of them, on the same row with a usable disparity
    reason: str = ""


def stereo_points(left_px: np.ndarray, right_px: np.ndarray, pairs: np.ndarray,
                  camera: CameraModel, baseline_m: float, row_threshold_px: float,
                  min_depth_m: float, max_depth_m: float) -> StereoPoints:
    """Triangulate the matched ``pairs`` (left index, right index) of a rectified pair."""
    points = np.full((len(left_px), 3), np.nan)
    if not baseline_m > 0:
        return StereoPoints(points, len(pairs), 0, f"stereo baseline {baseline_m} m is not "
                            "positive: the right camera must be at +x of the left one")
    ul, ur = left_px[pairs[:, 0]], right_px[pairs[:, 1]]
    same_row = np.abs(ul[:, 1] - ur[:, 1]) <= row_threshold_px
    disparity = ul[:, 0] - ur[:, 0]
    if same_row.sum() >= 10 and np.mean(disparity[same_row] < -MIN_DISPARITY_PX) > 0.5:
        return StereoPoints(points, len(pairs), 0, "stereo pair swapped: most disparities are "
                            "negative (the right image is the left camera's)")
    with np.errstate(divide="ignore"):
        z = camera.fx * baseline_m / disparity
    good = same_row & (disparity > MIN_DISPARITY_PX) & (z >= min_depth_m) & (z <= max_depth_m)
    idx = pairs[good, 0]
    rays = camera.undistort_points(ul[good])
    points[idx] = np.c_[rays, np.ones(len(rays))] * z[good, None]
    reason = "" if good.any() else f"no stereo match on a row ({len(pairs)} matches)"
    return StereoPoints(points, len(pairs), int(good.sum()), reason)
