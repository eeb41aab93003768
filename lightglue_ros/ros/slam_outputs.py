"""The node's SLAM side (``slam: true``): the SLAM layer on its own thread and what it publishes.

* ``map -> odom_frame`` on /tf with every tracked frame's stamp (REP 105): odom stays
  continuous, the correction of loop closures and relocalizations is all in this edge. Identity
  until a correction; started in a loaded map (``map_path``), nothing before the first
  relocalization places odom in it.
* ``~/path`` (nav_msgs/Path in ``map_frame``): the keyframes' optimised poses, after each change.
* ``~/loop_edges`` (lightglue_ros_msgs/KeyframeEdge, kind LOOP or RELOCALIZATION).
* ``~/save_map`` (std_srvs/Trigger): the map to ``map_path`` (``slam.map_file`` format).

The tracking thread only snapshots each frame (``slam.background``); retrieval, verification and
the pose graph run on the SLAM worker, which calls back here to publish.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path as PathMsg
from std_srvs.srv import Trigger

from ..geometry.frames import base_pose
from ..geometry.se3 import invert_transform
from ..slam import Slam
from ..slam.background import BackgroundSlam, verification_pipeline
from ..slam.map_file import open_slam
from ..slam.system import FrameJob
from ..tracking import FrameRecord, Tracker
from ..tracking.frames import ExtractedFrame
from . import backend_msgs
from . import conversions as conv
from .health import ERROR

if TYPE_CHECKING:
    from lightglue_ros_msgs.msg import KeyframeEdge

log = logging.getLogger(__name__)


def open_map(tracker: Tracker, map_path: str) -> tuple[Slam, str]:
    """The SLAM layer over ``tracker`` (in the map at ``map_path`` when it exists), and what
    was loaded, in words."""
    slam, loaded = open_slam(tracker, map_path)
    if loaded:
        return slam, f"map {map_path}: {len(slam.db)} keyframes, localizing in it"
    return slam, "new map" + (f" (~/save_map writes {map_path})" if map_path else "")


class SlamTracker:
    """The tracker as the two stages see it, with the SLAM snapshot taken right after each
    ``track`` (on the tracking thread); everything else is the tracker's."""

    def __init__(self, tracker: Tracker, slam: BackgroundSlam,
                 on_error: Callable[[str], None] | None = None) -> None:
        self._tracker, self._slam, self._on_error = tracker, slam, on_error

    def track(self, extracted: ExtractedFrame) -> FrameRecord:
        """The tracker's record, also when the SLAM snapshot fails: the frame is tracked by
        then, and its odometry must go out (the failure is reported, not raised)."""
        record = self._tracker.track(extracted)
        try:
            self._slam.after_track(extracted, record)
        except Exception as exc:
            log.exception("SLAM: the snapshot of a frame failed")
            if self._on_error is not None:
                self._on_error(f"a snapshot failed: {exc.__class__.__name__}: {exc}")
        return record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tracker, name)


