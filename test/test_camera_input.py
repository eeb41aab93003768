"""Camera input as drivers send it, on duck-typed messages (no rclpy): camera_info's P and R,
binning and ROI; YUV 4:2:2 and Bayer encodings; depth images refused on the colour input;
compressedDepth; and the stereo pair (pairing rule, rectification from CameraInfo, a swapped
pair, eyes of different sizes)."""
from __future__ import annotations

import struct
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from stereo_fixtures import PLANE_Z_M, image_shift, raw_pair, render_pair

from lightglue_ros.errors import ImageError
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.messages import decode
from lightglue_ros.messages.assembly import FrameError
from lightglue_ros.messages.stereo import StereoRectifier, stereo_frame


def image_msg(pixels: np.ndarray, encoding: str) -> SimpleNamespace:
    height, width = pixels.shape[:2]
    return SimpleNamespace(encoding=encoding, height=height, width=width, is_bigendian=0,
                           step=pixels.strides[0], data=pixels.tobytes())


def info_msg(camera: CameraModel, R=np.eye(3), P=None, binning=(0, 0), roi=(0, 0, 0, 0)
             ) -> SimpleNamespace:
    """A CameraInfo as a driver fills it (plumb_bob, D of the camera, R, P = K [I | 0])."""
    P = np.hstack([camera.K, np.zeros((3, 1))]) if P is None else np.asarray(P)
    D = camera.D if camera.D.size else np.zeros(5)
    return SimpleNamespace(
        width=camera.width, height=camera.height, distortion_model="plumb_bob", d=list(D),
        k=list(camera.K.ravel()), r=list(np.ravel(R)), p=list(P.ravel()),
        binning_x=binning[0], binning_y=binning[1],
        roi=SimpleNamespace(x_offset=roi[0], y_offset=roi[1], width=roi[2], height=roi[3],
                            do_rectify=False))


CAMERA = CameraModel(640, 480, [[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]], "plumb_bob",
                     [-0.3, 0.1, 0.001, 0.0, 0.0])


# --- camera_info ---------------------------------------------------------------------------

def test_rectified_topic_uses_P_without_distortion():
    P = np.array([[480.0, 0, 322.0, 0], [0, 481.0, 236.0, 0], [0, 0, 1, 0]])
    msg = info_msg(CAMERA, P=P)
    raw = decode.camera_model(msg)
    assert raw.is_distorted and raw.fx == 500.0
    rect = decode.camera_model(msg, rectified=True)
    assert not rect.is_distorted
    np.testing.assert_array_equal(rect.K, P[:, :3])
    msg.p = [0.0] * 12          # an uncalibrated driver: K stands in for P
    np.testing.assert_array_equal(decode.camera_model(msg, rectified=True).K, CAMERA.K)
    assert decode.rectified_topic("auto", "/camera/infra1/image_rect_raw")
    assert decode.rectified_topic("auto", "/zed/left/image_rect_color/compressed")
    assert not decode.rectified_topic("auto", "/rectifier_ns/image_raw")
    assert decode.rectified_topic("rectified", "/camera/image_raw")
    assert not decode.rectified_topic("raw", "/left/image_rect")


def test_binning_and_roi_give_the_camera_of_the_image_sent():
    binned = decode.camera_model(info_msg(CAMERA, binning=(2, 2)))
    assert (binned.width, binned.height) == (320, 240)
    np.testing.assert_allclose(binned.K, CAMERA.scaled(0.5, 0.5).K)
    np.testing.assert_array_equal(binned.D, CAMERA.D)
    cut = decode.camera_model(info_msg(CAMERA, roi=(100, 40, 400, 300)))
    assert (cut.width, cut.height) == (400, 300)
    assert (cut.K[0, 2], cut.K[1, 2], cut.fx) == (219.5, 199.5, 500.0)
    both = decode.camera_model(info_msg(CAMERA, binning=(2, 1), roi=(100, 40, 400, 300)))
    assert (both.width, both.height) == (200, 300)
    # the same ray: a pixel of the full sensor and its place in the binned window
    ray = CAMERA.undistort_points([[300.0, 200.0]])
    np.testing.assert_allclose(both.undistort_points([[(300 - 100 + 0.5) / 2 - 0.5, 160.0]]),
                               ray, atol=1e-9)


# --- encodings -----------------------------------------------------------------------------

