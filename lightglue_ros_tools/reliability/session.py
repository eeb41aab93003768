"""Drive the tracker node with real rclpy, across processes: the tool of the stress command and
of the node tests.

The node runs in its own process (``python -m lightglue_ros.node --ros-args ...`` or any command,
e.g. the ``tracker_node`` console script), exactly as a user would start it; this process holds a
``Probe`` rclpy node that publishes camera messages and collects the node's outputs.

* ``RosSession``: one DDS domain per process (chosen from the pid and locked, so that parallel
  runs on the machine -- tests, stress -- do not see each other), discovery limited to localhost,
  one rclpy context with the ``Probe`` spun on a background thread, and every node process it
  started stopped at the end (SIGINT, then kill).
* ``TrackerProcess``: one node process, its log file (stdout and stderr), its input publishers and
  output collectors, and helpers: send a synthetic frame in any encoding (or compressed), wait for
  the odometry of a stamp, call ``~/reset``, set/get/describe parameters through the
  ``rcl_interfaces`` parameter services, read the latest diagnostics as a dict.

Waits are event-driven (a condition variable per topic); graph conditions (publisher/subscriber
matching, services) are polled every 50 ms. rclpy is imported only when a session starts.
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import yaml

from lightglue_ros.ros.health import ERROR as ERROR_LEVEL, OK as OK_LEVEL, WARN as WARN_LEVEL
from .messages import camera_info_msg, compressed_msg, depth_msg, diagnostic_dict, frame_stamp, \
    image_msg, raw_image_msg, right_camera_info_msg, stamp_key

NODE_NAME = "lightglue_tracker"
DOMAIN_FIRST, DOMAIN_SPAN = 10, 90  # ROS_DOMAIN_ID candidates 10..99 (Linux-safe ports)
START_TIMEOUT_S = 120.0  # node start: interpreter, torch, weights, DDS discovery (busy 2-core CPU)
FRAME_TIMEOUT_S = 60.0  # one VGA frame through ALIKED + LightGlue on a busy CPU, generous
# Fast DDS defaults (UDP between processes): two large messages sent back to back (a 1.2 MB depth
# image, then a 0.9 MB image) overflow the receiver's socket buffer; the first loses fragments and
# is repaired only at the writer's next heartbeat (up to 3 s later: measured, depth mostly lost
# or late). A short gap between them lets the buffer drain (measured: 12 of 12 delivered at 20 ms).
LARGE_MESSAGE_GAP_S = 0.05
LARGE_MESSAGE_BYTES = 256 * 1024  # a 160x120 depth image (77 KB) needs no gap
LEVELS = (OK_LEVEL, WARN_LEVEL, ERROR_LEVEL)  # diagnostic_msgs/DiagnosticStatus levels
OUTPUTS = ("odometry", "relative_pose", "matches", "diagnostics")  # collectors of a node


class NodeError(RuntimeError):
    """The node process did not come up (the message carries its log)."""


def ros_available() -> bool:
    return importlib.util.find_spec("rclpy") is not None


# --- domain -------------------------------------------------------------------------------------
_domain: tuple[int, Any] | None = None


def session_domain_id() -> int:
    """A ROS_DOMAIN_ID for this process: ``$LIGHTGLUE_ROS_TEST_DOMAIN_ID`` if set, else the first
    free one from ``pid % 90``, held by an flock on a file in the temp folder for the life of the
    process (the kernel releases it when the process dies), so two runs on one machine (tests,
    the stress command) never share a domain."""
    global _domain
    if _domain is not None:
        return _domain[0]
    if os.environ.get("LIGHTGLUE_ROS_TEST_DOMAIN_ID"):
        _domain = (int(os.environ["LIGHTGLUE_ROS_TEST_DOMAIN_ID"]), None)
        return _domain[0]
    for k in range(DOMAIN_SPAN):
        domain = DOMAIN_FIRST + (os.getpid() + k) % DOMAIN_SPAN
        lock = open(Path(tempfile.gettempdir()) / f"lightglue_ros_domain_{domain}.lock", "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _domain = (domain, lock)
        return domain
    raise RuntimeError(f"no free ROS_DOMAIN_ID in {DOMAIN_FIRST}..{DOMAIN_FIRST + DOMAIN_SPAN}")


def ros_environment(domain_id: int) -> dict[str, str]:
    """Environment of the processes of one session (also applied to this process)."""
    return {"ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "PYTHONUNBUFFERED": "1", "RCUTILS_LOGGING_BUFFERED_STREAM": "0",
            "RCUTILS_COLORIZED_OUTPUT": "0"}


# --- collecting ----------------------------------------------------------------------------------
class Collector:
    """Messages of one subscription, in arrival order; ``wait`` blocks on a condition."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.subscription = None
        self._messages: list = []
        self._cond = threading.Condition()

    def __call__(self, msg) -> None:
        with self._cond:
            self._messages.append(msg)
            self._cond.notify_all()

    @property
    def messages(self) -> list:
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()

    def wait(self, predicate: Callable[[Any], bool] | None = None, count: int = 1,
             timeout: float = FRAME_TIMEOUT_S, alive: Callable[[], bool] | None = None,
             start: int = 0) -> list:
        """The first ``count`` messages from the ``start``-th on satisfying ``predicate`` (any
        message when None); TimeoutError when they do not come, RuntimeError when ``alive()``
        turns false."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self._messages[start:] if predicate is None or predicate(m)]
                if len(found) >= count:
                    return found[:count]
                if alive is not None and not alive():
                    raise RuntimeError(f"{self.topic}: the node process died while waiting")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.topic}: {len(found)} of {count} expected messages "
                                       f"in {timeout:.0f} s ({len(self._messages)} received)")
                self._cond.wait(min(remaining, 0.5))

    def wait_stamp(self, stamp, timeout: float = FRAME_TIMEOUT_S,
                   alive: Callable[[], bool] | None = None):
        key = stamp_key(stamp)
        return self.wait(lambda m: stamp_key(m.header.stamp) == key, 1, timeout, alive)[0]

    def stamps(self) -> list[tuple[int, int]]:
        return [stamp_key(m.header.stamp) for m in self.messages]


def wait_until(condition: Callable[[], bool], timeout: float, what: str,
               alive: Callable[[], bool] | None = None, period: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if alive is not None and not alive():
            raise RuntimeError(f"the node process died while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(period)


# --- the probe node ------------------------------------------------------------------------------
def reliable_qos(depth: int = 10):
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE)


def best_effort_qos(depth: int = 5):
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.BEST_EFFORT)


def _probe_class():
    from rclpy.node import Node

    class Probe(Node):
        """The test's rclpy node: publishers, collectors and service calls by name."""

        def __init__(self, context, name: str = "lightglue_test_probe") -> None:
            super().__init__(name, context=context)
            self._probe_pubs: dict[tuple, Any] = {}

        def publisher(self, msg_type, topic: str, qos=None):
            qos = qos or reliable_qos()
            key = (msg_type, topic, qos.reliability, qos.depth)
            if key not in self._probe_pubs:
                self._probe_pubs[key] = self.create_publisher(msg_type, topic, qos)
            return self._probe_pubs[key]

        def drop_publishers(self, prefix: str) -> None:
            for key in [k for k in self._probe_pubs if k[1].startswith(prefix)]:
                self.destroy_publisher(self._probe_pubs.pop(key))

        def subscribe(self, msg_type, topic: str, qos=None) -> Collector:
            collector = Collector(topic)
            collector.subscription = self.create_subscription(
                msg_type, topic, collector, qos or reliable_qos(100))
            return collector

        def unsubscribe(self, collector: Collector) -> None:
            if collector.subscription is not None:
                self.destroy_subscription(collector.subscription)
                collector.subscription = None

        def call(self, srv_type, service: str, request, timeout: float = 30.0):
            client = self.create_client(srv_type, service)
            try:
                if not client.wait_for_service(timeout_sec=timeout):
                    raise TimeoutError(f"service {service} not available within {timeout} s")
                done = threading.Event()
                future = client.call_async(request)
                future.add_done_callback(lambda _: done.set())
                if not done.wait(timeout):
                    raise TimeoutError(f"service {service} did not answer within {timeout} s")
                return future.result()
            finally:
                self.destroy_client(client)

        # --- parameters of another node, through its rcl_interfaces services -----------------
        def set_parameters(self, node: str, values: dict[str, Any]) -> dict[str, Any]:
            """{name: SetParametersResult}; one request, each parameter set on its own."""
            from rcl_interfaces.srv import SetParameters
            from rclpy.parameter import Parameter

            request = SetParameters.Request(parameters=[
                Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
            response = self.call(SetParameters, f"{node}/set_parameters", request)
            return dict(zip(values, response.results))

        def get_parameters(self, node: str, names: Sequence[str]) -> dict[str, Any]:
            from rcl_interfaces.srv import GetParameters
            from rclpy.parameter import parameter_value_to_python

            response = self.call(GetParameters, f"{node}/get_parameters",
                                 GetParameters.Request(names=list(names)))
            return {n: parameter_value_to_python(v) for n, v in zip(names, response.values)}

        def describe_parameters(self, node: str, names: Sequence[str]) -> dict[str, Any]:
            from rcl_interfaces.srv import DescribeParameters

            response = self.call(DescribeParameters, f"{node}/describe_parameters",
                                 DescribeParameters.Request(names=list(names)))
            return {d.name: d for d in response.descriptors}

        def list_parameters(self, node: str) -> list[str]:
            from rcl_interfaces.srv import ListParameters

            response = self.call(ListParameters, f"{node}/list_parameters",
                                 ListParameters.Request())
            return list(response.result.names)

        def reset(self, node: str):
            from std_srvs.srv import Trigger

            return self.call(Trigger, f"{node}/reset", Trigger.Request())

        def node_topics(self, name: str, namespace: str) -> tuple[dict, dict]:
            """({published topic: types}, {subscribed topic: types}) of a node, as discovered."""
            pubs = self.get_publisher_names_and_types_by_node(name, namespace)
            subs = self.get_subscriber_names_and_types_by_node(name, namespace)
            return dict(pubs), dict(subs)

    return Probe


# --- one node process ----------------------------------------------------------------------------
def ros_args(params: dict[str, Any] | None = None, remaps: dict[str, str] | None = None,
             namespace: str | None = None, name: str | None = None) -> list[str]:
    """``--ros-args`` items: ``-r __node:=n``, ``-r __ns:=/ns``, ``-p k:=v`` (YAML values) and
    ``-r from:=to``."""
    args: list[str] = []
    if name:
        args += ["-r", f"__node:={name}"]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    for key, value in (params or {}).items():
        args += ["-p", f"{key}:={yaml_value(value)}"]
    for src, dst in (remaps or {}).items():
        args += ["-r", f"{src}:={dst}"]
    return args


def yaml_value(value: Any) -> str:
    """``value`` as ROS reads a ``-p`` value (YAML 1.1): a string YAML would take for another
    type (``off``, ``yes``, ``1.0``: bundle_adjustment off) goes quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if isinstance(value, str) and yaml.safe_load(text or "''") != text:
        return json.dumps(text)
    return text


class TrackerProcess:
    """One tracker node process plus the probe-side publishers and collectors that talk to it.

    ``namespace`` is where the node runs (its inputs are ``<ns>/image``... unless remapped, its
    outputs ``<ns>/lightglue_tracker/...``); ``params`` and ``remaps`` become ``-p``/``-r``.
    """

    def __init__(self, session: "RosSession", namespace: str = "/",
                 params: dict[str, Any] | None = None, remaps: dict[str, str] | None = None,
                 command: Sequence[str] | None = None, name: str = NODE_NAME,
                 extra_args: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        self.session, self.probe = session, session.probe
        self.namespace = "/" + namespace.strip("/") if namespace.strip("/") else "/"
        self.name, self.params, self.remaps = name, dict(params or {}), dict(remaps or {})
        prefix = "" if self.namespace == "/" else self.namespace
        self.fqn = f"{prefix}/{name}"
        self.log_path = session.log_dir / f"{self.namespace.strip('/') or 'root'}_{name}_" \
                                          f"{len(session.nodes)}.log"
        base = list(command) if command else [sys.executable, "-m", "lightglue_ros.node"]
        if command is None:
            extra = ros_args(self.params, self.remaps,
                             self.namespace if self.namespace != "/" else None)
            self.command = [*base, "--ros-args", *extra, *extra_args]
        else:
            self.command = [*base, *extra_args]
        self._log = open(self.log_path, "w")
        # a process group of its own: a stop that has to kill takes its children with it (a
        # launch's nodes, a node's bundle adjustment worker), so no orphan stays in the domain
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=session.cwd, env={**os.environ, **(env or {}),
                                                           **session.env},
                                     start_new_session=True)
        self.returncode: int | None = None
        self._index = 0  # stamps sent so far (frame_stamp index)
        self.sent: list[tuple[int, int]] = []
        self._subscriptions: list[Collector] = []
        self.odometry = self.relative_pose = self.matches = self.diagnostics = None

    # --- names ----------------------------------------------------------------------------------
    def topic(self, name: str) -> str:
        """A topic name as the node resolves it: ``~/x`` private, ``/x`` absolute, else in the
        namespace (remappings given to the node are applied)."""
        name = self.remaps.get(name, name)
        if name.startswith("~/"):
            return f"{self.fqn}/{name[2:]}"
        if name.startswith("/"):
            return name
        return f"{'' if self.namespace == '/' else self.namespace}/{name}"

    # --- process --------------------------------------------------------------------------------
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 10.0) -> str:
        wait_until(lambda: text in self.log(), timeout, f"'{text}' in {self.log_path}")
        return self.log()

    def stop(self, timeout: float = 20.0) -> int:
        """SIGINT to its whole process group, as Ctrl-C in a terminal sends it (a launch and
        its nodes each get it), then SIGKILL to the group after ``timeout``; the return code
        (negative: killed by that signal)."""
        for collector in self._subscriptions:
            self.probe.unsubscribe(collector)
        self._subscriptions.clear()
        self.probe.drop_publishers(self.namespace if self.namespace != "/" else "/\0")
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        elif self.proc.returncode is not None:  # it died on its own: its children may not have
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.returncode = self.proc.returncode
        self._log.close()
        return self.returncode

    # --- start ----------------------------------------------------------------------------------
    def subscribe(self, msg_type, topic: str, qos=None) -> Collector:
        collector = self.probe.subscribe(msg_type, self.topic(topic), qos)
        self._subscriptions.append(collector)
        return collector

    def unsubscribe(self, collector: Collector) -> None:
        self.probe.unsubscribe(collector)
        if collector in self._subscriptions:
            self._subscriptions.remove(collector)

    def start_outputs(self, outputs: Iterable[str] = OUTPUTS) -> None:
        """Collectors of the node's outputs (``OUTPUTS`` by attribute name; a long run leaves
        out those it does not read, as every message collected is kept)."""
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from nav_msgs.msg import Odometry
        from sensor_msgs.msg import PointCloud2

        kinds = {"odometry": (Odometry, "~/odometry"),
                 "relative_pose": (PoseWithCovarianceStamped, "~/relative_pose"),
                 "matches": (PointCloud2, "~/matches"),
                 "diagnostics": (DiagnosticArray, "/diagnostics")}
        for name in outputs:
            setattr(self, name, self.subscribe(*kinds[name]))

    def wait_ready(self, timeout: float = START_TIMEOUT_S, inputs: Iterable[str] = ()) -> None:
        """Until the node's outputs are matched with the probe's collectors, its services answer,
        and the probe's publishers of ``inputs`` (e.g. image, camera_info) are matched with its
        subscriptions, so that nothing sent afterwards is lost to discovery."""
        deadline = time.monotonic() + timeout
        left = lambda: max(1.0, deadline - time.monotonic())  # noqa: E731
        try:
            for collector in (c for c in (self.odometry, self.relative_pose, self.matches,
                                          self.diagnostics) if c is not None):
                wait_until(lambda c=collector: c.subscription.get_publisher_count() > 0, left(),
                           f"a publisher of {collector.topic}", self.alive)
            for topic in inputs:
                pub = self.input_publisher(topic)
                wait_until(lambda p=pub: p.get_subscription_count() > 0, left(),
                           f"the node's subscription to {pub.topic_name}", self.alive)
            wait_until(lambda: self.probe.count_services(f"{self.fqn}/reset") > 0 and
                       self.probe.count_services(f"{self.fqn}/set_parameters") > 0,
                       left(), f"the services of {self.fqn}", self.alive)
        except (TimeoutError, RuntimeError) as exc:
            raise NodeError(f"{exc}\n--- node log {self.log_path} ---\n{self.log()}") from exc

    # --- inputs ---------------------------------------------------------------------------------
    def input_qos(self):
        """What the probe publishes with: best effort for a node fixed on ``sensor_data``, else
        reliable (what the default ``auto`` then subscribes with)."""
        return best_effort_qos() if self.params.get("input_qos") == "sensor_data" \
            else reliable_qos()

    def input_publisher(self, topic: str, qos=None):
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        kind = {"image": Image, "depth": Image, "camera_info": CameraInfo,
                "image/compressed": CompressedImage, "right/camera_info": CameraInfo,
                "right/image/compressed": CompressedImage,
                "depth/compressedDepth": CompressedImage}.get(topic, Image)
        return self.probe.publisher(kind, self.topic(topic), qos or self.input_qos())

    def next_stamp(self):
        stamp = frame_stamp(self._index)
        self._index += 1
        return stamp

    def send_frame(self, frame, camera, *, encoding: str = "rgb8", depth: str | None = None,
                   compressed: str | None = None, camera_info: bool = True,
                   frame_id: str = "camera_optical", stamp=None, qos=None):
        """Publish camera_info, depth (``depth`` = 32FC1 or 16UC1), then the image of a
        synthetic frame (``compressed`` = jpeg or png: on image/compressed) with the next
        stamp; returns the stamp. Does not wait (see ``track`` for one frame at a time)."""
        stamp = stamp or self.next_stamp()
        if camera_info:
            self.input_publisher("camera_info", qos).publish(
                camera_info_msg(camera, stamp, frame_id))
        if depth:
            msg = depth_msg(frame.depth, depth, stamp, frame_id)
            self.input_publisher("depth", qos).publish(msg)
            if len(msg.data) > LARGE_MESSAGE_BYTES:
                time.sleep(LARGE_MESSAGE_GAP_S)
        if compressed:
            self.input_publisher("image/compressed", qos).publish(
                compressed_msg(frame.rgb, compressed, stamp, frame_id))
        else:
            self.input_publisher("image", qos).publish(
                image_msg(frame.rgb, encoding, stamp, frame_id))
        self.sent.append(stamp_key(stamp))
        return stamp

    def send_camera_info(self, camera, frame_id: str = "camera_optical", stamp=None,
                         settle: bool = True) -> None:
        """Publish a camera_info alone; with ``settle``, return once the node's reader has
        acknowledged it (reliable QoS) and its executor had 0.1 s to run the callback."""
        self.prime(camera, depth=False) if settle else self.input_publisher(
            "camera_info").publish(camera_info_msg(camera, stamp or frame_stamp(0), frame_id))

    def prime(self, camera, depth: bool = False, frame_id: str = "camera_optical",
              stereo_baseline_m: float = 0.0) -> None:
        """Before the first frame: send the camera_info (and, with ``depth``, a dummy depth image
        stamped in 1970, which no frame pairs with; with ``stereo_baseline_m``, the right eye's
        camera_info and a dummy right image) and wait until the node acknowledged them.

        Why: a reader that the probe's writer matched may not have matched the writer yet; a
        reliable sample sent then is repaired only at the writer's next heartbeat (Fast DDS: up
        to 3 s), later than the node's depth_wait_s. And a camera_info and an image that arrive
        together may be handled image first, so a node's very first frame is rejected (no
        camera_info). Acknowledged once, both channels deliver in milliseconds.
        """
        from builtin_interfaces.msg import Time
        from rclpy.duration import Duration

        pubs = [self.input_publisher("camera_info")]
        pubs[0].publish(camera_info_msg(camera, frame_stamp(0), frame_id))
        if depth:
            pubs.append(self.input_publisher("depth"))
            pubs[1].publish(depth_msg(np.zeros((camera.height, camera.width), np.float32),
                                      "32FC1", Time(sec=1), frame_id))
        if stereo_baseline_m > 0:
            pubs.append(self.input_publisher("right/camera_info"))
            pubs[-1].publish(right_camera_info_msg(camera, frame_stamp(0), stereo_baseline_m,
                                                   frame_id))
            pubs.append(self.input_publisher("right/image"))
            pubs[-1].publish(raw_image_msg(np.zeros((2, 2, 3), np.uint8), "rgb8", Time(sec=1),
                                           frame_id))
        for pub in pubs:
            pub.wait_for_all_acked(Duration(seconds=10))  # immediate for best effort
        time.sleep(0.1)

    def send_image(self, msg, topic: str = "image") -> None:
        self.input_publisher(topic).publish(msg)

    def track(self, frames, camera, timeout: float = FRAME_TIMEOUT_S, **kwargs) -> list:
        """Send frames one by one, each after the odometry of the one before (no drops);
        returns [(stamp, odometry)]."""
        out = []
        for frame in frames:
            stamp = self.send_frame(frame, camera, **kwargs)
            out.append((stamp, self.odometry.wait_stamp(stamp, timeout, self.alive)))
        return out

    # --- services and diagnostics ---------------------------------------------------------------
    def reset(self):
        return self.probe.reset(self.fqn)

    def set_parameters(self, **values: Any) -> dict[str, Any]:
        return self.probe.set_parameters(self.fqn, values)

    def get_parameters(self, *names: str) -> dict[str, Any]:
        return self.probe.get_parameters(self.fqn, names)

    def describe_parameters(self, *names: str) -> dict[str, Any]:
        return self.probe.describe_parameters(self.fqn, names)

    def status(self, predicate: Callable[[dict], bool] | None = None,
               timeout: float = FRAME_TIMEOUT_S, after: int = 0) -> dict:
        """The latest diagnostics status of this node (``diagnostic_dict``; hardware_id = node
        name) satisfying ``predicate``, among the diagnostics messages from the ``after``-th on;
        waits for one when there is none yet."""
        def matching(msg) -> list[dict]:
            return [d for d in (diagnostic_dict(s) for s in msg.status)
                    if d["hardware_id"] == self.name and (predicate is None or predicate(d))]

        self.diagnostics.wait(lambda m: bool(matching(m)), 1, timeout, self.alive, start=after)
        return [d for m in self.diagnostics.messages[after:] for d in matching(m)][-1]

    def fresh_status(self, predicate: Callable[[dict], bool] | None = None,
                     timeout: float = FRAME_TIMEOUT_S) -> dict:
        """Like ``status`` but only from diagnostics published from now on."""
        return self.status(predicate, timeout, after=len(self.diagnostics.messages))


# --- the session ---------------------------------------------------------------------------------
class RosSession:
    """rclpy context + Probe spun on a thread, in this process's own domain; starts nodes."""

    def __init__(self, log_dir: Path | str, domain_id: int | None = None,
                 cwd: Path | str | None = None) -> None:
        self.cwd = cwd  # of the node processes
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.domain_id = session_domain_id() if domain_id is None else domain_id
        self.env = ros_environment(self.domain_id)
        self.nodes: list[TrackerProcess] = []
        self._saved_env: dict[str, str | None] = {}

    def __enter__(self) -> "RosSession":
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        for key, value in self.env.items():  # read by rmw when this process joins the domain
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        from rclpy.signals import SignalHandlerOptions

        self.context = Context()
        # Ctrl-C stays a KeyboardInterrupt of this process (closing the session stops the node
        # processes) instead of silently shutting rclpy down under a waiting driver
        rclpy.init(context=self.context, domain_id=self.domain_id,
                   signal_handler_options=SignalHandlerOptions.NO)
        self.probe = _probe_class()(self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.probe)
        self._spinning = True
        self._thread = threading.Thread(target=self._spin, name="probe-spin", daemon=True)
        self._thread.start()
        return self

    def _spin(self) -> None:
        while self._spinning and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception:  # noqa: BLE001 - shutdown races end the loop
                if self._spinning and self.context.ok():
                    raise
                return

    def start_node(self, namespace: str = "/", params: dict[str, Any] | None = None,
                   remaps: dict[str, str] | None = None, inputs: Iterable[str] = ("image",
                                                                                   "camera_info"),
                   command: Sequence[str] | None = None, name: str = NODE_NAME,
                   extra_args: Sequence[str] = (), timeout: float = START_TIMEOUT_S,
                   camera=None, outputs: Iterable[str] = OUTPUTS,
                   env: dict[str, str] | None = None) -> TrackerProcess:
        """Start a node process (``env`` added to this process's environment) and wait until it
        is ready (see ``TrackerProcess.wait_ready``); with ``camera``, its camera_info is sent
        ahead of the first frame."""
        node = TrackerProcess(self, namespace, params, remaps, command, name, extra_args, env)
        self.nodes.append(node)
        node.start_outputs(outputs)
        node.wait_ready(timeout, inputs)
        if camera is not None:
            node.prime(camera, depth="depth" in inputs)
        return node

    def close(self) -> None:
        import rclpy

        for node in self.nodes:
            if node.returncode is None:
                with contextlib.suppress(Exception):
                    node.stop()
        self._spinning = False
        self._thread.join(5.0)
        with contextlib.suppress(Exception):
            self.executor.shutdown()
        with contextlib.suppress(Exception):
            self.probe.destroy_node()
        rclpy.try_shutdown(context=self.context)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def __exit__(self, *exc) -> None:
        self.close()
