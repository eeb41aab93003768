"""The typed messages for a SLAM backend (package ``lightglue_ros_msgs``): a KeyframeEdge and the
TrackedMatches of each tracked frame.

The interface package is built beside this one (colcon, or ``make venv`` on the PyPI wheels); a
node without it still publishes the standard messages and says so (``unavailable``).
"""
from __future__ import annotations

import importlib.util

from builtin_interfaces.msg import Time

from ..tracking import FrameRecord
from . import conversions as conv

MODELS = {"pnp": 1, "essential": 2, "homography": 3, "stereo": 4}  # KeyframeEdge.MODEL_*


def unavailable() -> str | None:
    """Why the typed messages cannot be published here, or None when they can."""
    if importlib.util.find_spec("lightglue_ros_msgs") is None:
        return ("lightglue_ros_msgs is not installed (build it beside lightglue_ros with colcon, "
                "or `make venv`): ~/edges and ~/tracks are not published")
    return None


def edge_msg(record: FrameRecord, stamp: Time, camera_frame: str):
    """The KeyframeEdge of a tracked frame (``record.T_ref_cam`` and its reference are set)."""
    from lightglue_ros_msgs.msg import KeyframeEdge

    msg = KeyframeEdge()
    msg.header.stamp, msg.header.frame_id = stamp, camera_frame
    _name_reference(msg, record)
    msg.reference_is_keyframe = bool(record.ref_is_keyframe)
    msg.became_keyframe = bool(record.keyframe)
    msg.reinitialized = bool(record.ref_began_anew or record.reinitialized)
    msg.model, msg.metric = MODELS.get(record.model, KeyframeEdge.MODEL_UNKNOWN), record.metric
    pose = conv.relative_pose_msg(record, stamp, camera_frame).pose
    msg.pose = pose
    msg.num_matches, msg.num_inliers = record.num_matches, record.num_inliers
    msg.layers = record.layers
    return msg


def tracks_msg(record: FrameRecord, stamp: Time, camera_frame: str):
    """The TrackedMatches of a tracked frame: one entry per match, with its track id (-1 for
    all when the tracker assigned none)."""
    from lightglue_ros_msgs.msg import TrackedMatches

    n = len(record.ref_points)
    ids = record.track_ids if len(record.track_ids) == n else [-1] * n
    msg = TrackedMatches()
    msg.header.stamp, msg.header.frame_id = stamp, camera_frame
    _name_reference(msg, record)
    msg.track_ids = [int(i) for i in ids]
    msg.reference_x = record.ref_points[:, 0].astype(float).tolist()
    msg.reference_y = record.ref_points[:, 1].astype(float).tolist()
    msg.current_x = record.cur_points[:, 0].astype(float).tolist()
    msg.current_y = record.cur_points[:, 1].astype(float).tolist()
    msg.scores = record.match_scores.astype(float).tolist()
    msg.inliers = [bool(v) for v in record.inliers]
    return msg


def _name_reference(msg, record: FrameRecord) -> None:
    """The frame's index and its reference's stamp (the header it came with) and index."""
    if record.ref_stamp_ns is None or record.ref_index is None:
        raise ValueError("the record has no reference frame")
    msg.frame_index, msg.reference_index = record.index, record.ref_index
    msg.reference_stamp = conv.time_msg(record.ref_stamp_ns)
