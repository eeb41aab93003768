"""The tracker as two stages on two threads: frame t+1 is extracted while frame t is matched and
its pose estimated, so that two cores both work. The slower stage sets the frame rate.

    stages = TwoStageTracker(tracker, live=True, on_result=publish)
    stages.submit(frame)          # from the camera callback; never blocks in live mode
    stages.reset()                # ordered: before the next frame submitted
    stages.update_config(config)  # ordered, like reset; checked here (ConfigError)
    stages.close()

- **Each stage holds at most one frame.** A frame waits for extraction in a slot of one; in live
  mode a newer frame replaces it (latest frame wins; the replaced one is counted as dropped), in
  offline mode ``submit`` blocks until the slot is free (every frame, in order). An extracted
  frame waits for the tracking stage in a slot of one.
- **Live mode: the latest frame wins at every hand-off.** Extraction takes a frame only when the
  tracking stage has room for it (the hand-off slot is empty), and, while tracking is busy, not
  before the expected end of tracking less the expected extraction time (medians of the last
  frames: a keyframe's longer tracking does not hold back the frames after it):
  the frame it takes is the newest, and it reaches tracking just as tracking is free, so a frame
  never waits behind an older extracted one, and its latency is about its extraction plus its
  tracking. Offline mode extracts ahead (the next frame waits, extracted, in the hand-off slot).
- **Frames left to flow** (``track_by_flow``): the extraction stage asks the tracker whether the
  frame will be matched (``Tracker.wants_features``, counting the frames tracking takes before
  it) and hands it on unextracted when not; the tracker extracts a frame it must match after
  all. The guess changes what a frame costs, never its record.
- **Outputs come in submission (stamp) order**, one per submitted frame that is not dropped, to
  ``on_result`` (called on the tracking thread) or, without it, to ``get``/``poll``.
- **The tracker state is only touched by the tracking thread.** ``reset`` and ``update_config``
  are requests ordered with the frames: they apply before tracking the first frame submitted after
  the call (frames already submitted finish on the state they were submitted to). Extraction reads
  no tracker state, and the run-time parameters are the matcher's and the tracker's, not the
  extractor's.
- **A failing frame does not stop the pipeline**: an exception in ``prepare``, extraction or
  tracking gives that frame's output an ``error`` (and a LOST record where it got that far), and
  the next frame goes on; the tracker's state is as before the frame.
- **Threads.** torch's intra-op thread count belongs to the thread that runs an operation, so each
  stage sets ``config.cpu_threads`` on its own thread (by default half the cores each); ONNX
  Runtime sessions take the same count as ``intra_op_num_threads``. Each stage names its thread
  for the OS too (``<name>-extract``, ``<name>-track``), so that ``top -H`` and per-thread CPU
  figures tell the stages apart.

``prepare`` (optional) turns what is submitted into a ``FrameInput`` on the extraction thread
(e.g. decoding a message and pairing its depth image); it returns None for a frame to skip, whose
output then has no record.
"""
from __future__ import annotations

import collections
import logging
import queue
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..config import Config
from ..errors import describe
from ..inference.devices import set_cpu_threads
from ..threads import name_os_thread
from ..types import FrameInput
from .frames import ExtractedFrame
from .records import FrameRecord
from .tracker import Tracker

log = logging.getLogger(__name__)

PACING_WINDOW = 9  # frames whose stage times give the expected times (median)


@dataclass
class StageOutput:
    """One submitted frame, out of the pipeline."""

    seq: int  # submission number, from 0
    item: Any  # what was submitted (a FrameInput unless ``prepare`` is used)
    context: Any  # passed through from ``submit`` (e.g. a message header, a receive time)
    frame: FrameInput | None  # None when ``prepare`` skipped the frame or failed
    record: FrameRecord | None  # None when there was no frame to track
    error: str = ""  # a stage raised on this frame: what it raised
    submitted: float = 0.0  # time.monotonic() of the submission
    done: float = 0.0  # time.monotonic() when the record was ready

    @property
    def latency_s(self) -> float:
        return self.done - self.submitted


@dataclass
class StageCounters:
    """Frames through the pipeline: submitted = dropped + discarded + output + in flight."""

    submitted: int = 0
    dropped: int = 0  # live mode: replaced while waiting for extraction
    discarded: int = 0  # in flight when the pipeline was closed without draining
    output: int = 0
    skipped: int = 0  # ``prepare`` returned None
    errors: int = 0  # a stage raised (the frame is output with ``error``)
    resets: int = 0  # resets applied
    config_changes: int = 0  # parameter changes applied
    extract_s: float = 0.0  # busy time of each stage, for a utilisation figure
    track_s: float = 0.0

    def snapshot(self) -> "StageCounters":
        return StageCounters(**vars(self))


@dataclass
class _Item:
    seq: int
    item: Any
    context: Any
    submitted: float
    frame: FrameInput | None = None
    extracted: ExtractedFrame | None = None
    error: str = ""


