"""What the node knows about its own health: counters, latency, and active faults.

A fault (bad encoding, no camera_info, ...) is logged once when it appears and once when it clears,
not once per frame, and stays visible in /diagnostics while it lasts. Pure Python: the node turns
``snapshot()`` into a diagnostic_msgs/DiagnosticStatus.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR"}


@dataclass
class Fault:
    level: int
    message: str
    since: float
    count: int = 1


class Health:
    """Thread-safe counters and faults; callbacks and the worker thread both report here."""

    def __init__(self, logger: logging.Logger | None = None, window: int = 100) -> None:
        self._log = logger or logging.getLogger("lightglue_ros")
        self._lock = threading.Lock()
        self.faults: dict[str, Fault] = {}
        self.counters: collections.Counter[str] = collections.Counter()
        self.latency_ms: collections.deque[float] = collections.deque(maxlen=window)
        self.arrivals: collections.deque[float] = collections.deque(maxlen=window)
        self.last: dict[str, object] = {}

    def fault(self, key: str, level: int, message: str) -> None:
        """Raise (or refresh) a fault; logged only when it first appears or its text changes."""
        with self._lock:
            fault = self.faults.get(key)
            if fault is not None and fault.message == message:
                fault.count += 1
                return
            self.faults[key] = Fault(level, message, time.monotonic(),
                                     fault.count + 1 if fault else 1)
        if level >= ERROR:  # separate call sites: rclpy fixes a logger call's severity
            self._log.error(f"{key}: {message}")
        else:
            self._log.warning(f"{key}: {message}")

    def clear(self, key: str) -> None:
        with self._lock:
            fault = self.faults.pop(key, None)
        if fault is not None:
            self._log.info(f"{key}: recovered after {fault.count} occurrence(s)")

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def arrived(self) -> None:
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.counters["received"] += 1

    def processed(self, latency_ms: float, **values: object) -> None:
        with self._lock:
            self.latency_ms.append(latency_ms)
            self.counters["processed"] += 1
            self.last.update(values)

    def snapshot(self, stale_after_s: float) -> tuple[int, str, dict[str, str]]:
        """(level, summary, key values) for /diagnostics."""
        now = time.monotonic()
        with self._lock:
            faults = dict(self.faults)
            counters = dict(self.counters)
            latency = np.array(self.latency_ms) if self.latency_ms else np.zeros(0)
            arrivals = list(self.arrivals)
            last = dict(self.last)
        rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 and \
            arrivals[-1] > arrivals[0] else 0.0
        level, summary = OK, "tracking"
        status = str(last.get("status", "waiting"))
        if status == "lost":
            level, summary = WARN, "tracking lost"
        elif status == "weak":
            summary = "tracking weak"
        if not arrivals or now - arrivals[-1] > stale_after_s:
            level, summary = max(level, WARN), "no images received"
        for key, fault in sorted(faults.items()):
            if fault.level >= level:
                level, summary = fault.level, f"{key}: {fault.message}"
        values = {"rate_hz": f"{rate:.2f}",
                  "latency_ms_mean": f"{latency.mean():.1f}" if latency.size else "nan",
                  "latency_ms_p50": f"{np.percentile(latency, 50):.1f}" if latency.size else "nan",
                  "latency_ms_p99": f"{np.percentile(latency, 99):.1f}" if latency.size else "nan",
                  "frames_received": str(counters.get("received", 0)),
                  "frames_processed": str(counters.get("processed", 0)),
                  "frames_dropped": str(counters.get("dropped", 0)),
                  "frames_rejected": str(counters.get("rejected", 0)),
                  "tracking_status": status}
        values.update({k: str(v) for k, v in last.items() if k != "status"})
        values.update({f"fault.{k}": f"{LEVEL_NAMES[f.level]} x{f.count}: {f.message}"
                       for k, f in faults.items()})
        return level, summary, values
