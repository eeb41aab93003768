"""Camera intrinsics for the dataset readers: numbers from the caller, TUM presets, ROS YAML files.

Distortion coefficients are in OpenCV order (k1 k2 p1 p2 [k3 [k4 k5 k6]]).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import yaml

from lightglue_ros.errors import DatasetError
from lightglue_ros.geometry.camera import CameraModel

# The published calibration of the TUM RGB-D colour cameras: (fx, fy, cx, cy), distortion.
# The images of the dataset are not undistorted, so fr1 and fr2 need their coefficients.
TUM_PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fr1": ((517.3, 516.5, 318.6, 255.3), (0.2624, -0.9531, -0.0054, 0.0026, 1.1633)),
    "fr2": ((520.9, 521.0, 325.1, 249.7), (0.2312, -0.7849, -0.0033, -0.0001, 0.9172)),
    "fr3": ((535.4, 539.2, 320.1, 247.6), ()),
}

_MODEL_BY_COUNT = {0: "none", 4: "plumb_bob", 5: "plumb_bob", 8: "rational_polynomial"}


def pinhole_camera(width: int, height: int, intrinsics: Sequence[float],
                   distortion: Sequence[float] = (), model: str | None = None) -> CameraModel:
    """A CameraModel from fx fy cx cy and distortion coefficients.

    Without ``model``, the coefficient count decides: 4 (k1 k2 p1 p2, k3 = 0) or 5 is plumb_bob,
    8 rational_polynomial.
    """
    values = [float(x) for x in intrinsics]
    if len(values) != 4:
        raise DatasetError(f"intrinsics must be fx fy cx cy, got {len(values)} values")
    coeffs = [float(x) for x in distortion]
    if model is None:
        if len(coeffs) not in _MODEL_BY_COUNT:
            raise DatasetError(f"cannot tell the distortion model from {len(coeffs)} "
                               "coefficients: give 4 or 5 (plumb_bob) or 8 (rational_polynomial)")
        model = _MODEL_BY_COUNT[len(coeffs)]
    if model == "plumb_bob" and len(coeffs) == 4:
        coeffs.append(0.0)
    fx, fy, cx, cy = values
    try:
        return CameraModel(width, height, [[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]],
                           model, coeffs)
    except ValueError as err:
        raise DatasetError(f"invalid intrinsics: {err}") from None


def camera_from_options(first_image: Path, intrinsics: Sequence[float] | None,
                        distortion: Sequence[float] | None, preset: str | None
                        ) -> CameraModel | None:
    """The camera the caller described by numbers or by a TUM preset name; None if neither.

    The image size comes from the first image, so resized or cropped sequences get their true size.
    """
    if intrinsics is not None and preset is not None:
        raise DatasetError("give either intrinsics or a preset, not both")
    if distortion is not None and intrinsics is None:
        raise DatasetError("distortion needs intrinsics (fx fy cx cy); presets carry their own")
    if preset is not None:
        if preset not in TUM_PRESETS:
            raise DatasetError(f"unknown intrinsics preset {preset!r}; "
                               f"known: {', '.join(TUM_PRESETS)}")
        intrinsics, distortion = TUM_PRESETS[preset]
    if intrinsics is None:
        return None
    return pinhole_camera(*image_size(first_image), intrinsics, distortion or ())


def read_ros_camera_yaml(path: Path) -> CameraModel:
    """A camera from a YAML file in the ROS camera_calibration_parsers layout."""
    try:
        data = yaml.safe_load(path.read_text())
        return CameraModel.from_ros(
            int(data["image_width"]), int(data["image_height"]),
            data["camera_matrix"]["data"], data["distortion_coefficients"]["data"],
            data["distortion_model"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        raise DatasetError(f"cannot read camera calibration {path}: "
                           f"{type(err).__name__}: {err}") from None


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"cannot read image {path} (missing or not an image)")
    return image.shape[1], image.shape[0]
