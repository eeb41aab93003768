"""Fault injection into the live tracker node, each while frames flow, and what must come of it.

A ``FaultCase`` makes one fault happen to a running node (``FaultBench``: the node process, the
synthetic camera feeding it good frames, the probe's collectors) and says what the node must do:
which fault key its /diagnostics carry (``fault.<key>``) and at which level, the text of the one
log line it writes when the fault appears (not one per frame) and of the one when it clears. The
bench runs a case and records what it observed (``FaultResult``): the levels in /diagnostics, the
node's log lines, whether the fault cleared, whether tracking came back with good frames and
whether the process is still alive. ``FaultResult.problems`` compares the two.

Faults that stop the node from starting (a truncated or tampered weights file) are
``StartupCase``s: the node must exit with status 2 and one line naming the file, before any
weights are loaded.

The stress command runs every case (``run_faults``); ``test/test_faults.py`` runs them one by one
and asserts on the observations.
"""
from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lightglue_ros.config import Config
from lightglue_ros.ros.health import LEVEL_NAMES
from .camera import NS, Shot, StampClock, SyntheticCamera
from .messages import depth_msg, diagnostic_dict, image_msg, raw_image_msg, stamp_key
from .session import ERROR_LEVEL, OK_LEVEL, WARN_LEVEL, RosSession, TrackerProcess, wait_until

FAULT_SECONDS = 1.5  # how long a fault lasts while frames flow
BENCH_PARAMS = {"input_qos": "reliable", "use_depth": True, "diagnostics_period_s": 0.5,
                "stale_after_s": 1.0, "depth_wait_s": 0.2, "cpu_threads": 1}


@dataclass
class FaultResult:
    name: str
    key: str | None
    level: str                  # expected in /diagnostics
    seen_level: str | None      # the fault's level as /diagnostics reported it (None: not seen)
    status_level: str | None    # the node's overall level at that time
    fault_lines: int            # log lines announcing the fault
    recovery_lines: int         # log lines saying it cleared
    cleared: bool               # /diagnostics without the fault again
    tracks_again: bool          # a relative pose (a tracked frame) after the fault
    alive: bool
    seconds: float
    expected_lines: int = 1
    notes: list[str] = field(default_factory=list)   # case-specific observations
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass
class FaultCase:
    """One fault: ``inject(bench)`` makes it happen while frames flow and returns when it is
    over; ``check(bench, result)`` adds case-specific problems."""

    name: str
    key: str | None             # fault.<key> in /diagnostics; None: no fault may appear
    level: int                  # OK_LEVEL with key None
    text: str                   # in the log line and the diagnostics message
    does: str                   # what the node does (the reliability table)
    inject: Callable[["FaultBench"], None]
    check: Callable[["FaultBench", FaultResult], None] | None = None
    lines: int = 1              # log lines announcing the fault
    recovers: bool = True       # a "<key>: recovered" line is expected