def _colour_image() -> np.ndarray:
    rgb = np.zeros((8, 12, 3), np.uint8)
    rgb[:, :4] = (200, 30, 30)
    rgb[:, 4:8] = (30, 200, 30)
    rgb[:, 8:] = (30, 30, 200)
    return rgb


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2", "uyvy", "yuyv"])
def test_yuv422_is_decoded(encoding):
    rgb = _colour_image()
    # BT.601 video range, what UVC cameras send
    yuv = rgb.astype(float) @ np.array([[0.257, -0.148, 0.439], [0.504, -0.291, -0.368],
                                        [0.098, 0.439, -0.071]]) + (16, 128, 128)
    y, u, v = (np.round(yuv[..., i]).astype(np.int32) for i in range(3))
    packed = np.empty((8, 24), np.uint8)
    uyvy = encoding in ("yuv422", "uyvy")
    luma, chroma = (slice(1, None, 2), slice(0, None, 2)) if uyvy else \
        (slice(0, None, 2), slice(1, None, 2))
    packed[:, luma] = y
    c = np.empty((8, 12), np.int32)
    c[:, 0::2], c[:, 1::2] = u[:, 0::2], v[:, 0::2]
    packed[:, chroma] = c
    msg = image_msg(packed.reshape(8, 12, 2), encoding)
    out = decode.image_to_array(msg)
    assert out.shape == (8, 12, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(out.astype(int), rgb.astype(int), atol=6)
    odd = SimpleNamespace(**vars(msg))
    odd.width = 11
    with pytest.raises(ImageError, match="even width"):
        decode.image_to_array(odd)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_is_demosaiced_in_the_right_colours(pattern, bits):
    rgb = np.zeros((16, 16, 3), np.uint16 if bits == 16 else np.uint8)
    rgb[..., 0] = 200 * (257 if bits == 16 else 1)           # a red surface
    rgb[..., 1] = 60 * (257 if bits == 16 else 1)
    channel = {"r": 0, "g": 1, "b": 2}
    mosaic = np.empty((16, 16), rgb.dtype)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, channel[pattern[k]]]
    out = decode.image_to_array(image_msg(mosaic, f"bayer_{pattern}{bits}"))
    assert out.shape == (16, 16, 3) and out.dtype == rgb.dtype
    np.testing.assert_allclose(out[4:-4, 4:-4].astype(float), rgb[4:-4, 4:-4].astype(float),
                               rtol=0.02, atol=2)


@pytest.mark.parametrize("encoding,dtype", [("16UC1", np.uint16), ("32FC1", np.float32)])
def test_depth_on_the_colour_input_is_refused(encoding, dtype):
    with pytest.raises(ImageError, match=f"'{encoding}' is a depth image"):
        decode.image_to_array(image_msg(np.ones((8, 12), dtype), encoding))
    assert decode.depth_to_array(image_msg(np.ones((8, 12), dtype), encoding))[0].shape == (8, 12)
    assert decode.image_to_array(image_msg(np.ones((8, 12), np.uint16), "mono16")).shape == (8, 12)


def _compressed_depth(png: np.ndarray, fmt: str, a: float = 0.0, b: float = 0.0
                      ) -> SimpleNamespace:
    ok, data = cv2.imencode(".png", png)
    assert ok
    return SimpleNamespace(format=fmt, data=struct.pack("<i2f", 0, a, b) + data.tobytes())


def test_compressed_depth_png():
    mm = np.array([[0, 1000, 2500], [65535, 300, 12]], np.uint16)
    depth, unit = decode.depth_to_array(_compressed_depth(mm, "16UC1; compressedDepth png"))
    assert unit == 0.001 and depth.dtype == np.uint16
    np.testing.assert_array_equal(depth, mm)
    # 32FC1: the transport quantises inverse depth, v = a / z + b, 0 for invalid pixels
    a = 100.0 * 101.0                      # depth_quantization 100, depth_max 10 m (defaults)
    b = 1.0 - a / 10.0
    metres = np.array([[1.0, 2.5, np.nan]], np.float32)
    v = np.where(np.isnan(metres), 0, np.round(a / np.nan_to_num(metres, nan=1) + b)
                 ).astype(np.uint16)
    depth, unit = decode.depth_to_array(_compressed_depth(v, "32FC1; compressedDepth", a, b))
    assert unit == 1.0 and depth.dtype == np.float32
    np.testing.assert_allclose(depth[0, :2], metres[0, :2], rtol=1e-3)
    assert np.isnan(depth[0, 2])
    for fmt, text in (("16UC1; compressedDepth rvl", "RVL"), ("png", "not compressedDepth"),
                      ("8UC1; compressedDepth", "expected 16UC1 or 32FC1")):
        with pytest.raises(ImageError, match=text):
            decode.depth_to_array(_compressed_depth(mm, fmt))


