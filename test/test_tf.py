"""TF for real: tf2_ros built from the ROS 2 sources by ../shared/tf2 (``make venv`` runs it),
the node and two helper processes talking over /tf and /tf_static.

* a "URDF" process broadcasts the static extrinsic base_link -> camera_optical;
* the node (base_frame base_link, no base_to_camera, publish_tf) looks that extrinsic up in TF,
  tracks, and broadcasts odom -> base_link;
* a listener process (Buffer + TransformListener) receives it and composes odom -> camera_optical;
* a second node without base_frame would broadcast camera_optical_odom -> camera_optical, which
  would give camera_optical a second parent in that real tree: the guard refuses and says so.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import SHARED, pose_error
from ros_harness import ROOT, ros_available, ros_session, stamp_key, synthetic

_ = ros_session  # the module-scoped fixture (rclpy context, probe, node processes)

TF2_PREFIX = ROOT / ".venv" / "tf2"
pytestmark = [
    pytest.mark.skipif(not (SHARED / "tf2" / "install.sh").is_file(),
                       reason=f"{SHARED / 'tf2'} is absent: tf2_ros is not on PyPI and is built "
                              "from there (../shared sits beside the clone in CI)"),
    pytest.mark.skipif(not (TF2_PREFIX / "setup.sh").is_file(),
                       reason=f"tf2_ros is not built in {TF2_PREFIX}: run `make venv`"),
    pytest.mark.skipif(not ros_available(), reason="rclpy is not installed"),
]

# camera 0.2 m ahead of and 0.5 m above base_link, optical axes (z forward) in base axes (x forward)
T_BASE_CAM = np.eye(4)
T_BASE_CAM[:3, :3] = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]
T_BASE_CAM[:3, 3] = [0.2, 0.0, 0.5]

STATIC = """
import sys, rclpy
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from tf2_ros import StaticTransformBroadcaster
rclpy.init()
node = Node("urdf_static")
t = TransformStamped()
t.header.stamp = node.get_clock().now().to_msg()
t.header.frame_id, t.child_frame_id = "base_link", "camera_optical"
v = [float(a) for a in sys.argv[1:8]]
tr, q = t.transform.translation, t.transform.rotation
tr.x, tr.y, tr.z, q.x, q.y, q.z, q.w = v
broadcaster = StaticTransformBroadcaster(node)
broadcaster.sendTransform(t)
print("sent", flush=True)
rclpy.spin(node)
"""

LISTENER = """
import json, sys, rclpy
from rclpy.node import Node
from rclpy.time import Time
from tf2_ros import Buffer, TransformListener
parent, children = sys.argv[1], sys.argv[2:]  # a line each time the first child's stamp changes
rclpy.init()
node = Node("tf_listener")
buffer = Buffer()
listener = TransformListener(buffer, node)
def flat(t):
    tr, q = t.transform.translation, t.transform.rotation
    return [tr.x, tr.y, tr.z, q.x, q.y, q.z, q.w]
last = None
print(json.dumps({"ready": True}), flush=True)
while rclpy.ok():
    rclpy.spin_once(node, timeout_sec=0.05)
    if not all(buffer.can_transform(parent, child, Time()) for child in children):
        continue
    found = {child: buffer.lookup_transform(parent, child, Time()) for child in children}
    stamp = [found[children[0]].header.stamp.sec, found[children[0]].header.stamp.nanosec]
    if stamp != last:
        last = stamp
        print(json.dumps({"stamp": stamp, **{c: flat(t) for c, t in found.items()}}), flush=True)
"""


@pytest.fixture(scope="module")
def tf2_env(ros_session) -> dict[str, str]:
    """This environment after `. .venv/tf2/setup.sh`, in the session's DDS domain."""
    out = subprocess.run(["bash", "-c", f'. "{TF2_PREFIX}/setup.sh" && env -0'],
                         capture_output=True, check=True, timeout=60).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return {**env, **ros_session.env}


