"""sensor_msgs messages as rosbags builds and reads them: the typestore, stamps, Image/CameraInfo.

rosbags (pure Python, no ROS install) serializes and deserializes CDR with its own typestore;
the ROS 2 Jazzy definitions of sensor_msgs/Image, CompressedImage and CameraInfo are those of
every ROS 2 release since Foxy. Deserialized messages have the same field names as rclpy's, so
``lightglue_ros.messages.decode`` decodes both.
"""
from __future__ import annotations

import struct

import numpy as np
from rosbags.typesys import Stores, get_typestore

from ..errors import BagError
from ..geometry.camera import CameraModel
from ..types import NS, seconds

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)

_Time = TYPESTORE.types["builtin_interfaces/msg/Time"]
_Header = TYPESTORE.types["std_msgs/msg/Header"]
_Image = TYPESTORE.types[IMAGE]
_CameraInfo = TYPESTORE.types[CAMERA_INFO]
_RegionOfInterest = TYPESTORE.types["sensor_msgs/msg/RegionOfInterest"]


def header(stamp_ns: int, frame_id: str):
    """A std_msgs/Header stamped exactly ``stamp_ns``; BagError when it does not fit a ROS time."""
    sec, nanosec = divmod(int(stamp_ns), NS)
    if not -2**31 <= sec < 2**31:
        raise BagError(f"stamp {seconds(stamp_ns):.6f} s does not fit a ROS time (int32 seconds)")
    return _Header(stamp=_Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def image_encoding(image: np.ndarray) -> str:
    """The sensor_msgs encoding of an image as ``load_image`` returns it (RGB order)."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    encodings = {(np.dtype(np.uint8), 1): "mono8", (np.dtype(np.uint8), 3): "rgb8",
                 (np.dtype(np.uint8), 4): "rgba8", (np.dtype(np.uint16), 1): "mono16"}
    key = (image.dtype, channels)
    if image.ndim not in (2, 3) or key not in encodings:
        raise BagError(f"cannot write a {image.dtype} image of shape {image.shape} as a "
                       "sensor_msgs/Image (mono8, rgb8, rgba8 or mono16)")
    return encodings[key]


def image_message(image: np.ndarray, stamp_ns: int, frame_id: str, encoding: str | None = None):
    """A sensor_msgs/Image of ``image`` (little-endian, rows packed)."""
    image = np.ascontiguousarray(image)
    encoding = encoding or image_encoding(image)
    height, width = image.shape[:2]
    data = image.astype(image.dtype.newbyteorder("<"), copy=False).view(np.uint8).reshape(-1)
    return _Image(header=header(stamp_ns, frame_id), height=height, width=width, encoding=encoding,
                  is_bigendian=0, step=data.size // height, data=data)


def depth_message(depth: np.ndarray, unit: float | None, stamp_ns: int, frame_id: str):
    """A depth sensor_msgs/Image (REP 118): 16UC1 millimetres when the input already is
    (uint16 at 1 mm per unit), otherwise 32FC1 metres (float32 of value * unit; TUM's
    0.2 mm steps would be rounded in millimetres, not in float32)."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise BagError(f"depth image must be (H, W), got shape {depth.shape}")
    if depth.dtype == np.uint16 and (unit is None or unit == 0.001):
        return image_message(depth, stamp_ns, frame_id, "16UC1")
    if unit is None:
        unit = 1.0 if depth.dtype.kind == "f" else 0.001
    metres = (depth.astype(np.float64) * unit).astype(np.float32)
    return image_message(metres, stamp_ns, frame_id, "32FC1")


def camera_info_message(camera: CameraModel, stamp_ns: int, frame_id: str,
                        baseline_m: float | None = None):
    """The sensor_msgs/CameraInfo of a camera: P = K [I | 0], R = I; an undistorted camera is
    plumb_bob with zero coefficients, as ROS drivers publish it. With ``baseline_m``, the right
    eye of a rectified pair: P[0,3] = Tx = -fx * baseline."""
    model = camera.distortion_model
    d = camera.D.astype(np.float64)
    if model == "none":
        model, d = "plumb_bob", np.zeros(5)
    K = camera.K.astype(np.float64)
    P = np.hstack([K, np.zeros((3, 1))])
    if baseline_m is not None:
        P[0, 3] = -K[0, 0] * baseline_m
    return _CameraInfo(
        header=header(stamp_ns, frame_id), height=camera.height, width=camera.width,
        distortion_model=model, d=d.copy(), k=K.reshape(-1).copy(),
        r=np.eye(3).reshape(-1), p=P.reshape(-1), binning_x=0, binning_y=0,
        roi=_RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def serialize(msg) -> bytes:
    return TYPESTORE.serialize_cdr(msg, msg.__msgtype__)


def header_stamp_ns(raw: bytes | memoryview) -> int | None:
    """The header stamp (ns) of a CDR message whose first field is a std_msgs/Header, read from
    the bytes (no deserialization); None when the encapsulation is not plain CDR."""
    if len(raw) < 12 or raw[0] != 0 or raw[1] not in (0, 1):
        return None
    sec, nanosec = struct.unpack_from("<iI" if raw[1] == 1 else ">iI", raw, 4)
    return sec * NS + nanosec