# --- stereo --------------------------------------------------------------------------------

def _rectified_infos(baseline: float, camera: CameraModel = CAMERA):
    K = np.array([[480.0, 0, 322.0], [0, 480.0, 236.0], [0, 0, 1]])
    P_left = np.hstack([K, np.zeros((3, 1))])
    P_right = P_left.copy()
    P_right[0, 3] = -K[0, 0] * baseline
    return info_msg(camera, P=P_left), info_msg(camera, P=P_right)


def test_rectified_pair_baseline_from_the_right_P():
    left_info, right_info = _rectified_infos(0.05)
    rect = StereoRectifier(rectified=True).rectification(left_info, right_info)
    assert rect.baseline_m == pytest.approx(0.05) and not rect.resamples
    assert not rect.camera.is_distorted and rect.camera.fx == 480.0
    image = np.zeros((480, 640), np.uint8)
    left, camera, right, baseline = stereo_frame(image, image_msg(image + 1, "mono8"), False,
                                                 rect)
    assert left is image and right[0, 0] == 1 and camera is rect.camera and baseline == 0.05
    # binned on both eyes: the baseline does not change, the camera follows the image
    left_info.binning_x = left_info.binning_y = right_info.binning_x = right_info.binning_y = 2
    binned = StereoRectifier(rectified=True).rectification(left_info, right_info)
    assert binned.baseline_m == pytest.approx(0.05) and binned.camera.width == 320


def test_swapped_pair_and_mismatched_eyes_are_errors():
    left_info, right_info = _rectified_infos(0.05)
    with pytest.raises(FrameError, match="swapped") as err:
        StereoRectifier(rectified=True).rectification(right_info, left_info)
    assert err.value.source == "stereo"
    small = CameraModel(320, 240, [[250.0, 0, 160], [0, 250.0, 120], [0, 0, 1]])
    with pytest.raises(FrameError, match="left camera is 640x480 but right 320x240"):
        StereoRectifier(rectified=True).rectification(left_info, _rectified_infos(0.05, small)[1])
    rect = StereoRectifier(rectified=True).rectification(left_info, right_info)
    with pytest.raises(FrameError, match="right image is 320x240 but the left 640x480"):
        stereo_frame(np.zeros((480, 640), np.uint8),
                     image_msg(np.zeros((240, 320), np.uint8), "mono8"), False, rect)
    with pytest.raises(FrameError, match="right image: .*depth image"):
        stereo_frame(np.zeros((480, 640), np.uint8),
                     image_msg(np.zeros((480, 640), np.uint16), "16UC1"), False, rect)
    right_info.p = [0.0] * 12
    with pytest.raises(FrameError, match="right camera_info has no projection P"):
        StereoRectifier(rectified=False).rectification(left_info, right_info)


def test_raw_pair_rectified_from_camera_info_R_and_P():
    pair = raw_pair()
    left, right = render_pair(pair)
    T = np.linalg.inv(pair.T_left_right)         # x_right = R x_left + t
    size = (pair.left.width, pair.left.height)
    R1, R2, P1, P2 = cv2.stereoRectify(pair.left.K, pair.left.D, pair.right.K, pair.right.D,
                                       size, T[:3, :3], T[:3, 3:], flags=cv2.CALIB_ZERO_DISPARITY,
                                       alpha=0.0)[:4]
    left_info = info_msg(pair.left, R1, P1)
    right_info = info_msg(pair.right, R2, P2)
    rectifier = StereoRectifier(rectified=False)
    rect = rectifier.rectification(left_info, right_info)
    assert rect.resamples and rectifier.rectification(left_info, right_info) is rect  # cached
    L, camera, R, baseline = stereo_frame(left, image_msg(right, "mono8"), False, rect)
    dx, dy = image_shift(L, R)
    assert abs(dy) < 0.2 and dx == pytest.approx(camera.fx * baseline / PLANE_Z_M, abs=0.3)
    # the same camera_infos taken for a rectified pair leave the rows apart (what the raw
    # rectification corrects)
    as_rect = StereoRectifier(rectified=True).rectification(left_info, right_info)
    L, _, R, _ = stereo_frame(left, image_msg(right, "mono8"), False, as_rect)
    assert abs(image_shift(L, R)[1]) > 1
