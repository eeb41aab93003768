"""sensor_msgs Image / CompressedImage / CameraInfo -> numpy and CameraModel, without cv_bridge.

Duck-typed on the message fields, so the same code decodes rclpy messages in the node and
rosbags messages in bag evaluation (no ROS install needed). Every decoder validates the message
(encoding, sizes, step, data length) and raises ImageError or ValueError saying what is wrong.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import ImageError
from ..geometry.camera import CameraModel
from ..images import from_opencv

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


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_ns(stamp) -> int:
    """A header stamp in integer nanoseconds: exact, for pairing messages by stamp."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def image_to_array(msg, allowed: tuple[str, ...] = COLOUR_ENCODINGS) -> np.ndarray:
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


def compressed_to_array(msg) -> np.ndarray:
    """Decode a JPEG/PNG CompressedImage to RGB (or grayscale)."""
    if len(msg.data) == 0:
        raise ImageError("empty compressed image")
    image = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"cannot decode compressed image (format '{msg.format}', "
                         f"{len(msg.data)} bytes)")
    return from_opencv(image)


def depth_to_array(msg) -> tuple[np.ndarray, float]:
    """Depth pixels and metres per unit (REP 118: 16UC1 millimetres, 32FC1 metres)."""
    depth = image_to_array(msg, DEPTH_ENCODINGS)
    return depth, (1.0 if depth.dtype == np.float32 else 0.001)


def camera_model(msg) -> CameraModel:
    """The camera of a CameraInfo; ValueError when it is not usable (zero focal length...)."""
    return CameraModel.from_ros(int(msg.width), int(msg.height), list(msg.k), list(msg.d),
                                msg.distortion_model or "none")
