"""Map points found again in an image by projection: near where the pose puts them, by descriptor.

Shared by the local map (a new keyframe's untracked keypoints given the ids of window points a
match missed) and the tracker (frames between keyframes located on the map without a match).
"""
from __future__ import annotations

import numpy as np

from ..geometry.camera import CameraModel


def search_by_projection(points_cam: np.ndarray, point_descriptors: np.ndarray,
                         camera: CameraModel, keypoints: np.ndarray,
                         keypoint_descriptors: np.ndarray, radius_px: float, min_cosine: float,
                         max_ratio: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (point row, keypoint row, cosine): each point (camera frame, (M, 3)) projected with
    ``camera`` and given the keypoint within ``radius_px`` whose (L2-normalised) descriptor is
    most similar, at least ``min_cosine``, the most similar pairs first, one keypoint per point
    and one point per keypoint. ``max_ratio`` < 1 also drops a point whose best keypoint is not
    clearly better than its second (descriptor distance ratio, as Lowe's test): among
    look-alikes, a wrong pick would be an outlier the pose must reject."""
    empty = np.zeros(0, int)
    if not len(points_cam) or not len(keypoints):
        return empty, empty, np.zeros(0)
    rows, cols = _near(camera.project(points_cam), keypoints, radius_px)
    if not len(rows):
        return empty, empty, np.zeros(0)
    cos = np.einsum("nd,nd->n", point_descriptors[rows], keypoint_descriptors[cols])
    keep = cos >= min_cosine
    if max_ratio < 1.0:
        keep &= _distinct(rows, cos, max_ratio)
    rows, cols, cos = rows[keep], cols[keep], cos[keep]
    out, used_points, used_keys = [], set(), set()
    for j in np.argsort(-cos, kind="stable"):
        point, key = int(rows[j]), int(cols[j])
        if point in used_points or key in used_keys:
            continue
        used_points.add(point)
        used_keys.add(key)
        out.append(j)
    out = np.array(out, int)
    return rows[out], cols[out], cos[out]


def _near(uv: np.ndarray, keypoints: np.ndarray, radius_px: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """(point row, keypoint row) of the pairs within ``radius_px`` (NaN: none), point by point,
    keypoints in order: ``np.nonzero`` of the full distance matrix, computed only on the pairs
    that a search on the keypoints sorted by x leaves (a window one pixel wider than the radius,
    so that rounding cannot drop a pair the exact test keeps)."""
    by_x = np.argsort(keypoints[:, 0], kind="stable")
    x = keypoints[by_x, 0]
    with np.errstate(invalid="ignore"):
        lo = np.searchsorted(x, uv[:, 0] - (radius_px + 1.0), side="left")
        hi = np.searchsorted(x, uv[:, 0] + (radius_px + 1.0), side="right")
    count = np.where(np.isfinite(uv).all(axis=1), hi - lo, 0)
    rows = np.repeat(np.arange(len(uv)), count)
    starts = np.cumsum(count) - count  # where each point's run begins
    cols = by_x[lo[rows] + np.arange(len(rows)) - starts[rows]]
    keep = np.linalg.norm(uv[rows] - keypoints[cols], axis=1) <= radius_px
    order = np.lexsort((cols[keep], rows[keep]))
    return rows[keep][order], cols[keep][order]


def _distinct(rows: np.ndarray, cos: np.ndarray, max_ratio: float) -> np.ndarray:
    """Per candidate pair: whether it is its point's best candidate and passes the distance
    ratio test against the second best (a point with one candidate passes)."""
    distance = np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0))
    order = np.lexsort((distance, rows))  # by point, nearest first
    r, d = rows[order], distance[order]
    first = np.ones(len(r), bool)
    first[1:] = r[1:] != r[:-1]
    has_second = np.zeros(len(r), bool)
    has_second[:-1] = first[:-1] & ~first[1:]
    second = np.full(len(r), np.inf)
    second[:-1][has_second[:-1]] = d[1:][has_second[:-1]]
    passes = np.zeros(len(r), bool)
    passes[first] = d[first] < max_ratio * second[first]
    out = np.zeros(len(rows), bool)
    out[order] = passes
    return out