class FaultBench:
    """A running tracker node (started with ``BENCH_PARAMS`` and no camera_info) fed by a
    synthetic camera at ``rate_hz`` on a thread."""

    def __init__(self, session: RosSession, width: int = 160, height: int = 120,
                 rate_hz: float = 4.0, params: dict[str, Any] | None = None,
                 namespace: str = "faults", work_dir: Path | None = None) -> None:
        self.session = session
        self.rate_hz = rate_hz
        self.params = {**BENCH_PARAMS, **(params or {})}
        self.work_dir = Path(work_dir or session.log_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.node: TrackerProcess = session.start_node(
            namespace, self.params, inputs=("image", "camera_info", "depth"),
            outputs=("odometry", "relative_pose", "diagnostics"))
        self.clock = StampClock()
        self.camera = SyntheticCamera(self._publish, self.clock, width, height, depth=True,
                                      gap_s=0.005, bounce=True)
        self.width, self.height = width, height
        self.marks: dict[str, Any] = {}       # what an injection wants its check to know

    # --- camera -----------------------------------------------------------------------------
    def _publish(self, topic: str, msg) -> None:
        self.node.input_publisher(topic).publish(msg)

    def flow(self, rate_hz: float | None = None) -> None:
        """Good frames flowing at ``rate_hz`` (the bench's rate by default)."""
        if self.camera.running:
            self.camera.stop()
        self.camera.start(rate_hz or self.rate_hz)

    def pause(self) -> None:
        self.camera.stop()

    def during(self, mutate: Callable[[Shot], Shot], seconds: float = FAULT_SECONDS) -> None:
        """Every frame goes through ``mutate`` for ``seconds`` while frames flow."""
        if not self.camera.running:
            self.flow()
        self.camera.mutate = mutate
        time.sleep(seconds)
        self.camera.mutate = None

    # --- observations -------------------------------------------------------------------------
    def statuses(self, start: int = 0) -> list[dict]:
        return [d for m in self.node.diagnostics.messages[start:]
                for d in (diagnostic_dict(s) for s in m.status)
                if d["hardware_id"] == self.node.name]

    def values(self) -> dict[str, str]:
        """The key values of the next diagnostics."""
        return self.node.fresh_status(timeout=30)["values"]

    def run(self, case: FaultCase) -> FaultResult:
        node = self.node
        start = time.monotonic()
        log0, diag0 = len(node.log()), len(node.diagnostics.messages)
        self.marks = {"values": self.values() if self.camera.running else {},
                      "odometry": len(node.odometry.messages)}
        case.inject(self)
        if not self.camera.running:
            self.flow()
        tracked_end = len(node.relative_pose.messages)
        key = case.key
        seen = status = None
        cleared = True
        if key is not None:
            def has_fault(d: dict) -> bool:
                return case.text in d["values"].get(f"fault.{key}", "")
            with contextlib.suppress(TimeoutError, RuntimeError):  # not seen: a problem below
                node.status(has_fault, timeout=10, after=diag0)
            try:
                node.fresh_status(lambda d: f"fault.{key}" not in d["values"], timeout=30)
            except (TimeoutError, RuntimeError):
                cleared = False
            for d in self.statuses(diag0):
                if has_fault(d):
                    level = d["values"][f"fault.{key}"].split(" ", 1)[0]
                    if seen is None or _rank(level) > _rank(seen):
                        seen, status = level, LEVEL_NAMES[d["level"]]
        else:
            bad = [d for d in self.statuses(diag0) if d["level"] != OK_LEVEL]
            if bad:
                seen, status = LEVEL_NAMES[bad[0]["level"]], LEVEL_NAMES[bad[0]["level"]]
        try:
            # a relative pose: only published for a frame that was tracked (not lost)
            node.relative_pose.wait(None, 1, timeout=30, alive=node.alive, start=tracked_end)
            tracks_again = True
        except (TimeoutError, RuntimeError):
            tracks_again = False
        if key is not None and cleared and case.recovers:
            # the thread that clears a fault logs it a moment after the diagnostics thread may
            # have published the status without it
            with contextlib.suppress(TimeoutError, RuntimeError):  # not written: a problem below
                wait_until(lambda: f"]: {key}: recovered after" in node.log()[log0:], 5,
                           f"the {key} recovery line", node.alive)
        lines = node.log()[log0:].splitlines()
        if key is None:  # only the lines the case expects may be warnings or errors
            fault_lines = [line for line in lines if line.startswith(("[WARN]", "[ERROR]"))]
            recovery_lines: list[str] = []
        else:
            prefix = f"]: {key}: "
            fault_lines = [line for line in lines if prefix in line
                           and "recovered after" not in line]
            recovery_lines = [line for line in lines if f"{prefix}recovered after" in line]
        result = FaultResult(case.name, key, LEVEL_NAMES[case.level], seen, status,
                             len(fault_lines), len(recovery_lines), cleared, tracks_again,
                             node.alive(), round(time.monotonic() - start, 1), case.lines)
        result.problems = _problems(case, result, fault_lines)
        if case.check is not None:
            case.check(self, result)
        return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.camera.stop()
        self.node.stop()


def _rank(level_name: str) -> int:
    return {v: k for k, v in LEVEL_NAMES.items()}.get(level_name, -1)


def _problems(case: FaultCase, r: FaultResult, fault_lines: list[str]) -> list[str]:
    out = []
    want = LEVEL_NAMES[case.level]
    if case.key is None:
        if r.seen_level is not None:
            out.append(f"/diagnostics went to {r.seen_level} though no fault was expected")
        if r.fault_lines != case.lines or any(case.text not in line for line in fault_lines):
            out.append(f"{r.fault_lines} warning/error lines logged (expected {case.lines}"
                       + (f" saying '{case.text}'" if case.text else "") + f"): {fault_lines[:3]}")
    else:
        if r.seen_level != want:
            out.append(f"fault.{case.key} with '{case.text}' seen at level {r.seen_level} in "
                       f"/diagnostics, expected {want}")
        elif _rank(r.status_level) < case.level:
            out.append(f"the node's status level was {r.status_level}, below {want}")
        if r.fault_lines != case.lines:
            out.append(f"{r.fault_lines} log lines for fault '{case.key}' (expected "
                       f"{case.lines}): {fault_lines[:3]}")
        elif case.text not in fault_lines[0]:
            out.append(f"log line {fault_lines[0]!r} does not say '{case.text}'")
        if not r.cleared:
            out.append(f"fault.{case.key} still in /diagnostics after the good frames returned")
        if case.recovers and r.recovery_lines != 1:
            out.append(f"{r.recovery_lines} recovery lines for '{case.key}' (expected 1)")
    if not r.tracks_again:
        out.append("no tracked odometry after the fault")
    if not r.alive:
        out.append("the node process died")
    return out


# --- the cases ------------------------------------------------------------------------------------
def _replace(topic: str, make: Callable[[Shot, int, int], Any]) -> Callable[[FaultBench], None]:
    """Every message of ``topic`` (image, depth, camera_info) replaced by ``make(shot, width,
    height)`` (None: not sent) for FAULT_SECONDS while frames flow."""
    def inject(bench: FaultBench) -> None:
        def mutate(shot: Shot) -> Shot:
            setattr(shot, topic, make(shot, bench.width, bench.height))
            return shot
        bench.during(mutate)
    return inject


def _image(make: Callable[[Shot, int, int], Any]) -> Callable[[FaultBench], None]:
    return _replace("image", make)


def _depth(make: Callable[[Shot, int, int], Any]) -> Callable[[FaultBench], None]:
    return _replace("depth", make)


def _rgb(w: int, h: int, value: int | None = None) -> np.ndarray:
    if value is not None:
        return np.full((h, w, 3), value, np.uint8)
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8)


