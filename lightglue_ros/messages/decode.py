"""sensor_msgs Image / CompressedImage / CameraInfo -> numpy and CameraModel, without cv_bridge.

Duck-typed on the message fields, so the same code decodes rclpy messages in the node and
rosbags messages in bag evaluation (no ROS install needed). Every decoder validates the message
(encoding, sizes, step, data length) and raises ImageError or ValueError saying what is wrong.

Encodings are those camera drivers send: mono, RGB/BGR(A), packed YUV 4:2:2 (UVC webcams:
``yuv422`` is UYVY, ``yuv422_yuy2`` YUYV, and their newer names ``uyvy``/``yuyv``) and raw Bayer
mosaics (machine-vision cameras, demosaiced here as cv_bridge does). A depth encoding (16UC1,
32FC1) on the colour input is refused: tracking a depth image as texture gives nonsense poses.
A CameraInfo's K, D, P, binning and ROI give the camera of the image as it arrives
(``camera_model``).
"""
from __future__ import annotations

import struct

import cv2
import numpy as np

from ..errors import ImageError
from ..geometry.camera import CameraModel
from ..images import from_opencv
from ..types import NS

# encoding -> (numpy dtype, channels, order of colour channels as the core wants them)
ENCODINGS: dict[str, tuple[type, int, str]] = {
    "mono8": (np.uint8, 1, ""), "8UC1": (np.uint8, 1, ""),
    "mono16": (np.uint16, 1, ""), "16UC1": (np.uint16, 1, ""),
    "rgb8": (np.uint8, 3, "rgb"), "bgr8": (np.uint8, 3, "bgr"), "8UC3": (np.uint8, 3, "bgr"),
    "rgba8": (np.uint8, 4, "rgba"), "bgra8": (np.uint8, 4, "bgra"),
    "32FC1": (np.float32, 1, ""),
    "yuv422": (np.uint8, 2, "uyvy"), "uyvy": (np.uint8, 2, "uyvy"),
    "yuv422_yuy2": (np.uint8, 2, "yuyv"), "yuyv": (np.uint8, 2, "yuyv"),
    **{f"bayer_{p}{bits}": (dtype, 1, f"bayer_{p}") for p in ("rggb", "bggr", "gbrg", "grbg")
       for bits, dtype in (("8", np.uint8), ("16", np.uint16))},
}
# ROS's Bayer names give the top-left 2x2 block; OpenCV's name its second row's middle pair
_CONVERSIONS = {"uyvy": cv2.COLOR_YUV2RGB_UYVY, "yuyv": cv2.COLOR_YUV2RGB_YUY2,
                "bayer_rggb": cv2.COLOR_BayerBG2RGB, "bayer_bggr": cv2.COLOR_BayerRG2RGB,
                "bayer_gbrg": cv2.COLOR_BayerGR2RGB, "bayer_grbg": cv2.COLOR_BayerGB2RGB}
COLOUR_ENCODINGS = ("mono8", "mono16", "rgb8", "bgr8", "rgba8", "bgra8", "8UC1", "8UC3",
                    "yuv422", "uyvy", "yuv422_yuy2", "yuyv") + tuple(
                        e for e in ENCODINGS if e.startswith("bayer_"))
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")
_DEPTH_HEADER = struct.Struct("<i2f")   # compressedDepth's ConfigHeader
# depth encodings a misconfigured launch can put on the colour input (mono16 is also a camera's)
_DEPTH_ONLY = ("16UC1", "32FC1")


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_ns(stamp) -> int:
    """A header stamp in integer nanoseconds: exact, for pairing messages by stamp."""
    return int(stamp.sec) * NS + int(stamp.nanosec)


def image_to_array(msg, allowed: tuple[str, ...] = COLOUR_ENCODINGS) -> np.ndarray:
    """The pixels of a sensor_msgs/Image as (H, W) or (H, W, C), colour in RGB order."""
    if msg.encoding in _DEPTH_ONLY and msg.encoding not in allowed:
        raise ImageError(f"encoding '{msg.encoding}' is a depth image (REP 118), not a camera "
                         "image: the image input must be the colour, grey or infrared stream "
                         "(is depth remapped onto image?)")
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
    if order in _CONVERSIONS:
        if order in ("uyvy", "yuyv") and width % 2:
            raise ImageError(f"{msg.encoding} needs an even width, got {width}")
        return cv2.cvtColor(image, _CONVERSIONS[order])
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
    """Depth pixels and metres per unit (REP 118: 16UC1 millimetres, 32FC1 metres) of an Image,
    or of a CompressedImage in image_transport's compressedDepth format."""
    if hasattr(msg, "format"):
        return compressed_depth_to_array(msg)
    depth = image_to_array(msg, DEPTH_ENCODINGS)
    return depth, (1.0 if depth.dtype == np.float32 else 0.001)


