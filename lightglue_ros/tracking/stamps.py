"""The stamp rule shared by the live node and bag evaluation: what a frame's header stamp says
about the stream, compared with the frame before.

- the same stamp as the frame before: a duplicate, the frame is ignored;
- a stamp going backwards (a bag loop, a simulator's clock reset): tracking restarts;
- the header clock advancing ``jump_s`` further than the receive clock (a bag skipped ahead, a
  driver's clock stepped forward): a forward jump, reported, tracking goes on;
- otherwise more than ``gap_s`` between two stamps: a gap (frames missing), counted.

Integer nanoseconds, so that equal stamps compare equal. Pure Python: no ROS.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..types import NS, seconds

DEFAULT_GAP_S = 1.0
DEFAULT_JUMP_S = 10.0


class StampEvent(enum.Enum):
    NEXT = "next"              # an ordinary next frame
    FIRST = "first"            # the first frame seen
    DUPLICATE = "duplicate"
    BACKWARD = "backward"
    FORWARD_JUMP = "forward_jump"
    GAP = "gap"


@dataclass(frozen=True)
class StampCheck:
    event: StampEvent
    previous_s: float | None = None   # the stamp before (seconds)
    step_s: float = 0.0               # header stamp step from the frame before (seconds)
    received_step_s: float = 0.0      # receive clock step from the frame before (seconds)

    @property
    def accepted(self) -> bool:
        """False for a frame to ignore (a duplicate)."""
        return self.event is not StampEvent.DUPLICATE


class StampMonitor:
    """Classifies each frame's stamp against the last accepted one."""

    def __init__(self, gap_s: float = DEFAULT_GAP_S, jump_s: float = DEFAULT_JUMP_S) -> None:
        if not gap_s > 0 or not jump_s > 0:
            raise ValueError("gap_s and jump_s must be positive")
        self.gap_s, self.jump_s = gap_s, jump_s
        self.last: tuple[int, int] | None = None   # (header ns, receive ns) of the last frame

    def reset(self) -> None:
        self.last = None

    def check(self, stamp_ns: int, receive_ns: int) -> StampCheck:
        """The event of a frame with header stamp ``stamp_ns`` received at ``receive_ns`` (any
        monotonic clock); every frame but a duplicate becomes the new last one."""
        last = self.last
        if last is None:
            self.last = (stamp_ns, receive_ns)
            return StampCheck(StampEvent.FIRST)
        last_ns, last_receive = last
        before = seconds(last_ns)
        step = (stamp_ns - last_ns) / NS
        received = (receive_ns - last_receive) / NS
        if stamp_ns == last_ns:
            return StampCheck(StampEvent.DUPLICATE, before, 0.0, received)
        self.last = (stamp_ns, receive_ns)
        if stamp_ns < last_ns:
            event = StampEvent.BACKWARD
        elif step - received > self.jump_s:
            event = StampEvent.FORWARD_JUMP
        elif step > self.gap_s:
            event = StampEvent.GAP
        else:
            event = StampEvent.NEXT
        return StampCheck(event, before, step, received)
