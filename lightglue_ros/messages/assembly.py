"""One frame from its messages, the same way in the node and in the bag reader: the image decoded
and checked against its camera_info, the depth image paired by header stamp and checked against
the image. What cannot be used raises ``FrameError`` naming the input at fault, so that the node
(in /diagnostics) and the bag reader (in its report) say the same thing about the same message.
"""
from __future__ import annotations

import bisect
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import LightGlueRosError
from ..geometry.camera import CameraModel
from ..geometry.pnp import depth_coverage
from ..types import NS
from . import decode

NO_CAMERA_INFO = "no camera_info received yet: frames are dropped until it arrives"


class FrameError(LightGlueRosError):
    """A message that cannot be used: ``source`` is image, camera_info or depth; ``warning`` for
    a depth image that is well formed but useless (the frame is still tracked, without depth)."""

    def __init__(self, source: str, message: str, warning: bool = False) -> None:
        super().__init__(message)
        self.source, self.warning = source, warning


def image_and_camera(msg: Any, camera_msg: Any | None, compressed: bool,
                     camera_of: Callable[[Any], CameraModel] = decode.camera_model
                     ) -> tuple[np.ndarray, CameraModel]:
    """The image (RGB or grey) of an Image or CompressedImage and the camera of the latest
    camera_info (``camera_of`` may cache it), checked to be the same size."""
    if camera_msg is None:
        raise FrameError("camera_info", NO_CAMERA_INFO)
    try:
        image = decode.compressed_to_array(msg) if compressed else decode.image_to_array(msg)
    except LightGlueRosError as exc:
        raise FrameError("image", str(exc)) from exc
    try:
        camera = camera_of(camera_msg)
    except ValueError as exc:
        raise FrameError("camera_info", str(exc)) from exc
    if (camera.width, camera.height) != (image.shape[1], image.shape[0]):
        raise FrameError("camera_info", f"camera_info is {camera.width}x{camera.height} but the "
                                        f"image is {image.shape[1]}x{image.shape[0]}")
    return image, camera


def nearest_depth(depth_ns: Sequence[int], image_ns: int, sync_s: float) -> int | None:
    """Index into ``depth_ns`` (header stamps, ascending) of the depth image paired with an image:
    the nearest stamp within ``sync_s``; of two equally near, the earlier."""
    k = bisect.bisect_left(depth_ns, image_ns)
    near = [c for c in (k - 1, k) if 0 <= c < len(depth_ns)]
    if not near:
        return None
    best = min(near, key=lambda c: (abs(depth_ns[c] - image_ns), c))
    return best if abs(depth_ns[best] - image_ns) <= round(sync_s * NS) else None


def checked_depth(msg: Any, shape: tuple[int, int], depth_min_m: float, depth_max_m: float
                  ) -> tuple[np.ndarray, float]:
    """Depth pixels and metres per unit of a depth image that fits the image (``shape`` is its
    height and width) and has at least one pixel in range; invalid pixels are left to the
    tracker, which ignores them one by one."""
    try:
        depth, unit = decode.depth_to_array(msg)
    except LightGlueRosError as exc:
        raise FrameError("depth", f"bad depth image: {exc}") from exc
    if depth.shape != shape:
        raise FrameError("depth", f"depth image is {depth.shape[1]}x{depth.shape[0]} but the "
                                  f"image is {shape[1]}x{shape[0]}: tracked without depth")
    if depth_coverage(depth, unit, depth_min_m, depth_max_m) == 0:
        raise FrameError("depth", "depth image has no valid pixel (NaN, Inf, 0 or outside "
                                  f"[{depth_min_m:g}, {depth_max_m:g}] m): tracked without depth",
                         warning=True)
    return depth, unit
