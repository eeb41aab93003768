"""Resident memory, threads and open file descriptors of a process, over time, and the CPU time of
each of its threads and child processes (Linux /proc)."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np

TICKS = os.sysconf("SC_CLK_TCK")  # /proc's CPU times are in clock ticks


@dataclass(frozen=True)
class ProcessSample:
    t: float          # time.monotonic() of the sample
    rss_mb: float     # resident set size (VmRSS), MiB
    threads: int
    fds: int          # open file descriptors (sockets, files, pipes...)

    def as_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def sample(pid: int) -> ProcessSample:
    """The process's figures now; OSError when it is gone (or /proc is not there)."""
    rss_kb = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return ProcessSample(time.monotonic(), rss_kb / 1024.0, threads, fds)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc children lists)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(c) for c in f.read().split()]
                found += kids
                todo += kids
        except OSError:
            continue
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().replace("\0", " ").strip()
    except OSError:
        return ""


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) and name of each thread of ``pid``, by thread id."""
    out: dict[int, tuple[str, float]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    return out


class Sampler:
    """Samples a process every ``period_s`` on a thread; ``samples`` grows until ``stop``."""

    def __init__(self, pid: int, period_s: float = 1.0) -> None:
        self.pid, self.period_s = pid, period_s
        self.samples: list[ProcessSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="procstat", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.take()
            self._stop.wait(self.period_s)

    def take(self) -> ProcessSample | None:
        """One sample now (also kept in ``samples``); None when the process is gone."""
        try:
            s = sample(self.pid)
        except OSError:
            return None
        self.samples.append(s)
        return s

    def between(self, start: float, end: float | None = None) -> list[ProcessSample]:
        return [s for s in list(self.samples) if s.t >= start and (end is None or s.t <= end)]

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5.0)


def growth_pct(samples: list[ProcessSample], warmup_s: float, window_s: float = 10.0) -> dict:
    """RSS growth after a warm-up, as a trend: the median RSS of the ``window_s`` after the
    warm-up is the reference, the median of the last ``window_s`` the end (the RSS of a Python
    process running torch goes up and down by several percent as buffers are freed to the
    system and taken again, which a single sample would mistake for growth). The largest sample
    after the warm-up and the least-squares slope are reported too."""
    keys = ("rss_start_mb", "rss_ref_mb", "rss_end_mb", "rss_min_mb", "rss_max_mb",
            "rss_growth_pct", "rss_max_over_ref_pct", "rss_slope_mb_per_min")
    if len(samples) < 2:
        return dict.fromkeys(keys)
    t0 = samples[0].t
    after = [s for s in samples if s.t - t0 >= warmup_s] or samples[-1:]
    first = [s.rss_mb for s in after if s.t - after[0].t <= window_s]
    last = [s.rss_mb for s in after if after[-1].t - s.t <= window_s]
    ref, end = float(np.median(first)), float(np.median(last))
    values = [s.rss_mb for s in after]
    slope = float(np.polyfit([s.t - t0 for s in after], values, 1)[0]) * 60 \
        if len(after) > 2 else 0.0
    return dict(zip(keys, (round(samples[0].rss_mb, 1), round(ref, 1), round(end, 1),
                           round(min(values), 1), round(max(values), 1),
                           round(100.0 * (end - ref) / ref, 2),
                           round(100.0 * (max(values) - ref) / ref, 2), round(slope, 3))))
