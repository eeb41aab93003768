"""`lightglue-ros stress --json`, tiny: the live node (real rclpy, its own process) through the
baseline, two overload factors and a short soak of 160x120 frames. No timing is asserted (the
machine decides those); the counts and the shape of the result are."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from ros_harness import ros_available

pytestmark = [pytest.mark.skipif(not ros_available(), reason="rclpy is not installed"),
              pytest.mark.slow]  # the stress command: a node process through four phases

ARGS = ("--phases", "baseline,overload,soak", "--overload", "2,5", "--seconds", "4",
        "--soak-frames", "40", "--baseline-frames", "8", "--search-seconds", "2",
        "--max-keypoints", "96")


@pytest.fixture(scope="module")
def stress(tmp_path_factory):
    out = tmp_path_factory.mktemp("stress")
    proc = subprocess.run([sys.executable, "-m", "lightglue_ros.cli.main", "stress", *ARGS,
                           "--out", str(out), "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout[-3000:]  # exactly one JSON object, no progress bars
    result = json.loads(lines[0])
    assert json.loads((out / "stress.json").read_text())["frames"] == result["frames"]
    return result


def test_summary_keys(stress):
    for key in ("frames", "drops", "p99_ratio", "rss_growth_pct", "baseline", "overload",
                "soak", "bars", "node", "machine", "config"):
        assert key in stress, key
    assert stress["config"]["node_parameters"]["max_keypoints"] == 96
    assert stress["config"]["node_parameters"]["input_qos"] == "reliable"
    base, soak = stress["baseline"], stress["soak"]
    overload = {o["factor"]: o for o in stress["overload"]}
    assert set(overload) == {2.0, 5.0}
    sent = base["frames"] + sum(o["sent"] for o in overload.values()) + soak["frames"] + \
        sum(t["sent"] for t in base["tries"])
    assert stress["frames"] >= sent > 0  # plus the warm-up frames
    assert stress["drops"] == sum(o["drops"] for o in overload.values())
    assert stress["p99_ratio"] == max(o["p99_ratio"] for o in overload.values()) > 0
    growths = [o["rss_growth_pct"] for o in overload.values()] + [soak["rss_growth_pct"]]
    assert stress["rss_growth_pct"] == max(g for g in growths if g is not None)
    assert stress["node"] == {"alive_at_end": True, "returncode": 0, "traceback": False,
                              "internal_errors": 0}
    # each bar is its rule applied to the figures it names (a 40-frame soak is not 10,000)
    bars = stress["bars"]
    assert bars["no_crash"]
    assert bars["soak_10000_frames"] == (soak["frames"] >= 10_000)
    assert bars["soak_rss_growth_lt_5pct"] == (soak["rss_growth_pct"] < 5.0)
    assert bars["overload_5x_p99_ratio_le_2"] == (overload[5.0]["p99_ratio"] <= 2.0)
    for factor in (2, 5):
        growth = overload[float(factor)]["rss_growth_pct"]
        assert bars[f"overload_{factor}x_rss_growth_lt_5pct"] == (growth is not None
                                                                  and growth < 5.0)


def test_baseline_is_unloaded_and_finds_a_rate(stress):
    base = stress["baseline"]
    assert base["timeouts"] == 0
    assert base["counters"]["frames_processed"] == base["frames"]
    assert base["counters"]["frames_dropped"] == 0  # one at a time: nothing to drop
    assert base["unloaded_latency_ms"]["p50"] > 0 and base["node_latency_ms"]["p50"] > 0
    assert base["sustained_hz"] > 0 and base["tries"]
    assert base["resets"] == 0  # the camera moves on: no loop, no re-initialisation
    found = base["tries"][-1]
    if "sustained_source" not in base:  # the rate kept was free of drops
        assert found["drops"] == found["node_dropped"] == 0


def test_overload_drops_frames_latest_first(stress):
    for o in stress["overload"]:
        assert o["answered"] > 0 and o["sent"] == o["answered"] + o["drops"]
        node = o["node"]
        # every frame the node received was processed or dropped (none rejected)
        assert node["frames_received"] == node["frames_processed"] + node["frames_dropped"]
        assert node["frames_processed"] == o["answered"]
        assert node["frames_rejected"] == 0
        assert o["threads"] and o["fds"] and o["rss_mb_series"]
    five = next(o for o in stress["overload"] if o["factor"] == 5.0)
    assert five["drops"] > 0 and five["node"]["frames_dropped"] > 0  # it cannot keep up


def test_soak_counts(stress):
    soak = stress["soak"]
    assert soak["frames"] == 40 and soak["timeouts"] == 0 and soak["answered"] == 40
    node = soak["node"]
    assert node["frames_processed"] == 40 and node["frames_dropped"] == 0
    assert node["frames_ok"] + node["frames_weak"] + node["frames_lost"] == 40
    assert soak["reference_frame"] == 40  # fewer than 1,000 frames: the end is the reference
    assert soak["threads"]["end"] == soak["threads"]["reference"]
    assert soak["fds"]["end"] == soak["fds"]["reference"]


def test_stereo_pair_is_tracked_metric(tmp_path):
    """`stress --use-stereo`: the synthetic camera sends a rectified pair (right eye 12 cm to
    the right, its baseline in the right camera_info's P); every frame is paired and tracked,
    and the node reports the baseline it read."""
    proc = subprocess.run([sys.executable, "-m", "lightglue_ros.cli.main", "stress",
                           "--phases", "baseline", "--baseline-frames", "6", "--sustained-hz",
                           "1", "--max-keypoints", "256", "--width", "320", "--height", "240",
                           "--no-use-depth", "--use-stereo", "--out", str(tmp_path), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    base = json.loads(proc.stdout.strip().splitlines()[-1])["baseline"]
    assert base["timeouts"] == 0
    assert base["counters"]["frames_ok"] == base["counters"]["frames_processed"] == 6
    assert base["stereo"].startswith("baseline 0.1200 m")


def test_keyframes_matched_in_the_background_in_the_node(tmp_path):
    """`stress --track-by-flow --keyframe-lag-frames 2`: the node places frames by flow while a
    worker thread matches the keyframes; every frame is tracked, none is lost, nothing raises."""
    proc = subprocess.run([sys.executable, "-m", "lightglue_ros.cli.main", "stress",
                           "--phases", "baseline", "--baseline-frames", "16", "--sustained-hz",
                           "1", "--max-keypoints", "256", "--width", "320", "--height", "240",
                           "--no-use-depth", "--track-by-flow", "--keyframe-lag-frames", "2",
                           "--out", str(tmp_path), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["config"]["node_parameters"]["keyframe_lag_frames"] == 2
    base = result["baseline"]
    assert base["timeouts"] == 0 and base["counters"]["frames_lost"] == 0
    assert base["counters"]["frames_processed"] == 16
    assert result["node"] == {"alive_at_end": True, "returncode": 0, "traceback": False,
                              "internal_errors": 0}


def test_the_camera_moves_on_or_loops_with_a_reset():
    """The baseline's camera plays forth and back (no jump, no reset); the soak's loops from the
    start with ``on_loop`` at each loop."""
    from lightglue_ros_tools.reliability.camera import StampClock, SyntheticCamera

    camera = SyntheticCamera(lambda topic, msg: None, StampClock(), 32, 24, depth=False,
                             frames=4)
    loops = []
    camera.on_loop = lambda: loops.append(1)
    camera.play(bounce=True)
    assert [camera.shot().index for _ in range(9)] == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert not loops
    camera.play(bounce=False)
    assert [camera.shot().index for _ in range(6)] == [3, 0, 1, 2, 3, 0]
    assert len(loops) == 2
