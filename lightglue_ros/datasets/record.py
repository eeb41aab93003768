"""The common record every dataset reader returns: frames as file paths, camera, ground truth.

Images are not loaded here: a sequence of thousands of frames would not fit in memory, so callers
load each frame when they need it (``lightglue_ros.images.load_image``; depth with
``cv2.imread(path, cv2.IMREAD_UNCHANGED)`` times ``depth_unit``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lightglue_ros.types import Trajectory, seconds
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.geometry.rectify import StereoRectification


@dataclass(frozen=True)
class DatasetFrame:
    """One camera frame: its position in the sequence, stamp (integer nanoseconds, read exactly
    from the listing) and files (the right image of a stereo pair, when the dataset is read as one
    and the right eye has this frame)."""

    index: int
    stamp_ns: int
    image_path: Path
    depth_path: Path | None = None
    right_path: Path | None = None

    @property
    def seconds(self) -> float:
        return seconds(self.stamp_ns)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A camera sequence in time order, its intrinsics and, where known, its ground truth.

    ``groundtruth`` holds camera-to-world poses of this camera (not of a body or IMU frame), on the
    same clock as the frame stamps. ``depth_unit`` is metres per depth-image unit (TUM: 1/5000);
    None when the dataset has no depth. ``stereo`` is set when the dataset is read as a stereo
    pair: ``camera`` is then the rectified left camera (``stereo.camera``), the images are
    rectified by ``stereo`` as they are loaded, and the ground truth is of the rectified left
    camera.
    """

    name: str
    kind: str
    root: Path
    camera: CameraModel
    frames: list[DatasetFrame]
    groundtruth: Trajectory | None = None
    depth_unit: float | None = None
    stereo: StereoRectification | None = None

    def __len__(self) -> int:
        return len(self.frames)
