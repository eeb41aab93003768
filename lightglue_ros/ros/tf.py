"""TF for the tracker (REP 105): the camera's pose in the robot base, and a broadcaster that never
gives a frame a second parent.

``tf2_ros`` comes with a ROS 2 install, not with the PyPI wheels: without it the extrinsic must
be given as a parameter (``base_to_camera``) and nothing is broadcast. With it, a ``TfBridge``
listens to /tf and /tf_static, looks the extrinsic up (``base_frame -> camera frame``, fixed, read
once), and before each broadcast checks the tree it has heard: a child frame that already has
another parent (a URDF's camera frame under camera_link), or an edge that another node publishes
(wheel odometry or an EKF owning ``odom -> base_link``), is never broadcast, and the reason is
reported instead. The decision (``conflict``) is pure and tested without tf2_ros.
"""
from __future__ import annotations

import importlib.util
import time

import numpy as np
import yaml

from ..geometry.frames import pose_matrix


def tf2_available() -> bool:
    return importlib.util.find_spec("tf2_ros") is not None


def frame_parents(frames_yaml: str) -> dict[str, str]:
    """child -> parent of every frame in a tf2 buffer's ``all_frames_as_yaml()``."""
    frames = yaml.safe_load(frames_yaml) or {}
    return {str(child): str(info["parent"]) for child, info in frames.items()
            if isinstance(info, dict) and info.get("parent")}


def conflict(parents: dict[str, str], parent: str, child: str, ours: bool) -> str | None:
    """Why broadcasting ``parent -> child`` would break the tree, or None when it is safe.
    ``ours``: this node has broadcast that edge before (so a ``parent`` heard for ``child`` may
    be its own)."""
    existing = parents.get(child)
    if existing is None:
        return None
    if existing != parent:
        return (f"'{child}' already has the parent '{existing}' in TF: broadcasting "
                f"'{parent}' -> '{child}' would give it a second one")
    if not ours:
        return (f"'{parent}' -> '{child}' is already broadcast by another node (wheel odometry "
                "or a state estimator?)")
    return None


class TfBridge:
    """tf2_ros listener + broadcaster of one node (requires ``tf2_available()``).

    The parent map the guard checks is parsed from the buffer again only when it is
    ``refresh_s`` old or does not know the child about to be broadcast (the tree changes when a
    node starts, not per frame; parsing it per broadcast cost a YAML dump and parse per frame).
    Once this node's own edge is heard back, the map knows its child."""

    def __init__(self, node, refresh_s: float = 1.0) -> None:
        from tf2_ros import Buffer, TransformBroadcaster, TransformListener

        self.buffer = Buffer()
        self.listener = TransformListener(self.buffer, node)
        self.broadcaster = TransformBroadcaster(node)
        self.broadcast: set[tuple[str, str]] = set()  # edges this node has sent
        self.refresh_s = refresh_s
        self._parents: dict[str, str] = {}
        self._parsed_at = -float("inf")  # time.monotonic() of the last parse

    def parents(self, child: str) -> dict[str, str]:
        """child -> parent of the tree heard: at most ``refresh_s`` old, and fresh while it
        does not know ``child``."""
        now = time.monotonic()
        if child not in self._parents or now - self._parsed_at >= self.refresh_s:
            self._parents = frame_parents(self.buffer.all_frames_as_yaml())
            self._parsed_at = now
        return self._parents

    def lookup(self, target: str, source: str) -> np.ndarray | None:
        """T_target_source (the pose of ``source`` in ``target``), latest; None while TF does
        not have it."""
        from rclpy.time import Time
        from tf2_ros import TransformException

        try:
            t = self.buffer.lookup_transform(target, source, Time()).transform
        except TransformException:
            return None
        return pose_matrix([t.translation.x, t.translation.y, t.translation.z,
                            t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w])

    def send(self, transform) -> str | None:
        """Broadcast a geometry_msgs/TransformStamped unless it breaks the tree; the reason
        when it was not sent."""
        edge = (transform.header.frame_id, transform.child_frame_id)
        reason = conflict(self.parents(edge[1]), *edge, ours=edge in self.broadcast)
        if reason is None:
            self.broadcaster.sendTransform(transform)
            self.broadcast.add(edge)
        return reason
