"""Write camera frames to a ROS 2 bag (sqlite3 or MCAP) with rosbags: what a camera driver records.

Per frame, all with the frame's stamp in the header (frame_id ``camera_optical_frame`` by default)
and, unless told otherwise, as the bag's receive time:

- ``<ns>/camera_info`` sensor_msgs/CameraInfo (written first, so a reader has it with the image);
- ``<ns>/depth/image_raw`` sensor_msgs/Image when the frame has depth: 16UC1 millimetres if the
  depth already is uint16 millimetres, otherwise 32FC1 metres (TUM's 5000-per-metre PNGs: float32
  of png / 5000, within 3e-8 of the PNG's value; millimetres would round its 0.2 mm steps);
- ``<ns>/image_raw`` sensor_msgs/Image: rgb8, or mono8 for grey datasets (KITTI, EuRoC), pixels
  exactly as loaded from the files;
- for a stereo frame, the right eye: ``<ns>/right/camera_info`` (the rectified pair's camera with
  P[0,3] = -fx * baseline) and ``<ns>/right/image_raw`` (frame_id ``<frame_id>_right``), written
  before the left image as a driver that triggers both eyes publishes them.

The namespace defaults to ``/camera``. Bags are rosbag2 metadata version 9 (Jazzy and later).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from ..errors import BagError
from ..types import FrameInput
from ..geometry.camera import CameraModel
from .messages import CAMERA_INFO, IMAGE, TYPESTORE, camera_info_message, depth_message
from .messages import image_message, serialize

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
DEFAULT_NAMESPACE = "/camera"
DEFAULT_FRAME_ID = "camera_optical_frame"


def topic_names(namespace: str = DEFAULT_NAMESPACE) -> dict[str, str]:
    """The image, camera_info, depth and right-eye topics under ``namespace``."""
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return {"image": f"{ns}/image_raw", "camera_info": f"{ns}/camera_info",
            "depth": f"{ns}/depth/image_raw", "right_image": f"{ns}/right/image_raw",
            "right_camera_info": f"{ns}/right/camera_info"}


class BagWriter:
    """Writes frames to a new bag at ``path`` (a folder, which must not exist yet)."""

    def __init__(self, path: str | Path, storage: str = "sqlite3",
                 namespace: str = DEFAULT_NAMESPACE, frame_id: str = DEFAULT_FRAME_ID):
        if storage not in STORAGES:
            raise BagError(f"unknown bag storage {storage!r}; choose {' or '.join(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} already exists; remove it or choose another output")
        self.storage = storage
        self.frame_id = frame_id
        self.topics = topic_names(namespace)
        self.counts = {topic: 0 for topic in self.topics.values()}
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer.open()
        except Exception as err:
            raise BagError(f"cannot create bag {self.path}: {type(err).__name__}: {err}") from None
        self._connections = {
            key: self._writer.add_connection(self.topics[key], msgtype, typestore=TYPESTORE)
            for key, msgtype in (("camera_info", CAMERA_INFO), ("image", IMAGE))}

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._writer.close()

    def write(self, frame: FrameInput, receive_ns: int | None = None) -> None:
        """Write one frame: camera_info, depth (if any), image, all stamped ``frame.stamp_ns``;
        ``receive_ns`` is the bag's log time (default: the stamp)."""
        t, at = frame.stamp_ns, f"{frame.seconds:.6f} s"
        size, camera = frame.image.shape[1::-1], frame.camera
        if tuple(size) != (camera.width, camera.height):
            raise BagError(f"frame at {at} is {size[0]}x{size[1]} but its camera is "
                           f"{camera.width}x{camera.height}: camera_info would not fit the image")
        if frame.depth is not None and frame.depth.shape[:2] != frame.image.shape[:2]:
            raise BagError(f"depth at {at} is {frame.depth.shape[1]}x{frame.depth.shape[0]}"
                           f" but the image {size[0]}x{size[1]}: depth must be registered")
        if frame.right is not None:
            if frame.right.shape != frame.image.shape or frame.baseline_m is None:
                raise BagError(f"stereo frame at {at}: the right image must have the left's "
                               "shape and a baseline")
            self.right(frame.right, camera, frame.baseline_m, t, receive_ns)
        self.camera_info(camera, t, receive_ns)
        if frame.depth is not None:
            self.depth(frame.depth, frame.depth_unit, t, receive_ns)
        self.image(frame.image, t, receive_ns)

    def camera_info(self, camera: CameraModel, stamp_ns: int,
                    receive_ns: int | None = None) -> None:
        """One sensor_msgs/CameraInfo (the parts of ``write``, for bags made on purpose; stamps
        and log times in integer nanoseconds)."""
        self._put("camera_info", camera_info_message(camera, stamp_ns, self.frame_id),
                  stamp_ns if receive_ns is None else receive_ns)

    def image(self, image: np.ndarray, stamp_ns: int, receive_ns: int | None = None) -> None:
        """One sensor_msgs/Image (rgb8, mono8, rgba8 or mono16 by the array's type)."""
        self._put("image", image_message(image, stamp_ns, self.frame_id),
                  stamp_ns if receive_ns is None else receive_ns)

    def right(self, image: np.ndarray, camera: CameraModel, baseline_m: float, stamp_ns: int,
              receive_ns: int | None = None) -> None:
        """The right eye of a rectified pair: its camera_info (P[0,3] = -fx * baseline) and
        image."""
        for key, msgtype in (("right_camera_info", CAMERA_INFO), ("right_image", IMAGE)):
            if key not in self._connections:
                self._connections[key] = self._writer.add_connection(
                    self.topics[key], msgtype, typestore=TYPESTORE)
        frame_id = f"{self.frame_id}_right"
        when = stamp_ns if receive_ns is None else receive_ns
        self._put("right_camera_info", camera_info_message(camera, stamp_ns, frame_id,
                                                           baseline_m), when)
        self._put("right_image", image_message(image, stamp_ns, frame_id), when)

    def depth(self, depth: np.ndarray, unit: float | None, stamp_ns: int,
              receive_ns: int | None = None) -> None:
        """One depth sensor_msgs/Image (16UC1 mm or 32FC1 m, see the module docstring)."""
        if "depth" not in self._connections:
            self._connections["depth"] = self._writer.add_connection(
                self.topics["depth"], IMAGE, typestore=TYPESTORE)
        self._put("depth", depth_message(depth, unit, stamp_ns, self.frame_id),
                  stamp_ns if receive_ns is None else receive_ns)

    def _put(self, key: str, msg, receive_ns: int) -> None:
        self._writer.write(self._connections[key], int(receive_ns), serialize(msg))
        self.counts[self.topics[key]] += 1


def write_bag(path: str | Path, frames: Iterable[FrameInput], storage: str = "sqlite3",
              namespace: str = DEFAULT_NAMESPACE, frame_id: str = DEFAULT_FRAME_ID,
              total: int | None = None, progress: bool = True) -> dict[str, int]:
    """Write every frame to a new bag; returns the message count of each topic written."""
    import shutil

    from tqdm import tqdm

    writer = BagWriter(path, storage, namespace, frame_id)
    try:
        with writer:
            for frame in tqdm(frames, total=total, desc=f"writing {path}", unit="frame",
                              disable=not progress):
                writer.write(frame)
    except BaseException:
        shutil.rmtree(writer.path, ignore_errors=True)   # created above: no half-written bag
        raise
    return {topic: n for topic, n in writer.counts.items() if n}


__all__ = ["BagWriter", "DEFAULT_FRAME_ID", "DEFAULT_NAMESPACE", "STORAGES", "topic_names",
           "write_bag"]
