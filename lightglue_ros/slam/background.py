"""The SLAM layer on a thread of its own, so that a live tracker is not slowed by it.

Retrieval, LightGlue verification and the pose graph cost a match or more per query, several
times a frame's tracking at a relocalization. Here the tracking thread only takes a snapshot of
each tracked frame (``Slam.snapshot``: references and the keyframes' points, no matching) and
queues it; a worker thread runs ``Slam.process`` on the snapshots in order. What comes back to
the tracker, a relocalization, is handed over by the tracking thread itself at its next frame
(``Slam.apply``), since only that thread touches the tracker.

Every keyframe and every restart is processed (the graph needs them all); a frame that only
asks to be relocalized is replaced in the queue by a newer one (the newest view is the best
one to look up), so the queue stays short when the worker is slower than the camera.
"""
from __future__ import annotations

import collections
import copy
import logging
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..inference.devices import set_cpu_threads
from ..pipeline import Pipeline
from ..tracking import FrameRecord
from ..tracking.frames import ExtractedFrame
from .map_file import save_slam
from .system import FrameJob, Relocalization, Slam

log = logging.getLogger(__name__)


def verification_pipeline(pipeline: Pipeline) -> Pipeline:
    """The matcher the SLAM thread verifies with, while the tracking thread matches with
    ``pipeline``: the same networks where two threads may run them at once (``reentrant``:
    PyTorch without CUDA graphs, ONNX Runtime on a CPU; only the timings are its own), else a
    second instance (CUDA graphs' static buffers, TensorRT's execution contexts)."""
    if pipeline.backend.reentrant:
        shared = copy.copy(pipeline)
        shared.timings = {}
        return shared
    return Pipeline(pipeline.config)


# Called on the worker thread after each processed frame: its event ('relocalization', 'loop',
# 'keyframe' or ''), the frame's snapshot; the Slam's state is consistent while it runs.
EventCallback = Callable[[str, FrameJob], None]
# Called on the worker thread when a frame failed there, with the error in words: the worker
# goes on with the next frame, so the owner is the one to report it (diagnostics).
ErrorCallback = Callable[[str], None]


