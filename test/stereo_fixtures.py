"""A raw stereo pair rendered from a textured plane: two distorted cameras, the right one
slightly rotated, so that only a correct rectification gives rows that line up and the
disparity fx * baseline / depth."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from dataset_fixtures import EUROC_STAMPS_NS, make_euroc_folder
from lightglue_ros.geometry.camera import CameraModel

WIDTH, HEIGHT = 240, 180
PLANE_Z_M = 2.0             # the textured plane, fronto-parallel to the left camera
BASELINE_M = 0.11
TEXTURE_M_PER_PX = 0.004


@dataclass(frozen=True)
class RawPair:
    left: CameraModel
    right: CameraModel
    T_left_right: np.ndarray    # right-camera points into the left camera frame


def raw_pair(swapped: bool = False) -> RawPair:
    """Two distorted cameras; the right one BASELINE_M to the right (to the left if
    ``swapped``), turned 0.6 deg about x and 0.8 deg about y."""
    left = CameraModel(WIDTH, HEIGHT, [[210.0, 0, 121.0], [0, 208.0, 88.0], [0, 0, 1]],
                       "plumb_bob", [-0.21, 0.05, 0.0008, -0.0005, 0.0])
    right = CameraModel(WIDTH, HEIGHT, [[212.0, 0, 118.0], [0, 211.0, 92.0], [0, 0, 1]],
                        "plumb_bob", [-0.19, 0.04, -0.0006, 0.0004, 0.0])
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xy", [0.6, 0.8], degrees=True).as_matrix()
    T[:3, 3] = [-BASELINE_M if swapped else BASELINE_M, 0.002, -0.001]
    return RawPair(left, right, T)


def _texture() -> np.ndarray:
    rng = np.random.default_rng(7)
    noise = rng.uniform(0, 255, (700, 900)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 1.8)


def render(camera: CameraModel, T_left_cam: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """The plane z = PLANE_Z_M (left camera frame) as ``camera`` sees it, 8-bit grey."""
    u, v = np.meshgrid(np.arange(camera.width), np.arange(camera.height))
    rays = camera.undistort_points(np.stack([u.ravel(), v.ravel()], axis=1))
    d = np.column_stack([rays, np.ones(len(rays))]) @ T_left_cam[:3, :3].T
    o = T_left_cam[:3, 3]
    s = (PLANE_Z_M - o[2]) / d[:, 2]
    X = o[0] + s * d[:, 0]
    Y = o[1] + s * d[:, 1]
    map_x = (X / TEXTURE_M_PER_PX + texture.shape[1] / 2).reshape(u.shape).astype(np.float32)
    map_y = (Y / TEXTURE_M_PER_PX + texture.shape[0] / 2).reshape(u.shape).astype(np.float32)
    return cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR).round().astype(np.uint8)


def render_pair(pair: RawPair) -> tuple[np.ndarray, np.ndarray]:
    texture = _texture()
    return render(pair.left, np.eye(4), texture), render(pair.right, pair.T_left_right, texture)


def _sensor_yaml(camera: CameraModel, T_BS: np.ndarray) -> str:
    K = camera.K
    data = ", ".join(f"{float(x)!r}" for x in T_BS.ravel())
    return (f"sensor_type: camera\nT_BS:\n  cols: 4\n  rows: 4\n  data: [{data}]\n"
            f"rate_hz: 20\nresolution: [{camera.width}, {camera.height}]\n"
            f"camera_model: pinhole\nintrinsics: [{K[0, 0]}, {K[1, 1]}, {K[0, 2]}, {K[1, 2]}]\n"
            "distortion_model: radial-tangential\n"
            f"distortion_coefficients: {[float(x) for x in camera.D[:4]]}\n")


def make_euroc_stereo_folder(root: Path, swapped: bool = False) -> Path:
    """The EuRoC fixture (ground truth, three stamps) with a raw cam0/cam1 pair of the plane;
    cam1 lacks the last frame."""
    make_euroc_folder(root)
    pair = raw_pair(swapped)
    left, right = render_pair(pair)
    T_BS_left = np.eye(4)
    T_BS_left[:3, 3] = [0.02, -0.01, 0.0]
    for name, camera, image, T_BS, stamps in (
            ("cam0", pair.left, left, T_BS_left, EUROC_STAMPS_NS),
            ("cam1", pair.right, right, T_BS_left @ pair.T_left_right, EUROC_STAMPS_NS[:-1])):
        cam = root / "mav0" / name
        (cam / "data").mkdir(parents=True, exist_ok=True)
        for ns in stamps:
            assert cv2.imwrite(str(cam / "data" / f"{ns}.png"), image)
        (cam / "data.csv").write_text("#timestamp [ns],filename\n" + "".join(
            f"{ns},{ns}.png\n" for ns in stamps))
        (cam / "sensor.yaml").write_text(_sensor_yaml(camera, T_BS))
    return root


def image_shift(a: np.ndarray, b: np.ndarray, margin: int = 40) -> tuple[float, float]:
    """(dx, dy) such that b(x, y) = a(x + dx, y + dy) over the central part, sub-pixel."""
    crop = (slice(margin, a.shape[0] - margin), slice(margin, a.shape[1] - margin))
    (dx, dy), _ = cv2.phaseCorrelate(np.float32(b[crop]), np.float32(a[crop]))
    return float(dx), float(dy)
