"""Build the node's standard output messages (nav_msgs, geometry_msgs, sensor_msgs) from tracker
records; the typed ones (lightglue_ros_msgs) are in ``backend_msgs``.

Every frame_id is a TF frame. ~/relative_pose and ~/matches carry the current frame's stamp; the
reference frame they were measured against is named by the KeyframeEdge of the same stamp.
Decoding of input messages lives in ``decode`` (no rclpy import, shared with the bag reader).
"""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseWithCovarianceStamped, TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Image, PointCloud2, PointField
from std_msgs.msg import Header

from ..geometry.se3 import rotation_to_quaternion
from ..tracking import FrameRecord
from ..types import NS
from .odometry import OdometryOutput


def time_msg(stamp_ns: int) -> Time:
    """The header stamp a record's integer nanoseconds came from, exactly."""
    sec, nanosec = divmod(int(stamp_ns), NS)
    return Time(sec=sec, nanosec=nanosec)


def array_to_image(image: np.ndarray, header: Header) -> Image:
    """An rgb8 (or mono8) Image of a uint8 array."""
    msg = Image(header=header, height=image.shape[0], width=image.shape[1])
    msg.encoding = "rgb8" if image.ndim == 3 else "mono8"
    msg.step = image.shape[1] * (3 if image.ndim == 3 else 1)
    msg.data = np.ascontiguousarray(image, np.uint8).tobytes()
    return msg


def pose_msg(T: np.ndarray) -> Pose:
    """The geometry_msgs/Pose of a 4x4 transform."""
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in T[:3, 3])
    q = rotation_to_quaternion(T[:3, :3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (
        float(v) for v in q)
    return pose


def _covariance(cov: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(cov, np.float64).reshape(36)]


def odometry_msg(odom: OdometryOutput, stamp: Time, odom_frame: str, child_frame: str
                 ) -> Odometry:
    """Pose (child in odom) and twist (in child) with their covariances (see ``odometry``)."""
    msg = Odometry()
    msg.header.stamp, msg.header.frame_id = stamp, odom_frame
    msg.child_frame_id = child_frame
    msg.pose.pose = pose_msg(odom.T)
    msg.pose.covariance = _covariance(odom.pose_covariance)
    v = [float(x) for x in odom.twist]
    twist = msg.twist.twist
    twist.linear.x, twist.linear.y, twist.linear.z = v[:3]
    twist.angular.x, twist.angular.y, twist.angular.z = v[3:]
    msg.twist.covariance = _covariance(odom.twist_covariance)
    return msg


def relative_pose_msg(record: FrameRecord, stamp: Time, camera_frame: str
                      ) -> PoseWithCovarianceStamped:
    """Pose of the current camera in the reference camera's frame (T_ref_cam) with its
    covariance; frame_id the camera frame."""
    msg = PoseWithCovarianceStamped()
    msg.header.stamp, msg.header.frame_id = stamp, camera_frame
    msg.pose.pose = pose_msg(record.T_ref_cam)
    msg.pose.covariance = _covariance(record.relative_covariance)
    return msg


MATCH_FIELDS = (("x0", PointField.FLOAT32), ("y0", PointField.FLOAT32),
                ("x1", PointField.FLOAT32), ("y1", PointField.FLOAT32),
                ("score", PointField.FLOAT32), ("inlier", PointField.UINT8))
_MATCH_DTYPE = np.dtype({"names": [n for n, _ in MATCH_FIELDS],
                         "formats": ["<f4"] * 5 + ["u1"],
                         "offsets": [0, 4, 8, 12, 16, 20], "itemsize": 24})


def matches_msg(record: FrameRecord, stamp: Time, camera_frame: str) -> PointCloud2:
    """Matched keypoints as an unorganised PointCloud2 with named fields: x0 y0 (pixels in the
    reference frame), x1 y1 (current frame), score (LightGlue confidence), inlier (1 when the pose
    estimate used it)."""
    points = np.zeros(len(record.ref_points), _MATCH_DTYPE)
    points["x0"], points["y0"] = record.ref_points[:, 0], record.ref_points[:, 1]
    points["x1"], points["y1"] = record.cur_points[:, 0], record.cur_points[:, 1]
    points["score"], points["inlier"] = record.match_scores, record.inliers
    msg = PointCloud2()
    msg.header.stamp, msg.header.frame_id = stamp, camera_frame
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


def transform_msg(T: np.ndarray, stamp: Time, parent: str, child: str) -> TransformStamped:
    """The TF edge parent -> child of pose ``T`` (child in parent)."""
    msg = TransformStamped()
    msg.header.stamp, msg.header.frame_id = stamp, parent
    msg.child_frame_id = child
    pose = pose_msg(T)
    msg.transform.translation.x = pose.position.x
    msg.transform.translation.y = pose.position.y
    msg.transform.translation.z = pose.position.z
    msg.transform.rotation = pose.orientation
    return msg