class _Call:
    """A function for the worker to run between two frames, and its outcome for the caller;
    cancelled (an error for the caller) when the worker closes before running it, so that no
    caller waits out its timeout on a worker that is gone."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: object = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except Exception as exc:  # handed to the caller
            self.error = exc
        finally:
            self.done.set()

    def cancel(self) -> None:
        self.error = RuntimeError("the SLAM worker closed before it ran this")
        self.done.set()


class BackgroundSlam:
    """``Slam.process`` on a worker thread; ``after_track`` from the tracking thread. Give the
    Slam a ``verification_pipeline`` of the tracker's first."""

    def __init__(self, slam: Slam, on_event: EventCallback | None = None, threads: int = 1,
                 on_error: ErrorCallback | None = None) -> None:
        """``threads``: torch intra-op threads of the worker's matches (few: the tracker's
        two stages want the cores)."""
        self.slam = slam
        self.on_event = on_event
        self.on_error = on_error
        self.threads = threads
        self.loaded = len(slam.db) > 0  # started in a map: no map pose before a relocalization
        self.processed = 0  # frames processed
        self.coalesced = 0  # relocalization queries replaced by a newer frame
        self.busy_s = 0.0  # worker time
        self.snapshot_s = 0.0  # what the tracking thread spent in ``after_track``
        self.snapshots = 0
        self.failures = 0  # frames (or calls' callbacks) that raised on the worker
        self._jobs: collections.deque[FrameJob | _Call] = collections.deque()
        self._cond = threading.Condition()
        self._pending: Relocalization | None = None  # for the tracking thread to apply
        self._working = False
        self._closing = False
        self._queued_restarts = 0  # ``FrameJob.restarts`` of the last frame queued
        self._thread = threading.Thread(target=self._run, name="slam", daemon=True)
        self._thread.start()

    # --- tracking thread ------------------------------------------------------------------------
    def after_track(self, extracted: ExtractedFrame, record: FrameRecord) -> None:
        """Hand over a relocalization found since the last frame, then queue this frame."""
        start = time.perf_counter()
        try:
            self._after_track(extracted, record)
        finally:
            self.snapshot_s += time.perf_counter() - start
            self.snapshots += 1

    def _after_track(self, extracted: ExtractedFrame, record: FrameRecord) -> None:
        with self._cond:
            found, self._pending = self._pending, None
        if found is not None and self.slam.apply(found):
            log.info("relocalized on the keyframe of %d ns", found.keyframe.stamp_ns)
        job = self.slam.snapshot(extracted, record)
        query_only = job.keyframe is None
        if query_only and self.slam.localized and job.restarts == self._queued_restarts:
            # Nothing to do for a plain frame of a placed segment. A frame of a new start is
            # queued whatever ``localized`` says: the worker has not seen the restart yet.
            return
        with self._cond:
            if self._closing:
                return
            self._queued_restarts = job.restarts
            last = self._jobs[-1] if self._jobs else None
            if query_only and isinstance(last, FrameJob) and last.keyframe is None and \
                    last.restarts == job.restarts:
                self._jobs[-1] = job
                self.coalesced += 1
            else:
                self._jobs.append(job)
            self._cond.notify_all()

    @property
    def queued(self) -> int:
        """Frames waiting for the worker (keyframes pile up here if it falls behind)."""
        return len(self._jobs)

    def T_map_odom(self) -> np.ndarray | None:
        """The map -> odom correction now; None while a loaded map has not placed odom yet."""
        if self.loaded and not self.slam.relocalizations:
            return None
        return self.slam.T_map_odom

    # --- any thread -----------------------------------------------------------------------------
    def call(self, fn: Callable[[], object], timeout: float | None = None) -> object:
        """Run ``fn`` on the worker between two frames (the map is consistent there); its
        result, or raise what it raised. TimeoutError when the worker did not get to it,
        RuntimeError when it is closed or closes first."""
        task = _Call(fn)
        with self._cond:
            if self._closing:
                raise RuntimeError("the SLAM worker is closed")
            self._jobs.append(task)
            self._cond.notify_all()
        if not task.done.wait(timeout):
            raise TimeoutError("the SLAM worker did not answer in time")
        if task.error is not None:
            raise task.error
        return task.result

    def save(self, path: str | Path, timeout: float | None = 60.0) -> Path:
        """Write the map (``map_file``) as it stands after the frames queued so far."""
        return Path(str(self.call(lambda: save_slam(path, self.slam),
                                  timeout)))

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every queued frame is processed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._working:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the worker: queued frames are dropped (a shutdown must not wait for a backlog
        of matches) and calls not yet run fail at once; the frame in progress gets ``timeout``
        seconds to finish. False when it did not (the thread is a daemon: it does not hold the
        process)."""
        with self._cond:
            self._closing = True
            for job in self._jobs:
                if isinstance(job, _Call):
                    job.cancel()
            self._jobs.clear()
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- worker thread --------------------------------------------------------------------------
    def _run(self) -> None:
        set_cpu_threads(self.threads)
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                job = self._jobs.popleft()
                self._working = True
            try:
                if isinstance(job, FrameJob):
                    self._process(job)
                else:
                    job.run()
            except Exception as exc:  # one frame's failure must not end the map
                if self.failures == 0 or self.on_error is None:  # else one per frame: the
                    log.exception("SLAM worker: a frame failed")  # owner reports the rest
                self._report(f"a frame failed: {exc.__class__.__name__}: {exc}")
            finally:
                with self._cond:
                    self._working = False
                    self._cond.notify_all()

    def _report(self, message: str) -> None:
        self.failures += 1
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:  # the report must not end the worker either
                log.exception("SLAM worker: reporting a failure failed")

    def _process(self, job: FrameJob) -> None:
        start = time.perf_counter()
        event, found = self.slam.process(job)
        self.busy_s += time.perf_counter() - start
        self.processed += 1
        if found is not None:
            with self._cond:
                self._pending = found
        if self.on_event is not None:
            if not event and job.keyframe is not None and self.slam.localized:
                event = "keyframe"
            self.on_event(event, job)
