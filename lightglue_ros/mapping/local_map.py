"""The local map: 3D points keyed by keypoint track id, seen by a sliding window of keyframes.

A point is born from a depth measurement (RGB-D) or by triangulating its track between the
oldest window keyframe that saw it and the newest (monocular: the widest baseline the window
has), and then lives on while any window keyframe sees it: later frames are located by PnP against
these points (``points_in``), so the scale of a monocular trajectory is carried by the map, not
re-estimated per keyframe. Each new keyframe runs a windowed bundle adjustment over the window's
poses and points (oldest poses held to fix the gauge: one with metric depth, two without, which
also fixes the monocular scale). The adjustment is submitted by ``insert`` and applied by
``collect`` (the tracker collects it once the next frame is matched), so that it can run beside
tracking (``adjuster``). A stereo map can also estimate its pair's disparity offset from its
adjusted points (``disparity_offset``; off by default), which then corrects every stereo depth.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..geometry.camera import CameraModel
from ..geometry.se3 import invert_transform
from ..geometry.triangulation import triangulate
from .adjuster import Adjuster, AdjustmentJob, InlineAdjuster
from .bundle_adjustment import AdjustmentResult, Observations
from .disparity_offset import offset_step
from .projection_search import search_by_projection
from .tracks import common_ids


@dataclass(frozen=True)
class MapConfig:
    window: int = 8  # keyframes adjusted together
    sigma_px: float = 1.0  # keypoint noise of the extractor
    max_error_px: float = 3.0  # an observation farther off after adjustment loses its point
    min_parallax_deg: float = 0.5  # below this a triangulated depth is mostly noise
    min_cosine: float = 0.7  # descriptor similarity of a map point found again by projection
    depth_sigma: float = 0.0  # depth noise sigma_z = depth_sigma * z^2 (m); 0: no depth in BA
    iterations: int = 5
    # sigma (px) of the prior at 0 of a stereo pair's disparity offset; 0: not estimated
    disparity_offset_prior_px: float = 0.0


class MapFrame(Protocol):
    """What the map needs of a frame (the tracker's frames have it)."""

    camera: CameraModel
    T_odom_cam: np.ndarray  # refined in place by the adjustment
    ids: np.ndarray  # (N,) track id per keypoint
    depth_points: np.ndarray | None  # (N, 3) from a depth sensor, NaN where none
    depth_noise: float  # sigma_z = depth_noise z^2 of depth_points; 0: MapConfig.depth_sigma
    baseline_m: float  # of the stereo pair that measured depth_points; 0: no pair

    @property
    def keypoints(self) -> np.ndarray: ...

    @property
    def descriptors(self) -> np.ndarray: ...


@dataclass
class _Submitted:
    """An adjustment under way: the window and points it is about."""

    keyframes: list["MapKeyframe"]
    ids: list[int]
    obs: Observations
    offset_px: float  # the disparity offset obs.depth includes


@dataclass
class MapKeyframe:
    """A keyframe of the window: the tracked frame (its pose is refined in place) and its
    keypoints where the adjustment measures them."""

    frame: MapFrame
    ideal: np.ndarray  # (N, 2) keypoints on the ideal pinhole image of K (distortion removed)
    depth: np.ndarray  # (N,) sensor depth in metres, NaN where none
    fxb: float  # fx times the stereo baseline (disparity = fxb / depth); 0: no pair
    index_of: dict[int, int] = field(default_factory=dict)  # track id -> keypoint index

    @classmethod
    def of(cls, frame: MapFrame) -> "MapKeyframe":
        cam = frame.camera
        ideal = cam.undistort_points(frame.keypoints) * np.diag(cam.K)[:2] + cam.K[:2, 2]
        depth = np.full(len(ideal), np.nan)
        if frame.depth_points is not None:
            depth = frame.depth_points[:, 2].copy()
        return cls(frame, ideal, depth, cam.K[0, 0] * frame.baseline_m,
                   {int(i): k for k, i in enumerate(frame.ids)})

    def depth_with(self, offset_px: float) -> np.ndarray:
        """The depths with ``offset_px`` added to the stereo pair's disparities."""
        if not self.fxb > 0 or offset_px == 0.0:
            return self.depth
        with np.errstate(divide="ignore"):
            disparity = self.fxb / self.depth + offset_px
            return np.where(disparity > 0, self.fxb / disparity, np.nan)


class LocalMap:
    """Points by track id, in odom coordinates; the window of keyframes that see them."""

    def __init__(self, config: MapConfig = MapConfig(), adjuster: Adjuster | None = None
                 ) -> None:
        self.config = config
        self.adjuster = adjuster or InlineAdjuster()
        self._submitted: _Submitted | None = None
        # a property of the stereo pair, not of the map: it outlives a restart
        self.disparity_offset_px = 0.0
        self.clear()

    def clear(self) -> None:
        if self._submitted is not None:  # its window is gone: wait it out, drop the result
            self._submitted = None
            self.adjuster.collect()
        self.points: dict[int, np.ndarray] = {}
        self.keyframes: list[MapKeyframe] = []
        self.last_adjustment: AdjustmentResult | None = None

    def __len__(self) -> int:
        return len(self.points)

    def points_in(self, frame: MapFrame) -> np.ndarray:
        """(N, 3) map points of ``frame``'s keypoints in its camera frame, NaN where none."""
        out = np.full((len(frame.ids), 3), np.nan)
        ids = frame.ids.tolist()
        idx = [k for k, i in enumerate(ids) if i in self.points]
        if idx:
            X = np.array([self.points[ids[k]] for k in idx])
            T = invert_transform(frame.T_odom_cam)
            out[idx] = X @ T[:3, :3].T + T[:3, 3]
        return out

    def seed(self, frame: MapFrame, points_cam: np.ndarray) -> None:
        """Start again from one keyframe and its points (N, 3, camera frame, NaN where none)."""
        self.clear()
        self.keyframes.append(MapKeyframe.of(frame))
        T = frame.T_odom_cam
        for i, X in zip(frame.ids, points_cam):
            if np.isfinite(X[0]):
                self.points[int(i)] = T[:3, :3] @ X + T[:3, 3]

    def insert(self, frame: MapFrame, triangulate_px: float) -> int:
        """Add a keyframe: the last keyframe's adjustment applied (``frame``, located against
        the window, moving with it), points from its depth, new points triangulated against the
        window; then the window's adjustment submitted. Returns the number of points created."""
        self.collect(frame)
        kf = MapKeyframe.of(frame)
        self.keyframes.append(kf)
        self._find_again(kf, 2 * triangulate_px)
        created = self._from_depth(kf) + self._triangulate(kf, triangulate_px)
        if len(self.keyframes) > self.config.window:
            self.keyframes.pop(0)
            self._forget_unseen()
        self.adjust()
        return created

    def adjust(self) -> bool:
        """Submit the window's bundle adjustment (applied by ``collect``); False when there is
        nothing to adjust."""
        noise = np.array([kf.frame.depth_noise or self.config.depth_sigma
                          for kf in self.keyframes])
        metric = any(a > 0 and np.isfinite(kf.depth).any()
                     for a, kf in zip(noise, self.keyframes))
        held = 1 if metric else 2
        if len(self.keyframes) <= held:
            return False
        ids, obs = self._observations()
        if not ids:
            return False
        poses = np.array([kf.frame.T_odom_cam for kf in self.keyframes])
        self.adjuster.submit(AdjustmentJob(
            poses, np.arange(len(poses)) < held, np.array([self.points[i] for i in ids]), obs,
            np.array([kf.frame.camera.K for kf in self.keyframes]), self.config.sigma_px, noise,
            self.config.iterations))
        self._submitted = _Submitted(list(self.keyframes), ids, obs, self.disparity_offset_px)
        return True

    def settle(self) -> None:
        """Wait until the submitted adjustment is computed (``collect`` still applies it)."""
        self.adjuster.settle()

    def collect(self, newest: MapFrame | None = None) -> AdjustmentResult | None:
        """Apply the submitted adjustment (waiting for it): the window's poses and points, and
        drop points whose observations stay far off. ``newest``, a frame located against the
        window since (not one of its keyframes), moves with the newest adjusted keyframe."""
        submitted, self._submitted = self._submitted, None
        result = self.adjuster.collect() if submitted is not None else None
        if result is None:
            return None
        last = submitted.keyframes[-1].frame
        correction = result.poses[-1] @ invert_transform(last.T_odom_cam)
        for kf, T in zip(submitted.keyframes, result.poses):
            kf.frame.T_odom_cam = T
        if newest is not None and all(newest is not kf.frame for kf in submitted.keyframes):
            newest.T_odom_cam = correction @ newest.T_odom_cam
        inlier = result.errors_px <= self.config.max_error_px
        bad = set(submitted.obs.point[~inlier].tolist())
        # a window not yet full spans too little motion to tell an offset from a scale
        if self.config.disparity_offset_prior_px > 0 and \
                len(submitted.keyframes) >= self.config.window:
            self.disparity_offset_px = offset_step(
                result.poses, result.points, submitted.obs,
                np.array([kf.frame.camera.K for kf in submitted.keyframes]),
                np.array([kf.frame.baseline_m for kf in submitted.keyframes]), inlier,
                self.config.sigma_px, submitted.offset_px, self.config.disparity_offset_prior_px)
        for j, i in enumerate(submitted.ids):
            if i not in self.points:
                continue
            if j in bad:
                del self.points[i]
            else:
                self.points[i] = result.points[j]
        self.last_adjustment = result
        return result

    # --- internals -------------------------------------------------------------------------------
    def _observations(self) -> tuple[list[int], Observations]:
        """The points seen by at least two window keyframes, or by one with depth: points in
        the order the window first sees them, each one's observations oldest keyframe first."""
        mapped = np.fromiter(self.points, int, len(self.points))
        parts: list[tuple[np.ndarray, ...]] = []  # per keyframe: its observations of points
        for f, kf in enumerate(self.keyframes):
            ids = _track_ids(kf)
            has = np.isin(ids, mapped)
            keys = _keypoints(kf)[has]
            parts.append((np.full(len(keys), f), ids[has], kf.ideal[keys],
                          kf.depth_with(self.disparity_offset_px)[keys], kf.depth[keys]))
        frame, track, uv, depth, sensed = (np.concatenate(a) for a in zip(*parts))
        _, first, inverse, count = np.unique(track, return_index=True, return_inverse=True,
                                             return_counts=True)
        wanted = np.flatnonzero((count >= 2) | np.isfinite(sensed[first]))
        by_first = wanted[np.argsort(first[wanted], kind="stable")]
        rank = np.full(len(first), -1)
        rank[by_first] = np.arange(len(by_first))
        point = rank[inverse]
        rows = np.flatnonzero(point >= 0)
        rows = rows[np.argsort(point[rows], kind="stable")]  # keyframe order within a point
        return track[first[by_first]].tolist(), Observations(
            frame[rows], point[rows], uv[rows].reshape(-1, 2), depth[rows])

    def _find_again(self, kf: MapKeyframe, radius_px: float) -> int:
        """Give the new keyframe's untracked keypoints the ids of window points that project
        within ``radius_px`` of them with a similar descriptor (the greediest pairs first):
        points a match missed once are not lost, and their tracks grow longer, which is what
        holds a monocular scale. Returns how many were found."""
        older = self.keyframes[:-1]
        wanted: dict[int, np.ndarray] = {}
        for old in reversed(older):  # the newest observation's descriptor
            desc = None
            for i, k in old.index_of.items():
                if i in self.points and i not in kf.index_of and i not in wanted:
                    desc = old.frame.descriptors if desc is None else desc
                    wanted[i] = desc[k]
        in_window = set().union(*(old.index_of.keys() for old in older)) if older else set()
        free = np.array([k for i, k in kf.index_of.items() if i not in in_window], int)
        if not wanted or not len(free):
            return 0
        ids = np.array(list(wanted))
        T = invert_transform(kf.frame.T_odom_cam)
        X = np.array([self.points[i] for i in ids]) @ T[:3, :3].T + T[:3, 3]
        rows, cols, _ = search_by_projection(
            X, np.array([wanted[i] for i in ids]), kf.frame.camera, kf.frame.keypoints[free],
            kf.frame.descriptors[free], radius_px, self.config.min_cosine)
        for point, key in zip(ids[rows].tolist(), free[cols].tolist()):
            del kf.index_of[int(kf.frame.ids[key])]
            kf.frame.ids[key] = point
            kf.index_of[point] = key
        return len(rows)

    def _from_depth(self, kf: MapKeyframe) -> int:
        T = kf.frame.T_odom_cam
        depth = kf.depth_with(self.disparity_offset_px)
        new = [(int(i), k) for i, k in kf.index_of.items()
               if int(i) not in self.points and np.isfinite(depth[k])]
        for i, k in new:
            X = kf.frame.depth_points[k] * (depth[k] / kf.depth[k])
            self.points[i] = T[:3, :3] @ X + T[:3, 3]
        return len(new)

    def _triangulate(self, kf: MapKeyframe, max_error_px: float) -> int:
        """Points for the tracks of ``kf`` that have none, each against the oldest window
        keyframe that saw it (the widest baseline)."""
        todo = {i: k for i, k in kf.index_of.items() if i not in self.points}
        created = 0
        for old in self.keyframes[:-1]:
            common = [(i, old.index_of[i], k) for i, k in todo.items() if i in old.index_of]
            if not common:
                continue
            for i, _, _ in common:
                del todo[i]
            T = invert_transform(kf.frame.T_odom_cam) @ old.frame.T_odom_cam  # old -> new
            if not np.linalg.norm(T[:3, 3]) > 0:
                continue
            ko = np.array([c[1] for c in common])
            kn = np.array([c[2] for c in common])
            cam = kf.frame.camera
            x0 = old.frame.camera.undistort_points(old.frame.keypoints[ko])
            x1 = cam.undistort_points(kf.frame.keypoints[kn])
            X0, valid = triangulate(T[:3, :3], T[:3, 3], x0, x1, cam.focal_mean, max_error_px,
                                    self.config.min_parallax_deg)
            Xw = X0 @ old.frame.T_odom_cam[:3, :3].T + old.frame.T_odom_cam[:3, 3]
            for (i, _, _), X, ok in zip(common, Xw, valid):
                if ok:
                    self.points[i] = X
                    created += 1
        return created

    def _forget_unseen(self) -> None:
        seen = set().union(*(kf.index_of.keys() for kf in self.keyframes))
        for i in [i for i in self.points if i not in seen]:
            del self.points[i]

    def point_covariances_in(self, frame: MapFrame, own: bool = True) -> np.ndarray:
        """(N, 3, 3) covariance of ``points_in(frame)`` in its camera frame, NaN where no point.

        A point's information is what its window observations give it with the poses held (the
        adjustment's own factors: keypoint noise ``sigma_px`` in each keyframe that sees it in
        front, and its depth noise where measured), plus a prior of its own distance in every
        direction, so that a point whose other views left the window is not exact along its ray.
        ``own=False`` leaves out ``frame``'s own observations (when it is a window keyframe):
        what the rest of the map knows of the points, for a covariance that counts ``frame``'s
        own error relative to them separately (``geometry.covariance.relative_pnp_covariance``).
        """
        ids = [int(i) for i in frame.ids]
        wanted = {i: k for k, i in enumerate(ids) if i in self.points}
        out = np.full((len(ids), 3, 3), np.nan)
        if not wanted:
            return out
        order = list(wanted)
        order_ids = np.array(order)
        X = np.array([self.points[i] for i in order])
        T_cam = invert_transform(frame.T_odom_cam)
        distance2 = np.sum((X @ T_cam[:3, :3].T + T_cam[:3, 3]) ** 2, axis=1)
        info = np.eye(3) / np.maximum(distance2, 1e-12)[:, None, None]
        sigma2 = self.config.sigma_px ** 2
        for kf in self.keyframes:
            if not own and kf.frame is frame:
                continue
            rows, j = common_ids(order_ids, _track_ids(kf))  # j: row of X
            if not len(rows):
                continue
            k = _keypoints(kf)[rows]  # keypoint of kf
            T = invert_transform(kf.frame.T_odom_cam)
            Xc = X[j] @ T[:3, :3].T + T[:3, 3]
            front = Xc[:, 2] > 0
            j, k, Xc = j[front], k[front], Xc[front]
            fx, fy = kf.frame.camera.K[0, 0], kf.frame.camera.K[1, 1]
            A = np.zeros((len(j), 2, 3))
            A[:, 0, 0] = fx / Xc[:, 2]
            A[:, 0, 2] = -fx * Xc[:, 0] / Xc[:, 2] ** 2
            A[:, 1, 1] = fy / Xc[:, 2]
            A[:, 1, 2] = -fy * Xc[:, 1] / Xc[:, 2] ** 2
            A = A @ T[:3, :3]
            info[j] += A.transpose(0, 2, 1) @ A / sigma2  # j: no repeats in a keyframe
            noise = kf.frame.depth_noise or self.config.depth_sigma
            z = kf.depth[k]
            has = np.isfinite(z) & (noise > 0)
            if np.any(has):
                n = T[2, :3]  # the depth is n . X + t_z
                sigma_z = noise * z[has] ** 2
                info[j[has]] += np.outer(n, n)[None] / sigma_z[:, None, None] ** 2
        cov = np.linalg.inv(info)
        out[[wanted[i] for i in order]] = T_cam[:3, :3] @ cov @ T_cam[:3, :3].T
        return out


def _track_ids(kf: MapKeyframe) -> np.ndarray:
    """The track ids ``kf`` has a keypoint of, in ``index_of``'s order."""
    return np.fromiter(kf.index_of, int, len(kf.index_of))


def _keypoints(kf: MapKeyframe) -> np.ndarray:
    """The keypoint index of each of ``_track_ids(kf)``."""
    return np.fromiter(kf.index_of.values(), int, len(kf.index_of))
