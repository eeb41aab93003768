"""``lightglue-ros stress``: the real tracker node under overload, a long soak and injected faults.

The node runs in its own process (``python -m lightglue_ros.node``) in a DDS domain of its own,
discovery limited to this machine, and this process drives it over real rclpy with the embedded
synthetic RGB-D sequence: a baseline (unloaded latency, highest rate sustained without drops),
overload at multiples of that rate, a soak of many frames, and every fault case while frames
flow. See ``lightglue_ros_tools.reliability.stress`` (loaded only when the command runs: the
product never imports its test machinery).

The node runs at its own defaults (the keypoint budget included), so that the rate measured is
the one a user gets; the stress run only makes its input reliable (drops are counted at the
node) and its diagnostics frequent. Frames are small by default (160x120) for a 10,000-frame soak
to finish in minutes; ``--phases baseline --width 640 --height 480 --no-use-depth`` gives the VGA
monocular rate at the defaults, and any node parameter can be given (``--max-keypoints 128``).
With ``--slam`` the node runs its SLAM layer, and the JSON gets ``slam``: what the node logged of
it at shutdown (the map's size, the SLAM thread's time per frame, the tracking thread's share).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import Config, add_arguments, from_args
from ..errors import LightGlueRosError

# The stress run's own defaults for node parameters (the flags' help shows the node's).
STRESS_DEFAULTS = {"input_qos": "reliable", "use_depth": True, "diagnostics_period_s": 0.5}


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas: {text!r}") \
            from exc
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers: {text!r}")
    return values


def _phases(text: str) -> tuple[str, ...]:
    from lightglue_ros_tools.reliability.stress import PHASES

    phases = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in phases if p not in PHASES]
    if unknown or not phases:
        raise argparse.ArgumentTypeError(f"phases are {', '.join(PHASES)}; got {text!r}")
    return phases


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stress", help="overload, soak and fault injection of the live node",
                       description=__doc__.split("\n\n", 1)[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phases", type=_phases, default=("baseline", "overload", "soak", "faults"),
                   help="comma-separated: baseline, overload, soak, faults (default: all)")
    p.add_argument("--overload", type=_floats, default=(2.0, 5.0), metavar="X[,Y...]",
                   help="overload factors of the sustained rate (default: 2,5)")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="duration of each overload factor (default: 60)")
    p.add_argument("--soak-frames", type=int, default=10_000,
                   help="frames of the soak (default: 10000)")
    p.add_argument("--baseline-frames", type=int, default=30,
                   help="frames sent one at a time for the unloaded latency (default: 30)")
    p.add_argument("--search-seconds", type=float, default=8.0,
                   help="seconds per rate tried when searching the sustained rate (default: 8)")
    p.add_argument("--sustained-hz", type=float,
                   help="use this sustained rate instead of searching it")
    p.add_argument("--width", type=int, default=160, help="frame width (default: 160)")
    p.add_argument("--height", type=int, default=120, help="frame height (default: 120)")
    p.add_argument("--out", type=Path, default=Path("out/stress"),
                   help="node logs and the result (stress.json) go here")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    add_arguments(p, ("features", "matcher", "inference", "tracking", "ros"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lightglue_ros_tools.reliability.stress import StressOptions, run_stress

    if args.soak_frames < 1 or args.baseline_frames < 1 or args.seconds <= 0:
        raise LightGlueRosError("--soak-frames and --baseline-frames must be at least 1, "
                         "--seconds positive")
    config = from_args(args, Config().replace(**STRESS_DEFAULTS))
    options = StressOptions(config, args.width, args.height, args.phases, args.overload,
                            args.seconds, args.soak_frames, args.baseline_frames,
                            args.search_seconds, sustained_hz=args.sustained_hz, out=args.out,
                            progress=not args.json)
    result = run_stress(options)
    result["argv"] = sys.argv[1:]
    if config.slam:
        result["slam"] = _slam_summary(result.get("node_log"))
    (args.out / "stress.json").write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result))
    else:
        _print(result, args.out / "stress.json")
    node = result.get("node", {})
    failed = result.get("faults", {}).get("failed", 0)
    return 1 if failed or node.get("returncode") not in (None, 0) or node.get("traceback") else 0


def _slam_summary(node_log: str | None) -> str | None:
    """The node's last 'SLAM: ...' log line (written at shutdown), or None without one."""
    if not node_log or not Path(node_log).is_file():
        return None
    lines = [line.split("]: ", 1)[-1].strip() for line in
             Path(node_log).read_text(errors="replace").splitlines() if "]: SLAM: " in line]
    return lines[-1] if lines else None


def _print(result: dict, path: Path) -> None:
    base = result.get("baseline")
    if base:
        print(f"baseline: unloaded latency p50/p99 {base['unloaded_latency_ms']['p50']}/"
              f"{base['unloaded_latency_ms']['p99']} ms (publisher), node "
              f"{base['node_latency_ms']['p50']}/{base['node_latency_ms']['p99']} ms; "
              f"sustained without drops: {base['sustained_hz']} Hz")
    for o in result.get("overload", []):
        print(f"overload {o['factor']:g}x ({o['rate_hz']} Hz, {o['seconds']} s): {o['sent']} sent, "
              f"{o['drops']} dropped, latency p50/p99 {o['latency_ms']['p50']}/"
              f"{o['latency_ms']['p99']} ms (p99 ratio {o['p99_ratio']}), RSS growth after "
              f"warm-up {o['rss_growth_pct']}%")
    soak = result.get("soak")
    if soak:
        print(f"soak: {soak['frames']} frames in {soak['seconds']} s, RSS {soak['rss_mb']} MiB "
              f"(growth from frame {soak['reference_frame']}: {soak['rss_growth_pct']}%), "
              f"threads {soak['threads']}, fds {soak['fds']}, statuses {soak['node']}")
    faults = result.get("faults")
    if faults:
        print(f"faults: {faults['passed']} passed, {faults['failed']} failed")
        for case in faults["cases"]:
            if not case["passed"]:
                print(f"  FAILED {case['name']}: {'; '.join(case['problems'])}")
    for bar, met in result.get("bars", {}).items():
        print(f"  {'met' if met else 'NOT MET'}: {bar}")
    print(f"result: {path}")
