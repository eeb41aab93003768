"""Monocular: no metric points from the camera; the map triangulates them across keyframes, and
before it can (and whenever a frame is not located on points) two-view geometry gives the
motion, its translation up to a scale this module keeps. The same holds for a depth or stereo
frame that measured no points: it is tracked as monocular."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

import numpy as np

from ...config import Config
from ...geometry.se3 import invert_transform, make_transform
from ...types import FrameInput
from ..estimate import Estimate
from ..records import TrackingStatus

if TYPE_CHECKING:
    from ..frames import TrackedFrame


class MonocularCamera:
    """The image alone: a frame gets no points of its own, as a frame or as a keyframe."""

    def attach(self, frame: "TrackedFrame", source: FrameInput, config: Config) -> str:
        return ""

    def keyframe_points(self, frame: "TrackedFrame", config: Config,
                        timings: dict[str, float]) -> str:
        return ""


@dataclass(frozen=True)
class MonocularScale:
    """The scale of tracking without metric points: whether the first keyframe pair has been
    triangulated (the unit is then its baseline), and the translation per pixel of motion the
    last PnP pose measured (to give two-view translations a length). Immutable, so that the
    tracker restores it with the rest of its state when a frame fails half-way."""

    initialised: bool = False  # first keyframe pair triangulated
    metres_per_flow_px: float = 0.0  # 0: not measured yet

    def per_flow_px(self, config: Config) -> float:
        """Length per pixel of flow for a two-view translation: the measured ratio, else
        'flow / mono_init_flow_px' so that the first keyframe baseline is about 1."""
        return self.metres_per_flow_px or 1.0 / config.mono_init_flow_px

    def initialise(self) -> "MonocularScale":
        """The map has triangulated points: frames are located on them from now on."""
        return replace(self, initialised=True)

    def located(self, est: Estimate) -> "MonocularScale":
        """After a frame placed by ``est``: PnP measures the translation per pixel of flow."""
        if est.model == "pnp" and est.flow_px > 0:
            return replace(self, metres_per_flow_px=float(np.linalg.norm(est.t)) / est.flow_px)
        return self

    def starting(self, frame: "TrackedFrame") -> bool:
        """``frame`` needs the first keyframe pair: no metric points, no triangulated map."""
        return not frame.metric and not self.initialised

    @staticmethod
    def first_pair(est: Estimate, config: Config) -> bool:
        """The monocular start waits for enough parallax to triangulate a first map."""
        return est.model == "essential" and est.flow_px >= config.mono_init_flow_px


def consecutive_rotation(est: Estimate, ref: "TrackedFrame", prev: "TrackedFrame | None",
                         config: Config, match: Callable[["TrackedFrame"], Estimate]
                         ) -> tuple[Estimate, "TrackedFrame"]:
    """Before the map gives PnP: take the motion from the previous frame's essential matrix
    (``match(prev)``) when it is well conditioned. Measured directly, the rotation between
    consecutive frames is more accurate than the difference of two keyframe-relative two-view
    estimates; the keyframe estimate ``est`` still gives the translation its length. Once the
    frame is located on map points this second match is not needed (nor run)."""
    if prev is None or prev is ref or est.model == "pnp" or not config.match_previous:
        return est, ref
    direct = match(prev)
    if direct.model != "essential" or direct.scaled or not np.any(direct.t) or \
            direct.flow_px < config.mono_two_view_flow_px or \
            direct.status(config) is TrackingStatus.LOST:
        return est, ref
    T_prev_cur = invert_transform(prev.T_odom_cam) @ ref.T_odom_cam @ invert_transform(
        make_transform(est.R, est.t))
    T_cur_prev = invert_transform(T_prev_cur)
    length = float(T_cur_prev[:3, 3] @ direct.t)
    if length > 0:
        direct.t, direct.scaled = direct.t / np.linalg.norm(direct.t) * length, True
    return direct, prev
