"""Camera sequences on disk (TUM RGB-D, KITTI odometry, EuRoC, image folders) as one record.

``open_dataset`` recognises the layout; every reader returns a ``Dataset`` whose frames are file
paths (loaded lazily by the caller), with a ``CameraModel`` and, where the dataset has one, the
ground truth as camera-to-world poses of this camera.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lightglue_ros.errors import DatasetError

from .euroc import read_euroc
from .image_folder import read_image_folder
from .intrinsics import TUM_PRESETS, pinhole_camera
from .kitti import read_kitti
from .record import Dataset, DatasetFrame
from .tum import read_tum

__all__ = ["Dataset", "DatasetFrame", "TUM_PRESETS", "dataset_kind", "open_dataset",
           "pinhole_camera", "read_euroc", "read_image_folder", "read_kitti", "read_tum"]


def dataset_kind(path: str | Path) -> str:
    """"tum" (rgb.txt), "kitti" (image_0/), "euroc" (mav0/) or "images" (anything else)."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist")
    if (root / "rgb.txt").is_file():
        return "tum"
    if (root / "image_0").is_dir():
        return "kitti"
    if (root / "mav0").is_dir():
        return "euroc"
    return "images"


def open_dataset(path: str | Path, *, intrinsics: Sequence[float] | None = None,
                 distortion: Sequence[float] | None = None, preset: str | None = None,
                 rate_hz: float | None = None, poses: str | Path | None = None,
                 stereo: bool = True) -> Dataset:
    """Read the dataset at ``path``, whatever its layout.

    intrinsics (fx fy cx cy), distortion and preset (fr1, fr2, fr3) describe the camera of TUM
    folders and image folders; KITTI and EuRoC carry their calibration, so giving them is an error
    there rather than silently ignored. rate_hz sets image-folder stamps; poses is a KITTI
    ground-truth file outside the sequence folder. stereo: read a KITTI or EuRoC folder with a
    right camera as a stereo pair (False: the left camera alone).
    """
    kind = dataset_kind(path)
    options = {"intrinsics": intrinsics, "distortion": distortion, "preset": preset,
               "rate_hz": rate_hz, "poses": poses}
    accepted = {"tum": ("intrinsics", "distortion", "preset"),
                "images": ("intrinsics", "distortion", "preset", "rate_hz"),
                "kitti": ("poses",), "euroc": ()}[kind]
    rejected = [name for name, value in options.items()
                if value is not None and name not in accepted]
    if rejected:
        raise DatasetError(f"{path} is a {kind} dataset, which does not take "
                           f"{', '.join(rejected)}")
    given: dict[str, object] = {name: options[name] for name in accepted}
    if kind in ("kitti", "euroc"):
        given["stereo"] = stereo
    reader = {"tum": read_tum, "images": read_image_folder, "kitti": read_kitti,
              "euroc": read_euroc}[kind]
    return reader(path, **given)
