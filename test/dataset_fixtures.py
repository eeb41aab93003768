"""Tiny generated dataset folders (KITTI odometry, EuRoC ASL) for the dataset and bag tests."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation


def write_png(path: Path, width: int = 32, height: int = 24, channels: int = 1) -> None:
    """A deterministic 8-bit PNG (grey, or colour with ``channels`` 3)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (height, width) if channels == 1 else (height, width, channels)
    image = (np.arange(np.prod(shape)) % 251).astype(np.uint8).reshape(shape)
    assert cv2.imwrite(str(path), image)


# --- KITTI ---------------------------------------------------------------------------------

KITTI_P0 = "7.188560000000e+02 0.000000000000e+00 6.071928000000e+02 0.000000000000e+00 " \
           "0.000000000000e+00 7.188560000000e+02 1.852157000000e+02 0.000000000000e+00 " \
           "0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00"
KITTI_P1 = "7.188560000000e+02 0.000000000000e+00 6.071928000000e+02 -3.861448000000e+02 " \
           "0.000000000000e+00 7.188560000000e+02 1.852157000000e+02 0.000000000000e+00 " \
           "0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00"
KITTI_TIMES = [0.0, 0.1036162, 0.2072324, 0.3108486]


def kitti_poses() -> np.ndarray:
    poses = np.tile(np.eye(4), (4, 1, 1))
    for i in range(4):
        poses[i, :3, :3] = Rotation.from_euler("y", 2.0 * i, degrees=True).as_matrix()
        poses[i, :3, 3] = [0.01 * i, -0.002 * i, 0.8 * i]
    return poses


def make_kitti_folder(root: Path, width: int = 40, height: int = 12) -> Path:
    """A 4-frame KITTI odometry sequence (image_0/, image_1/, calib.txt, times.txt, poses.txt)."""
    for i in range(4):
        write_png(root / "image_0" / f"{i:06d}.png", width=width, height=height)
        write_png(root / "image_1" / f"{i:06d}.png", width=width, height=height)
    (root / "calib.txt").write_text(f"P0: {KITTI_P0}\nP1: {KITTI_P1}\n")
    (root / "times.txt").write_text("".join(f"{t:.6e}\n" for t in KITTI_TIMES))
    rows = ["".join(f"{x:.9e} " for x in p[:3].ravel()).strip() for p in kitti_poses()]
    (root / "poses.txt").write_text("\n".join(rows) + "\n")
    return root


# --- EuRoC ---------------------------------------------------------------------------------

EUROC_STAMPS_NS = [1403636579763555584, 1403636579813555456, 1403636579863555584]
EUROC_SENSOR_YAML = """\
# General sensor definitions.
sensor_type: camera
comment: VI-Sensor cam0 (MT9M034)

# Sensor extrinsics wrt. the body-frame.
T_BS:
  cols: 4
  rows: 4
  data: [1.0, 0.0, 0.0, 0.1,
         0.0, 0.0, -1.0, 0.0,
         0.0, 1.0, 0.0, 0.0,
         0.0, 0.0, 0.0, 1.0]

# Camera specific definitions.
rate_hz: 20
resolution: [752, 480]
camera_model: pinhole
intrinsics: [458.654, 457.296, 367.215, 248.375] #fu, fv, cu, cv
distortion_model: radial-tangential
distortion_coefficients: [-0.28340811, 0.07395907, 0.00019359, 1.76187114e-05]
"""
# Body 90 degrees about z at (1, 2, 3); T_BS is 90 degrees about x with t = (0.1, 0, 0).
EUROC_Q_WXYZ = (0.5 ** 0.5, 0.0, 0.0, 0.5 ** 0.5)


def make_euroc_folder(root: Path, width: int = 32, height: int = 24) -> Path:
    """A 3-frame EuRoC sequence: mav0/cam0 (data.csv, sensor.yaml for 752x480, PNGs of
    ``width`` x ``height``) and the body ground truth 1 ms after each image."""
    cam = root / "mav0" / "cam0"
    for ns in EUROC_STAMPS_NS:
        write_png(cam / "data" / f"{ns}.png", width=width, height=height)
    (cam / "data.csv").write_text("#timestamp [ns],filename\n" + "".join(
        f"{ns},{ns}.png\n" for ns in EUROC_STAMPS_NS))
    (cam / "sensor.yaml").write_text(EUROC_SENSOR_YAML)
    gt = root / "mav0" / "state_groundtruth_estimate0" / "data.csv"
    gt.parent.mkdir(parents=True)
    header = ("#timestamp, p_RS_R_x [m], p_RS_R_y [m], p_RS_R_z [m], q_RS_w [], q_RS_x [], "
              "q_RS_y [], q_RS_z [], v_RS_R_x [m s^-1], v_RS_R_y [m s^-1], v_RS_R_z [m s^-1], "
              "b_w_RS_S_x [rad s^-1], b_w_RS_S_y [rad s^-1], b_w_RS_S_z [rad s^-1], "
              "b_a_RS_S_x [m s^-2], b_a_RS_S_y [m s^-2], b_a_RS_S_z [m s^-2]\n")
    rows = [f"{ns + 1_000_000},{1.0 + i},2.0,3.0," + ",".join(f"{q!r}" for q in EUROC_Q_WXYZ)
            + ",0.1,0.0,0.0,-0.002,0.02,0.07,-0.01,0.1,0.08\n"
            for i, ns in enumerate(EUROC_STAMPS_NS)]
    gt.write_text(header + "".join(rows))
    return root
