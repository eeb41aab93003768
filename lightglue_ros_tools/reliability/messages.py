"""Stamps and the messages a camera driver publishes, built from numpy pictures (no rclpy node).

Used by the stress driver (``lightglue-ros stress``) and by the tests to feed the tracker node: the
synthetic sequence's frames as sensor_msgs/Image in any encoding, CompressedImage, depth (32FC1 or
16UC1) and CameraInfo, and malformed messages (any field overridden). Stamps are
``builtin_interfaces/Time`` with exact integer sec/nanosec (``frame_stamp``), compared as
``(sec, nanosec)`` tuples, never as floats.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

EPOCH_SEC = 1_700_000_000  # lightglue_ros.synthetic.EPOCH_NS: stamp of synthetic frame 0
IMAGE_ENCODINGS = ("rgb8", "bgr8", "mono8", "rgba8", "bgra8", "mono16")
DEPTH_ENCODINGS = ("32FC1", "16UC1")


def frame_stamp(index: int, rate_hz: int = 30, epoch_sec: int = EPOCH_SEC):
    """builtin_interfaces/Time of frame ``index`` at ``rate_hz``, in exact integers."""
    from builtin_interfaces.msg import Time

    total = (index * 10**9 + rate_hz // 2) // rate_hz
    return Time(sec=epoch_sec + total // 10**9, nanosec=total % 10**9)


def stamp_key(stamp) -> tuple[int, int]:
    return int(stamp.sec), int(stamp.nanosec)


def stamp_from_key(key: tuple[int, int]):
    from builtin_interfaces.msg import Time

    return Time(sec=int(key[0]), nanosec=int(key[1]))


def _header(stamp, frame_id: str):
    from std_msgs.msg import Header

    return Header(stamp=stamp, frame_id=frame_id)


def image_msg(rgb: np.ndarray, encoding: str, stamp, frame_id: str = "camera_optical"):
    """A sensor_msgs/Image of an RGB uint8 picture in ``encoding`` (IMAGE_ENCODINGS)."""
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    pixels = {"rgb8": lambda: rgb, "bgr8": lambda: rgb[..., ::-1],
              "mono8": lambda: gray, "mono16": lambda: gray.astype("<u2") * 257,
              "rgba8": lambda: np.concatenate([rgb, alpha], axis=2),
              "bgra8": lambda: np.concatenate([rgb[..., ::-1], alpha], axis=2)}
    if encoding not in pixels:
        raise ValueError(f"image_msg makes {', '.join(IMAGE_ENCODINGS)}; got {encoding}")
    return raw_image_msg(np.ascontiguousarray(pixels[encoding]()), encoding, stamp, frame_id)


def depth_msg(depth_m: np.ndarray, encoding: str, stamp, frame_id: str = "camera_optical"):
    """A depth sensor_msgs/Image: 32FC1 metres or 16UC1 millimetres (REP 118, 0 = no depth)."""
    if encoding == "32FC1":
        pixels = depth_m.astype("<f4")
    elif encoding == "16UC1":
        pixels = np.clip(np.rint(depth_m * 1000.0), 0, 65535).astype("<u2")
    else:
        raise ValueError(f"depth_msg makes {', '.join(DEPTH_ENCODINGS)}; got {encoding}")
    return raw_image_msg(pixels, encoding, stamp, frame_id)


def raw_image_msg(pixels: np.ndarray, encoding: str, stamp, frame_id: str = "camera_optical",
                  step: int | None = None, data: bytes | None = None,
                  width: int | None = None, height: int | None = None):
    """An Image with the given pixels, or with any field overridden (for malformed messages)."""
    from sensor_msgs.msg import Image

    h, w = pixels.shape[:2]
    msg = Image(header=_header(stamp, frame_id), encoding=encoding, is_bigendian=0,
                height=h if height is None else height, width=w if width is None else width)
    msg.step = w * pixels.itemsize * (pixels.shape[2] if pixels.ndim == 3 else 1) \
        if step is None else step
    msg.data = np.ascontiguousarray(pixels).tobytes() if data is None else data
    return msg


def compressed_msg(rgb: np.ndarray, fmt: str, stamp, frame_id: str = "camera_optical",
                   quality: int = 95):
    """A sensor_msgs/CompressedImage (``jpeg`` or ``png``) as image_transport would send it."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, data = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", rgb[..., ::-1], params)
    assert ok, f"cannot encode {fmt}"
    return CompressedImage(header=_header(stamp, frame_id), format=fmt, data=data.tobytes())


def camera_info_msg(camera, stamp, frame_id: str = "camera_optical"):
    """sensor_msgs/CameraInfo of a ``lightglue_ros.synthetic.CameraInfo``."""
    from sensor_msgs.msg import CameraInfo

    K = np.asarray(camera.K, np.float64)
    P = np.hstack([K, np.zeros((3, 1))])
    return CameraInfo(header=_header(stamp, frame_id), width=int(camera.width),
                      height=int(camera.height), distortion_model="plumb_bob",
                      d=[float(v) for v in camera.D], k=[float(v) for v in K.ravel()],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[float(v) for v in P.ravel()])


@functools.lru_cache(maxsize=4)
def synthetic(num_frames: int, width: int = 640, height: int = 480):
    """(camera, frames) of the embedded synthetic RGB-D sequence, rendered once per session."""
    from lightglue_ros.synthetic import make_sequence

    seq = make_sequence(num_frames, width, height)
    return seq.camera, tuple(seq)


@functools.lru_cache(maxsize=2)
def synthetic_right(num_frames: int, width: int, height: int, baseline_m: float
                    ) -> tuple[np.ndarray, ...]:
    """The right eye's RGB images of ``synthetic``'s frames, a rectified pair ``baseline_m``
    wide."""
    from lightglue_ros.synthetic import make_sequence

    right = make_sequence(num_frames, width, height).right_eye(baseline_m)
    return tuple(f.rgb for f in right)


def right_camera_info_msg(camera, stamp, baseline_m: float, frame_id: str = "camera_optical"):
    """The right eye's sensor_msgs/CameraInfo of a rectified pair: the left's K, with the
    baseline in P (Tx = -fx * baseline), as a stereo driver publishes it."""
    msg = camera_info_msg(camera, stamp, frame_id)
    p = list(msg.p)
    p[3] = -float(camera.K[0][0]) * baseline_m
    msg.p = p
    return msg


def diagnostic_dict(status) -> dict[str, Any]:
    """A diagnostic_msgs/DiagnosticStatus as a dict: level (int), name, message, hardware_id,
    values (key -> value strings)."""
    level = status.level
    level = level[0] if isinstance(level, (bytes, bytearray)) else int(level)
    return {"level": level, "name": status.name, "message": status.message,
            "hardware_id": status.hardware_id, "values": {kv.key: kv.value for kv in status.values}}
