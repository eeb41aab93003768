"""Play a ROS 2 bag into a live ROS graph and record the tracker's outputs to another bag.

Messages are published as stored (serialized CDR, no conversion) in bag order, with /clock from
the bag so a node on sim time sees the recorded time. Two pacing modes:

- rate: the bag's own timing scaled by ``rate`` (a camera, as fast as it was recorded);
- wait: each image waits for the node's odometry with that image's stamp before the next one
  is sent, so a node slower than the camera drops nothing and the run is reproducible.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore
from rosgraph_msgs.msg import Clock
from tqdm import tqdm

from ..errors import LightGlueRosError
from . import backend_msgs
from .health import frames_done

OUTPUTS = {"odometry": "nav_msgs/msg/Odometry",
           "relative_pose": "geometry_msgs/msg/PoseWithCovarianceStamped",
           "matches": "sensor_msgs/msg/PointCloud2"}
# The typed messages for a backend, recorded where lightglue_ros_msgs is installed.
BACKEND_OUTPUTS = {"edges": "lightglue_ros_msgs/msg/KeyframeEdge",
                   "tracks": "lightglue_ros_msgs/msg/TrackedMatches"}
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
# after the last image, how long to wait for a status of the tracker that counts it (an image
# lost in transport is never counted: the wait then ends here)
LAST_STATUS_WAIT_S = 10.0
PRIME_ROUNDS, PRIME_PERIOD_S = 5, 0.2  # camera_info sent ahead of the first frame


@dataclass
class ReplayStats:
    published: int = 0
    images: int = 0
    answered: int = 0  # images the node published odometry for (in rate mode: by the end)
    timeouts: int = 0
    recorded: dict[str, int] = field(default_factory=dict)
    odometry: list = field(default_factory=list)  # (stamp s, Odometry) received from the node
    metric: bool = False  # the node's diagnostics said its odometry is metric


def message_class(msgtype: str) -> type:
    """rclpy class of a 'pkg/msg/Type' name (the package must be installed)."""
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise LightGlueRosError(f"message type {msgtype} is not available to rclpy here") from exc


def _register_backend_types(typestore: Typestore) -> None:
    """Teach the bag writer the typed messages, from the .msg files their package installs
    (rosbags knows only the standard ones)."""
    from ament_index_python.packages import get_package_share_directory
    from rosbags.typesys import get_types_from_msg

    share = Path(get_package_share_directory("lightglue_ros_msgs")) / "msg"
    types = {}
    for msgtype in BACKEND_OUTPUTS.values():
        text = (share / f"{msgtype.rsplit('/', 1)[1]}.msg").read_text()
        types.update(get_types_from_msg(text, msgtype))
    typestore.register(types)


def _header_stamp_ns(reader: AnyReader, connection, raw: bytes) -> int:
    stamp = reader.deserialize(raw, connection.msgtype).header.stamp
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class Replayer(Node):
    """Publisher of a bag's topics and recorder of one tracker node's outputs."""

    def __init__(self, node_name: str, out: Path | None, storage: str = "mcap") -> None:
        super().__init__("lightglue_replay")
        self.qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                              history=HistoryPolicy.KEEP_LAST)
        self.clock = self.create_publisher(Clock, "/clock", 10)
        self.publishers_: dict[str, object] = {}
        self.answered: set[int] = set()  # odometry stamps received (ns)
        self.sent: set[int] = set()  # image stamps published (ns)
        self.odometry: list[tuple[float, object]] = []  # (stamp s, nav_msgs/Odometry)
        self.stats = ReplayStats()
        self.writer: Writer | None = None
        self.typestore = get_typestore(Stores.ROS2_JAZZY)
        self.connections = {}
        if out is not None:
            plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
            self.writer = Writer(out, version=9, storage_plugin=plugin)
            self.writer.open()
        node = "/" + node_name.strip("/")
        self.tracker_name = node.rsplit("/", 1)[-1]
        outputs = dict(OUTPUTS)
        if backend_msgs.unavailable() is None:
            outputs.update(BACKEND_OUTPUTS)
            _register_backend_types(self.typestore)
        for name, msgtype in outputs.items():
            topic = f"{node}/{name}"
            if self.writer is not None:
                self.connections[topic] = self.writer.add_connection(
                    topic, msgtype, typestore=self.typestore)
            self.create_subscription(message_class(msgtype), topic,
                                     lambda raw, t=topic: self._record(t, raw), 100, raw=True)
        self.create_subscription(message_class("diagnostic_msgs/msg/DiagnosticArray"),
                                 "/diagnostics", self._on_diagnostics, 10)
        self.node_values: dict[str, str] = {}  # the tracker's last diagnostics key values

    def _record(self, topic: str, raw: bytes) -> None:
        self.stats.recorded[topic] = self.stats.recorded.get(topic, 0) + 1
        if topic.endswith("/odometry"):
            msg = self.typestore.deserialize_cdr(raw, OUTPUTS["odometry"])
            self.answered.add(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
            self.odometry.append((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, msg))
        if self.writer is not None:
            self.writer.write(self.connections[topic], time.time_ns(), raw)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.hardware_id == self.tracker_name:
                self.node_values = {kv.key: kv.value for kv in status.values}

    def counted_all(self) -> bool:
        """The tracker's last status counts as many frames as images were sent (processed,
        dropped, rejected or failed; its counters run since it started)."""
        return frames_done(self.node_values) >= len(self.sent)

    def publisher_for(self, topic: str, msgtype: str):
        if topic not in self.publishers_:
            self.publishers_[topic] = self.create_publisher(message_class(msgtype), topic,
                                                            self.qos)
        return self.publishers_[topic]

    def wait_for_subscribers(self, topics: list[str], timeout: float) -> None:
        """Wait until something subscribes each topic (the node is up), so nothing is lost."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(self.publishers_[t].get_subscription_count() > 0 for t in topics):
                return
            rclpy.spin_once(self, timeout_sec=0.1)
        raise LightGlueRosError(f"no subscriber on {', '.join(topics)} after {timeout:.0f} s: "
                                "is the tracker node running with matching remappings?")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def replay(bag: Path, node_name: str, out: Path | None = None, rate: float = 1.0,
           wait: bool = True, topics: list[str] | None = None,
           image_topic: str = "/camera/image_raw", wait_timeout: float = 30.0,
           start_timeout: float = 60.0, progress: bool = True) -> ReplayStats:
    """Play ``bag`` (all topics, or ``topics``) and record the node's outputs to ``out``.
    ``image_topic`` carries the frames the node answers with odometry."""
    if not Path(bag).exists():
        raise LightGlueRosError(f"bag {bag} does not exist")
    own_context = not rclpy.ok()
    if own_context:
        rclpy.init()
    replayer = Replayer(node_name, out)
    try:
        with AnyReader([Path(bag)]) as reader:
            connections = [c for c in reader.connections if topics is None or c.topic in topics]
            if not connections:
                raise LightGlueRosError(f"{bag} has none of the topics {topics}")
            frames = [c for c in connections if c.topic == image_topic]
            if not frames or frames[0].msgtype not in IMAGE_TYPES:
                raise LightGlueRosError(
                    f"{bag} has no image topic {image_topic}; its topics: "
                    + ", ".join(f"{c.topic} ({c.msgtype})" for c in reader.connections))
            for c in connections:
                replayer.publisher_for(c.topic, c.msgtype)
            # the node subscribes image, camera_info and depth: all must be matched before the
            # first frame, or it arrives without its camera_info or depth
            replayer.wait_for_subscribers(
                [c.topic for c in connections
                 if c.msgtype in IMAGE_TYPES + ("sensor_msgs/msg/CameraInfo",)], start_timeout)
            _prime_camera_info(reader, connections, replayer)
            _play(reader, connections, replayer, rate, wait, wait_timeout, progress, image_topic)
        # let the last outputs arrive, and a diagnostics status that counts the last image (the
        # node counts a frame after its odometry; its status comes each diagnostics period)
        start = time.monotonic()
        while time.monotonic() - start < 2.0 or (
                not replayer.counted_all() and time.monotonic() - start < LAST_STATUS_WAIT_S):
            rclpy.spin_once(replayer, timeout_sec=0.05)
        if not wait:  # a camera does not wait: an image is answered if odometry came at all
            replayer.stats.answered = len(replayer.sent & replayer.answered)
        replayer.stats.odometry = replayer.odometry
        replayer.stats.metric = replayer.node_values.get("metric") == "True"
        return replayer.stats
    finally:
        replayer.close()
        replayer.destroy_node()
        if own_context:
            rclpy.try_shutdown()


