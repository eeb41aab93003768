"""EuRoC MAV sequences in the ASL layout (``mav0/cam0``, ``mav0/state_groundtruth_estimate0``).

The ground truth is the pose of the body (IMU) frame in the world, T_world_body; a camera's pose is
T_world_cam = T_world_body @ T_BS with T_BS (sensor to body) from the camera's sensor.yaml.
Quaternions in the ground-truth CSV are in w x y z order. Stamps are integer nanoseconds.

With ``cam1`` beside ``cam0`` the sequence is read as a stereo pair: the raw (distorted, not
row-aligned) images are rectified from the two sensor.yaml calibrations (their T_BS give the
transform between the eyes), images are paired by equal stamps (the VI-Sensor triggers both), and
the camera and ground truth are those of the rectified left camera.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from lightglue_ros.errors import DatasetError
from lightglue_ros.types import Trajectory, seconds
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.geometry.rectify import StereoCalibrationError, StereoRectification
from lightglue_ros.geometry.rectify import from_extrinsics
from lightglue_ros.geometry.se3 import make_transform, quaternion_to_rotation

from .files import read_rows, require_files, to_floats
from .intrinsics import pinhole_camera
from .record import Dataset, DatasetFrame

_DISTORTION_MODELS = {"radial-tangential": "plumb_bob", "equidistant": "equidistant"}


def read_euroc(path: str | Path, *, camera: str = "cam0", stereo: bool = True) -> Dataset:
    """Read one camera (``cam0`` left, ``cam1`` right) of a EuRoC sequence folder holding mav0/;
    ``cam0`` with ``cam1`` beside it and ``stereo``: the rectified pair."""
    root = Path(path)
    cam_dir = root / "mav0" / camera
    stamps_ns, images = _read_listing(cam_dir, camera)
    model, T_BS = _read_sensor(cam_dir / "sensor.yaml")
    rights: list[Path | None] = [None] * len(images)
    rectification = None
    right_dir = root / "mav0" / "cam1"
    if stereo and camera == "cam0" and (right_dir / "data.csv").is_file():
        right_ns, right_images = _read_listing(right_dir, "cam1")
        right_model, T_BS_right = _read_sensor(right_dir / "sensor.yaml")
        rectification = _rectify(model, T_BS, right_model, T_BS_right, right_dir)
        by_stamp = dict(zip(right_ns, right_images))
        rights = [by_stamp.get(ns) for ns in stamps_ns]
        if not any(rights):
            raise DatasetError(f"no image of {right_dir} has the stamp of a cam0 image: the "
                               "pair cannot be matched (read cam0 alone without stereo)")
        model = rectification.camera
        T_BS = T_BS @ make_transform(rectification.left_rotation.T, np.zeros(3))
    gt_path = root / "mav0" / "state_groundtruth_estimate0" / "data.csv"
    return Dataset(name=root.name, kind="euroc", root=root, camera=model,
                   frames=[DatasetFrame(i, ns, p, right_path=r)
                           for i, (ns, p, r) in enumerate(zip(stamps_ns, images, rights))],
                   groundtruth=_read_groundtruth(gt_path, T_BS) if gt_path.is_file() else None,
                   stereo=rectification)


def _read_listing(cam_dir: Path, camera: str) -> tuple[list[int], list[Path]]:
    """Stamps (integer ns) and image files of a camera's data.csv; every file must exist."""
    listing = cam_dir / "data.csv"
    if not listing.is_file():
        raise DatasetError(f"{listing} does not exist (EuRoC camera {camera!r})")
    rows = read_rows(listing)
    if not rows:
        raise DatasetError(f"{listing} lists no images")
    try:
        stamps = [int(f[0]) for _, f in rows]
    except ValueError as err:
        raise DatasetError(f"{listing}: stamps must be integer nanoseconds ({err})") from None
    images = [cam_dir / "data" / f[1] for _, f in rows]
    require_files(images, listing)
    return stamps, images


def _rectify(left: CameraModel, T_BS_left: np.ndarray, right: CameraModel,
             T_BS_right: np.ndarray, right_dir: Path) -> StereoRectification:
    """The rectification of cam0/cam1 from their sensor-to-body transforms."""
    T_right_left = np.linalg.inv(T_BS_right) @ T_BS_left
    try:
        return from_extrinsics(left, right, T_right_left[:3, :3], T_right_left[:3, 3])
    except StereoCalibrationError as err:
        raise DatasetError(f"cam0 and {right_dir.name} are not a usable stereo pair: {err}"
                           ) from None


def _read_sensor(path: Path) -> tuple[CameraModel, np.ndarray]:
    """The camera model and T_BS (sensor to body) of a EuRoC sensor.yaml."""
    try:
        data = yaml.safe_load(path.read_text())
        width, height = (int(x) for x in data["resolution"])
        intrinsics = data["intrinsics"]
        distortion = data.get("distortion_coefficients") or []
        kind = data.get("distortion_model", "radial-tangential")
        T_BS = np.array(data["T_BS"]["data"], dtype=np.float64).reshape(4, 4)
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        raise DatasetError(f"cannot read EuRoC camera calibration {path}: "
                           f"{type(err).__name__}: {err}") from None
    if kind not in _DISTORTION_MODELS:
        raise DatasetError(f"{path}: unsupported distortion_model {kind!r}; "
                           f"known: {', '.join(_DISTORTION_MODELS)}")
    if not np.allclose(T_BS[3], [0.0, 0.0, 0.0, 1.0]):
        raise DatasetError(f"{path}: T_BS is not a rigid transform (last row {T_BS[3].tolist()})")
    return pinhole_camera(width, height, intrinsics, distortion, _DISTORTION_MODELS[kind]), T_BS


def _read_groundtruth(path: Path, T_BS: np.ndarray) -> Trajectory:
    """Camera poses T_world_body @ T_BS from the body ground truth (p x y z, q w x y z)."""
    rows = read_rows(path)
    stamps, poses = [], []
    for number, fields in rows:
        try:
            ns = int(fields[0])
        except ValueError:
            raise DatasetError(f"{path}, line {number}: stamp {fields[0]!r} is not integer "
                               "nanoseconds") from None
        px, py, pz, qw, qx, qy, qz = to_floats(fields[1:], path, number, 7)
        stamps.append(seconds(ns))
        poses.append(make_transform(quaternion_to_rotation([qx, qy, qz, qw]), [px, py, pz]) @ T_BS)
    order = np.argsort(stamps, kind="stable")
    return Trajectory(np.array(stamps)[order], np.array(poses).reshape(-1, 4, 4)[order])
