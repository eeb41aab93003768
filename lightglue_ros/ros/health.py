"""What the node knows about its own health: counters, latency, and active faults.

A fault (bad encoding, no camera_info, ...) is logged once when it appears and once when it clears,
not once per frame, and stays visible in /diagnostics while it lasts. A fault that clears is
still reported until it has been in at least one diagnostics message and ``hold_s`` has passed
since its last occurrence: a fault among good frames (one bad message in a stream) is seen in
/diagnostics even when it lasted less than a diagnostics period, and one that comes and goes
faster than that does not log a line per frame. Pure Python: the node turns ``snapshot()`` into
a diagnostic_msgs/DiagnosticStatus.
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
# where a received frame ends up (failed: a stage or the publishing raised, fault ``internal``):
# these add up to frames_received once no frame is in flight
OUTCOMES = ("processed", "dropped", "rejected", "failed")
COUNTERS = ("received", *OUTCOMES)  # frames_<name> in the values
STATUSES = ("ok", "weak", "lost")  # processed frames by tracking status: frames_<status>
EVENTS = ("restarts", "resets", "parameters_rejected")  # tracking_restarts, ... in the values


@dataclass
class Fault:
    level: int
    message: str
    since: float
    count: int = 1
    last: float = 0.0         # time of the last occurrence
    published: bool = False   # reported in a snapshot at least once
    clearing: bool = False    # cleared, waiting to be published / held


class Health:
    """Thread-safe counters and faults; callbacks and the worker thread both report here."""

    def __init__(self, logger: logging.Logger | None = None, window: int = 100,
                 hold_s: float = 1.0) -> None:
        self._log = logger or logging.getLogger("lightglue_ros")
        self._lock = threading.Lock()
        self.hold_s = hold_s
        self.started = time.monotonic()
        self.faults: dict[str, Fault] = {}
        self.counters: collections.Counter[str] = collections.Counter()
        self.latency_ms: collections.deque[float] = collections.deque(maxlen=window)
        self.arrivals: collections.deque[float] = collections.deque(maxlen=window)
        self.last: dict[str, object] = {}

    def fault(self, key: str, level: int, message: str, relog: bool = True) -> None:
        """Raise (or refresh) a fault; logged only when it first appears, its level changes, or
        (with ``relog``) its text changes. Without ``relog`` a new text replaces the old one in
        /diagnostics silently (a reason that varies frame by frame)."""
        now = time.monotonic()
        with self._lock:
            fault = self.faults.get(key)
            if fault is not None and fault.level == level and \
                    (fault.message == message or not relog):
                fault.count += 1
                fault.message, fault.last, fault.clearing = message, now, False
                return
            self.faults[key] = Fault(level, message, now, fault.count + 1 if fault else 1, now)
        if level >= ERROR:  # separate call sites: rclpy fixes a logger call's severity
            self._log.error(f"{key}: {message}")
        else:
            self._log.warning(f"{key}: {message}")

    def clear(self, key: str) -> None:
        """The fault's condition is over; it leaves once reported and held (see the module)."""
        with self._lock:
            fault = self.faults.get(key)
            if fault is None:
                return
            if not (fault.published and time.monotonic() - fault.last >= self.hold_s):
                fault.clearing = True
                return
            del self.faults[key]
        self._recovered(key, fault)

    def _recovered(self, key: str, fault: Fault) -> None:
        self._log.info(f"{key}: recovered after {fault.count} occurrence(s)")

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def arrived(self) -> None:
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.counters["received"] += 1

    def set_values(self, **values: object) -> None:
        """Key values for /diagnostics that are not per frame (e.g. the network that runs)."""
        with self._lock:
            self.last.update(values)

    def processed(self, latency_ms: float, **values: object) -> None:
        with self._lock:
            self.latency_ms.append(latency_ms)
            self.counters["processed"] += 1
            if "status" in values:
                self.counters[str(values["status"])] += 1
            self.last.update(values)

    def check_input(self, stale_after_s: float) -> None:
        """The ``input`` fault: no image for ``stale_after_s`` (since the start, or since the last
        one: a camera or a publisher that died)."""
        with self._lock:
            last = self.arrivals[-1] if self.arrivals else self.started
        if time.monotonic() - last > stale_after_s:
            self.fault("input", WARN, f"no image received for more than {stale_after_s:g} s")
        else:
            self.clear("input")

    def snapshot(self, stale_after_s: float) -> tuple[int, str, dict[str, str]]:
        """(level, summary, key values) for /diagnostics."""
        self.check_input(stale_after_s)
        now = time.monotonic()
        recovered = []
        with self._lock:
            for key, fault in list(self.faults.items()):
                if fault.clearing and fault.published and now - fault.last >= self.hold_s:
                    recovered.append((key, self.faults.pop(key)))
            for fault in self.faults.values():
                fault.published = True
            faults = {k: Fault(**vars(f)) for k, f in self.faults.items()}
            counters = dict(self.counters)
            latency = np.array(self.latency_ms) if self.latency_ms else np.zeros(0)
            arrivals = list(self.arrivals)
            last = dict(self.last)
        for key, fault in recovered:
            self._recovered(key, fault)
        rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 and \
            arrivals[-1] > arrivals[0] else 0.0
        level, summary = OK, "tracking"
        status = str(last.get("status", "waiting"))
        if status == "lost":
            level, summary = WARN, "tracking lost"
        elif status == "weak":
            summary = "tracking weak"
        if not arrivals:
            level, summary = max(level, WARN), "no images received"
        for key, fault in sorted(faults.items()):
            if fault.level >= level:
                level, summary = fault.level, f"{key}: {fault.message}"
        values = {"rate_hz": f"{rate:.2f}",
                  "latency_ms_mean": f"{latency.mean():.1f}" if latency.size else "nan",
                  "latency_ms_p50": f"{np.percentile(latency, 50):.1f}" if latency.size else "nan",
                  "latency_ms_p99": f"{np.percentile(latency, 99):.1f}" if latency.size else "nan"}
        values.update({f"frames_{k}": str(counters.get(k, 0)) for k in COUNTERS + STATUSES})
        values["tracking_status"] = status
        values.update({("" if k == "parameters_rejected" else "tracking_") + k:
                       str(counters.get(k, 0)) for k in EVENTS})
        values.update({k: str(v) for k, v in last.items() if k != "status"})
        values.update({f"fault.{k}": f"{LEVEL_NAMES[f.level]} x{f.count}: {f.message}"
                       for k, f in faults.items()})
        return level, summary, values


def frames_done(values: dict[str, str]) -> int:
    """The frames a status's values count as ended up somewhere (``OUTCOMES``)."""
    return sum(int(values.get(f"frames_{k}", 0)) for k in OUTCOMES)
