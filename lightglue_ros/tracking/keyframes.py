"""When the current frame should replace the keyframe it is tracked against."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Config
from ..geometry.se3 import invert_transform, make_transform
from ..mapping import LocalMap
from .estimate import Estimate
from .frames import TrackedFrame


@dataclass(frozen=True)
class MapView:
    """How the current frame sees the reference keyframe's part of the map."""

    map_points: int  # map points the reference keyframe sees
    tracked: int  # of them, located in the current frame (pose inliers)
    parallax_deg: float  # median angle at the tracked points between the two camera centres

    @property
    def share(self) -> float:
        return self.tracked / self.map_points if self.map_points else 0.0

    @classmethod
    def of(cls, points_ref: np.ndarray, tracked: np.ndarray, T_ref_cur: np.ndarray
           ) -> "MapView":
        """``points_ref``: (N, 3) map points of the reference keyframe's keypoints in its camera
        frame (NaN where none); ``tracked``: indices of those the current frame located."""
        X = points_ref[tracked]
        X = X[np.isfinite(X[:, 0])]
        map_points = int(np.isfinite(points_ref[:, 0]).sum())
        if not len(X):
            return cls(map_points, 0, 0.0)
        to_cur = X - T_ref_cur[:3, 3]
        cos = np.sum(X * to_cur, axis=1) / np.maximum(
            np.linalg.norm(X, axis=1) * np.linalg.norm(to_cur, axis=1), 1e-12)
        parallax = float(np.degrees(np.median(np.arccos(np.clip(cos, -1.0, 1.0)))))
        return cls(map_points, len(X), parallax)


@dataclass(frozen=True)
class KeyframePolicy:
    """A new keyframe once the view has changed enough that the old one is losing its grip.

    On a monocular map (the frame located on the reference keyframe's triangulated points),
    what the map needs: new points once the frame tracks less than ``min_tracked_share`` of
    the keyframe's points, but only once the parallax they would be triangulated with reaches
    ``min_parallax_deg``, so that they get a depth; regardless of parallax, before tracking
    turns weak (``min_map_inliers``). Otherwise (depth or stereo points, or two-view tracking):
    too few inliers remain (absolutely, or as a share of the keyframe's first match), or the
    keypoints have moved far (``max_flow_px``)."""

    min_inliers: int = 150
    min_ratio: float = 0.5
    max_flow_px: float = 40.0
    min_tracked_share: float = 0.0  # 0: no map rules, the inlier and flow rules everywhere
    min_parallax_deg: float = 1.0
    min_map_inliers: int = 60

    @classmethod
    def from_config(cls, cfg: Config) -> "KeyframePolicy":
        return cls(cfg.keyframe_min_inliers, cfg.keyframe_min_ratio, cfg.keyframe_flow_px,
                   cfg.keyframe_tracked_share, cfg.keyframe_parallax_deg, cfg.good_inliers)

    def reason(self, inliers: int, first_inliers: int, flow_px: float,
               view: MapView | None = None) -> str:
        """Why a new keyframe is due ('' when it is not). ``view``: how the frame sees the
        reference keyframe's triangulated map points (None: not located on such points)."""
        if view is not None and view.map_points and self.min_tracked_share > 0:
            return self._map_reason(inliers, view)
        if inliers < self.min_inliers:
            return f"{inliers} inliers < {self.min_inliers}"
        if first_inliers and inliers < self.min_ratio * first_inliers:
            return f"{inliers} inliers < {self.min_ratio:.2f} of {first_inliers}"
        if flow_px > self.max_flow_px:
            return f"median flow {flow_px:.1f} px > {self.max_flow_px:.1f}"
        return ""

    def _map_reason(self, inliers: int, view: MapView) -> str:
        if inliers < self.min_map_inliers:
            return f"{inliers} inliers < {self.min_map_inliers}"
        if view.share < self.min_tracked_share and view.parallax_deg >= self.min_parallax_deg:
            return (f"tracks {view.share:.2f} of the keyframe's {view.map_points} map points "
                    f"< {self.min_tracked_share:.2f}, parallax {view.parallax_deg:.2f} deg")
        return ""


@dataclass(frozen=True)
class KeyframeFigures:
    """What the policy reads of a frame placed against the reference keyframe."""

    inliers: int
    flow_px: float  # median keypoint motion since the keyframe
    view: MapView | None  # the map rules' view (None: they do not apply)

    def ahead(self, before: "KeyframeFigures", frames: int) -> "KeyframeFigures":
        """These figures ``frames`` frames on, changing as they did since ``before`` (one frame
        earlier): what the policy will likely read then."""
        def on(now: float, then: float) -> float:
            return max(now + frames * (now - then), 0.0)

        view = self.view
        if view is not None and before.view is not None:
            view = MapView(view.map_points, round(on(view.tracked, before.view.tracked)),
                           on(view.parallax_deg, before.view.parallax_deg))
        return KeyframeFigures(round(on(self.inliers, before.inliers)),
                               on(self.flow_px, before.flow_px), view)


def keyframe_figures(config: Config, local_map: LocalMap, ref: TrackedFrame, est: Estimate
                     ) -> KeyframeFigures:
    """The figures of a frame ``est`` placed against ``ref``; the map rules see ``ref``'s map
    points only when the frame was located on them and they are triangulated (not from
    depth)."""
    view = None
    if est.model == "pnp" and not ref.metric and config.keyframe_tracked_share:
        view = MapView.of(local_map.points_in(ref), est.pairs[est.inliers, 0],
                          invert_transform(make_transform(est.R, est.t)))
    return KeyframeFigures(est.num_inliers, est.flow_px, view)


def figures_reason(config: Config, figures: KeyframeFigures, first_inliers: int) -> str:
    """Why a new keyframe is due for a frame with these figures ('' when it is not)."""
    return KeyframePolicy.from_config(config).reason(figures.inliers, first_inliers,
                                                     figures.flow_px, figures.view)


def frames_to_keyframe(config: Config, now: KeyframeFigures, before: KeyframeFigures | None,
                       first_inliers: int) -> int | None:
    """In how many frames (1 or 2) the policy will likely ask for a keyframe, the figures
    changing as they did since ``before`` (one frame earlier); None: not that soon, or no
    ``before`` to tell."""
    if before is None:
        return None
    return next((k for k in (1, 2)
                 if figures_reason(config, now.ahead(before, k), first_inliers)), None)


def keyframe_reason(config: Config, local_map: LocalMap, ref: TrackedFrame, est: Estimate,
                    first_inliers: int) -> str:
    """Why a new keyframe is due once ``est`` placed the frame against ``ref`` ('' when it is
    not), by the configured policy."""
    return figures_reason(config, keyframe_figures(config, local_map, ref, est), first_inliers)
