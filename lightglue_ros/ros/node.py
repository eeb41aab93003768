"""The tracker node: camera images in; odometry, relative poses, matches, typed edges and tracks
(lightglue_ros_msgs), diagnostics and TF out.

Thin on purpose: messages are converted (``conversions``) and handed to the core tracker, which
runs as two stages on two threads (``tracking.two_stage``): frame t+1 is decoded and its features
extracted while frame t is matched, its pose estimated and its outputs published. Each stage holds
one frame: when inference is slower than the camera, a frame waiting for extraction is replaced by
the newer one and counted as dropped, so latency stays bounded.
Input QoS follows the publishers (``qos``), odometry is of the camera or of the robot base
(``geometry.frames``, extrinsic from a parameter or TF), TF goes through a guard (``tf``).
A stereo pair (``use_stereo``) is the left eye on the image inputs and the right eye on
right/image and right/camera_info, paired by stamp and rectified in stage 1 (``messages.stereo``).
With ``slam`` the SLAM layer runs on a third thread (``slam_outputs``): map -> odom, ~/path,
~/loop_edges and ~/save_map.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from collections import OrderedDict
from typing import Any, cast

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.exceptions import ParameterException
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_srvs.srv import Trigger

from ..config import ConfigError, parse_pose
from ..errors import LightGlueRosError, describe
from ..geometry.camera import CameraModel
from ..geometry.frames import pose_matrix
from ..messages import assembly, decode, stereo
from ..pipeline import Pipeline
from ..slam.map_file import MapFileError
from ..tracking import FrameRecord, Tracker, TrackingStatus
from ..tracking.stamps import StampEvent, StampMonitor
from ..tracking.two_stage import StageOutput, TwoStageTracker
from ..types import FrameInput
from ..viz.matches import draw_flow
from . import backend_msgs
from . import conversions as conv
from .health import ERROR, WARN, Health
from .odometry import OdometryEstimator
from .params import declare, validate_change
from .qos import InputSubscription
from .slam_outputs import SlamOutputs, open_map
from .tf import TfBridge, tf2_available

TRANSPORT_REMEDY = ("publish it reliable (the node then subscribes reliable, input_qos auto), or "
                    "give DDS room for large data: FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA, or "
                    "larger socket buffers (sysctl net.core.rmem_max)")


class TrackerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("lightglue_tracker", **kwargs)
        self.config = declare(self)
        self._extrinsic = pose_matrix(parse_pose(self.config.base_to_camera)) \
            if self.config.base_to_camera else None  # T_base_cam
        needs_lookup = bool(self.config.base_frame) and self._extrinsic is None
        if needs_lookup and not tf2_available():
            raise ConfigError(f"base_frame '{self.config.base_frame}' needs the camera's pose in "
                              "it: set base_to_camera ('x y z qx qy qz qw'), or install tf2_ros "
                              "(a ROS 2 install) to look it up in TF")
        # a fault that clears stays in /diagnostics for at least one period (see Health)
        self.health = Health(self.get_logger(), hold_s=self.config.diagnostics_period_s)
        self.tracker = Tracker(Pipeline(self.config))
        self.tracker.wait_for_keyframes = False  # live: no frame waits for a keyframe's worker
        self._lock = threading.Condition()
        self._camera: CameraInfo | None = None
        self._right_camera: CameraInfo | None = None
        self._depths: OrderedDict[int, Any] = OrderedDict()  # by header stamp (ns)
        self._rights: OrderedDict[int, Any] = OrderedDict()  # right images, by header stamp
        self._stamp_rule = StampMonitor()
        self.tf = TfBridge(self) if tf2_available() and (
            self.config.publish_tf or needs_lookup or self.config.slam) else None
        self.inputs = [self._image_input("image", self._on_image),
                       # camera_info is small: it always matches its publishers
                       InputSubscription(self, CameraInfo, "camera_info", self._on_camera_info,
                                         "auto", 1)]
        self._rectified = decode.rectified_topic(self.config.image_rectification,
                                                 self.inputs[0].name)
        if self.config.use_stereo:
            self._stereo = stereo.StereoRectifier(self._rectified)
            self._without_right = 0  # left images tracked alone: no right one in time
            self.inputs += [self._image_input("right/image", self._on_right),
                            InputSubscription(self, CameraInfo, "right/camera_info",
                                              self._on_right_camera_info, "auto", 1)]
        if self.config.use_depth:
            compressed = self.config.use_compressed_depth
            self.inputs.append(InputSubscription(
                self, CompressedImage if compressed else Image,
                "depth/compressedDepth" if compressed else "depth", self._on_depth,
                self.config.input_qos, self.config.input_depth))
        self._lost_seen = 0  # samples lost in transport, at the last diagnostics
        self.pub_odom = self.create_publisher(Odometry, "~/odometry", 10)
        self.pub_relative = self.create_publisher(PoseWithCovarianceStamped, "~/relative_pose", 10)
        self.pub_matches = self.create_publisher(PointCloud2, "~/matches", 10)
        self.odometry = OdometryEstimator()
        self._typed_unavailable = backend_msgs.unavailable()
        if self._typed_unavailable is None:
            from lightglue_ros_msgs.msg import KeyframeEdge, TrackedMatches

            self.pub_edges = self.create_publisher(KeyframeEdge, "~/edges", 10)
            self.pub_tracks = self.create_publisher(TrackedMatches, "~/tracks", 10)
        else:
            self.get_logger().warning(self._typed_unavailable)
        self.pub_debug = self.create_publisher(Image, "~/debug_image", 1)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(Trigger, "~/reset", self._on_reset)
        # wall-clock period: on sim time a paused or finished bag must not silence diagnostics
        self.create_timer(self.config.diagnostics_period_s, self._publish_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.add_on_set_parameters_callback(self._on_parameters)
        self.slam: SlamOutputs | None = None
        tracked: Tracker = self.tracker
        if self.config.slam:
            slam, opened = open_map(self.tracker, self.config.map_path)
            self.slam = SlamOutputs(
                self, slam, self.config.map_frame, self.config.map_path,
                lambda: self._extrinsic if self.config.base_frame else None,
                self._typed_unavailable is None)
            tracked = cast(Tracker, self.slam.tracker(self.tracker))
            self.get_logger().info(f"SLAM on: {opened}; map -> odom as {self.config.map_frame}")
            if not tf2_available():
                self.get_logger().warning("slam: tf2_ros is not installed (it comes with a ROS 2 "
                                          "install): no map -> odom on /tf; ~/path and "
                                          "~/loop_edges are published")
        self.stages = TwoStageTracker(tracked, live=True, prepare=self._prepare,
                                      on_result=self._on_result)
        self.health.set_values(extractor=self.config.model,
                               typed_messages=self._typed_unavailable or "~/edges, ~/tracks",
                               input=self._input_kind())
        self.get_logger().info(
            f"tracking with {self.config.model}, input QoS {self.config.input_qos}, odometry of "
            f"{self.config.base_frame or 'the camera optical frame (no base_frame)'}")
        self._say_tf_unavailable()

    def _image_input(self, topic: str, callback) -> InputSubscription:
        """An image input (``<topic>/compressed`` with use_compressed) with the input QoS."""
        mode, depth = self.config.input_qos, self.config.input_depth
        if self.config.use_compressed:
            return InputSubscription(self, CompressedImage, f"{topic}/compressed", callback,
                                     mode, depth)
        return InputSubscription(self, Image, topic, callback, mode, depth)

    def _input_kind(self) -> str:
        """What the node takes, in words, for diagnostics."""
        kind = "stereo" if self.config.use_stereo else "monocular"
        if self.config.use_depth:
            kind += " + depth"
        return f"{kind}, {'rectified' if self._rectified else 'raw'} images"

    def _say_tf_unavailable(self) -> None:
        if self.config.publish_tf and not tf2_available():
            self.get_logger().warning("publish_tf: tf2_ros is not installed (it comes with a ROS "
                                      "2 install, not with the PyPI wheels): no TF broadcast")

    # --- callbacks (executor thread) ------------------------------------------------------------
    def _on_image(self, msg: Image | CompressedImage) -> None:
        received = time.monotonic()
        self.health.arrived()
        if not self._check_stamp(msg.header.stamp, received):
            return
        if self.stages.submit(msg, context=received):
            self.health.count("dropped")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._camera = msg

    def _on_depth(self, msg: Image | CompressedImage) -> None:
        self._keep(self._depths, msg)

    def _on_right(self, msg: Image | CompressedImage) -> None:
        self._keep(self._rights, msg)

    def _on_right_camera_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._right_camera = msg

    def _keep(self, buffer: OrderedDict[int, Any], msg: Any) -> None:
        """Keep a message a frame may be paired with (the latest 30), and wake a frame waiting."""
        with self._lock:
            buffer[decode.stamp_ns(msg.header.stamp)] = msg
            while len(buffer) > 30:
                buffer.popitem(last=False)
            self._lock.notify_all()

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response
                  ) -> Trigger.Response:
        self.stages.reset()
        self.health.count("resets")
        self.get_logger().info("tracking reset (service call)")
        response.success, response.message = True, "tracking resets before the next frame"
        return response

    def _on_parameters(self, params):
        config, result = validate_change(self.config, params)
        if config is not None:
            self.stages.update_config(config)
            turned_on = config.publish_tf and not self.config.publish_tf
            self.config = config
            if turned_on:
                if self.tf is None and tf2_available():
                    self.tf = TfBridge(self)
                self._say_tf_unavailable()
        else:
            self.health.count("parameters_rejected")
            self.get_logger().warning(f"parameter change rejected: {result.reason}")
        return result

    # --- stage 1 (extraction thread): decode and check a frame ---------------------------------
    def _prepare(self, msg: Image | CompressedImage) -> FrameInput | None:
        """The frame to track, or None (counted, reported) for a message that cannot be used."""
        with self._lock:
            camera_msg = self._camera
        compressed = isinstance(msg, CompressedImage)
        try:
            image, camera = assembly.image_and_camera(
                msg, camera_msg, compressed,
                lambda info: decode.camera_model(info, self._rectified))
        except assembly.FrameError as exc:
            self.health.count("rejected")
            self.health.fault(exc.source, ERROR, str(exc))
            if exc.source == "camera_info" and camera_msg is not None:
                self.health.clear("image")  # the image itself was fine
            return None
        self.health.clear("image")
        self.health.clear("camera_info")
        if not self._have_extrinsic(self._camera_frame(msg)):
            return None
        right = baseline = None
        if self.config.use_stereo:
            pair = self._stereo_for(msg, image, camera_msg, compressed)
            if pair is None:
                return None
            image, camera, right, baseline = pair
        stamp_ns = decode.stamp_ns(msg.header.stamp)
        depth, unit = self._depth_for(stamp_ns, image.shape[:2]) \
            if self.config.use_depth else (None, None)
        return FrameInput(stamp_ns, image, camera, depth, unit, right, baseline)

    def _stereo_for(self, msg: Any, image: np.ndarray, camera_msg: CameraInfo, compressed: bool
                    ) -> tuple[np.ndarray, CameraModel, np.ndarray | None, float | None] | None:
        """The frame's rectified pair: left image, camera, right image and baseline (the right
        image None, with a warning, when it is missing); None for a frame refused because the
        pair cannot be metric (swapped, eyes of other sizes), reported as an error."""
        with self._lock:
            right_info = self._right_camera
        if right_info is None:
            self.health.count("rejected")
            self.health.fault("stereo", ERROR, stereo.NO_RIGHT_CAMERA_INFO)
            return None
        try:
            rectification = self._stereo.rectification(camera_msg, right_info)
            right_msg = self._paired(self._rights, decode.stamp_ns(msg.header.stamp),
                                     self.config.stereo_sync_s, self.config.stereo_wait_s)
            if right_msg is None:
                self._without_right += 1
                self.health.set_values(frames_without_right=self._without_right)
                self.health.fault("stereo", WARN, "no right image within "
                                  f"{self.config.stereo_sync_s} s of the left one: tracked "
                                  "without it", relog=False)
                return (*stereo.rectified_left(image, rectification), None, None)
            left, camera, right, baseline = stereo.stereo_frame(image, right_msg, compressed,
                                                                rectification)
        except assembly.FrameError as exc:
            self.health.count("rejected")
            self.health.fault("stereo", ERROR, str(exc))
            return None
        self.health.clear("stereo")
        self.health.set_values(stereo=f"baseline {baseline:.4f} m, " + (
            "rectified here" if rectification.resamples else "already rectified"))
        return left, camera, right, baseline

    def _paired(self, buffer: OrderedDict[int, Any], stamp_ns: int, sync_s: float,
                wait_s: float) -> Any | None:
        """The message of ``buffer`` nearest in stamp to a frame within ``sync_s``, waiting up to
        ``wait_s`` for it to arrive; None when none does."""
        deadline = time.monotonic() + wait_s
        with self._lock:
            while True:
                stamps = sorted(buffer)
                best = assembly.nearest_depth(stamps, stamp_ns, sync_s)
                if best is not None:
                    return buffer[stamps[best]]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(remaining)

    # --- stage 2 (tracking thread): publish what the tracker made of it -------------------------
    def _on_result(self, out: StageOutput) -> None:
        if out.frame is None and not out.error:
            return  # rejected in _prepare, already counted and reported
        error = out.error
        if not error:
            try:
                self._publish_frame(out.item, out.frame, out.record, out.context)
            except Exception as exc:  # the node must outlive any single frame
                error = describe(exc, "publishing")
        if error:
            self.health.count("failed")
            self.health.fault("internal", ERROR, error)
        else:
            self.health.clear("internal")

    def _publish_frame(self, msg: Any, frame: FrameInput, record: FrameRecord,
                       received: float) -> None:
        self._publish(record, msg.header.stamp, self._camera_frame(msg), frame.image)
        latency = 1e3 * (time.monotonic() - received)
        if record.status is TrackingStatus.LOST:  # logged once, not once per lost frame
            self.health.fault("tracking", WARN, f"lost ({record.reason or 'no pose'})",
                              relog=False)
        else:
            self.health.clear("tracking")
        self.health.processed(latency, status=record.status.value, model=record.model,
                              keypoints=record.num_keypoints, matches=record.num_matches,
                              inliers=record.num_inliers, layers=record.layers,
                              metric=record.metric, last_reason=record.reason or "-",
                              disparity_offset_px=round(record.disparity_offset_px, 3))

    def _camera_frame(self, msg: Any) -> str:
        return self.config.camera_frame or msg.header.frame_id or "camera"

    def _have_extrinsic(self, camera_frame: str) -> bool:
        """With base_frame: the camera's pose in it, from the parameter or (once) from TF;
        frames are rejected until TF has it."""
        if not self.config.base_frame or self._extrinsic is not None:
            return True
        self._extrinsic = self.tf.lookup(self.config.base_frame, camera_frame)
        if self._extrinsic is None:
            self.health.count("rejected")
            self.health.fault("extrinsic", WARN, f"waiting for TF {self.config.base_frame} -> "
                              f"{camera_frame} (or set base_to_camera): frame not tracked")
            return False
        self.health.clear("extrinsic")
        self.get_logger().info(f"camera pose in {self.config.base_frame} from TF")
        return True

    def _check_stamp(self, stamp_msg: Time, received: float) -> bool:
        """The stamp rule (``StampMonitor``): a duplicate is ignored, a stamp going backwards (bag
        loop, sim time reset) restarts tracking, a forward jump is reported; False to skip."""
        check = self._stamp_rule.check(decode.stamp_ns(stamp_msg), int(received * 1e9))
        stamp = decode.stamp_seconds(stamp_msg)
        if check.event is StampEvent.DUPLICATE:
            self.health.count("rejected")
            self.health.fault("duplicate_stamp", WARN, f"stamp {stamp:.6f} repeats the frame "
                              "before: frame ignored", relog=False)
            return False
        self.health.clear("duplicate_stamp")
        if check.event is StampEvent.BACKWARD:
            self.health.fault("stamp", WARN, f"stamp went back from {check.previous_s:.3f} to "
                              f"{stamp:.3f} (bag loop or clock reset): tracking restarted")
            self.health.count("restarts")
            self.stages.reset()
        elif check.event is StampEvent.FORWARD_JUMP:
            self.health.fault("stamp", WARN, f"stamp jumped forward by {check.step_s:.3f} s in "
                              f"{check.received_step_s:.3f} s (clock step or bag skip): "
                              "tracking goes on")
        else:
            self.health.clear("stamp")
        return True

    def _depth_for(self, stamp_ns: int, shape: tuple[int, int]
                   ) -> tuple[np.ndarray | None, float | None]:
        """The depth image paired with a frame (waiting up to depth_wait_s for it), checked."""
        msg = self._paired(self._depths, stamp_ns, self.config.depth_sync_s,
                           self.config.depth_wait_s)
        if msg is None:
            self.health.fault("depth", WARN, "no depth image within "
                              f"{self.config.depth_sync_s} s of the frame: tracked without "
                              "depth")
            return None, None
        try:
            depth, unit = assembly.checked_depth(msg, shape, self.config.depth_min_m,
                                                 self.config.depth_max_m)
        except assembly.FrameError as exc:
            self.health.fault("depth", WARN if exc.warning else ERROR, str(exc))
            return None, None
        self.health.clear("depth")
        return depth, unit

    def _odom_frame(self, camera_frame: str) -> str:
        """odom_frame, or by default 'odom' for the base's odometry and '<camera frame>_odom'
        for the camera's: a pose with optical axes is never published in a frame named like
        the robot's odom (robot_localization would fuse it as the base's pose)."""
        if self.config.odom_frame:
            return self.config.odom_frame
        return "odom" if self.config.base_frame else f"{camera_frame}_odom"

    def _publish(self, record: FrameRecord, stamp: Time, camera_frame: str,
                 image: np.ndarray) -> None:
        odom_frame = self._odom_frame(camera_frame)
        child = self.config.base_frame or camera_frame
        odom = self.odometry.update(record, self._extrinsic if self.config.base_frame else None)
        self.pub_odom.publish(conv.odometry_msg(odom, stamp, odom_frame, child))
        if self.config.publish_tf and self.tf is not None and \
                record.status is not TrackingStatus.LOST:
            self._send_tf(conv.transform_msg(odom.T, stamp, odom_frame, child))
        if self.slam is not None:
            self.slam.camera_frame = camera_frame
            T_map_odom = self.slam.map_to_odom()
            if T_map_odom is not None and self.tf is not None:
                self._send_tf(conv.transform_msg(T_map_odom, stamp, self.config.map_frame,
                                                 odom_frame), "tf_map")
        if record.T_ref_cam is None or record.ref_stamp_ns is None:
            return
        self.pub_relative.publish(conv.relative_pose_msg(record, stamp, camera_frame))
        self.pub_matches.publish(conv.matches_msg(record, stamp, camera_frame))
        if self._typed_unavailable is None:
            self.pub_edges.publish(backend_msgs.edge_msg(record, stamp, camera_frame))
            self.pub_tracks.publish(backend_msgs.tracks_msg(record, stamp, camera_frame))
        if self.pub_debug.get_subscription_count() > 0:
            self._publish_debug(record, stamp, camera_frame, image)

    def _send_tf(self, transform, key: str = "tf") -> None:
        """Broadcast through the guard; a refusal is reported in diagnostics (``key``: one
        fault per edge, so that one edge's refusal is not cleared by the other's success)."""
        assert self.tf is not None
        refused = self.tf.send(transform)
        if refused:
            self.health.fault(key, WARN, f"not broadcast: {refused}")
        else:
            self.health.clear(key)

    def _publish_debug(self, record: FrameRecord, stamp: Time, camera_frame: str,
                       image: np.ndarray) -> None:
        text = (f"{record.status.value} {record.model}: {record.num_inliers}/"
                f"{record.num_matches} inliers, {record.layers} layers")
        picture = draw_flow(image, record.ref_points, record.cur_points, record.inliers, text)
        header = conv.Header(stamp=stamp, frame_id=camera_frame)
        self.pub_debug.publish(conv.array_to_image(picture, header))

    def _check_transport(self) -> dict[str, str]:
        """The ``transport`` fault while inputs lose samples, and the values for diagnostics."""
        lost = sum(s.lost for s in self.inputs)
        if lost > self._lost_seen:
            topics = ", ".join(f"{s.name} ({s.lost})" for s in self.inputs if s.lost)
            best_effort = any(s.lost and s.reliability == ReliabilityPolicy.BEST_EFFORT
                              for s in self.inputs)
            cause = ("best-effort input: a large message that loses one UDP fragment is lost "
                     "whole" if best_effort else "the publisher's history overwrote them first")
            self.health.fault("transport", WARN, f"{lost - self._lost_seen} samples lost in "
                              f"transport since the last report, {lost} in all ({topics}); "
                              f"{cause}: {TRANSPORT_REMEDY}", relog=False)
        else:
            self.health.clear("transport")
        self._lost_seen = lost
        values = {"samples_lost_in_transport": str(lost)}
        for s in self.inputs:
            values[f"qos.{s.topic}"] = ("reliable" if s.reliability == ReliabilityPolicy.RELIABLE
                                        else "best_effort")
        return values

    def _publish_diagnostics(self) -> None:
        transport = self._check_transport()
        level, summary, values = self.health.snapshot(self.config.stale_after_s)
        values.update(transport)
        status = DiagnosticStatus(level=bytes([level]), name="lightglue_ros: tracker",
                                  message=summary, hardware_id=self.get_name())
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(array)

    def shutdown(self) -> None:
        """Stop the stages first (no frame reaches the SLAM worker after), then the worker
        (it verifies with the tracker's networks), then the tracker; each whatever the one
        before raised, so that no thread outlives a failed step."""
        try:
            self.stages.close(drain=False, timeout=5.0)
        finally:
            try:
                if self.slam is not None:
                    self.slam.close()
            finally:
                self.tracker.close()


def main(args: list[str] | None = None) -> int:
    # SIGINT shuts rclpy's context down (its handler, installed by init, calls the one before
    # it): spin then ends with ExternalShutdownException where it waits. Python's own handler
    # would also raise KeyboardInterrupt at whatever line runs, e.g. half-way through building
    # an executor task, whose __del__ then prints a traceback at exit
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    rclpy.init(args=args if args is not None else sys.argv)
    try:
        node = TrackerNode()
    except (ConfigError, LightGlueRosError, MapFileError, ParameterException) as exc:
        print(f"lightglue_tracker: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # SIGINT shut the context down while the executor was building its wait set: rclpy
        # raises RCLError there instead of ExternalShutdownException; it is the same shutdown
    finally:
        # Ctrl-C in a terminal reaches a launched node twice (the terminal's and the launch's
        # forwarded one): the second must not break the shutdown off half-way
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
