"""Where the windowed bundle adjustment runs: in the caller's thread, or in a worker process.

GTSAM's solver holds Python's global interpreter lock for the whole solve, so a thread would
stall tracking (and the extraction thread's Python work) for as long as it lasts. The background
adjuster runs ``adjust`` in a separate Python process instead, fed over a pipe, and the map takes
its result when it is collected (``LocalMap.collect``: the tracker does so once the next frame is
matched). Both adjusters have those same semantics, so their results are identical whatever the
timing: the inline one only computes at once.

Should the worker die, the background adjuster says so in the log and computes inline from then
on: tracking goes on.
"""
from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..config import BUNDLE_ADJUSTERS
from .bundle_adjustment import AdjustmentResult, Observations, adjust

log = logging.getLogger(__name__)


@dataclass
class AdjustmentJob:
    """The arguments of ``bundle_adjustment.adjust`` (plain arrays: they cross a pipe)."""

    poses: np.ndarray
    fixed: np.ndarray
    points: np.ndarray
    obs: Observations
    K: np.ndarray
    sigma_px: float
    depth_sigma: np.ndarray
    iterations: int

    def run(self) -> AdjustmentResult:
        return adjust(self.poses, self.fixed, self.points, self.obs, self.K, self.sigma_px,
                      self.depth_sigma, self.iterations)

    def run_safely(self) -> AdjustmentResult | None:
        """The result, or None (logged) when the solve fails or makes the window worse: a
        degenerate window (too few points after a loss of tracking, a wrong scale) must not
        take tracking down with it."""
        try:
            result = self.run()
        except Exception as exc:  # GTSAM raises its own (IndeterminantLinearSystem, ...)
            log.warning("bundle adjustment failed, window left as it was: %s: %s",
                        type(exc).__name__, exc)
            return None
        if not result.final_error_px <= max(result.initial_error_px, 1.0):
            log.warning("bundle adjustment diverged (median error %.3g px from %.3g), window "
                        "left as it was", result.final_error_px, result.initial_error_px)
            return None
        return result


class Adjuster(Protocol):
    def submit(self, job: AdjustmentJob) -> None:
        """Start ``job``; at most one is pending (``collect`` it first)."""

    def collect(self) -> AdjustmentResult | None:
        """The pending job's result (waiting for it), or None when none is pending."""

    def settle(self) -> None:
        """Wait until the pending job (if any) is computed; ``collect`` still returns it."""

    def close(self) -> None: ...


class InlineAdjuster:
    """Adjusts at submission, in the caller's thread."""

    def __init__(self) -> None:
        self._result: AdjustmentResult | None = None

    def submit(self, job: AdjustmentJob) -> None:
        self._result = job.run_safely()

    def collect(self) -> AdjustmentResult | None:
        result, self._result = self._result, None
        return result

    def settle(self) -> None:
        pass  # computed at submission

    def close(self) -> None:
        self._result = None


class BackgroundAdjuster:
    """Adjusts in a worker process (started on the first job), one job at a time."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._pending: AdjustmentJob | None = None
        # the pending job's result once read (by settle): (result,), the result None when the
        # worker's solve failed
        self._received: tuple[AdjustmentResult | None] | None = None
        self._inline = False  # the worker failed: compute here

    def submit(self, job: AdjustmentJob) -> None:
        if self._pending is not None:
            raise RuntimeError("collect the pending adjustment before submitting another")
        self._pending = job
        if self._inline:
            return
        try:
            proc = self._worker()
            pickle.dump(job, proc.stdin, pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
        except (OSError, pickle.PicklingError) as exc:
            self._fail(f"could not reach the bundle adjustment worker: {exc}")

    def collect(self) -> AdjustmentResult | None:
        self.settle()
        job, self._pending = self._pending, None
        received, self._received = self._received, None
        if job is None:
            return None
        if received is not None:
            return received[0]
        return job.run_safely()  # computed here: the worker failed

    def settle(self) -> None:
        if self._pending is None or self._inline or self._received is not None:
            return
        try:
            self._received = (pickle.load(self._proc.stdout),)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            self._fail(f"the bundle adjustment worker stopped: {exc!r}")

    def close(self) -> None:
        proc, self._proc, self._pending, self._received = self._proc, None, None, None
        if proc is not None:
            proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def _worker(self) -> subprocess.Popen:
        if self._proc is None:
            # a session of its own: Ctrl-C reaches the tracker's process group, not the worker,
            # which ends when the tracker closes its pipe (or dies: the kernel closes it), never
            # with an interrupt's traceback half-way through a solve or its start-up
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "lightglue_ros.mapping.adjuster_worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"})
        return self._proc

    def _fail(self, why: str) -> None:
        log.warning("%s; bundle adjustment runs in the tracking thread from now on", why)
        self._inline = True
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None


class NoAdjuster:
    """No bundle adjustment: points stay as created (fastest, least accurate)."""

    def submit(self, job: AdjustmentJob) -> None:
        pass

    def collect(self) -> AdjustmentResult | None:
        return None

    def settle(self) -> None:
        pass

    def close(self) -> None:
        pass


def make_adjuster(kind: str) -> Adjuster:
    """The adjuster named by ``Config.bundle_adjustment``."""
    if kind not in BUNDLE_ADJUSTERS:
        raise ValueError(f"bundle_adjustment must be one of {', '.join(BUNDLE_ADJUSTERS)}, "
                         f"not {kind!r}")
    return {"background": BackgroundAdjuster, "inline": InlineAdjuster,
            "off": NoAdjuster}[kind]()
