"""A plain folder of images, e.g. frames exported from a video or a camera driver.

Stamps come from the file names when every name is a decimal number of seconds (TUM style,
``1311868169.163498.png``), otherwise from a fixed frame rate. Frame numbers such as ``000042.png``
are not stamps; they only order the frames.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from lightglue_ros.errors import DatasetError
from lightglue_ros.types import NS, to_ns

from .files import list_images
from .intrinsics import camera_from_options
from .record import Dataset, DatasetFrame

DEFAULT_RATE_HZ = 10.0
_STAMP_NAME = re.compile(r"\d+\.\d+")


def read_image_folder(path: str | Path, *, intrinsics: Sequence[float] | None = None,
                      distortion: Sequence[float] | None = None, preset: str | None = None,
                      rate_hz: float | None = None) -> Dataset:
    """Read a folder of images; intrinsics (fx fy cx cy, or a TUM preset) are required.

    rate_hz: frames per second for the stamps; when None, names that are stamps are used, else
    10 Hz. Frames are in name order, or in stamp order when the names are stamps.
    """
    root = Path(path)
    images = list_images(root)
    camera = camera_from_options(images[0], intrinsics, distortion, preset)
    if camera is None:
        raise DatasetError(f"image folder {root} has no calibration: give intrinsics "
                           "(fx fy cx cy, and distortion if the images are not rectified)")
    if rate_hz is None and all(_STAMP_NAME.fullmatch(p.stem) for p in images):
        images.sort(key=lambda p: to_ns(p.stem))
        stamps = [to_ns(p.stem) for p in images]
    else:
        rate = DEFAULT_RATE_HZ if rate_hz is None else float(rate_hz)
        if not rate > 0:
            raise DatasetError(f"rate_hz must be positive, got {rate_hz}")
        stamps = [round(i * NS / rate) for i in range(len(images))]
    return Dataset(name=root.name, kind="images", root=root, camera=camera,
                   frames=[DatasetFrame(i, t, p) for i, (t, p) in enumerate(zip(stamps, images))])
