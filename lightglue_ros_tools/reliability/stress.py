"""``lightglue-ros stress``: the real tracker node, in its own process, driven over real rclpy.

Phases (``StressOptions.phases``), all on one node except the faults:

- baseline: frames one at a time (each sent when the odometry of the one before came back): the
  unloaded latency, as the node reports it in /diagnostics (receipt to publish) and as the
  publisher sees it (publish to odometry received); then the highest rate sustained without a
  drop, searched down from the rate that latency allows (180% to 40% of it). The sequence plays
  forth and back, as a camera that moves on: looped, its view would jump back to the start
  every 120 frames and need a reset and a monocular re-initialisation, which the soak measures;
- overload: the camera at each factor (2x, 5x) of the sustained rate for ``seconds``: latency
  p50/p99 of the frames processed, drops, and the node's RSS, threads and descriptors sampled
  every second (latest-frame-wins must keep the latency bounded and the memory flat);
- soak: ``soak_frames`` frames one at a time, the synthetic sequence looped with a tracking reset
  at each loop: RSS, threads and descriptors at frame 1,000 and at the end, tracking status
  counts, no crash;
- faults: every case of ``faults.cases`` on a fresh node while frames flow, and the node refusing
  a truncated or tampered weights file (``faults.run_faults``).

The figures come back as one dict (``run_stress``); the CLI prints it as JSON.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lightglue_ros.config import Config
from lightglue_ros.ros.health import frames_done
from .camera import StampClock, SyntheticCamera
from .messages import stamp_key
from .procstat import Sampler, growth_pct, sample
from .session import LARGE_MESSAGE_GAP_S, RosSession, TrackerProcess, reliable_qos

PHASES = ("baseline", "overload", "soak", "faults")
# Fractions of the latency-bound rate (1 / mean latency) tried for 0 drops, highest first. The
# node's two stages overlap (frame t+1 is extracted while frame t is tracked), so it can sustain up
# to twice that rate when both stages take as long.
SEARCH = (1.8, 1.5, 1.25, 1.0, 0.9, 0.75, 0.6, 0.5, 0.4)
SOAK_REFERENCE_FRAME = 1000           # RSS growth of the soak: from this frame to the end


@dataclass
class StressOptions:
    config: Config
    width: int = 160
    height: int = 120
    phases: tuple[str, ...] = PHASES
    overload: tuple[float, ...] = (2.0, 5.0)
    seconds: float = 60.0            # of each overload factor
    soak_frames: int = 10_000
    baseline_frames: int = 30
    search_seconds: float = 8.0      # of each rate tried for the sustained rate
    warmup_s: float = 10.0           # of each overload phase, before the RSS reference
    sustained_hz: float | None = None  # skip the search
    stereo_baseline_m: float = 0.12  # of the synthetic pair with use_stereo (a ZED's, 12 cm)
    out: Path = Path("out/stress")
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def settled(status: dict[str, Any]) -> bool:
    """Every frame the node received is counted as processed, dropped, rejected or failed."""
    values = status["values"]
    return int(values.get("frames_received", 0)) == frames_done(values)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None, "mean": None}
    a = np.asarray(values)
    return {"p50": round(float(np.percentile(a, 50)), 1),
            "p99": round(float(np.percentile(a, 99)), 1),
            "max": round(float(a.max()), 1), "mean": round(float(a.mean()), 1)}


class Answers:
    """The node's odometry as the publisher sees it: arrival time per stamp."""

    def __init__(self, probe, topic: str) -> None:
        from nav_msgs.msg import Odometry

        self.arrived: dict[tuple[int, int], float] = {}
        self._cond = threading.Condition()
        self.subscription = probe.create_subscription(Odometry, topic, self._on, reliable_qos(100))

    def _on(self, msg) -> None:
        key = stamp_key(msg.header.stamp)
        with self._cond:
            self.arrived[key] = time.monotonic()
            self._cond.notify_all()

    def wait(self, key: tuple[int, int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while key not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
            return True


class Driver:
    """One node process, the synthetic camera feeding it, and the measurements."""

    def __init__(self, session: RosSession, options: StressOptions) -> None:
        cfg = options.config
        self.options = options
        inputs = ("image", "camera_info") + (("depth",) if cfg.use_depth else ()) + (
            ("right/image", "right/camera_info") if cfg.use_stereo else ())
        self.node: TrackerProcess = session.start_node(
            "stress", cfg.changed(), inputs=inputs, outputs=("diagnostics",))
        self.answers = Answers(session.probe, self.node.topic("~/odometry"))
        deadline = time.monotonic() + 60
        while self.answers.subscription.get_publisher_count() == 0 and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        # full-size depth and image back to back lose fragments with Fast DDS defaults
        gap = LARGE_MESSAGE_GAP_S if options.width * options.height > 320 * 240 else 0.0
        self.camera = SyntheticCamera(lambda t, m: self.node.input_publisher(t).publish(m),
                                      StampClock(), options.width, options.height,
                                      depth=cfg.use_depth, gap_s=gap,
                                      stereo_baseline_m=options.stereo_baseline_m
                                      if cfg.use_stereo else 0.0)
        self.resets = 0
        self.camera.on_loop = self._reset
        self.node.prime(self.camera.camera, depth=cfg.use_depth,
                        stereo_baseline_m=options.stereo_baseline_m if cfg.use_stereo else 0.0)
        self.sampler = Sampler(self.node.proc.pid, 1.0)

    def _reset(self) -> None:
        self.node.reset()
        self.resets += 1

    def values(self) -> dict[str, str]:
        """The node's diagnostics values once each frame it received is counted (processed,
        dropped, rejected or failed): a status made between a frame's odometry and its count,
        which follows it, would leave that frame out."""
        return self.node.fresh_status(settled, timeout=60)["values"]

    # --- streams --------------------------------------------------------------------------------
    def one_at_a_time(self, frames: int, timeout: float = 60.0, progress: str | None = None,
                      at_frame: dict[int, Any] | None = None) -> dict[str, Any]:
        """``frames`` frames, each after the odometry of the one before; ``at_frame`` maps a frame
        number to a callable run when it has been answered."""
        from tqdm import tqdm

        keys: list[tuple[int, int]] = []
        timeouts = 0
        bar = tqdm(total=frames, desc=progress, unit="frame",
                   disable=not (progress and self.options.progress))
        for n in range(frames):
            shot = self.camera.send()
            key = stamp_key(shot.stamp)
            keys.append(key)
            if not self.answers.wait(key, timeout):
                timeouts += 1
            bar.update(1)
            if at_frame and n + 1 in at_frame:
                at_frame[n + 1]()
        bar.close()
        return {"keys": keys, "timeouts": timeouts}

    def at_rate(self, rate_hz: float, seconds: float) -> dict[str, Any]:
        """The camera at ``rate_hz`` for ``seconds``; then the answers are awaited."""
        keys: list[tuple[int, int]] = []
        self.camera.run(rate_hz, seconds=seconds, on_shot=lambda s: keys.append(
            stamp_key(s.stamp)))
        if keys:  # the newest frame is never dropped: its odometry closes the phase
            self.answers.wait(keys[-1], 60.0)
        time.sleep(0.5)
        return {"keys": keys}

    def latency(self, keys: list[tuple[int, int]]) -> dict[str, Any]:
        """Publish-to-odometry latency (ms) of the answered frames, and the count of the others."""
        sent, arrived = self.camera.sent, self.answers.arrived
        lat = [1e3 * (arrived[k] - sent[k]) for k in keys if k in arrived and k in sent]
        return {"sent": len(keys), "answered": len(lat), "drops": len(keys) - len(lat),
                "latency_ms": percentiles(lat)}

    @staticmethod
    def delta(before: dict[str, str], after: dict[str, str], *names: str) -> dict[str, int]:
        return {n: int(after.get(n, 0)) - int(before.get(n, 0)) for n in names}

    # --- phases ---------------------------------------------------------------------------------
    def baseline(self) -> dict[str, Any]:
        resets = self.resets
        self.camera.play(bounce=True)
        try:
            out = self._baseline()
        finally:
            self.camera.play(bounce=False)
        out["resets"] = self.resets - resets  # none: the camera never loops here
        return out

    def _baseline(self) -> dict[str, Any]:
        opts = self.options
        self.one_at_a_time(5)  # warm-up: allocator, first keyframes
        before = self.values()
        run = self.one_at_a_time(opts.baseline_frames, progress="baseline")
        after = self.values()
        unloaded = self.latency(run["keys"])
        node_ms = {"p50": float(after["latency_ms_p50"]), "p99": float(after["latency_ms_p99"]),
                   "mean": float(after["latency_ms_mean"])}
        bound_hz = 1e3 / node_ms["mean"]
        out = {"frames": opts.baseline_frames, "timeouts": run["timeouts"],
               "unloaded_latency_ms": unloaded["latency_ms"],
               "node_latency_ms": node_ms,
               "node_latency_window": "the node's last 100 frames (5 warm-up frames included)",
               "latency_bound_hz": round(bound_hz, 2),
               "counters": self.delta(before, after, "frames_received", "frames_processed",
                                      "frames_dropped", "frames_ok", "frames_weak",
                                      "frames_lost"),
               "tries": []}
        if "stereo" in after:  # the node's view of the pair: the baseline it measured
            out["stereo"] = after["stereo"]
        if opts.sustained_hz:
            out["sustained_hz"] = opts.sustained_hz
            out["sustained_source"] = "given (--sustained-hz)"
            return out
        for fraction in SEARCH:
            rate = fraction * bound_hz
            before = self.values()
            run = self.at_rate(rate, max(opts.search_seconds, 12.0 / rate))
            after = self.values()
            result = self.latency(run["keys"])
            node_dropped = self.delta(before, after, "frames_dropped")["frames_dropped"]
            out["tries"].append({"rate_hz": round(rate, 2), "sent": result["sent"],
                                 "drops": result["drops"], "node_dropped": node_dropped,
                                 "latency_ms": result["latency_ms"]})
            if result["drops"] == 0 and node_dropped == 0:
                out["sustained_hz"] = round(rate, 2)
                out["sustained_latency_ms"] = result["latency_ms"]
                break
        else:
            out["sustained_hz"] = round(SEARCH[-1] * bound_hz, 2)
            out["sustained_source"] = "no rate tried was free of drops: the lowest is used"
        return out

    def overload(self, factor: float, sustained_hz: float, unloaded_p99: float | None
                 ) -> dict[str, Any]:
        opts = self.options
        rate = factor * sustained_hz
        before = self.values()
        resets = self.resets
        start = time.monotonic()
        run = self.at_rate(rate, opts.seconds)
        end = time.monotonic()
        after = self.values()
        result = self.latency(run["keys"])
        samples = self.sampler.between(start, end)
        rss = growth_pct(samples, min(opts.warmup_s, opts.seconds / 4))
        p99 = result["latency_ms"]["p99"]
        return {"factor": factor, "rate_hz": round(rate, 2), "seconds": round(end - start, 1),
                **result,
                "p99_ratio": round(p99 / unloaded_p99, 3) if p99 and unloaded_p99 else None,
                "node_latency_ms": {"p50": float(after["latency_ms_p50"]),
                                    "p99": float(after["latency_ms_p99"])},
                "node": self.delta(before, after, "frames_received", "frames_processed",
                                   "frames_dropped", "frames_rejected", "frames_ok",
                                   "frames_weak", "frames_lost"),
                "resets": self.resets - resets,
                "warmup_s": min(opts.warmup_s, opts.seconds / 4), **rss,
                "threads": [samples[0].threads, samples[-1].threads] if samples else None,
                "fds": [samples[0].fds, samples[-1].fds] if samples else None,
                "rss_mb_series": [round(s.rss_mb, 1) for s in samples]}

    def soak(self) -> dict[str, Any]:
        opts = self.options
        before = self.values()
        resets = self.resets
        marks: dict[str, Any] = {}
        start = time.monotonic()
        first = sample(self.node.proc.pid)

        def reference() -> None:
            marks["ref"] = sample(self.node.proc.pid)
        run = self.one_at_a_time(opts.soak_frames, progress="soak",
                                 at_frame={min(SOAK_REFERENCE_FRAME, opts.soak_frames):
                                           reference})
        end_sample = self.sampler.take() or sample(self.node.proc.pid)
        seconds = time.monotonic() - start
        after = self.values()
        ref = marks["ref"]
        result = self.latency(run["keys"])
        trend = growth_pct(self.sampler.between(ref.t), 0.0, window_s=60.0)
        return {"frames": opts.soak_frames, "seconds": round(seconds, 1),
                "frames_per_s": round(opts.soak_frames / seconds, 2),
                "timeouts": run["timeouts"], "answered": result["answered"],
                "latency_ms": result["latency_ms"],
                "node": self.delta(before, after, "frames_received", "frames_processed",
                                   "frames_dropped", "frames_rejected", "frames_ok",
                                   "frames_weak", "frames_lost"),
                "loops": self.resets - resets,
                "reference_frame": min(SOAK_REFERENCE_FRAME, opts.soak_frames),
                "rss_mb": {"start": round(first.rss_mb, 1), "reference": round(ref.rss_mb, 1),
                           "end": round(end_sample.rss_mb, 1)},
                "rss_growth_samples_pct": round(100 * (end_sample.rss_mb - ref.rss_mb)
                                                / ref.rss_mb, 2),
                "rss_trend": trend,
                "rss_growth_pct": trend["rss_growth_pct"] if trend["rss_growth_pct"]
                is not None else round(100 * (end_sample.rss_mb - ref.rss_mb) / ref.rss_mb, 2),
                "threads": {"start": first.threads, "reference": ref.threads,
                            "end": end_sample.threads},
                "fds": {"start": first.fds, "reference": ref.fds, "end": end_sample.fds}}


def run_stress(options: StressOptions) -> dict[str, Any]:
    """Every phase asked for; see the module docstring. The result: the phases' figures, the
    summary keys (frames, drops, p99_ratio, rss_growth_pct) and which bars were met."""
    from .faults import run_faults

    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = options.config
    result: dict[str, Any] = {
        "config": {"width": options.width, "height": options.height,
                   "node_parameters": cfg.changed(), "phases": list(options.phases),
                   "overload": list(options.overload), "seconds": options.seconds,
                   "soak_frames": options.soak_frames},
        "machine": {"cpus": os.cpu_count(), "load_avg_start": _load()}}
    started = time.monotonic()
    partial = out / "stress.partial.json"  # after each phase, in case a later one fails
    with RosSession(out / "logs") as session:
        if {"baseline", "overload", "soak"} & set(options.phases):
            driver = Driver(session, options)
            result["node_log"] = str(driver.node.log_path)
            with driver.sampler:
                base = driver.baseline() if "baseline" in options.phases or \
                    "overload" in options.phases and not options.sustained_hz else None
                if base is not None:
                    result["baseline"] = base
                    _save(partial, result)
                sustained = options.sustained_hz or (base or {}).get("sustained_hz")
                unloaded = (base or {}).get("unloaded_latency_ms", {}).get("p99")
                if "overload" in options.phases:
                    result["overload"] = []
                    for factor in options.overload:
                        result["overload"].append(driver.overload(factor, sustained, unloaded))
                        _save(partial, result)
                if "soak" in options.phases:
                    result["soak"] = driver.soak()
                    _save(partial, result)
            alive = driver.node.alive()
            returncode = driver.node.stop()
            log = driver.node.log()
            internal = [line for line in log.splitlines() if "]: internal: " in line]
            result["node"] = {"alive_at_end": alive, "returncode": returncode,
                              "traceback": "Traceback" in log,
                              "internal_errors": len(internal)}
            if internal:  # what and where, for whoever reads the result
                result["node"]["internal_error_lines"] = internal[:5]
            result["frames"] = driver.camera.count
            _save(partial, result)
        if "faults" in options.phases:
            rate = min(4.0, 0.5 * result.get("baseline", {}).get("sustained_hz", 8.0))
            params = {"max_keypoints": cfg.max_keypoints}
            if cfg.cpu_threads:
                params["cpu_threads"] = cfg.cpu_threads
            result["faults"] = run_faults(session, options.width, options.height, rate,
                                          out / "faults", params, options.progress)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["machine"]["load_avg_end"] = _load()
    _summary(result)
    return result


def _save(path: Path, result: dict[str, Any]) -> None:
    import json

    path.write_text(json.dumps(result, indent=1))


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _summary(result: dict[str, Any]) -> None:
    """The keys every run has, and the bars of the reliability issue."""
    overload = result.get("overload", [])
    soak = result.get("soak")
    result.setdefault("frames", 0)
    result["drops"] = sum(o["drops"] for o in overload)
    ratios = [o["p99_ratio"] for o in overload if o["p99_ratio"] is not None]
    result["p99_ratio"] = max(ratios) if ratios else None
    growths = [o["rss_growth_pct"] for o in overload if o["rss_growth_pct"] is not None]
    if soak:
        growths.append(soak["rss_growth_pct"])
    result["rss_growth_pct"] = max(growths) if growths else None
    bars: dict[str, bool] = {}
    for o in overload:
        if o["factor"] >= 5:
            bars[f"overload_{o['factor']:g}x_p99_ratio_le_2"] = \
                o["p99_ratio"] is not None and o["p99_ratio"] <= 2.0
        bars[f"overload_{o['factor']:g}x_rss_growth_lt_5pct"] = \
            o["rss_growth_pct"] is not None and o["rss_growth_pct"] < 5.0
    if soak:
        bars["soak_10000_frames"] = soak["frames"] >= 10_000
        bars["soak_rss_growth_lt_5pct"] = soak["rss_growth_pct"] < 5.0
        bars["soak_threads_and_fds_flat"] = (
            soak["threads"]["end"] <= soak["threads"]["reference"]
            and soak["fds"]["end"] <= soak["fds"]["reference"])
    if "node" in result:
        node = result["node"]
        bars["no_crash"] = node["alive_at_end"] and node["returncode"] == 0 and \
            not node["traceback"]
    if "faults" in result:
        bars["faults_all_passed"] = result["faults"]["failed"] == 0
    result["bars"] = bars
