"""Where the live node's CPU goes: CPU time of each of its threads (and of its bundle adjustment
worker process) while ``lightglue-ros stress`` drives it, in ms per frame tracked.

    python -m lightglue_ros_tools.reliability.thread_cpu [--out FILE] [-- STRESS ARGS...]

CPU time (Linux /proc, utime + stime of each thread), not wall time, so that load from other
work on the machine changes the figures little. The tracker's stages name their threads for the
OS (``tracker-extract``, ``tracker-track``: ``TwoStageTracker``, as ``top -H`` shows them); the
process's main thread runs the rclpy executor (``executor`` here). The node's start (imports,
loading the networks) is left out: figures count from the moment its tracking thread exists.
The stress driver (the camera's side: publishing the images) is reported apart, as ``driver``.

Prints one JSON object (load average before and after included).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .procstat import cmdline, descendants, thread_cpu

STRESS = ["stress", "--phases", "baseline", "--width", "640", "--height", "480",
          "--no-use-depth", "--json"]


def frames_tracked(stress: dict[str, Any]) -> int:
    """Frames the node answered in the stress baseline: those sent one at a time and, of each
    rate tried, those sent less those it dropped."""
    base = stress["baseline"]
    return int(base["frames"] + sum(t["sent"] - t["node_dropped"] for t in base["tries"]))


def profile(stress_args: list[str], period_s: float = 0.25) -> dict[str, Any]:
    load_start = os.getloadavg()
    command = [sys.executable, "-m", "lightglue_ros.cli.main", *stress_args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    node: int | None = None
    start: dict[tuple[int, int], float] | None = None  # CPU when the tracking thread appeared
    last: dict[tuple[int, int], tuple[str, float, str]] = {}
    owners: dict[int, str] = {}  # a process's module, read while it lives (a zombie's is empty)
    while proc.poll() is None:
        if node is None:
            node = next((p for p in descendants(proc.pid)
                         if "lightglue_ros.node" in cmdline(p)), None)
        if node is not None:
            for pid in [node, *descendants(node)]:
                if not owners.get(pid):
                    owners[pid] = "node" if pid == node else cmdline(pid).split(" -m ")[-1]
                owner = owners[pid]
                for tid, (name, cpu) in thread_cpu(pid).items():
                    last[(pid, tid)] = ("executor" if tid == node else name, cpu, owner)
            if start is None and any(n == "tracker-track" for n, _, _ in last.values()):
                start = {key: cpu for key, (_, cpu, _) in last.items()}
        time.sleep(period_s)
    output = proc.stdout.read() if proc.stdout else ""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    stress = json.loads(output.strip().splitlines()[-1])
    frames = frames_tracked(stress)
    threads: dict[str, float] = {}
    node_total = 0.0
    for key, (name, cpu, owner) in last.items():
        node_total += cpu
        label = name if owner == "node" else owner
        threads[label] = threads.get(label, 0.0) + cpu - (start or {}).get(key, 0.0)
    driver = usage.ru_utime + usage.ru_stime - node_total
    rows = {k: {"cpu_s": round(v, 2), "ms_per_frame": round(1e3 * v / frames, 1)}
            for k, v in sorted(threads.items(), key=lambda kv: -kv[1]) if v >= 0.05}
    return {"command": ["lightglue-ros", *stress_args], "load_avg_start": load_start,
            "load_avg_end": os.getloadavg(), "frames_tracked": frames,
            "sustained_hz": stress["baseline"]["sustained_hz"],
            "unloaded_latency_ms": stress["baseline"]["unloaded_latency_ms"],
            "threads": rows,
            "node_ms_per_frame": round(1e3 * sum(threads.values()) / frames, 1),
            "driver": {"cpu_s": round(driver, 2), "note": "the stress process and its start, "
                       "publishing the images and reading the outputs"}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("stress", nargs="*", help="stress arguments after -- (default: "
                        + " ".join(STRESS) + ")")
    args = parser.parse_args(argv)
    stress = args.stress or STRESS
    result = profile(stress if "--json" in stress else [*stress, "--json"])
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
