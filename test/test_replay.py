"""`lightglue-ros replay` drives the live node (real rclpy, separate processes) and its figures
agree with the offline `eval` of the same bag."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, run_cli_json
from ros_harness import replay_into_node, ros_available, ros_environment, session_domain_id

pytestmark = [pytest.mark.skipif(not ros_available(), reason="rclpy is not installed"),
              pytest.mark.slow]  # the replay command: a node process and a player


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay") / "synthetic"
    proc = subprocess.run([sys.executable, "-m", "lightglue_ros.cli.main", "make-bag",
                           "synthetic", str(out), "--frames", "12", "--storage", "mcap"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out, out.parent / "synthetic.gt.txt"


def test_wait_mode_replay_matches_offline_eval(bag, tmp_path):
    path, gt = bag
    offline = run_cli_json("eval", str(path), "--gt", str(gt), "--depth-topic",
                           "/camera/depth/image_raw", "--out", str(tmp_path / "eval"))
    live, returncode = replay_into_node(
        path, ["-p", "use_depth:=true", "-r", "image:=/camera/image_raw",
               "-r", "depth:=/camera/depth/image_raw"],
        ["--out", str(tmp_path / "recorded"), "--gt", str(gt)], tmp_path)
    assert returncode == 0
    assert live["images"] == live["answered"] == offline["frames"] == 12
    assert live["timeouts"] == 0 and live["lost_frames"] == offline["lost_frames"] == 0
    assert live["align"] == "se3"  # the node reported a metric run
    for key in ("ate_rmse_m", "rpe_trans_m", "rel_rot_err_median_deg"):
        assert abs(live[key] - offline[key]) <= 0.05 * offline[key] + 1e-9, key
    # the node's outputs were recorded to a bag readable without ROS
    from rosbags.highlevel import AnyReader
    with AnyReader([tmp_path / "recorded"]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/camera/lightglue_tracker/odometry"] == 12
    assert counts["/camera/lightglue_tracker/matches"] == 11


def test_rate_mode_replay_counts_the_images_answered(bag, tmp_path):
    """As a camera plays it (--wait false): the images sent and those the node published odometry
    for, however many it dropped (how many depends on the machine: not asserted)."""
    path, _ = bag
    live, returncode = replay_into_node(
        path, ["-p", "use_depth:=true", "-r", "image:=/camera/image_raw",
               "-r", "depth:=/camera/depth/image_raw"],
        ["--wait", "false", "--rate", "0.5", "--out", str(tmp_path / "recorded")], tmp_path)
    assert returncode == 0
    assert live["images"] == 12 and live["timeouts"] == 0
    # the first frame is always tracked (nothing is queued before it); one odometry per answer
    assert 1 <= live["answered"] == live["recorded"]["/camera/lightglue_tracker/odometry"] <= 12


def test_replay_reports_a_bag_without_the_image_topic(bag, tmp_path):
    path, _ = bag
    env = {**os.environ, **ros_environment(session_domain_id())}
    proc = subprocess.run([sys.executable, "-m", "lightglue_ros.cli.main", "replay", str(path),
                           "--image-topic", "/nope"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "no image topic /nope" in proc.stderr and "/camera/image_raw" in proc.stderr
