"""What one kind of camera adds to tracking beyond its image: the metric points it measures."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ...config import Config
from ...types import FrameInput

if TYPE_CHECKING:
    from ..frames import TrackedFrame


class CameraMode(Protocol):
    """How a frame gets metric 3D points: on every frame (a depth image), only once it becomes a
    keyframe (a stereo pair: the right image is extracted and matched then), or never
    (monocular: the map triangulates them, see :class:`.monocular.MonocularScale`)."""

    def attach(self, frame: "TrackedFrame", source: FrameInput, config: Config) -> str:
        """Give a new frame what its camera measured with it; why it is unusable, or ''."""
        ...

    def keyframe_points(self, frame: "TrackedFrame", config: Config,
                        timings: dict[str, float]) -> str:
        """Measure the points a frame gets as it becomes a keyframe; why none, or ''."""
        ...
