"""The synthetic camera: pinhole intrinsics, optional plumb_bob distortion, and pixel -> ray.

Conventions are OpenCV's so that ``cv2.projectPoints`` is the ground truth of the renderer: integer
pixel coordinates are pixel centres, u = fx * X / Z + cx before distortion, and the distortion
coefficients are (k1, k2, p1, p2, k3).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry.camera import CameraModel

# A ray whose re-projection misses its pixel by more than this is treated as "no ray" (it only
# happens where strong distortion has no inverse, e.g. far outside a fisheye-like image circle).
_MAX_REPROJECTION_PX = 1e-3


@dataclass(frozen=True)
class CameraInfo:
    """Intrinsics of the rendered images, in the terms of a ROS ``sensor_msgs/CameraInfo``."""

    K: np.ndarray        # (3, 3) float64 pinhole matrix
    width: int
    height: int
    D: np.ndarray        # (5,) float64 plumb_bob coefficients; all zero without distortion

    @property
    def distortion_model(self) -> str:
        """``"plumb_bob"`` when the images are distorted, ``"none"`` when they are ideal pinhole."""
        return "plumb_bob" if np.any(self.D != 0) else "none"

    def to_model(self) -> CameraModel:
        """The camera as the tracker and the ROS node see it."""
        return CameraModel(self.width, self.height, self.K, self.distortion_model, self.D)


def make_camera(width: int, height: int, distortion=None, focal: float | None = None
                ) -> CameraInfo:
    """A camera with the TUM RGB-D field of view (fx = fy = 525 px at 640 px wide), centred."""
    f = 525.0 * width / 640.0 if focal is None else float(focal)
    K = np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
    D = np.zeros(5) if distortion is None else np.asarray(distortion, np.float64).reshape(-1)
    if D.shape != (5,):
        raise ValueError(f"distortion must be the 5 plumb_bob coefficients k1 k2 p1 p2 k3, "
                         f"got {D.shape[0]} values")
    return CameraInfo(K=K, width=int(width), height=int(height), D=D)


def pixel_rays(camera: CameraInfo, u: np.ndarray, v: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Normalized ray coordinates (x, y) with z = 1 of pixel positions (u, v), float64.

    With distortion this is the exact inverse of ``cv2.projectPoints``: OpenCV's iterative
    undistortion run until it re-projects within 1e-6 px, then checked by re-projecting; rays that
    do not re-project onto their pixel within 1e-3 px (no inverse exists there) are NaN.
    """
    u = np.asarray(u, np.float64)
    v = np.asarray(v, np.float64)
    K = camera.K
    if camera.distortion_model == "none":
        return (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    pixels = np.stack([u.ravel(), v.ravel()], axis=-1)[:, None, :]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-6)
    xy = cv2.undistortPoints(pixels, K, camera.D, criteria=criteria).reshape(-1, 2)
    bad = np.hypot(*(_project(camera, xy) - pixels[:, 0, :]).T) > _MAX_REPROJECTION_PX
    xy[bad] = np.nan
    return xy[:, 0].reshape(u.shape), xy[:, 1].reshape(u.shape)


def _project(camera: CameraInfo, xy: np.ndarray) -> np.ndarray:
    """Pixel positions of normalized points (N, 2): OpenCV's plumb_bob model, as projectPoints
    computes it (which is slow for a million points)."""
    k1, k2, p1, p2, k3 = camera.D
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    K = camera.K
    return np.stack([K[0, 0] * xd + K[0, 1] * yd + K[0, 2], K[1, 1] * yd + K[1, 2]], -1)
