"""sensor_msgs / geometry_msgs / nav_msgs <-> numpy and the core's types, without cv_bridge.

Every decoder validates the message (encoding, sizes, step, data length) and raises ImageError or
ValueError with a message that says what is wrong, so the node can report it and go on.
"""
from __future__ import annotations

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseWithCovarianceStamped, TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from ..errors import ImageError
from ..geometry.camera import CameraModel
from ..geometry.covariance import LARGE_VARIANCE
from ..geometry.se3 import rotation_to_quaternion
from ..tracking import FrameRecord

# encoding -> (numpy dtype, channels, order of colour channels as the core wants them)
ENCODINGS: dict[str, tuple[type, int, str]] = {
    "mono8": (np.uint8, 1, ""), "8UC1": (np.uint8, 1, ""),
    "mono16": (np.uint16, 1, ""), "16UC1": (np.uint16, 1, ""),
    "rgb8": (np.uint8, 3, "rgb"), "bgr8": (np.uint8, 3, "bgr"), "8UC3": (np.uint8, 3, "bgr"),
    "rgba8": (np.uint8, 4, "rgba"), "bgra8": (np.uint8, 4, "bgra"),
    "32FC1": (np.float32, 1, ""),
}
COLOUR_ENCODINGS = ("mono8", "mono16", "rgb8", "bgr8", "rgba8", "bgra8", "8UC1", "8UC3", "16UC1")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


def stamp_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def image_to_array(msg: Image, allowed: tuple[str, ...] = COLOUR_ENCODINGS) -> np.ndarray:
    """The pixels of a sensor_msgs/Image as (H, W) or (H, W, C), colour in RGB order."""
    if msg.encoding not in ENCODINGS or msg.encoding not in allowed:
        raise ImageError(f"unsupported encoding '{msg.encoding}' (accepted: "
                         f"{', '.join(allowed)})")
    dtype, channels, order = ENCODINGS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageError(f"empty image ({width}x{height})")
    row = width * channels * np.dtype(dtype).itemsize
    if step < row:
        raise ImageError(f"step {step} is smaller than a {msg.encoding} row of {width} pixels "
                         f"({row} bytes)")
    if len(msg.data) < step * (height - 1) + row:
        raise ImageError(f"data holds {len(msg.data)} bytes but {width}x{height} {msg.encoding} "
                         f"with step {step} needs {step * height}")
    buffer = np.frombuffer(msg.data, np.uint8, count=step * (height - 1) + row)
    rows = np.lib.stride_tricks.as_strided(buffer, (height, row), (step, 1))
    pixels = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(
        ">" if msg.is_bigendian else "<")).astype(dtype, copy=False)
    image = pixels.reshape(height, width, channels) if channels > 1 else pixels.reshape(
        height, width)
    if order == "bgr":
        image = image[..., ::-1]
    elif order == "bgra":
        image = image[..., [2, 1, 0, 3]]
    return np.ascontiguousarray(image)


def compressed_to_array(msg: CompressedImage) -> np.ndarray:
    """Decode a JPEG/PNG CompressedImage to RGB (or grayscale)."""
    if len(msg.data) == 0:
        raise ImageError("empty compressed image")
    image = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"cannot decode compressed image (format '{msg.format}', "
                         f"{len(msg.data)} bytes)")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def depth_to_array(msg: Image) -> tuple[np.ndarray, float]:
    """Depth pixels and metres per unit (REP 118: 16UC1 millimetres, 32FC1 metres)."""
    depth = image_to_array(msg, DEPTH_ENCODINGS)
    return depth, (1.0 if depth.dtype == np.float32 else 0.001)


def camera_model(msg: CameraInfo) -> CameraModel:
    """The camera of a CameraInfo; ValueError when it is not usable (zero focal length...)."""
    return CameraModel.from_ros(int(msg.width), int(msg.height), list(msg.k), list(msg.d),
                                msg.distortion_model or "none")


def array_to_image(image: np.ndarray, header: Header) -> Image:
    """An rgb8 (or mono8) Image of a uint8 array."""
    msg = Image(header=header, height=image.shape[0], width=image.shape[1])
    msg.encoding = "rgb8" if image.ndim == 3 else "mono8"
    msg.step = image.shape[1] * (3 if image.ndim == 3 else 1)
    msg.data = np.ascontiguousarray(image, np.uint8).tobytes()
    return msg


def reference_frame_id(camera_frame: str, stamp: Time) -> str:
    """frame_id naming the camera at the reference frame's time: ``<frame>@<sec>.<nanosec>``.

    ~/relative_pose and ~/matches carry the current frame's stamp in header.stamp and the
    reference (keyframe or previous frame) stamp here, so each message alone names both frames.
    """
    return f"{camera_frame}@{stamp.sec}.{stamp.nanosec:09d}"


