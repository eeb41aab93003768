"""KITTI odometry sequences: image_0/ (left grey camera), calib.txt, times.txt, optional poses.

The images are rectified, so the camera has no distortion and K is the left 3x3 block of the
projection matrix P0 (P0 = K [I | 0] for the reference camera). Ground-truth poses (KITTI's
``poses/NN.txt``: 12 numbers a line, the 3x4 camera-to-world of the left camera, one per frame) are
read from ``poses.txt`` in the folder or from the path given.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lightglue_ros.errors import DatasetError
from lightglue_ros.types import Trajectory
from lightglue_ros.geometry.camera import CameraModel

from .files import list_images, read_rows, to_floats
from .intrinsics import image_size
from .record import Dataset, DatasetFrame


def read_kitti(path: str | Path, *, poses: str | Path | None = None) -> Dataset:
    """Read a KITTI odometry sequence folder (e.g. ``sequences/00``)."""
    root = Path(path)
    images = list_images(root / "image_0")
    stamps = _read_times(root / "times.txt")
    if len(stamps) != len(images):
        raise DatasetError(f"{root / 'times.txt'} has {len(stamps)} stamps for "
                           f"{len(images)} images in {root / 'image_0'}")
    K = _read_P0(root / "calib.txt")[:, :3]
    try:
        camera = CameraModel(*image_size(images[0]), K)
    except ValueError as err:
        raise DatasetError(f"{root / 'calib.txt'}: P0 does not hold a usable K: {err}") from None
    poses_path = Path(poses) if poses is not None else root / "poses.txt"
    if poses is not None and not poses_path.is_file():
        raise DatasetError(f"ground-truth poses {poses_path} do not exist")
    groundtruth = None
    if poses_path.is_file():
        try:
            groundtruth = Trajectory(stamps, _read_poses(poses_path, len(images)))
        except ValueError as err:
            raise DatasetError(f"{root}: unusable ground truth: {err}") from None
    return Dataset(name=root.name, kind="kitti", root=root, camera=camera,
                   frames=[DatasetFrame(i, float(t), p)
                           for i, (t, p) in enumerate(zip(stamps, images))],
                   groundtruth=groundtruth)


def _read_times(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path} does not exist (KITTI stamps, one per image)")
    return np.array([to_floats(f, path, n, 1)[0] for n, f in read_rows(path)], dtype=np.float64)


def _read_P0(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path} does not exist (KITTI calibration with P0)")
    for number, fields in read_rows(path):
        if fields[0] == "P0:":
            return np.array(to_floats(fields[1:], path, number, 12)).reshape(3, 4)
    raise DatasetError(f"{path} has no 'P0:' line")


def _read_poses(path: Path, count: int) -> np.ndarray:
    rows = read_rows(path)
    if len(rows) != count:
        raise DatasetError(f"{path} has {len(rows)} poses for {count} images")
    poses = np.tile(np.eye(4), (count, 1, 1))
    for i, (number, fields) in enumerate(rows):
        if len(fields) != 12:
            raise DatasetError(f"{path}, line {number}: expected 12 values (3x4 pose), "
                               f"got {len(fields)}")
        poses[i, :3] = np.reshape(to_floats(fields, path, number, 12), (3, 4))
    return poses
