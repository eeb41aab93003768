"""The harness of the tests of the tracker node with real rclpy, across processes.

The machinery lives in the tools package beside the product, where the stress command uses it
too: ``lightglue_ros_tools.reliability.session`` (``RosSession``, ``TrackerProcess``, the
``Probe`` node, ``Collector``, the DDS domain per process) and
``lightglue_ros_tools.reliability.messages`` (stamps and the camera messages). This module
re-exports them for the tests and adds the module-scoped ``ros_session`` fixture (import it into
a test module).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lightglue_ros_tools.reliability.messages import (  # noqa: F401  (re-exported for the tests)
    DEPTH_ENCODINGS, EPOCH_SEC, IMAGE_ENCODINGS, camera_info_msg, compressed_msg, depth_msg,
    diagnostic_dict, frame_stamp, image_msg, raw_image_msg, right_camera_info_msg, stamp_from_key,
    stamp_key, synthetic, synthetic_right)
from lightglue_ros_tools.reliability.session import (  # noqa: F401
    ERROR_LEVEL, FRAME_TIMEOUT_S, LARGE_MESSAGE_GAP_S, NODE_NAME, OK_LEVEL, START_TIMEOUT_S,
    WARN_LEVEL, Collector, RosSession, TrackerProcess, best_effort_qos, reliable_qos, ros_args,
    ros_available, ros_environment, session_domain_id, wait_until, yaml_value)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ros_session(tmp_path_factory):
    """One RosSession per test module (import this fixture into the module)."""
    if not ros_available():
        pytest.skip("rclpy is not installed")
    with RosSession(tmp_path_factory.mktemp("ros_logs"), cwd=ROOT) as session:
        yield session


def replay_into_node(bag: Path, node_args: list[str], replay_args: list[str], tmp_path: Path,
                     timeout: float = 900) -> tuple[dict, int | None]:
    """``lightglue-ros replay BAG --json`` into a tracker node of its own process (namespace
    /camera, reliable input, sim time, ``node_args`` appended to its --ros-args), on this
    session's ROS domain; the replay's figures and the node's exit code after SIGINT. The
    node's log is ``tmp_path / "node.log"``."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, **ros_environment(session_domain_id())}
    log = open(tmp_path / "node.log", "w")
    node = subprocess.Popen(
        [sys.executable, "-m", "lightglue_ros.node", "--ros-args", "-r", "__ns:=/camera",
         "-p", "input_qos:=reliable", "-p", "use_sim_time:=true", *node_args],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "lightglue_ros.cli.main", "replay", str(bag), "--node",
             "/camera/lightglue_tracker", *replay_args, "--json"], cwd=root, env=env,
            capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, proc.stderr + (tmp_path / "node.log").read_text()
        live = json.loads(proc.stdout)
    finally:
        node.send_signal(signal.SIGINT)
        node.wait(30)
        log.close()
    return live, node.returncode