def _play(reader: AnyReader, connections, replayer: Replayer, rate: float, wait: bool,
          wait_timeout: float, progress: bool, image_topic: str) -> None:
    """Publish in bag order; of messages recorded at the same instant, camera_info and depth
    go before the image so the node has them when the image arrives."""
    total = sum(c.msgcount for c in connections)
    bar = tqdm(total=total, desc="replay", unit="msg", disable=not progress)
    group: list[tuple] = []
    start = None
    for item in reader.messages(connections=connections):
        if group and item[1] != group[0][1]:
            start = _publish_group(reader, group, replayer, rate, wait, wait_timeout, start,
                                   image_topic)
            bar.update(len(group))
            group = []
        group.append(item)
    if group:
        _publish_group(reader, group, replayer, rate, wait, wait_timeout, start, image_topic)
        bar.update(len(group))
    bar.close()


def _prime_camera_info(reader: AnyReader, connections, replayer: Replayer) -> None:
    """Send each camera_info topic's first message a few times before the first frame. The node
    keeps the latest camera_info as state, and re-creates its subscription when it sees this
    publisher (its QoS follows the publishers): a single early camera_info can land on the old
    one and be lost, and the first frame with it."""
    first = {}
    for c in connections:
        if c.msgtype == "sensor_msgs/msg/CameraInfo":
            for connection, _, raw in reader.messages(connections=[c]):
                first[c.topic] = (connection, raw)
                break
    for _ in range(PRIME_ROUNDS if first else 0):
        for connection, raw in first.values():
            replayer.publisher_for(connection.topic, connection.msgtype).publish(bytes(raw))
        end = time.monotonic() + PRIME_PERIOD_S
        while time.monotonic() < end:
            rclpy.spin_once(replayer, timeout_sec=0.05)


