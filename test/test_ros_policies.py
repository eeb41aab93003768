"""The node's decisions that need no running graph: which QoS matches the publishers and when a
TF edge would give a frame a second parent."""
from __future__ import annotations

import pytest


FRAMES_YAML = """\
camera_link: \n  parent: 'base_link'\n  broadcaster: 'default_authority'\n  rate: 10000.000
  most_recent_transform: 0.000000\n  oldest_transform: 0.000000\n  buffer_length: 0.000
camera_optical: \n  parent: 'camera_link'\n  broadcaster: 'default_authority'\n  rate: 10000.000
  most_recent_transform: 0.000000\n  oldest_transform: 0.000000\n  buffer_length: 0.000
base_link: \n  parent: 'odom'\n  broadcaster: 'default_authority'\n  rate: 50.000
  most_recent_transform: 12.500000\n  oldest_transform: 2.500000\n  buffer_length: 10.000
"""


def test_matching_reliability():
    pytest.importorskip("rclpy", reason="rclpy (the ROS 2 wheels) is not installed")
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from lightglue_ros.ros.qos import matching_reliability, profile

    reliable, best_effort = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT
    pub = lambda r: QoSProfile(depth=5, reliability=r)  # noqa: E731
    assert matching_reliability([]) == reliable  # none yet: most drivers and bag play are
    assert matching_reliability([pub(reliable), pub(reliable)]) == reliable
    assert matching_reliability([pub(best_effort)]) == best_effort
    assert matching_reliability([pub(reliable), pub(best_effort)]) == best_effort  # both match
    assert profile("auto", 1, best_effort).reliability == best_effort
    assert profile("auto", 1, reliable).depth == 1
    assert profile("reliable", 1, best_effort).reliability == reliable  # fixed modes stay
    assert profile("sensor_data", 3, reliable).reliability == best_effort


def test_frame_parents_from_a_tf2_buffer_dump():
    from lightglue_ros.ros.tf import frame_parents

    assert frame_parents(FRAMES_YAML) == {"camera_link": "base_link",
                                          "camera_optical": "camera_link", "base_link": "odom"}
    assert frame_parents("") == {}  # an empty buffer dumps nothing


def test_no_broadcast_gives_a_frame_a_second_parent():
    from lightglue_ros.ros.tf import conflict, frame_parents

    urdf = frame_parents(FRAMES_YAML)
    # a URDF camera frame has a parent: odom -> camera_optical would be a second one
    assert "second one" in conflict(urdf, "odom", "camera_optical", ours=False)
    assert "second one" in conflict(urdf, "odom", "camera_optical", ours=True)
    # odom -> base_link already broadcast by another node (wheel odometry, an EKF)
    assert "another node" in conflict(urdf, "odom", "base_link", ours=False)
    # ... but the edge this node has been broadcasting comes back from its own listener
    assert conflict(urdf, "odom", "base_link", ours=True) is None
    without_odometry = {k: v for k, v in urdf.items() if k != "base_link"}
    assert conflict(without_odometry, "odom", "base_link", ours=False) is None  # a root: free
    assert conflict({}, "odom", "camera_optical", ours=False) is None  # no URDF at all

