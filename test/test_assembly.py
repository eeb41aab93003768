"""The frame assembly the node and the bag reader share: the depth-pairing rule and the checks of
image, camera_info and depth, on duck-typed messages (no rclpy needed)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lightglue_ros.messages.assembly import (NO_CAMERA_INFO, FrameError, checked_depth,
                                             image_and_camera, nearest_depth)

MS = 1_000_000


def image_msg(pixels: np.ndarray, encoding: str) -> SimpleNamespace:
    height, width = pixels.shape[:2]
    return SimpleNamespace(encoding=encoding, height=height, width=width, is_bigendian=0,
                           step=pixels.strides[0], data=pixels.tobytes())


def camera_info(width: int, height: int, fx: float = 50.0) -> SimpleNamespace:
    return SimpleNamespace(width=width, height=height, distortion_model="plumb_bob",
                           k=[fx, 0, width / 2, 0, fx, height / 2, 0, 0, 1], d=[0.0] * 5,
                           binning_x=0, binning_y=0,
                           roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0))


def test_depth_is_the_nearest_stamp_within_the_tolerance_the_earlier_of_two():
    stamps = [100 * MS, 110 * MS, 130 * MS]
    assert nearest_depth(stamps, 112 * MS, 0.02) == 1
    assert nearest_depth(stamps, 120 * MS, 0.02) == 1  # 10 ms from both: the earlier
    assert nearest_depth(stamps, 151 * MS, 0.02) is None  # 21 ms from the nearest
    assert nearest_depth(stamps, 150 * MS, 0.02) == 2  # exactly the tolerance
    assert nearest_depth([], 100 * MS, 0.02) is None


def test_image_and_camera_say_which_input_is_wrong():
    rgb = np.zeros((8, 12, 3), np.uint8)
    rgb[..., 2] = 255
    image, camera = image_and_camera(image_msg(rgb[..., ::-1].copy(), "bgr8"),
                                     camera_info(12, 8), compressed=False)
    assert image[0, 0].tolist() == [0, 0, 255] and (camera.width, camera.height) == (12, 8)
    cases = [(image_msg(rgb, "rgb8"), None, "camera_info", NO_CAMERA_INFO),
             (image_msg(rgb, "nv21"), camera_info(12, 8), "image", "unsupported encoding"),
             (image_msg(rgb, "rgb8"), camera_info(12, 8, fx=0.0), "camera_info", "focal"),
             (image_msg(rgb, "rgb8"), camera_info(16, 8), "camera_info",
              "camera_info is 16x8 but the image is 12x8")]
    for msg, info, source, text in cases:
        with pytest.raises(FrameError, match=text) as err:
            image_and_camera(msg, info, compressed=False)
        assert err.value.source == source and not err.value.warning


def test_depth_is_checked_against_the_image_and_its_range():
    millimetres = np.full((8, 12), 1500, np.uint16)
    depth, unit = checked_depth(image_msg(millimetres, "16UC1"), (8, 12), 0.1, 20.0)
    assert unit == 0.001 and depth.shape == (8, 12)
    with pytest.raises(FrameError, match="depth image is 12x8 but the image is 16x8") as err:
        checked_depth(image_msg(millimetres, "16UC1"), (8, 16), 0.1, 20.0)
    assert not err.value.warning
    with pytest.raises(FrameError, match="bad depth image: unsupported encoding"):
        checked_depth(image_msg(millimetres.astype(np.uint8), "mono8"), (8, 12), 0.1, 20.0)
    with pytest.raises(FrameError, match="no valid pixel") as err:
        checked_depth(image_msg(np.full((8, 12), np.nan, np.float32), "32FC1"), (8, 12),
                      0.1, 20.0)
    assert err.value.warning and err.value.source == "depth"
