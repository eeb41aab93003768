"""SuperPoint without its (non-commercial, not downloadable here) weights: shapes, the official
state-dict layout, and LightGlue's first-release key layout."""
import re

import pytest
import torch

from conftest import textured_image
from lightglue_ros.config import Config
from lightglue_ros.inference.torch_backend import TorchBackend
from lightglue_ros.models.factory import build_extractor, build_matcher
from lightglue_ros.models.lightglue import LightGlue
from lightglue_ros.models.superpoint import SuperPoint
from lightglue_ros.pipeline import Pipeline

# The layout of the official superpoint_v1.pth (Magic Leap), name -> shape.
OFFICIAL_LAYOUT = {
    "conv1a": (64, 1), "conv1b": (64, 64), "conv2a": (64, 64), "conv2b": (64, 64),
    "conv3a": (128, 64), "conv3b": (128, 128), "conv4a": (128, 128), "conv4b": (128, 128),
    "convPa": (256, 128), "convPb": (65, 256), "convDa": (256, 128), "convDb": (256, 256),
}


def official_state_dict(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, (c_out, c_in) in OFFICIAL_LAYOUT.items():
        k = 1 if name in ("convPb", "convDb") else 3
        sd[f"{name}.weight"] = torch.randn(c_out, c_in, k, k, generator=g) * 0.05
        sd[f"{name}.bias"] = torch.randn(c_out, generator=g) * 0.01
    return sd


def test_official_layout_loads_and_forward_gives_consistent_shapes(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTGLUE_ROS_WEIGHTS", str(tmp_path))
    path = tmp_path / "sp.pth"
    torch.save(official_state_dict(), path)
    model = build_extractor(Config(extractor="superpoint", extractor_weights=str(path),
                                   max_keypoints=200, detection_threshold=0.0))
    image = torch.from_numpy(textured_image(120, 160)).float().mean(-1)[None, None] / 255
    out = model(image)
    n = out["keypoints"].shape[1]
    assert out["keypoints"].shape == (1, n, 2) and out["keypoint_scores"].shape == (1, n)
    assert out["descriptors"].shape == (1, n, 256) and 0 < n <= 200
    assert torch.allclose(out["descriptors"].norm(dim=-1), torch.ones(n), atol=1e-5)
    k = out["keypoints"][0]
    assert (k[:, 0] >= 4).all() and (k[:, 0] < 160 - 4).all()  # borders removed
    assert (k[:, 1] >= 4).all() and (k[:, 1] < 120 - 4).all()
    assert (out["keypoint_scores"][0][:-1] >= out["keypoint_scores"][0][1:]).all()


def test_superpoint_rejects_images_smaller_than_a_cell():
    with pytest.raises(ValueError, match="at least 8x8"):
        SuperPoint()(torch.zeros(1, 1, 4, 4))


def test_first_release_lightglue_layout_is_renamed(tmp_path):
    torch.manual_seed(0)
    model = LightGlue.for_extractor("superpoint").eval()
    old = {re.sub(r"^transformers\.(\d+)\.(self_attn|cross_attn)\.", r"\2.\1.", k): v
           for k, v in model.state_dict().items()}
    assert any(k.startswith("self_attn.0.") for k in old)
    path = tmp_path / "superpoint_lightglue.pth"
    torch.save(old, path)
    loaded = build_matcher(Config(extractor="superpoint", matcher_weights=str(path)))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_pipeline_runs_superpoint_end_to_end_with_random_weights():
    torch.manual_seed(0)
    cfg = Config(extractor="superpoint", max_keypoints=128, detection_threshold=0.0)
    pipe = Pipeline(cfg, backend=TorchBackend(cfg, weights=False))
    img = textured_image()
    f0, f1, matches = pipe.match_images(img, img[:, ::-1].copy())
    assert f0.descriptors.shape == (len(f0), 256) and len(f0) == 128
    assert matches.matches0.shape == (len(f0),) and 1 <= matches.layers <= 9
    assert ((matches.matches0 == -1) | ((matches.matches0 >= 0) &
                                        (matches.matches0 < len(f1)))).all()