def _camera_info_late(bench: FaultBench) -> None:
    """The node has never had a camera_info: frames flow without one, then it arrives."""
    bench.camera.send_camera_info = False
    bench.flow()
    time.sleep(FAULT_SECONDS)
    bench.camera.send_camera_info = True


def _camera_info(change: Callable[[Any, int, int], None]) -> Callable[[FaultBench], None]:
    """The camera_info, changed by ``change(info, width, height)``, for FAULT_SECONDS."""
    def make(shot: Shot, w: int, h: int) -> Any:
        info = copy.deepcopy(shot.camera_info)
        change(info, w, h)
        return info
    return _replace("camera_info", make)


def _resize(info, w: int, h: int) -> None:
    info.width, info.height = 2 * w, 2 * h


def _uncalibrated(info, w: int, h: int) -> None:
    info.k = [0.0] * 9


def _stamps_back(to_ns: int | None, back_s: float = 0.0) -> Callable[[FaultBench], None]:
    """Stamps go back (by ``back_s``, or to ``to_ns``: a clock reset) and go on from there."""
    def inject(bench: FaultBench) -> None:
        bench.marks["restarts"] = int(bench.marks["values"].get("tracking_restarts", 0))
        if to_ns is None:
            bench.clock.shift(-int(back_s * NS))
        else:
            bench.clock.set(to_ns)
        first = bench.clock.next_ns  # frames after the jump: stamps from here, for a few s
        bench.marks["jumped"] = ((first // NS, first % NS), ((first + 10 * NS) // NS, 0))
        bench.marks["odometry"] = len(bench.node.odometry.messages)
        time.sleep(FAULT_SECONDS)
    return inject


def _check_restart(bench: FaultBench, result: FaultResult) -> None:
    """Tracking restarted at the first frame after the jump, one restart more, and odom stayed
    continuous (REP 105): that frame keeps the pose of the odometry before it."""
    values = bench.values()
    restarts = int(values.get("tracking_restarts", 0)) - bench.marks["restarts"]
    if restarts != 1:
        result.problems.append(f"tracking_restarts went up by {restarts}, expected 1")
    lo, hi = bench.marks["jumped"]
    messages = bench.node.odometry.messages
    after = [k for k in range(bench.marks["odometry"], len(messages))
             if lo <= stamp_key(messages[k].header.stamp) < hi]  # frames stamped after the jump
    if not after:
        result.problems.append("no odometry of a frame stamped after the jump")
    elif after[0] > 0:
        p, q = messages[after[0]].pose.pose.position, messages[after[0] - 1].pose.pose.position
        result.notes.append(f"first odometry after the jump at ({p.x:.3g}, {p.y:.3g}, {p.z:.3g})")
        if max(abs(p.x - q.x), abs(p.y - q.y), abs(p.z - q.z)) > 1e-9:
            result.problems.append("odom jumped at the restart: the first frame after it is "
                                   "not at the last pose")


def _forward_jump(bench: FaultBench) -> None:
    bench.marks["restarts"] = int(bench.marks["values"].get("tracking_restarts", 0))
    bench.clock.shift(100 * NS)
    time.sleep(FAULT_SECONDS)


def _check_no_restart(bench: FaultBench, result: FaultResult) -> None:
    restarts = int(bench.values().get("tracking_restarts", 0)) - bench.marks["restarts"]
    if restarts:
        result.problems.append(f"a forward jump restarted tracking ({restarts})")


def _duplicates(bench: FaultBench) -> None:
    """Each stamp sent three times (a driver that does not advance its clock)."""
    bench.marks["rejected"] = int(bench.marks["values"].get("frames_rejected", 0))
    state = {"n": 0, "stamp": None}

    def mutate(shot: Shot) -> Shot:
        if state["n"] % 3:
            shot.stamp = state["stamp"]
        else:
            state["stamp"] = shot.stamp
        state["n"] += 1
        return shot
    bench.during(mutate)
    bench.marks["duplicates"] = state["n"] - (state["n"] + 2) // 3


def _check_duplicates(bench: FaultBench, result: FaultResult) -> None:
    rejected = int(bench.values()["frames_rejected"]) - bench.marks["rejected"]
    sent = bench.marks["duplicates"]
    result.notes.append(f"{sent} duplicates sent, {rejected} frames rejected")
    if rejected < 1 or rejected > sent:  # a duplicate the node never saw (latest wins) is fine
        result.problems.append(f"{rejected} frames rejected for {sent} duplicates sent")


def _publisher_dies(bench: FaultBench) -> None:
    """The camera is another process: it publishes, is killed (SIGKILL), and is started again.
    The process renders its frames and connects first, and publishes on SIGUSR1 (when the
    bench's own camera has stopped), so the stream does not pause before the fault."""
    node = bench.node
    log_path = bench.work_dir / "camera_process.log"

    def start() -> tuple[subprocess.Popen, float]:
        mark = log_path.read_text() if log_path.exists() else ""
        cmd = [sys.executable, "-m", "lightglue_ros_tools.reliability.camera", "--namespace",
               node.namespace, "--rate", str(bench.rate_hz), "--width", str(bench.width),
               "--height", str(bench.height), "--depth", "--go-on-signal", "--bounce",
               "--start-ns", str(bench.clock.next_ns), "--start-frame", str(bench.camera.index)]
        with open(log_path, "a") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=bench.session.cwd,
                                    env={**os.environ, **bench.session.env})
        wait_until(lambda: log_path.read_text().count("ready") > mark.count("ready"), 120,
                   "the camera process", lambda: proc.poll() is None)
        bench.pause()
        node.reset()  # the process plays its own frames: tracking starts again with them
        proc.send_signal(signal.SIGUSR1)
        return proc, time.monotonic()

    for round_ in range(2):
        n = len(node.relative_pose.messages)
        proc, started = start()
        try:
            node.relative_pose.wait(None, 2, timeout=60, alive=node.alive, start=n)
        finally:
            if round_ == 0:
                proc.kill()  # dies without a goodbye
            else:
                proc.send_signal(signal.SIGINT)
            proc.wait(30)
            # the bench's own frames go on after the process's last stamp
            sent = int((time.monotonic() - started) * bench.rate_hz) + 10
            bench.clock.shift(sent * bench.clock.step_ns)
        if round_ == 0:
            bench.marks["killed"] = proc.returncode
            node.fresh_status(lambda d: "fault.input" in d["values"], timeout=30)
    node.reset()  # the bench's frames again


def _reset_under_load(bench: FaultBench) -> None:
    """~/reset called three times while the camera runs at 5x the bench's rate."""
    bench.marks["resets"] = int(bench.marks["values"].get("tracking_resets", 0))
    bench.flow(5 * bench.rate_hz)
    time.sleep(1.0)
    answers = []
    for _ in range(3):
        start = time.monotonic()
        response = bench.node.reset()
        answers.append((response.success, time.monotonic() - start))
        time.sleep(0.6)
    bench.marks["answers"] = answers
    bench.flow()


def _check_resets(bench: FaultBench, result: FaultResult) -> None:
    answers = bench.marks["answers"]
    result.notes.append("reset answered in " + ", ".join(f"{1e3 * s:.0f} ms" for _, s in answers))
    if not all(ok for ok, _ in answers):
        result.problems.append(f"a reset was refused: {answers}")
    resets = int(bench.values()["tracking_resets"]) - bench.marks["resets"]
    if resets != 3:
        result.problems.append(f"tracking_resets went up by {resets}, expected 3")
    applied = bench.node.log().count("tracking reset (service call)")
    if applied < 1:
        result.problems.append("no 'tracking reset (service call)' line")


REJECTED = {  # parameter: (value, reason the caller gets, logged by the node)
    "width_confidence": (0.0, "must be -1 (off) or in (0, 1]", True),
    "good_inliers": (10, "good_inliers (10) must be >= min_inliers (15)", True),
    "depth_confidence": (2.0, "out of range", False),      # refused by rclpy (declared range)
    "max_keypoints": (512, "read-only", False),             # fixed at start
}


def _bad_parameters(bench: FaultBench) -> None:
    node = bench.node
    bench.marks["rejected_before"] = int(bench.marks["values"].get("parameters_rejected", 0))
    before = node.get_parameters(*REJECTED)
    results = {name: node.set_parameters(**{name: value})[name]
               for name, (value, _, _) in REJECTED.items()}
    accepted = node.set_parameters(filter_threshold=0.2)["filter_threshold"]
    time.sleep(FAULT_SECONDS)
    node.set_parameters(filter_threshold=float(bench.params.get("filter_threshold",
                                                                Config.filter_threshold)))
    bench.marks.update(before=before, results=results, accepted=accepted.successful,
                       after=node.get_parameters(*REJECTED))


def _check_parameters(bench: FaultBench, result: FaultResult) -> None:
    m = bench.marks
    for name, (_, reason, _) in REJECTED.items():
        r = m["results"][name]
        result.notes.append(f"{name}: {r.reason}")
        if r.successful or reason not in r.reason:
            result.problems.append(f"{name}: successful={r.successful}, reason {r.reason!r}")
    if m["after"] != m["before"]:
        result.problems.append(f"values changed: {m['before']} -> {m['after']}")
    if not m["accepted"]:
        result.problems.append("a valid change (filter_threshold 0.2) was refused")
    logged = sum(1 for _, _, node_logs in REJECTED.values() if node_logs)
    count = int(bench.values()["parameters_rejected"]) - m["rejected_before"]
    if count != logged:
        result.problems.append(f"parameters_rejected went up by {count}, expected {logged}")


def cases(width: int, height: int) -> list[FaultCase]:
    """Every fault injected while frames flow, in the order they run (the first needs a node
    that never had a camera_info)."""
    row = 3 * width
    full = row * height
    gray = np.zeros((height, width), np.uint8)
    return [
        FaultCase("camera_info missing, then arriving late", "camera_info", ERROR_LEVEL,
                  "no camera_info received yet",
                  "frames are rejected and counted until the first camera_info; then tracked",
                  _camera_info_late),
        FaultCase("unknown encoding (nv21)", "image", ERROR_LEVEL,
                  "unsupported encoding 'nv21'", "frame rejected and counted",
                  _image(lambda s, w, h: raw_image_msg(_rgb(w, h)[..., :2], "nv21", s.stamp))),
        FaultCase("mismatched encoding: depth (32FC1) on the image topic", "image", ERROR_LEVEL,
                  "encoding '32FC1' is a depth image", "frame rejected and counted",
                  _image(lambda s, w, h: depth_msg(np.ones((h, w), np.float32), "32FC1",
                                                   s.stamp))),
        FaultCase("mismatched encoding: rgb8 header on mono8 data", "image", ERROR_LEVEL,
                  f"step {width} is smaller than a rgb8 row of {width} pixels ({row} bytes)",
                  "frame rejected and counted",
                  _image(lambda s, w, h: raw_image_msg(gray, "rgb8", s.stamp, step=w))),
        FaultCase("step mismatch: step larger than the data holds", "image", ERROR_LEVEL,
                  f"data holds {full} bytes but {width}x{height} rgb8 with step {row + 64} "
                  f"needs {(row + 64) * height}", "frame rejected and counted",
                  _image(lambda s, w, h: raw_image_msg(_rgb(w, h), "rgb8", s.stamp,
                                                       step=3 * w + 64))),
        FaultCase("size mismatch: height larger than the data", "image", ERROR_LEVEL,
                  f"data holds {full} bytes but {width}x{2 * height} rgb8 with step {row} "
                  f"needs {2 * full}", "frame rejected and counted",
                  _image(lambda s, w, h: raw_image_msg(_rgb(w, h), "rgb8", s.stamp,
                                                       height=2 * h))),
        FaultCase("empty data", "image", ERROR_LEVEL,
                  f"data holds 0 bytes but {width}x{height} rgb8 with step {row} needs {full}",
                  "frame rejected and counted",
                  _image(lambda s, w, h: raw_image_msg(_rgb(w, h), "rgb8", s.stamp, data=b""))),
        FaultCase("zero-size image", "image", ERROR_LEVEL, "empty image (0x0)",
                  "frame rejected and counted",
                  _image(lambda s, w, h: raw_image_msg(_rgb(w, h), "rgb8", s.stamp, width=0,
                                                       height=0, data=b""))),
        FaultCase("truncated data", "image", ERROR_LEVEL,
                  f"data holds {full // 2} bytes but {width}x{height} rgb8 with step {row} "
                  f"needs {full}", "frame rejected and counted",
                  _image(lambda s, w, h: raw_image_msg(
                      _rgb(w, h), "rgb8", s.stamp, data=_rgb(w, h).tobytes()[:3 * w * h // 2]))),
        FaultCase("black frames", "tracking", WARN_LEVEL, "lost (only 0 keypoints)",
                  "no keypoints: odometry holds the last pose with variance 1e6; tracking "
                  "resumes against the keyframe when texture returns",
                  _image(lambda s, w, h: image_msg(_rgb(w, h, 0), "rgb8", s.stamp))),
        FaultCase("saturated frames", "tracking", WARN_LEVEL, "lost (only 0 keypoints)",
                  "as black frames",
                  _image(lambda s, w, h: image_msg(_rgb(w, h, 255), "rgb8", s.stamp))),
        FaultCase("NaN depth (every pixel)", "depth", WARN_LEVEL,
                  "depth image has no valid pixel", "frame tracked without depth (PnP on the "
                  "keyframe's points)",
                  _depth(lambda s, w, h: depth_msg(np.full((h, w), np.nan, np.float32),
                                                   "32FC1", s.stamp))),
        FaultCase("Inf depth (every pixel)", "depth", WARN_LEVEL,
                  "depth image has no valid pixel", "as NaN depth",
                  _depth(lambda s, w, h: depth_msg(np.full((h, w), np.inf, np.float32),
                                                   "32FC1", s.stamp))),
        FaultCase("NaN and Inf in part of the depth", None, OK_LEVEL, "",
                  "invalid pixels ignored one by one; no fault, no log line",
                  _depth(lambda s, w, h: depth_msg(_holes(s, w, h), "32FC1", s.stamp)),
                  lines=0, recovers=False),
        FaultCase("depth of another size", "depth", ERROR_LEVEL,
                  f"depth image is {width // 2}x{height // 2} but the image is "
                  f"{width}x{height}", "frame tracked without depth",
                  _depth(lambda s, w, h: depth_msg(np.ones((h // 2, w // 2), np.float32),
                                                   "32FC1", s.stamp))),
        FaultCase("depth with an image encoding (rgb8)", "depth", ERROR_LEVEL,
                  "bad depth image: unsupported encoding 'rgb8'", "frame tracked without depth",
                  _depth(lambda s, w, h: image_msg(_rgb(w, h), "rgb8", s.stamp))),
        FaultCase("depth missing", "depth", WARN_LEVEL, "no depth image within",
                  "each frame waits depth_wait_s, then is tracked without depth",
                  _depth(lambda s, w, h: None)),
        FaultCase("camera_info of another size than the image", "camera_info", ERROR_LEVEL,
                  f"camera_info is {2 * width}x{2 * height} but the image is {width}x{height}",
                  "frame rejected and counted until a matching camera_info",
                  _camera_info(_resize)),
        FaultCase("camera_info uncalibrated (K all zero)", "camera_info", ERROR_LEVEL,
                  "focal lengths must be positive", "frame rejected and counted",
                  _camera_info(_uncalibrated)),
        FaultCase("stamps going backwards (bag loop)", "stamp", WARN_LEVEL, "stamp went back",
                  "tracking restarts: the next frame keeps the last pose (odom continuous)",
                  _stamps_back(None, back_s=20.0), _check_restart),
        FaultCase("sim time reset (stamps back to 1 s)", "stamp", WARN_LEVEL,
                  "stamp went back", "as a bag loop", _stamps_back(1 * NS), _check_restart),
        FaultCase("stamps jumping forward (+100 s)", "stamp", WARN_LEVEL,
                  "stamp jumped forward by 100.", "reported; tracking goes on",
                  _forward_jump, _check_no_restart),
        FaultCase("duplicate stamps", "duplicate_stamp", WARN_LEVEL,
                  "repeats the frame before: frame ignored", "the repeated frame is ignored "
                  "and counted as rejected", _duplicates, _check_duplicates),
        FaultCase("publisher dies (SIGKILL) and comes back", "input", WARN_LEVEL,
                  "no image received for more than", "waits; reports the silence after "
                  "stale_after_s; tracks the new publisher's frames",
                  _publisher_dies),
        FaultCase("reset service called under load (5x the rate)", None, OK_LEVEL, "",
                  "each call answered at once; tracking restarts at the next frame",
                  _reset_under_load, _check_resets, lines=0, recovers=False),
        FaultCase("parameters set to invalid values at run time", None, OK_LEVEL,
                  "parameter change rejected", "refused with the reason; values unchanged; "
                  "one line per refusal the node sees (rclpy refuses range and read-only "
                  "violations itself)", _bad_parameters, _check_parameters,
                  lines=sum(logged for _, _, logged in REJECTED.values()), recovers=False),
    ]


def _holes(shot: Shot, w: int, h: int) -> np.ndarray:
    """The frame's true depth with a third of the rows NaN and a sixth +Inf."""
    depth = np.frombuffer(bytes(shot.depth.data), "<f4").reshape(h, w).copy() \
        if shot.depth is not None else np.ones((h, w), np.float32)
    depth[::3] = np.nan
    depth[1::6] = np.inf
    return depth


# --- the node refuses to start -------------------------------------------------------------------
@dataclass
class StartupCase:
    name: str
    text: str                              # in the one line the node writes
    does: str
    prepare: Callable[[Path], dict[str, Any]]   # work dir -> node parameters


@dataclass
class StartupResult:
    name: str
    returncode: int | None
    lines: int
    seconds: float
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def default_weights() -> str:
    """The checkpoint of the node's default extractor (on this machine's default device)."""
    from lightglue_ros.weights.registry import extractor_key

    cfg = Config().resolved()
    return extractor_key(cfg.extractor, cfg.aliked_model)


def _weights_file(work: Path, damage: Callable[[bytes], bytes], explicit: bool = False
                  ) -> dict[str, Any]:
    """A damaged copy of the default extractor's checkpoint in a weights cache (or as an
    explicit path)."""
    from lightglue_ros.weights.registry import WEIGHTS
    from lightglue_ros.weights.resolve import package_file

    spec = WEIGHTS[default_weights()]
    cache = work / f"weights_{damage.__name__}{'_explicit' if explicit else ''}"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    path = cache / spec.filename
    path.write_bytes(damage(package_file(spec).read_bytes()))
    return {"extractor_weights": str(path)} if explicit else {"weights_dir": str(cache)}


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def tampered(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0xFF  # same size, one bit pattern changed inside the tensors
    return bytes(out)


def startup_cases() -> list[StartupCase]:
    does = ("refused before loading (sha256 differs from the pin): the node exits with status "
            "2 and one line naming the file and how to get a good one")
    return [StartupCase("truncated weights file in the weights cache",
                        f"is not the expected '{default_weights()}' checkpoint", does,
                        lambda work: _weights_file(work, truncated)),
            StartupCase("tampered weights file (same size) in the weights cache",
                        f"is not the expected '{default_weights()}' checkpoint", does,
                        lambda work: _weights_file(work, tampered)),
            StartupCase("tampered weights file given as an explicit path",
                        "is corrupt: the checksum of its entry",
                        "no pinned sha256 (it may be a fine-tune), but the archive's CRC32s "
                        "fail: refused before torch reads it; exit status 2, one line",
                        lambda work: _weights_file(work, tampered, explicit=True))]


def run_startup(session: RosSession, case: StartupCase, work: Path,
                timeout: float = 120.0) -> StartupResult:
    start = time.monotonic()
    params = {**BENCH_PARAMS, **case.prepare(work)}
    node = TrackerProcess(session, "startup", params)
    session.nodes.append(node)
    try:
        node.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    returncode = node.proc.poll()
    node.stop()
    log = node.log()
    lines = sum(1 for line in log.splitlines() if case.text in line)
    problems = []
    if returncode != 2:
        problems.append(f"exit status {returncode}, expected 2")
    if lines != 1:
        problems.append(f"'{case.text}' in {lines} lines, expected 1: {log[-500:]!r}")
    if "Traceback" in log:
        problems.append("a traceback in the log")
    return StartupResult(case.name, returncode, lines, round(time.monotonic() - start, 1),
                         problems)


def run_faults(session: RosSession, width: int, height: int, rate_hz: float, work: Path,
               params: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Any]:
    """Every fault case on a fresh node, then the startup cases; the results as dicts."""
    from tqdm import tqdm

    work.mkdir(parents=True, exist_ok=True)
    bench = FaultBench(session, width, height, rate_hz, params, work_dir=work)
    results = []
    try:
        for case in tqdm(cases(width, height), desc="faults", disable=not progress):
            results.append(bench.run(case).as_dict())
    finally:
        bench.close()
    results += [run_startup(session, case, work).as_dict() for case in startup_cases()]
    return {"cases": results, "passed": sum(r["passed"] for r in results),
            "failed": sum(not r["passed"] for r in results),
            "node_returncode": bench.node.returncode}
