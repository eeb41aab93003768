"""TUM RGB-D sequence folders: rgb.txt, optional depth.txt and groundtruth.txt.

TUM publishes no calibration file: the caller names a preset (fr1, fr2, fr3) or gives the numbers,
unless the folder carries a ``camera.yaml`` in the ROS layout (as ``write_tum_folder`` writes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from lightglue_ros.errors import DatasetError
from lightglue_ros.types import Trajectory, associate_stamps, seconds

from .files import read_rows, require_files, to_stamp_ns
from .intrinsics import camera_from_options, read_ros_camera_yaml
from .record import Dataset, DatasetFrame

DEPTH_UNIT = 1.0 / 5000.0   # metres per unit of TUM's 16-bit depth PNGs


def read_tum(path: str | Path, *, preset: str | None = None,
             intrinsics: Sequence[float] | None = None, distortion: Sequence[float] | None = None,
             max_depth_diff: float = 0.02) -> Dataset:
    """Read a TUM RGB-D folder; frames are in stamp order.

    Each colour frame gets the depth image nearest in time within ``max_depth_diff`` seconds (one
    to one, as TUM's associate.py), or none. Intrinsics given here override ``camera.yaml``.
    """
    root = Path(path)
    stamps, images = _read_list(root, "rgb.txt")
    if not images:
        raise DatasetError(f"{root / 'rgb.txt'} lists no images")
    depths: list[Path | None] = [None] * len(images)
    has_depth = (root / "depth.txt").is_file()
    if has_depth:
        depth_stamps, depth_images = _read_list(root, "depth.txt")
        for i, j in zip(*associate_stamps(_seconds(stamps), _seconds(depth_stamps),
                                          max_depth_diff)):
            depths[i] = depth_images[j]
    camera = camera_from_options(images[0], intrinsics, distortion, preset)
    if camera is None:
        if not (root / "camera.yaml").is_file():
            raise DatasetError(f"TUM folder {root} has no camera.yaml: give intrinsics "
                               "(fx fy cx cy) or a preset (fr1, fr2, fr3)")
        camera = read_ros_camera_yaml(root / "camera.yaml")
    gt_path = root / "groundtruth.txt"
    return Dataset(
        name=root.name, kind="tum", root=root, camera=camera,
        frames=[DatasetFrame(i, t, image, depth)
                for i, (t, image, depth) in enumerate(zip(stamps, images, depths))],
        groundtruth=Trajectory.read_tum(gt_path) if gt_path.is_file() else None,
        depth_unit=DEPTH_UNIT if has_depth else None,
    )


def _read_list(root: Path, name: str) -> tuple[list[int], list[Path]]:
    """Stamps (integer ns, ascending) and files of a ``stamp path`` list; every listed file
    must exist."""
    listing = root / name
    if not listing.is_file():
        raise DatasetError(f"{listing} does not exist")
    rows = read_rows(listing)
    for number, fields in rows:
        if len(fields) != 2:
            raise DatasetError(f"{listing}, line {number}: expected 'stamp path', "
                               f"got {len(fields)} fields")
    stamps = [to_stamp_ns(f[0], listing, n) for n, f in rows]
    files = [root / f[1] for _, f in rows]
    require_files(files, listing)
    order = np.argsort(stamps, kind="stable")
    return [stamps[i] for i in order], [files[i] for i in order]


def _seconds(stamps_ns: list[int]) -> np.ndarray:
    return np.array([seconds(ns) for ns in stamps_ns], dtype=np.float64)