def parse_reference_frame_id(frame_id: str) -> tuple[str, Time]:
    """(camera frame, reference stamp) of a ``reference_frame_id``."""
    frame, _, stamp = frame_id.rpartition("@")
    sec, _, nanosec = stamp.partition(".")
    if not frame or not sec.isdigit() or not nanosec.isdigit():
        raise ValueError(f"'{frame_id}' is not '<frame>@<sec>.<nanosec>'")
    return frame, Time(sec=int(sec), nanosec=int(nanosec))


def _pose(T: np.ndarray) -> Pose:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in T[:3, 3])
    q = rotation_to_quaternion(T[:3, :3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (
        float(v) for v in q)
    return pose


def _covariance(cov: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(cov, np.float64).reshape(36)]


def odometry_msg(record: FrameRecord, stamp: Time, odom_frame: str, camera_frame: str
                 ) -> Odometry:
    """Camera pose in the odom frame with its covariance. The twist is not estimated: zero with
    LARGE_VARIANCE."""
    msg = Odometry()
    msg.header.stamp, msg.header.frame_id = stamp, odom_frame
    msg.child_frame_id = camera_frame
    msg.pose.pose = _pose(record.T_odom_cam)
    msg.pose.covariance = _covariance(record.covariance)
    msg.twist.covariance = _covariance(np.eye(6) * LARGE_VARIANCE)
    return msg


def relative_pose_msg(record: FrameRecord, stamp: Time, ref_stamp: Time, camera_frame: str
                      ) -> PoseWithCovarianceStamped:
    """Pose of the current camera in the reference camera frame (T_ref_cam), see
    ``reference_frame_id``."""
    msg = PoseWithCovarianceStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = reference_frame_id(camera_frame, ref_stamp)
    msg.pose.pose = _pose(record.T_ref_cam)
    msg.pose.covariance = _covariance(record.relative_covariance)
    return msg


MATCH_FIELDS = (("x0", PointField.FLOAT32), ("y0", PointField.FLOAT32),
                ("x1", PointField.FLOAT32), ("y1", PointField.FLOAT32),
                ("score", PointField.FLOAT32), ("inlier", PointField.UINT8))
_MATCH_DTYPE = np.dtype({"names": [n for n, _ in MATCH_FIELDS],
                         "formats": ["<f4"] * 5 + ["u1"],
                         "offsets": [0, 4, 8, 12, 16, 20], "itemsize": 24})


def matches_msg(record: FrameRecord, stamp: Time, ref_stamp: Time, camera_frame: str
                ) -> PointCloud2:
    """Matched keypoints as an unorganised PointCloud2 with named fields: x0 y0 (pixels in the
    reference frame), x1 y1 (current frame), score (LightGlue confidence), inlier (1 when the pose
    estimate used it)."""
    points = np.zeros(len(record.ref_points), _MATCH_DTYPE)
    points["x0"], points["y0"] = record.ref_points[:, 0], record.ref_points[:, 1]
    points["x1"], points["y1"] = record.cur_points[:, 0], record.cur_points[:, 1]
    points["score"], points["inlier"] = record.match_scores, record.inliers
    msg = PointCloud2()
    msg.header.stamp = stamp
    msg.header.frame_id = reference_frame_id(camera_frame, ref_stamp)
    msg.height, msg.width = 1, len(points)
    msg.fields = [PointField(name=n, offset=int(_MATCH_DTYPE.fields[n][1]), datatype=t, count=1)
                  for n, t in MATCH_FIELDS]
    msg.is_bigendian, msg.point_step = False, _MATCH_DTYPE.itemsize
    msg.row_step, msg.is_dense = _MATCH_DTYPE.itemsize * len(points), True
    msg.data = points.tobytes()
    return msg


def matches_from_msg(msg: PointCloud2) -> np.ndarray:
    """The structured array of a ``matches_msg`` (for backends and tests)."""
    return np.frombuffer(bytes(msg.data), _MATCH_DTYPE, count=msg.width * msg.height)


def transform_msg(record: FrameRecord, stamp: Time, odom_frame: str, camera_frame: str
                  ) -> TransformStamped:
    msg = TransformStamped()
    msg.header.stamp, msg.header.frame_id = stamp, odom_frame
    msg.child_frame_id = camera_frame
    pose = _pose(record.T_odom_cam)
    msg.transform.translation.x = pose.position.x
    msg.transform.translation.y = pose.position.y
    msg.transform.translation.z = pose.position.z
    msg.transform.rotation = pose.orientation
    return msg
