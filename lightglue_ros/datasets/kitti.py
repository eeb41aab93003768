"""KITTI odometry sequences: image_0/ (left grey camera), calib.txt, times.txt, optional poses;
with image_1/ (right grey camera) and P1 in calib.txt, a stereo pair.

The images are rectified, so the camera has no distortion and K is the left 3x3 block of the
projection matrix P0 (P0 = K [I | 0] for the reference camera); P1 = K [I | -B x] gives the
baseline B = -P1[0,3] / P1[0,0]. Ground-truth poses (KITTI's
``poses/NN.txt``: 12 numbers a line, the 3x4 camera-to-world of the left camera, one per frame) are
read from ``poses.txt`` in the folder or from the path given.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lightglue_ros.errors import DatasetError
from lightglue_ros.types import Trajectory, seconds
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.geometry.rectify import StereoCalibrationError, StereoRectification
from lightglue_ros.geometry.rectify import from_projections

from .files import list_images, read_rows, to_floats, to_stamp_ns
from .intrinsics import image_size
from .record import Dataset, DatasetFrame


def read_kitti(path: str | Path, *, poses: str | Path | None = None,
               stereo: bool = True) -> Dataset:
    """Read a KITTI odometry sequence folder (e.g. ``sequences/00``); a stereo pair when it has
    image_1/ and ``stereo``."""
    root = Path(path)
    images = list_images(root / "image_0")
    stamps = _read_times(root / "times.txt")
    if len(stamps) != len(images):
        raise DatasetError(f"{root / 'times.txt'} has {len(stamps)} stamps for "
                           f"{len(images)} images in {root / 'image_0'}")
    projections = _read_projections(root / "calib.txt")
    K = projections["P0"][:, :3]
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
            groundtruth = Trajectory(np.array([seconds(ns) for ns in stamps]),
                                     _read_poses(poses_path, len(images)))
        except ValueError as err:
            raise DatasetError(f"{root}: unusable ground truth: {err}") from None
    rights: list[Path | None] = [None] * len(images)
    rectification = None
    if stereo and (root / "image_1").is_dir():
        rectification = _stereo(root, camera, projections)
        camera = rectification.camera
        rights = _right_images(root, images)
    return Dataset(name=root.name, kind="kitti", root=root, camera=camera,
                   frames=[DatasetFrame(i, t, p, right_path=r)
                           for i, (t, p, r) in enumerate(zip(stamps, images, rights))],
                   groundtruth=groundtruth, stereo=rectification)


def _stereo(root: Path, camera: CameraModel, projections: dict[str, np.ndarray]
            ) -> StereoRectification:
    """The (already rectified) pair of P0 and P1."""
    if "P1" not in projections:
        raise DatasetError(f"{root} has image_1/ but {root / 'calib.txt'} has no 'P1:' line "
                           "(the right camera): give it, or read the left camera alone")
    try:
        return from_projections(camera, camera, np.eye(3), np.eye(3), projections["P0"],
                                projections["P1"])
    except StereoCalibrationError as err:
        raise DatasetError(f"{root / 'calib.txt'}: P0 and P1 are not a stereo pair: {err}"
                           ) from None


def _right_images(root: Path, images: list[Path]) -> list[Path | None]:
    """image_1/ files named as the left ones; every left image needs its right one."""
    rights = [root / "image_1" / p.name for p in images]
    missing = [p for p in rights if not p.is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} of {len(images)} right images are missing in "
                           f"{root / 'image_1'}, the first: {missing[0].name}")
    return list(rights)


def _read_times(path: Path) -> list[int]:
    """The stamps of times.txt (seconds, one per line) in integer nanoseconds."""
    if not path.is_file():
        raise DatasetError(f"{path} does not exist (KITTI stamps, one per image)")
    return [to_stamp_ns(f[0], path, n) for n, f in read_rows(path)]


def _read_projections(path: Path) -> dict[str, np.ndarray]:
    """The 3x4 projections P0 (required) and P1 (the right grey camera) of calib.txt."""
    if not path.is_file():
        raise DatasetError(f"{path} does not exist (KITTI calibration with P0)")
    found = {fields[0][:-1]: np.array(to_floats(fields[1:], path, number, 12)).reshape(3, 4)
             for number, fields in read_rows(path) if fields[0] in ("P0:", "P1:")}
    if "P0" not in found:
        raise DatasetError(f"{path} has no 'P0:' line")
    return found


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
