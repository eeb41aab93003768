"""Frames to track, loaded one at a time from a dataset folder or the synthetic sequence."""
from __future__ import annotations

from typing import Iterator

import cv2

from ..errors import DatasetError
from ..types import FrameInput
from ..images import load_image
from ..synthetic import SyntheticSequence
from .record import Dataset


def dataset_frames(dataset: Dataset, use_depth: bool = True) -> Iterator[FrameInput]:
    """Images (and depth, when the dataset has it and ``use_depth``; the rectified right image
    and the baseline, when it is a stereo pair) in time order."""
    stereo = dataset.stereo
    for frame in dataset.frames:
        depth = None
        if use_depth and frame.depth_path is not None:
            depth = cv2.imread(str(frame.depth_path), cv2.IMREAD_UNCHANGED)
            if depth is None:
                raise DatasetError(f"cannot read depth image {frame.depth_path}")
        image = load_image(frame.image_path)
        right = None
        if stereo is not None:
            image = stereo.left(image)
            if frame.right_path is not None:
                right = stereo.right(load_image(frame.right_path))
        yield FrameInput(frame.stamp_ns, image, dataset.camera, depth,
                         dataset.depth_unit if depth is not None else None, right,
                         stereo.baseline_m if right is not None else None)


def synthetic_frames(seq: SyntheticSequence, use_depth: bool = True) -> Iterator[FrameInput]:
    """The embedded sequence; depth in float32 metres (32FC1), as an RGB-D camera driver sends."""
    camera = seq.camera.to_model()
    for frame in seq:
        yield FrameInput(frame.stamp_ns, frame.rgb, camera, frame.depth if use_depth else None,
                         1.0 if use_depth else None)