def compressed_depth_to_array(msg) -> tuple[np.ndarray, float]:
    """compressedDepth ('16UC1; compressedDepth png'): a 12-byte header (format, two float32
    quantisation parameters a and b) and a 16-bit PNG, of millimetres for 16UC1, of quantised
    inverse depth for 32FC1 (depth = a / (v - b) metres, v = 0 invalid)."""
    fmt = str(msg.format)
    encoding = fmt.split(";")[0].strip()
    if "compresseddepth" not in fmt.lower().replace(" ", ""):
        raise ImageError(f"depth format '{fmt}' is not compressedDepth (use_compressed_depth "
                         "takes image_transport's compressedDepth stream)")
    if "rvl" in fmt.lower():
        raise ImageError(f"compressedDepth '{fmt}': the RVL codec is not supported, only PNG "
                         "(the transport's png_level/format parameter)")
    if encoding not in ("16UC1", "32FC1"):
        raise ImageError(f"compressedDepth of '{encoding}': expected 16UC1 or 32FC1")
    data = bytes(msg.data)
    if len(data) <= _DEPTH_HEADER.size:
        raise ImageError(f"compressedDepth message of {len(data)} bytes holds no image")
    _, a, b = _DEPTH_HEADER.unpack_from(data)
    png = cv2.imdecode(np.frombuffer(data, np.uint8, offset=_DEPTH_HEADER.size),
                       cv2.IMREAD_UNCHANGED)
    if png is None or png.dtype != np.uint16 or png.ndim != 2:
        raise ImageError(f"compressedDepth '{fmt}': the payload is not a 16-bit grey PNG")
    if encoding == "16UC1":
        return png, 0.001
    with np.errstate(divide="ignore"):
        depth = np.where(png == 0, np.nan, a / (png.astype(np.float32) - b))
    return depth.astype(np.float32), 1.0


def camera_model(msg, rectified: bool = False) -> CameraModel:
    """The camera of the image a CameraInfo describes: the raw K and D, or for a rectified image
    the left 3x3 of P without distortion (undistorting it again with the raw D would bend its
    lines); both as the image arrives, binned and cut to the region of interest (``window``).
    ValueError when it is not usable (zero focal length...)."""
    K = np.asarray(msg.k, np.float64)
    if K.size != 9:
        raise ValueError(f"CameraInfo.k must have 9 values, got {K.size}")
    K, model, D = K.reshape(3, 3), msg.distortion_model or "none", np.asarray(msg.d, np.float64)
    if rectified:
        P = projection(msg)
        if np.any(P[:, :3]):          # all zero: a driver without calibration; K stands in
            K = P[:, :3]
        model, D = "none", np.zeros(0)
    A, width, height = window(msg)
    return CameraModel(width, height, A @ K, model, D)


def projection(msg) -> np.ndarray:
    """The 3x4 rectified projection P of a CameraInfo, of the full-resolution sensor."""
    P = np.asarray(msg.p, np.float64)
    if P.size != 12:
        raise ValueError(f"CameraInfo.p must have 12 values, got {P.size}")
    return P.reshape(3, 4)


def window(msg) -> tuple[np.ndarray, int, int]:
    """The pixel transform A (3x3, applied to K and P) from the full-resolution sensor, on which
    CameraInfo's K and P are, to the image sent (its ROI, binned), and that image's size.

    Binning b averages b pixels, so with pixel centres at integers u' = (u - x0 + 0.5) / b - 0.5.
    A zero binning means 1, an all-zero ROI the full sensor.
    """
    bx, by = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
    roi = msg.roi
    x0, y0 = int(roi.x_offset), int(roi.y_offset)
    width = int(roi.width) or int(msg.width)
    height = int(roi.height) or int(msg.height)
    if not (int(roi.width) or int(roi.height)):
        x0 = y0 = 0
    A = np.array([[1.0 / bx, 0.0, (0.5 - x0) / bx - 0.5],
                  [0.0, 1.0 / by, (0.5 - y0) / by - 0.5],
                  [0.0, 0.0, 1.0]])
    return A, width // bx, height // by


def rectified_topic(mode: str, topic: str) -> bool:
    """Whether an image topic carries rectified images: ``image_rectification`` rectified or
    raw, or auto: the topic's last name says so, as image_proc and the drivers name them
    (``image_rect``, ``image_rect_color``, RealSense ``image_rect_raw``)."""
    if mode in ("rectified", "raw"):
        return mode == "rectified"
    names = [n for n in topic.split("/") if n and n != "compressed"]
    return bool(names) and "rect" in names[-1]