class Lines:
    """A helper process whose stdout lines are collected on a thread."""

    def __init__(self, code: str, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def wait(self, predicate, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if predicate(line)]
            if found:
                return found[-1]
            if self.proc.poll() is not None:
                raise RuntimeError(f"helper exited: {self.proc.stderr.read()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"helper output: {self.lines[-3:]}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _values(T: np.ndarray) -> list[str]:
    from lightglue_ros.geometry.se3 import rotation_to_quaternion

    return [f"{v:.17g}" for v in [*T[:3, 3], *rotation_to_quaternion(T[:3, :3])]]


def _matrix(values) -> np.ndarray:
    from lightglue_ros.geometry.frames import pose_matrix

    return pose_matrix(values)


@pytest.fixture(scope="module")
def tf_tree(ros_session, tf2_env):
    static = Lines(STATIC, _values(T_BASE_CAM), tf2_env)
    listener = Lines(LISTENER, ["odom", "base_link", "camera_optical"], tf2_env)
    try:
        static.wait(lambda line: line == "sent")
        listener.wait(lambda line: "ready" in line)
        yield static, listener
    finally:
        listener.stop()
        static.stop()


def _first_tracked(node, frame, camera, tries: int = 12) -> list:
    """[(stamp, odometry)] of ``frame``, sent again until the node tracks it: the node rejects
    frames until it has heard the static transform from the other process, which takes as long
    as DDS discovery between the two (seconds on a loaded machine)."""
    for _ in range(tries):
        try:
            return node.track([frame], camera, timeout=5.0, depth="32FC1")
        except TimeoutError:
            continue
    raise TimeoutError(f"no odometry for {tries} copies of the first frame")


def _heard(listener: Lines, node, odometry: list, frame, camera, tries: int = 12):
    """(the listener's line, the odometry) of a tracked frame whose odom -> base_link the other
    process received. /tf is volatile: a frame broadcast before the listener matched the node's
    new publisher (discovery takes seconds on a loaded machine) is never heard, so the last
    frame is sent again (new stamp) until one is."""
    by_stamp = {stamp_key(stamp): odom for stamp, odom in odometry}
    for _ in range(tries):
        try:
            line = listener.wait(lambda s: '"stamp"' in s and tuple(json.loads(s)["stamp"])
                                 in by_stamp, timeout=5.0)
            received = json.loads(line)
            return received, by_stamp[tuple(received["stamp"])]
        except TimeoutError:
            (stamp, odom), = node.track([frame], camera, depth="32FC1")
            by_stamp[stamp_key(stamp)] = odom
    raise TimeoutError(f"the listener heard none of {len(by_stamp)} odom -> base_link "
                       f"transforms: {listener.lines[-3:]}")


def test_odom_to_base_is_broadcast_with_the_extrinsic_from_a_static_transform(
        ros_session, tf2_env, tf_tree):
    _, listener = tf_tree
    camera, frames = synthetic(6, 160, 120)
    node = ros_session.start_node(
        "tfnode", {"use_depth": True, "base_frame": "base_link", "publish_tf": True,
                   "max_keypoints": 256, "keyframe_min_inliers": 30, "depth_wait_s": 0.5,
                   "stale_after_s": 60.0, "diagnostics_period_s": 0.5},
        inputs=("image", "camera_info", "depth"), camera=camera, env=tf2_env)
    try:
        odometry = _first_tracked(node, frames[0], camera) + node.track(
            frames[1:], camera, depth="32FC1")
        node.wait_log("camera pose in base_link from TF")  # looked up, not a parameter
        T0 = frames[0].T_world_cam
        for i, (_, odom) in enumerate(odometry):  # the base's odometry with that extrinsic
            assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
            T_gt = T_BASE_CAM @ np.linalg.inv(T0) @ frames[i].T_world_cam @ np.linalg.inv(
                T_BASE_CAM)
            dt, dr = pose_error(_matrix_of(odom.pose.pose), T_gt)
            assert dt < 0.05 and dr < 2.0, f"frame {i}: {dt:.4f} m, {dr:.3f} deg"
        received, last = _heard(listener, node, odometry, frames[-1], camera)
        # the other process received odom -> base_link, and composes it with the static edge
        assert np.allclose(_matrix(received["base_link"]), _matrix_of(last.pose.pose),
                           atol=1e-6)
        assert np.allclose(_matrix(received["camera_optical"]),
                           _matrix_of(last.pose.pose) @ T_BASE_CAM, atol=1e-6)
        assert "tf" not in {k.removeprefix("fault.") for k in node.status()["values"]}
    finally:
        assert node.stop() == 0


def test_the_guard_refuses_a_second_parent_in_a_real_tree(ros_session, tf2_env, tf_tree):
    """Without base_frame the node would broadcast camera_optical_odom -> camera_optical; in
    the tree it hears from the other process, camera_optical is the child of base_link: not
    broadcast, and said why."""
    camera, frames = synthetic(3, 160, 120)
    node = ros_session.start_node(
        "guard", {"use_depth": True, "publish_tf": True, "depth_wait_s": 0.5,
                  "stale_after_s": 60.0, "diagnostics_period_s": 0.5},
        inputs=("image", "camera_info", "depth"), camera=camera, env=tf2_env)
    try:
        status = None
        for _ in range(30):  # until the static transform, sent by another process, is heard
            for _, odom in node.track(frames, camera, depth="32FC1"):
                assert odom.header.frame_id == "camera_optical_odom"
            try:
                status = node.fresh_status(lambda s: "fault.tf" in s["values"], timeout=5.0)
                break
            except TimeoutError:
                continue
        assert status is not None, "no TF fault reported after 90 frames"
        assert "'camera_optical' already has the parent 'base_link'" in status["values"][
            "fault.tf"], status
    finally:
        assert node.stop() == 0


def _matrix_of(pose) -> np.ndarray:
    p, q = pose.position, pose.orientation
    return _matrix([p.x, p.y, p.z, q.x, q.y, q.z, q.w])