@dataclass
class _Request:
    seq: int  # applies before tracking the first frame with this or a later number
    reset: bool = False
    config: Config | None = None


@dataclass
class _Slots:
    waiting: _Item | None = None  # for extraction
    extracting: _Item | None = None
    handoff: _Item | None = None  # extracted, for tracking
    requests: list[_Request] = field(default_factory=list)


class TwoStageTracker:
    """See the module docstring."""

    def __init__(self, tracker: Tracker, *, live: bool = True,
                 on_result: Callable[[StageOutput], None] | None = None,
                 prepare: Callable[[Any], FrameInput | None] | None = None,
                 threads: int | tuple[int, int] | None = None, name: str = "tracker",
                 pace: bool = True) -> None:
        self.tracker = tracker
        self.live = live
        self.pace = pace and live  # live: start an extraction to end as tracking ends
        threads = threads or tracker.pipeline.config.cpu_threads
        # torch intra-op threads of (extraction, tracking)
        self.threads = threads if isinstance(threads, tuple) else (threads, threads)
        self._on_result = on_result
        self._prepare = prepare
        self._results: queue.SimpleQueue[StageOutput] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._slots = _Slots()
        self._seq = 0
        self._closing = False
        self._deliver = True
        self.counters = StageCounters()
        self._recent: dict[str, collections.deque[float]] = {  # seconds per frame
            stage: collections.deque(maxlen=PACING_WINDOW) for stage in ("extract", "track")}
        self._tracking_since: float | None = None  # time.monotonic() the current tracking began
        self._extractor = threading.Thread(target=self._extract_loop, name=f"{name}-extract",
                                           daemon=True)
        self._trackthread = threading.Thread(target=self._track_loop, name=f"{name}-track",
                                             daemon=True)
        self._extractor.start()
        self._trackthread.start()

    # --- the caller's side ----------------------------------------------------------------------
    def submit(self, item: FrameInput | Any, context: Any = None) -> bool:
        """Hand in a frame. Live mode: never blocks; True when it replaced (dropped) a frame
        that was waiting for extraction. Offline mode: blocks until the frame has a place."""
        now = time.monotonic()
        with self._cond:
            if self._closing:
                raise RuntimeError("the tracking pipeline is closed")
            if not self.live:
                self._cond.wait_for(lambda: self._slots.waiting is None or self._closing)
                if self._closing:
                    raise RuntimeError("the tracking pipeline is closed")
            dropped = self._slots.waiting is not None
            if dropped:
                self.counters.dropped += 1
            self._slots.waiting = _Item(self._seq, item, context, now)
            self._seq += 1
            self.counters.submitted += 1
            self._cond.notify_all()
        return dropped

    def reset(self) -> None:
        """Restart tracking (``Tracker.reset``) before the next frame submitted."""
        self._request(_Request(0, reset=True))

    def update_config(self, config: Config) -> None:
        """Apply run-time parameters (matcher thresholds, tracking) before the next frame
        submitted; ConfigError here, at once, for a parameter that cannot change."""
        self.tracker.check_config(config)
        self._request(_Request(0, config=config))

    def _request(self, request: _Request) -> None:
        with self._cond:
            request.seq = self._seq
            self._slots.requests.append(request)
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> StageOutput | None:
        """The next output (without ``on_result``), or None after ``timeout`` seconds."""
        try:
            return self._results.get(timeout=timeout)
        except queue.Empty:
            return None

    def poll(self) -> list[StageOutput]:
        """The outputs ready now (without ``on_result``)."""
        out = []
        while True:
            try:
                out.append(self._results.get_nowait())
            except queue.Empty:
                return out

    def snapshot(self) -> StageCounters:
        """A consistent copy of the counters (e.g. for diagnostics)."""
        with self._cond:
            return self.counters.snapshot()

    @property
    def in_flight(self) -> int:
        """Frames submitted and neither output nor dropped yet."""
        with self._cond:
            return self._in_flight()

    def _in_flight(self) -> int:
        c = self.counters
        return c.submitted - c.dropped - c.discarded - c.output

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted frame is out (or dropped); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._in_flight() == 0, timeout)

    def close(self, drain: bool | None = None, timeout: float = 30.0) -> bool:
        """Stop both threads. ``drain`` (default: offline mode) first tracks every submitted frame
        and outputs it; otherwise the waiting frame is discarded, frames inside a stage finish but
        are not output, and nothing is output after close returns. False when a stage did not
        finish within ``timeout`` seconds (its thread is a daemon and ends with the process)."""
        drain = not self.live if drain is None else drain
        if drain:
            self.drain(timeout)
        with self._cond:
            if not self._closing:
                self._closing = True
                self._deliver = drain
                if self._slots.waiting is not None:
                    self._slots.waiting = None
                    self.counters.discarded += 1
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in (self._extractor, self._trackthread):
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not (self._extractor.is_alive() or self._trackthread.is_alive())

    def __enter__(self) -> "TwoStageTracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(drain=exc[0] is None and not self.live)

    # --- stage 1: extraction --------------------------------------------------------------------
    def _extract_loop(self) -> None:
        name_os_thread(self._extractor.name)
        set_cpu_threads(self.threads[0])
        slots = self._slots
        while True:
            with self._cond:
                while True:
                    self._cond.wait_for(lambda: (slots.waiting is not None and (
                        not self.live or slots.handoff is None)) or self._closing)
                    if slots.waiting is None:  # closing, nothing left
                        return
                    delay = self._pacing_delay()
                    if delay <= 0.0 or self._closing:
                        break
                    self._cond.wait(delay)  # a newer frame may come meanwhile; then re-check
                job, slots.waiting, slots.extracting = slots.waiting, None, slots.waiting
                # frames the tracking stage takes before this one
                ahead = (slots.handoff is not None) + (self._tracking_since is not None)
                self._cond.notify_all()
            start = time.perf_counter()
            self._extract(job, ahead)
            with self._cond:
                elapsed = time.perf_counter() - start
                self.counters.extract_s += elapsed
                if job.extracted is not None and not job.extracted.deferred:
                    self._expect("extract", elapsed)  # a frame left to flow takes no time
                self._cond.wait_for(lambda: slots.handoff is None)
                slots.extracting, slots.handoff = None, job
                self._cond.notify_all()

    def _pacing_delay(self) -> float:
        """Seconds until an extraction started now would end as the current tracking ends (0
        when tracking is idle or not paced); called under the lock."""
        if not self.pace or self._tracking_since is None:
            return 0.0
        if not self._recent["track"] or not self._recent["extract"]:
            return 0.0
        expected = {stage: statistics.median(times) for stage, times in self._recent.items()}
        return self._tracking_since + expected["track"] - expected["extract"] - time.monotonic()

    def _expect(self, stage: str, seconds: float) -> None:
        self._recent[stage].append(seconds)

    def _extract(self, job: _Item, ahead: int) -> None:
        try:
            job.frame = self._prepare(job.item) if self._prepare is not None else job.item
            if job.frame is not None:
                job.extracted = self.tracker.extract(job.frame,
                                                     self.tracker.wants_features(ahead))
        except Exception as exc:  # the pipeline must outlive any single frame
            job.error = describe(exc, "extraction")
            if job.frame is not None:
                job.extracted = ExtractedFrame(job.frame, None, job.error)

    # --- stage 2: tracking ----------------------------------------------------------------------
    def _track_loop(self) -> None:
        name_os_thread(self._trackthread.name)
        set_cpu_threads(self.threads[1])
        slots = self._slots
        while True:
            with self._cond:
                self._cond.wait_for(lambda: slots.handoff is not None or (
                    self._closing and slots.waiting is None and slots.extracting is None))
                if slots.handoff is None:
                    return
                job, slots.handoff = slots.handoff, None
                if not self._deliver:  # closed without draining: not worth tracking
                    self.counters.discarded += 1
                    self._cond.notify_all()
                    continue
                due = [r for r in slots.requests if r.seq <= job.seq]
                slots.requests = [r for r in slots.requests if r.seq > job.seq]
                self._tracking_since = time.monotonic()
                self._cond.notify_all()
            start = time.perf_counter()
            record = self._track(job, due)
            output = StageOutput(job.seq, job.item, job.context, job.frame, record, job.error,
                                 job.submitted, time.monotonic())
            with self._cond:
                elapsed = time.perf_counter() - start
                self.counters.track_s += elapsed
                if job.extracted is not None:
                    self._expect("track", elapsed)
                self._tracking_since = None
                deliver = self._deliver
                self.counters.errors += bool(job.error)
                self.counters.skipped += job.frame is None and not job.error
            if deliver and self._on_result is not None:
                self._emit(output)
            with self._cond:  # counted as it becomes visible: drain() then sees every output
                if deliver:
                    self.counters.output += 1
                    if self._on_result is None:
                        self._results.put(output)
                else:
                    self.counters.discarded += 1
                self._cond.notify_all()

    def _track(self, job: _Item, requests: list[_Request]) -> FrameRecord | None:
        for request in requests:
            self._apply(request)
        if job.extracted is None:
            return None
        try:
            return self.tracker.track(job.extracted)
        except Exception as exc:  # the state is as before the frame (Tracker.track)
            job.error = job.error or describe(exc, "tracking")
            return self.tracker.lost(job.extracted.stamp_ns, job.error)

    def _apply(self, request: _Request) -> None:
        try:
            if request.reset:
                self.tracker.reset()
                self.counters.resets += 1
            if request.config is not None:
                self.tracker.update_config(request.config)
                self.counters.config_changes += 1
        except Exception:  # checked when requested; log anything else and go on
            log.exception("tracking pipeline: a request failed")

    def _emit(self, output: StageOutput) -> None:
        try:
            self._on_result(output)  # type: ignore[misc]
        except Exception:
            log.exception("tracking pipeline: the result callback raised")


__all__ = ["StageCounters", "StageOutput", "TwoStageTracker"]
