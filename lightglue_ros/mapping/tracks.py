"""Keypoint track ids: a physical point keeps one id while it is matched frame to frame.

A frame's keypoints are matched against one reference frame (the keyframe, or the frame tried
instead); each geometrically verified match hands the reference keypoint's id on, every other
keypoint gets a new one. Because every frame is matched against the current keyframe, an id lives
through the frames between keyframes and is carried on by the next keyframe: the same chain the
local map's observations and a backend's multi-frame tracks are built from.
"""
from __future__ import annotations

import itertools

import numpy as np


class TrackIds:
    """Hands out ids, never the same twice in a run (64-bit: no wrap-around in practice)."""

    def __init__(self) -> None:
        self._next = itertools.count()

    def fresh(self, n: int) -> np.ndarray:
        """``n`` new ids."""
        return np.fromiter(self._next, np.int64, count=n) if n else np.zeros(0, np.int64)

    def inherit(self, ref_ids: np.ndarray, cur_ids: np.ndarray, pairs: np.ndarray,
                verified: np.ndarray) -> np.ndarray:
        """``cur_ids`` with the ids of the reference keypoints that the ``verified`` pairs
        (ref index, cur index) match."""
        out = cur_ids.copy()
        good = pairs[verified]
        out[good[:, 1]] = ref_ids[good[:, 0]]
        return out


def common_ids(ref_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The entries of ``ids`` that ``ref_ids`` (unique) has too: their positions in ``ids``
    and in ``ref_ids``."""
    if not len(ref_ids):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(ref_ids)
    at = np.minimum(np.searchsorted(ref_ids[order], ids), len(order) - 1)
    rows = np.flatnonzero(ref_ids[order][at] == ids)
    return rows, order[at[rows]]
