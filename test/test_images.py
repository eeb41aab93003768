"""Bad images give a clear error or an empty result, never a crash (real weights of the
default extractor, XFeat on a CPU)."""
import numpy as np
import pytest

from conftest import textured_image
from lightglue_ros.errors import ImageError
from lightglue_ros.images import load_image, to_tensor
from lightglue_ros.pipeline import Pipeline


@pytest.fixture(scope="module")
def pipe():
    return Pipeline(max_keypoints=256)


@pytest.mark.parametrize("image,reason", [
    (np.zeros((0, 0, 3), np.uint8), "empty image"),
    (np.zeros((1, 1, 3), np.uint8), "too small"),
    (np.zeros((64, 64, 2), np.uint8), "unsupported image shape"),
    (np.full((64, 64, 3), np.nan, np.float32), "NaN"),
    (np.zeros((64, 64, 3), np.int64), "unsupported image dtype"),
    ("not an image", "expected a numpy image"),
])
def test_unusable_images_raise_a_clear_error(pipe, image, reason):
    with pytest.raises(ImageError, match=reason):
        pipe.extract(image)


def test_black_image_gives_no_keypoints_and_no_matches(pipe):
    black = np.zeros((240, 320, 3), np.uint8)
    f_black = pipe.extract(black)
    f_tex = pipe.extract(textured_image())
    assert len(f_black) == 0 and f_black.descriptors.shape == (0, f_tex.descriptors.shape[1])
    matches = pipe.match(f_black, f_tex)
    assert len(matches) == 0 and matches.matches1.shape == (len(f_tex),)
    assert (matches.matches1 == -1).all() and matches.layers == 0


def test_sixteen_bit_grayscale_and_rgba_inputs_work(pipe):
    rgb = textured_image()
    ref = pipe.extract(rgb)
    assert len(ref) > 50
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])
    assert np.allclose(pipe.extract(rgba).keypoints.numpy(), ref.keypoints.numpy())
    rgb16 = rgb.astype(np.uint16) * 257  # same intensities in 16 bits
    assert np.allclose(pipe.extract(rgb16).keypoints.numpy(), ref.keypoints.numpy(), atol=1e-3)
    gray = rgb.mean(-1).astype(np.uint8)
    assert len(pipe.extract(gray)) > 50
    assert len(pipe.extract(gray[..., None])) > 50


def test_resize_returns_keypoints_in_original_pixels():
    rgb = textured_image(240, 320)
    big = np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)  # 640x480, same content
    tensor, scale = to_tensor(big, 3, resize=320)
    assert tensor.shape == (1, 3, 240, 320) and scale == 0.5
    small = Pipeline(max_keypoints=256).extract(rgb)
    resized = Pipeline(max_keypoints=256, resize=320).extract(big)
    # INTER_AREA halves the 2x image back to exactly rgb, so the keypoints must coincide
    mapped = (small.keypoints.numpy() + 0.5) * 2 - 0.5
    assert len(resized) == len(small)
    assert np.allclose(resized.keypoints.numpy(), mapped, atol=1e-3)


def test_load_image_reports_missing_files(tmp_path):
    with pytest.raises(ImageError, match="cannot read image"):
        load_image(tmp_path / "nope.png")
