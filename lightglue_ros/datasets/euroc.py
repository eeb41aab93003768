"""EuRoC MAV sequences in the ASL layout (``mav0/cam0``, ``mav0/state_groundtruth_estimate0``).

The ground truth is the pose of the body (IMU) frame in the world, T_world_body; a camera's pose is
T_world_cam = T_world_body @ T_BS with T_BS (sensor to body) from the camera's sensor.yaml.
Quaternions in the ground-truth CSV are in w x y z order. Stamps are integer nanoseconds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from lightglue_ros.errors import DatasetError
from lightglue_ros.types import Trajectory
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.geometry.se3 import make_transform, quaternion_to_rotation

from .files import read_rows, require_files, to_floats
from .intrinsics import pinhole_camera
from .record import Dataset, DatasetFrame

_DISTORTION_MODELS = {"radial-tangential": "plumb_bob", "equidistant": "equidistant"}


def read_euroc(path: str | Path, *, camera: str = "cam0") -> Dataset:
    """Read one camera (``cam0`` left, ``cam1`` right) of a EuRoC sequence folder holding mav0/."""
    root = Path(path)
    cam_dir = root / "mav0" / camera
    listing = cam_dir / "data.csv"
    if not listing.is_file():
        raise DatasetError(f"{listing} does not exist (EuRoC camera {camera!r})")
    rows = read_rows(listing)
    if not rows:
        raise DatasetError(f"{listing} lists no images")
    try:
        stamps = np.array([int(f[0]) / 1e9 for _, f in rows])   # exact int ns, one rounding
    except ValueError as err:
        raise DatasetError(f"{listing}: stamps must be integer nanoseconds ({err})") from None
    images = [cam_dir / "data" / f[1] for _, f in rows]
    require_files(images, listing)
    model, T_BS = _read_sensor(cam_dir / "sensor.yaml")
    gt_path = root / "mav0" / "state_groundtruth_estimate0" / "data.csv"
    return Dataset(name=root.name, kind="euroc", root=root, camera=model,
                   frames=[DatasetFrame(i, float(t), p)
                           for i, (t, p) in enumerate(zip(stamps, images))],
                   groundtruth=_read_groundtruth(gt_path, T_BS) if gt_path.is_file() else None)


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
        stamps.append(ns / 1e9)
        poses.append(make_transform(quaternion_to_rotation([qx, qy, qz, qw]), [px, py, pz]) @ T_BS)
    order = np.argsort(stamps, kind="stable")
    return Trajectory(np.array(stamps)[order], np.array(poses).reshape(-1, 4, 4)[order])
