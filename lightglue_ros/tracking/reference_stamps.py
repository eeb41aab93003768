"""The header stamps of the frames a tracker may still match against, for naming them in outputs.

Outputs name their reference frame by its original header stamp (a ``builtin_interfaces/Time``,
kept exactly as received rather than rebuilt from float seconds). A memory of the last N stamps
loses the keyframe's stamp when the camera stays on one keyframe for more than N frames (a still
camera: 256 frames is 8.5 s at 30 Hz), and the outputs that name it stop. So the memory keeps
exactly the stamps the tracker can still refer to (its keyframe, previous frame and recovery
keyframe: ``Tracker.reference_stamps()``) plus the frames not processed yet. Pure Python.
"""
from __future__ import annotations

from typing import Generic, Iterable, TypeVar

Stamp = TypeVar("Stamp")


class ReferenceStamps(Generic[Stamp]):
    """Original stamps by their float seconds (the key the tracker's records use)."""

    def __init__(self) -> None:
        self._stamps: dict[float, Stamp] = {}

    def add(self, seconds: float, stamp: Stamp) -> None:
        self._stamps[seconds] = stamp

    def get(self, seconds: float | None) -> Stamp | None:
        return None if seconds is None else self._stamps.get(seconds)

    def retain(self, keep: Iterable[float]) -> None:
        """Forget every stamp but those in ``keep`` (the tracker's references and the frames
        still in flight)."""
        wanted = set(keep)
        for seconds in [s for s in self._stamps if s not in wanted]:
            del self._stamps[seconds]

    def __len__(self) -> int:
        return len(self._stamps)