def _publish_group(reader: AnyReader, group: list[tuple], replayer: Replayer, rate: float,
                   wait: bool, wait_timeout: float, start: tuple[float, int] | None,
                   image_topic: str) -> tuple[float, int]:
    stats = replayer.stats
    bag_ns = group[0][1]
    if start is None:
        start = (time.monotonic(), bag_ns)
    if not wait:
        due = start[0] + (bag_ns - start[1]) / 1e9 / rate
        while (delay := due - time.monotonic()) > 0:  # record the node's outputs meanwhile
            rclpy.spin_once(replayer, timeout_sec=min(delay, 0.02))
    for connection, _, raw in sorted(group, key=lambda m: m[0].topic == image_topic):
        is_frame = connection.topic == image_topic
        if is_frame and wait:  # topics are independent: let this frame's camera_info and
            time.sleep(0.5 if stats.images == 0 else 0.02)  # depth land first
        stamp_ns = _header_stamp_ns(reader, connection, raw) if is_frame else 0
        if is_frame:
            replayer.clock.publish(Clock(clock=_time(stamp_ns)))
        replayer.publisher_for(connection.topic, connection.msgtype).publish(bytes(raw))
        stats.published += 1
        rclpy.spin_once(replayer, timeout_sec=0.0)
        if not is_frame:
            continue
        stats.images += 1
        replayer.sent.add(stamp_ns)
        if wait:
            end = time.monotonic() + wait_timeout
            while stamp_ns not in replayer.answered and time.monotonic() < end:
                rclpy.spin_once(replayer, timeout_sec=0.02)
            if stamp_ns in replayer.answered:
                stats.answered += 1
            else:
                stats.timeouts += 1
    return start


def _time(ns: int):
    from builtin_interfaces.msg import Time
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
