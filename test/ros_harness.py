"""The harness of the tests of the tracker node with real rclpy, across processes.

The machinery lives in the tools package beside the product, where the stress command uses it
too: ``lightglue_ros_tools.reliability.session`` (``RosSession``, ``TrackerProcess``, the
``Probe`` node, ``Collector``, the DDS domain per process) and
``lightglue_ros_tools.reliability.messages`` (stamps and the camera messages). This module
re-exports them for the tests and adds the module-scoped ``ros_session`` fixture (import it into
a test module).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from lightglue_ros_tools.reliability.messages import (  # noqa: F401  (re-exported for the tests)
    DEPTH_ENCODINGS, EPOCH_SEC, IMAGE_ENCODINGS, camera_info_msg, compressed_msg, depth_msg,
    diagnostic_dict, frame_stamp, image_msg, raw_image_msg, stamp_from_key, stamp_key, synthetic)
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