class SlamOutputs:
    """Publishers, the save service and the SLAM worker of one node."""

    def __init__(self, node: Any, slam: Slam, map_frame: str, map_path: str,
                 base_of: Callable[[], np.ndarray | None], typed: bool) -> None:
        """``node``: the TrackerNode (its ``health`` and logger); ``base_of``: T_base_cam when
        odometry is of the base (poses then conjugated), else None; ``typed``:
        lightglue_ros_msgs is there (~/loop_edges)."""
        self.node, self.map_frame, self.map_path = node, map_frame, map_path
        self.base_of = base_of
        self.camera_frame = "camera"  # the latest frame's, for the edges' frame_id
        self.pub_path = node.create_publisher(PathMsg, "~/path", 10)
        self.pub_loops = None
        if typed:
            from lightglue_ros_msgs.msg import KeyframeEdge

            self.pub_loops = node.create_publisher(KeyframeEdge, "~/loop_edges", 10)
        node.create_service(Trigger, "~/save_map", self._on_save)
        slam.pipeline = verification_pipeline(slam.tracker.pipeline)  # matched from 2 threads
        self.worker = BackgroundSlam(slam, on_event=self._on_event, on_error=self._on_error)

    def tracker(self, tracker: Tracker) -> SlamTracker:
        return SlamTracker(tracker, self.worker, self._on_error)

    def _on_error(self, message: str) -> None:
        """A frame the SLAM layer failed on (either thread): odometry goes on, the fault is in
        diagnostics until a frame is processed again."""
        self.node.health.fault("slam", ERROR, message, relog=False)

    # --- tracking thread ------------------------------------------------------------------------
    def map_to_odom(self) -> np.ndarray | None:
        """T_map_odom of the published odom (the base's with base_frame), or None while the
        loaded map has not placed odom."""
        T = self.worker.T_map_odom()
        base = self.base_of()
        return T if T is None or base is None else base_pose(T, base)

    # --- SLAM worker thread ---------------------------------------------------------------------
    def _on_event(self, event: str, job: FrameJob) -> None:
        slam = self.worker.slam
        if event in ("loop", "relocalization") and self.pub_loops is not None:
            self.pub_loops.publish(self._edge_msg(event, job))
        if event:
            self.pub_path.publish(self._path_msg(slam))
        self.node.health.clear("slam")
        self.node.health.set_values(
            slam_keyframes=len(slam.db), slam_loop_closures=slam.loop_closures,
            slam_relocalizations=len(slam.relocalizations),
            slam_last_relocalization_frames=slam.relocalizations[-1] if slam.relocalizations
            else "-",
            slam_localized=slam.localized, slam_queued=self.worker.queued,
            slam_failures=self.worker.failures,
            slam_tracking_thread_ms_per_frame=round(
                1e3 * self.worker.snapshot_s / max(self.worker.snapshots, 1), 2),
            slam_busy_ms_per_frame=round(1e3 * self.worker.busy_s / max(self.worker.processed,
                                                                         1), 1))

    def _edge_msg(self, event: str, job: FrameJob) -> KeyframeEdge:
        from lightglue_ros_msgs.msg import KeyframeEdge

        slam = self.worker.slam
        msg = KeyframeEdge()
        msg.header.stamp = conv.time_msg(job.record.stamp_ns)
        msg.header.frame_id = self.camera_frame
        msg.reference_is_keyframe = True
        if event == "loop":
            edge = slam.graph.loop_edges[-1]
            msg.kind = KeyframeEdge.KIND_LOOP
            msg.frame_index, msg.reference_index = edge.j, edge.i
            ref, T, cov = slam.db[edge.i], edge.T_i_j, edge.covariance
            msg.became_keyframe = True
            msg.metric = bool(slam.db[edge.j].metric)
        else:
            found = slam.last_relocalization
            assert found is not None
            msg.kind = KeyframeEdge.KIND_RELOCALIZATION
            ref = found.keyframe
            msg.frame_index, msg.reference_index = job.record.index, ref.index
            T = invert_transform(found.T_odom_kf) @ job.record.T_odom_cam
            cov = found.covariance
            msg.metric = bool(ref.metric)
        msg.reference_stamp = conv.time_msg(ref.stamp_ns)
        msg.model = backend_msgs.MODELS["pnp"]
        msg.pose.pose = conv.pose_msg(T)
        msg.pose.covariance = [float(v) for v in np.asarray(cov, np.float64).reshape(36)]
        return msg

    def _path_msg(self, slam: Slam) -> PathMsg:
        base = self.base_of()
        msg = PathMsg()
        msg.header.frame_id = self.map_frame
        kfs = slam.db.keyframes
        msg.header.stamp = conv.time_msg(kfs[-1].stamp_ns) if kfs else Time()
        for kf in kfs:
            pose = PoseStamped()
            pose.header.frame_id = self.map_frame
            pose.header.stamp = conv.time_msg(kf.stamp_ns)
            pose.pose = conv.pose_msg(kf.T_map_cam if base is None else
                                      base_pose(kf.T_map_cam, base))
            msg.poses.append(pose)
        return msg

    # --- executor thread ------------------------------------------------------------------------
    def _on_save(self, request: Trigger.Request, response: Trigger.Response
                 ) -> Trigger.Response:
        if not self.map_path:
            response.success = False
            response.message = "map_path is empty: start the node with map_path set to save"
            return response
        try:
            path = self.worker.save(self.map_path)
        except Exception as exc:  # reported to the caller, the node goes on
            response.success, response.message = False, f"{exc.__class__.__name__}: {exc}"
            return response
        slam = self.worker.slam
        response.success = True
        response.message = f"{len(slam.db)} keyframes saved to {path}"
        self.node.get_logger().info(response.message)
        return response

    def close(self) -> None:
        """Stop the worker (before the tracker it verifies with is closed); log what the map
        holds and what the SLAM thread cost."""
        if not self.worker.close():
            self.node.get_logger().warning("SLAM: the worker did not finish its frame in time")
        slam, w = self.worker.slam, self.worker
        self.node.get_logger().info(
            f"SLAM: {len(slam.db)} keyframes, {slam.loop_closures} loop closures, "
            f"{len(slam.relocalizations)} relocalizations; {w.processed} frames processed on "
            f"its thread, {1e3 * w.busy_s / max(w.processed, 1):.1f} ms each, "
            f"{w.coalesced} relocalization queries replaced by a newer frame; "
            f"{1e3 * w.snapshot_s / max(w.snapshots, 1):.2f} ms per frame on the tracking thread")

