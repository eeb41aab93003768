"""Pinhole camera with lens distortion, built from the fields of a ROS ``sensor_msgs/CameraInfo``.

Conventions: pixel coordinates follow OpenCV (integer values are pixel centres); normalized image
coordinates are (x/z, y/z) of a point in the camera optical frame (REP 103: x right, y down,
z forward). Keypoints are undistorted, never images: resampling whole images would cost time and
blur the detector input, while a few hundred points are undistorted in microseconds.

Distortion models (names as in ``sensor_msgs/distortion_models.hpp``):

* ``none``: no coefficients.
* ``plumb_bob``: k1 k2 p1 p2 k3 (OpenCV's 5-coefficient model).
* ``rational_polynomial``: k1 k2 p1 p2 k3 k4 k5 k6; ROS drivers may send more than 8 values, the
  extra (thin-prism / tilt) terms must then be zero.
* ``equidistant``: fisheye k1 k2 k3 k4 (OpenCV's ``cv2.fisheye`` model).

An empty coefficient list means no distortion for any model (what uncalibrated or simulated
drivers publish).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

DISTORTION_MODELS = ("none", "plumb_bob", "rational_polynomial", "equidistant")
_NUM_COEFFS = {"none": 0, "plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}

# Fixed-point undistortion (OpenCV's default is 5 iterations) stops short by up to a pixel at the
# image corners of a strongly distorted lens; iterate until the reprojection error is negligible.
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


@dataclass(frozen=True, eq=False)
class CameraModel:
    """Intrinsics of one camera; ``K`` and ``D`` are stored as read-only float64 arrays."""

    width: int
    height: int
    K: np.ndarray
    distortion_model: str = "none"
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        if int(self.width) != self.width or int(self.height) != self.height \
                or self.width <= 0 or self.height <= 0:
            raise ValueError("image size must be positive integers, "
                             f"got {self.width}x{self.height}")
        K = np.array(self.K, dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"K must be 3x3, got shape {K.shape}")
        if not np.all(np.isfinite(K)):
            raise ValueError(f"K contains NaN or Inf: {K.tolist()}")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f"focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]} "
                             "(an all-zero K means the camera is uncalibrated)")
        if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0.0:
            raise ValueError("K must be upper triangular with last row [0, 0, 1], "
                             f"got {K.tolist()}")
        if K[0, 1] != 0.0:
            raise ValueError(f"skewed K (K[0,1]={K[0, 1]}) is not supported")
        if self.distortion_model not in DISTORTION_MODELS:
            raise ValueError(f"unknown distortion model {self.distortion_model!r}; "
                             f"expected one of {DISTORTION_MODELS}")
        D = np.array(self.D, dtype=np.float64).ravel()
        if not np.all(np.isfinite(D)):
            raise ValueError(f"distortion coefficients contain NaN or Inf: {D.tolist()}")
        D = _canonical_coefficients(self.distortion_model, D)
        K.setflags(write=False)
        D.setflags(write=False)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "D", D)

    @classmethod
    def from_ros(cls, width: int, height: int, k: Sequence[float], d: Sequence[float],
                 distortion_model: str) -> "CameraModel":
        """From ``CameraInfo`` fields as plain values: ``k`` is the row-major 3x3 K, ``d`` is D."""
        k = np.asarray(k, dtype=np.float64)
        if k.size != 9:
            raise ValueError(f"CameraInfo.k must have 9 values, got {k.size}")
        return cls(width, height, k.reshape(3, 3), distortion_model, np.asarray(d, np.float64))

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def focal_mean(self) -> float:
        """Mean focal length in pixels: converts pixel thresholds to normalized units."""
        return 0.5 * (self.fx + self.fy)

    @property
    def is_distorted(self) -> bool:
        return bool(np.any(self.D != 0.0))

    def scaled(self, sx: float, sy: float) -> "CameraModel":
        """The camera of the image resized by sx = new width / old width, sy = new / old height.

        With integer pixel centres, u' = (u + 0.5) * s - 0.5, so the principal point is not simply
        multiplied. Distortion acts on normalized coordinates and is unchanged.
        """
        if not (sx > 0 and sy > 0):
            raise ValueError(f"scale factors must be positive, got sx={sx}, sy={sy}")
        K = self.K.copy()
        K[0, 0] *= sx
        K[1, 1] *= sy
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return CameraModel(int(round(self.width * sx)), int(round(self.height * sy)), K,
                           self.distortion_model, self.D.copy())

    def undistort_points(self, pts_px: np.ndarray) -> np.ndarray:
        """Normalized image coordinates (N, 2) of pixel coordinates (N, 2)."""
        pts = np.asarray(pts_px, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            return np.zeros((0, 2))
        if not self.is_distorted:
            return (pts - self.K[:2, 2]) / np.diag(self.K)[:2]
        src = pts.reshape(-1, 1, 2)
        if self.distortion_model == "equidistant":
            out = cv2.fisheye.undistortPoints(src, self.K, self.D, criteria=_UNDISTORT_CRITERIA)
        else:
            out = cv2.undistortPoints(src, self.K, self.D, criteria=_UNDISTORT_CRITERIA)
        return out.reshape(-1, 2)

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Pixel coordinates (N, 2) of 3D points (N, 3) in the camera frame, distortion applied.

        Points at or behind the camera plane (z <= 0) get NaN: OpenCV would mirror them into view.
        """
        X = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
        out = np.full((len(X), 2), np.nan)
        front = X[:, 2] > 0
        if not np.any(front):
            return out
        Xf = X[front]
        if not self.is_distorted:
            out[front] = Xf[:, :2] / Xf[:, 2:] * np.diag(self.K)[:2] + self.K[:2, 2]
            return out
        zero = np.zeros(3)
        if self.distortion_model == "equidistant":
            px, _ = cv2.fisheye.projectPoints(Xf.reshape(-1, 1, 3), zero, zero, self.K, self.D)
        else:
            px, _ = cv2.projectPoints(Xf, zero, zero, self.K, self.D)
        out[front] = px.reshape(-1, 2)
        return out


def _canonical_coefficients(model: str, D: np.ndarray) -> np.ndarray:
    """D padded/trimmed to the model's length; raises on a count the model cannot have."""
    n = _NUM_COEFFS[model]
    if D.size == 0:
        return np.zeros(n)
    if model == "none":
        if np.any(D != 0.0):
            raise ValueError(f"distortion model 'none' with non-zero coefficients {D.tolist()}")
        return np.zeros(0)
    if model == "rational_polynomial" and D.size > n:
        if np.any(D[n:] != 0.0):
            raise ValueError("rational_polynomial coefficients beyond k6 (thin prism / tilt) are "
                             f"not supported and must be zero, got {D[n:].tolist()}")
        return D[:n].copy()
    if D.size != n:
        raise ValueError(f"distortion model {model!r} needs {n} coefficients, got {D.size}")
    return D
