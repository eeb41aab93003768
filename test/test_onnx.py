"""ONNX export and the ONNX Runtime backend (CPU): graphs agree with the PyTorch models stage by
stage and at dynamic sizes, the host loop makes the same decisions, the cache re-exports when the
weights change, the FP32 tagging for FP16 engines, the CUDA-graph code paths run eagerly on CPU,
and ``parity --backend onnxruntime`` meets the foundation bars on a subset of ../shared/golden
that holds every extractor, mode and image set."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import (GOLDEN, assert_parity_meets_the_bars, needs_shared, run_cli,
                      tensorrt_parser_problems, textured_image, textured_tensor)
from lightglue_ros.config import Config
from lightglue_ros.errors import BackendError, WeightsError
from lightglue_ros.inference.graphs import (GraphExtractor, GraphStages, TorchGraphRunner,
                                            extractor_graphs)
from lightglue_ros.models.factory import build_extractor, build_matcher
from lightglue_ros.models.lightglue import AdaptiveConf, normalize_keypoints, run_adaptive

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from lightglue_ros.inference.export import (export_extractor, export_matcher,  # noqa: E402
                                            state_dict_sha256)
from lightglue_ros.inference.onnxruntime_backend import OnnxRuntimeBackend, OrtRunner  # noqa


def real_models(extractor: str, **changes) -> tuple:
    cfg = Config(extractor=extractor, **changes)
    try:
        return cfg, build_extractor(cfg), build_matcher(cfg)
    except WeightsError as exc:
        pytest.skip(f"{extractor} weights unavailable: {exc}")


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("engines")


SLOW_FIXTURES = {"aliked"}  # the real ALIKED and its LightGlue exported to ONNX: about a minute


@pytest.fixture(scope="module")
def aliked(engine_dir):
    cfg, extractor, matcher = real_models("aliked")
    return (cfg, extractor, matcher, export_extractor(extractor, engine_dir),
            export_matcher(matcher, "aliked", engine_dir))


def ort_runner(*exported) -> OrtRunner:
    return OrtRunner(list(exported), torch.device("cpu"), ["CPUExecutionProvider"])


# --- host-side selection reproduces the models exactly (no ONNX involved) -------------------------
def canonical(features: dict) -> dict:
    """Features sorted by score, then y, then x (an order independent of how ties were ranked)."""
    k, sc = features["keypoints"][0].numpy(), features["keypoint_scores"][0].numpy()
    order = torch.from_numpy(np.lexsort((k[:, 0], k[:, 1], -sc)))
    return {key: v[:, order] for key, v in features.items()}


@pytest.mark.slow
@pytest.mark.parametrize("extractor,changes", [
    ("superpoint", {}), ("superpoint", {"max_keypoints": 40}), ("aliked", {}),
    ("aliked", {"max_keypoints": 30}), ("aliked", {"detection_threshold": 0.0,
                                                   "max_keypoints": 200}),
    ("disk", {}), ("disk", {"max_keypoints": 50})])
def test_graph_extractor_reproduces_the_model_bit_for_bit(extractor, changes):
    cfg = Config(extractor=extractor, **changes)
    torch.manual_seed(0)
    model = build_extractor(cfg, weights=False)  # random weights: the code path is what matters
    graphs = GraphExtractor(model, TorchGraphRunner(extractor_graphs(model), torch.device("cpu")))
    for h, w in ((96, 128), (121, 87)):  # landscape and portrait, not multiples of 8/16/32
        img = textured_tensor(h, w, h, model.input_channels)
        with torch.inference_mode():
            ref, out = model(img), graphs(img)
        # the same scores in the same order; exactly tied keypoints may come in either order
        assert torch.equal(ref["keypoint_scores"], out["keypoint_scores"]), (extractor, (h, w))
        ref, out = canonical(ref), canonical(out)
        for key in ("keypoints", "keypoint_scores", "descriptors"):
            assert torch.equal(ref[key], out[key]), (extractor, changes, (h, w), key)


def by_position(features: dict) -> dict:
    """Features sorted by y, then x."""
    k = features["keypoints"][0].numpy()
    order = torch.from_numpy(np.lexsort((k[:, 0], k[:, 1])))
    return {key: v[:, order] for key, v in features.items()}


# --- extractor graphs through ONNX Runtime --------------------------------------------------------
@pytest.mark.slow
def test_superpoint_export_with_random_weights_has_dynamic_image_size(engine_dir):
    cfg = Config(extractor="superpoint", max_keypoints=64)
    torch.manual_seed(0)
    model = build_extractor(cfg, weights=False)
    exported = export_extractor(model, engine_dir)
    assert set(exported.graphs) == {"dense"}
    session = ort.InferenceSession(str(exported.path("dense")), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert session.get_inputs()[0].shape[2:] == ["height", "width"]
    runner = ort_runner(exported)
    for h, w in ((64, 80), (97, 161), (16, 24)):
        desc_map, values, indices = runner.run("dense", textured_tensor(h, w, channels=1))
        assert desc_map.shape == (1, 256, h // 8, w // 8)
        assert values.shape == indices.shape == (65,)  # max_keypoints + 1 candidates
        assert bool((values[:-1] >= values[1:]).all())  # best first
    graphs = GraphExtractor(model, runner)
    img = textured_tensor(97, 161, channels=1)
    with torch.inference_mode():
        ref, out = model(img), graphs(img)
    assert out["keypoints"].shape == ref["keypoints"].shape
    ref, out = by_position(ref), by_position(out)  # random weights give (nearly) tied scores
    assert torch.equal(out["keypoints"], ref["keypoints"])
    assert torch.allclose(out["keypoint_scores"], ref["keypoint_scores"], atol=1e-6)
    assert torch.allclose(out["descriptors"], ref["descriptors"], atol=1e-4)


def _agreement(ref: dict, out: dict) -> tuple[float, float]:
    d = torch.cdist(ref["keypoints"][0], out["keypoints"][0])
    near, idx = d.min(1)
    ok = near <= 1.0
    cos = (ref["descriptors"][0][ok] * out["descriptors"][0][idx[ok]]).sum(-1)
    return float(ok.float().mean()), float(cos.mean())


@pytest.mark.parametrize("extractor", ["aliked", "disk"])
def test_extractor_graphs_agree_with_torch_at_dynamic_sizes(extractor, engine_dir, aliked):
    if extractor == "aliked":
        _, model, _, exported, _ = aliked
    else:
        _, model, _ = real_models(extractor)
        exported = export_extractor(model, engine_dir)
    graphs = GraphExtractor(model, ort_runner(exported))
    for h, w in ((120, 160), (150, 110)):  # both ALIKED orientation graphs
        img = textured_tensor(h, w, w)
        with torch.inference_mode():
            ref, out = model(img), graphs(img)
        within, cosine = _agreement(ref, out)
        assert abs(len(ref["keypoints"][0]) - len(out["keypoints"][0])) <= 2
        assert within >= 0.98 and cosine >= 0.99, (extractor, (h, w), within, cosine)


def test_aliked_descriptor_graph_handles_one_and_many_keypoints(aliked):
    _, model, _, exported, _ = aliked
    runner = ort_runner(exported)
    features = torch.nn.functional.normalize(torch.rand(1, 128, 70, 90), dim=1)
    wh = torch.tensor([89.0, 69.0])
    for n in (1, 5, 300):
        kpts = torch.rand(n, 2) * 2 - 1
        (desc,) = runner.run("describe", features, kpts, wh)
        with torch.inference_mode():
            ref = model.desc_head(features, kpts, wh)
        assert desc.shape == (n, 128)
        assert torch.allclose(desc, ref, atol=1e-5)


# --- LightGlue stages -----------------------------------------------------------------------------
@pytest.mark.parametrize("m,n", [(1, 1), (1, 57), (23, 9), (300, 211)])
def test_lightglue_stage_graphs_agree_with_torch(aliked, m, n):
    _, _, lg, _, exported = aliked
    stages = GraphStages(ort_runner(exported), lg.n_layers)
    torch.manual_seed(m * 1000 + n)
    k0, k1 = torch.rand(1, m, 2) * 2 - 1, torch.rand(1, n, 2) * 2 - 1
    d0, d1 = torch.randn(1, m, 128), torch.randn(1, n, 128)

    def close(a, b, tol=1e-4):
        assert a.shape == b.shape
        assert torch.allclose(a, b, rtol=tol, atol=tol), float((a - b).abs().max())

    with torch.inference_mode():
        (a0, e0), (r0, f0) = stages.encode(k0, d0), lg.encode(k0, d0)
        (a1, e1), (r1, f1) = stages.encode(k1, d1), lg.encode(k1, d1)
        close(a0, r0), close(e0, f0), close(a1, r1), close(e1, f1)
        for i in (0, lg.n_layers - 1):
            close(stages.layer(i, r0, r1, f0, f1)[0], lg.layer(i, r0, r1, f0, f1)[0])
            close(stages.assign(i, r0, r1), lg.assign(i, r0, r1))
        for i in (0, lg.n_layers - 2):
            for a, b in zip(stages.confidence(i, r0, r1), lg.confidence(i, r0, r1)):
                close(a, b)
            close(stages.matchability(i, r1), lg.matchability(i, r1))


def test_assignment_graph_is_finite_for_extreme_logits(aliked):
    """log_sigmoid is exported as min(x, 0) - log(1 + exp(-|x|)), not Log(Sigmoid(x))."""
    _, _, lg, _, exported = aliked
    stages = GraphStages(ort_runner(exported), lg.n_layers)
    d0, d1 = torch.randn(1, 5, 256) * 200, torch.randn(1, 7, 256) * 200
    with torch.inference_mode():
        ours, ref = stages.assign(3, d0, d1), lg.assign(3, d0, d1)
    assert torch.isfinite(ours).all()
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-3)


def _golden_pair(extractor: str, mode: str, index: int = 0):
    from lightglue_ros.evaluation.parity import GoldenSet, find_images

    gold = GoldenSet(GOLDEN, extractor, find_images(GOLDEN))
    path = gold.pair_files(mode)[index]
    name0, name1 = path.stem.split("__")
    return (gold.features(path.parent.name, name0), gold.features(path.parent.name, name1),
            np.load(path))


def assert_same_decisions(ours, trace, ref: dict, conf: AdaptiveConf, n_layers: int) -> None:
    """Two float32 runs of one pair make the same decisions up to near-ties, and their scores
    agree within the tolerance where no decision flipped (evaluation/near_ties.py)."""
    from lightglue_ros.evaluation.near_ties import SCORE_TOLERANCE, compare_pair

    reference = {"matches0": ref["matches0"].numpy(), "matches1": ref["matches1"].numpy(),
                 "matching_scores0": ref["matching_scores0"].numpy(), "stop": ref["stop"]}
    result = compare_pair(ours, trace, reference, conf, n_layers)
    assert result.stop_same or result.exit_flip, result
    assert result.disagreements == 0, result
    assert (result.same + result.flips) / result.points >= 0.995, result
    assert result.max_score_diff <= SCORE_TOLERANCE, result


@needs_shared
@pytest.mark.parametrize("depth,width", [(0.95, 0.99), (-1.0, -1.0), (0.95, -1.0)])
def test_host_loop_on_graphs_makes_the_same_decisions(aliked, depth, width):
    """run_adaptive over the ONNX stages: same stop layer, same pruning, same matches."""
    from lightglue_ros.evaluation.match_trace import traced_match

    _, _, lg, _, exported = aliked
    stages = GraphStages(ort_runner(exported), lg.n_layers)
    f0, f1, _ = _golden_pair("aliked", "adaptive", 1)
    size0 = torch.tensor(f0.image_size, dtype=torch.float32)
    size1 = torch.tensor(f1.image_size, dtype=torch.float32)
    k0 = normalize_keypoints(f0.keypoints[None].float(), size0)
    k1 = normalize_keypoints(f1.keypoints[None].float(), size1)
    conf = AdaptiveConf(depth, width, 0.1, -1)
    with torch.inference_mode():
        ref = run_adaptive(lg, conf, k0, k1, f0.descriptors[None], f1.descriptors[None])
    ours, trace = traced_match(stages, conf, torch.device("cpu"), f0, f1)
    assert_same_decisions(ours, trace, ref, conf, lg.n_layers)
    if ours.layers == ref["stop"]:
        assert (ours.pruned0 == ref["prune0"].numpy()).mean() >= 0.99


# --- the backend ----------------------------------------------------------------------------------
def test_onnxruntime_backend_through_the_pipeline(engine_dir, aliked):
    from lightglue_ros.pipeline import Pipeline

    cfg, _, _, _, _ = aliked
    cfg = cfg.replace(backend="onnxruntime", engine_dir=str(engine_dir), max_keypoints=256)
    ours = Pipeline(cfg)
    ref = Pipeline(cfg.replace(backend="torch"))
    scene = textured_image(200, 280, 1)
    img0, img1 = scene[:180, :240].copy(), scene[12:192, 25:265].copy()
    f0, f1 = ours.extract(img0), ours.extract(img1)
    g0 = ref.extract(img0)
    assert abs(len(f0) - len(g0)) <= 2
    m, r = ours.match(f0, f1), ref.match(f0, f1)
    assert m.layers == r.layers
    assert (m.matches0 == r.matches0).mean() >= 0.99
    ours.set_thresholds(depth_confidence=-1.0, width_confidence=-1.0)
    assert ours.match(f0, f1).layers == 9


@needs_shared
def test_the_traced_match_is_the_onnxruntime_backends_match(engine_dir, aliked):
    """parity judges a traced run of the backend's stages: it must be the backend's run."""
    from lightglue_ros.evaluation.match_trace import matcher_stages, traced_match
    from lightglue_ros.pipeline import Pipeline

    cfg, _, _, _, _ = aliked
    pipe = Pipeline(cfg.replace(backend="onnxruntime", engine_dir=str(engine_dir)))
    stages, conf = matcher_stages(pipe.backend)
    f0, f1, _ = _golden_pair("aliked", "adaptive", 4)
    traced, trace = traced_match(stages, conf, pipe.device, f0, f1)
    plain = pipe.match(f0, f1)
    for key in ("matches0", "matches1", "scores0", "scores1", "pruned0", "pruned1"):
        assert np.array_equal(getattr(traced, key), getattr(plain, key)), key
    assert traced.layers == plain.layers and trace.log_scores is not None


def test_onnxruntime_backend_errors_are_clear(engine_dir):
    with pytest.raises(BackendError, match="fp16"):
        OnnxRuntimeBackend(Config(backend="onnxruntime", precision="fp16"), weights=False,
                           engine_dir=engine_dir)
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="CUDA"):
            OnnxRuntimeBackend(Config(backend="onnxruntime", device="cuda"), weights=False,
                               engine_dir=engine_dir)


def test_exports_are_cached_and_redone_when_the_weights_change(tmp_path):
    cfg = Config(extractor="superpoint", max_keypoints=32)
    model = build_extractor(cfg, weights=False)
    first = export_extractor(model, tmp_path)
    stamp = first.path("dense").stat().st_mtime_ns
    again = export_extractor(model, tmp_path)
    assert again.key == first.key and again.path("dense").stat().st_mtime_ns == stamp
    with torch.no_grad():
        model.convPb.bias.add_(1.0)
    changed = export_extractor(model, tmp_path)
    assert changed.key != first.key and changed.path("dense").is_file()
    assert state_dict_sha256(model) == json.loads(changed.manifest.read_text())["weights_sha256"]
    other = export_extractor(build_extractor(cfg.replace(max_keypoints=33), weights=False),
                             tmp_path)
    assert other.key not in (first.key, changed.key)  # keypoint limit is in the graph


def test_fp16_engines_keep_selection_and_normalisation_in_fp32(aliked):
    """Nodes tagged FP32 in the exported graphs (see inference/precision.py)."""
    _, _, _, exported, exported_lg = aliked

    def tagged(name, model=exported):
        graph = onnx.load(str(model.path(name)))
        return {n.op_type for n in graph.graph.node if n.name.startswith("fp32:")}, \
            {n.name for n in graph.graph.node if n.op_type == "Conv"}

    ops, convs = tagged("dense_landscape")
    assert {"TopK", "MaxPool", "ReduceL2", "Sigmoid"} <= ops
    tagged_convs = {c for c in convs if c.startswith("fp32:")}
    assert len(tagged_convs) == 1 and "score_head" in next(iter(tagged_convs))  # only the head
    ops, _ = tagged("describe")
    assert {"GridSample", "ReduceL2", "Gather"} <= ops
    ops, _ = tagged("assign0", exported_lg)
    assert {"LogSoftmax", "Exp", "Log"} <= ops
    manifest = json.loads(exported_lg.manifest.read_text())
    assert manifest["graphs"]["encode"]["fp16"] is False  # keypoint encoding: FP32 engine


def test_graphs_avoid_what_the_tensorrt_parser_rejects(aliked, engine_dir):
    """No If, no integer or dynamic Clip, no boolean ScatterND, constant TopK K <= 3839."""
    _, _, _, exported, exported_lg = aliked
    _, disk, _ = real_models("disk")
    paths = exported.files() + [exported_lg.path("layer0"), exported_lg.path("assign0")] + \
        export_extractor(disk, engine_dir).files()
    assert [p for path in paths for p in tensorrt_parser_problems(path)] == []


def test_keypoint_check_reports_lost_keypoints():
    from lightglue_ros.inference.precision import compare_keypoints, keypoint_check

    ref = {"keypoints": torch.tensor([[[10.0, 10.0], [20.0, 20.0], [30.0, 30.0]]])}
    same = {"keypoints": ref["keypoints"] + 0.3}
    fewer = {"keypoints": ref["keypoints"][:, :2]}
    assert compare_keypoints(ref, same)["lost"] == 0
    assert compare_keypoints(ref, fewer) == {"reference": 3, "candidate": 2, "matched": 2,
                                             "lost": 1, "count_difference": 1}
    assert keypoint_check(lambda x: same, lambda x: ref, [0])["ok"]
    assert not keypoint_check(lambda x: fewer, lambda x: ref, [0])["ok"]


def test_fp32_graphs_lose_no_keypoints_against_torch(aliked):
    """The check build-engines runs after an FP16 build, here ONNX Runtime FP32 vs torch."""
    from lightglue_ros.inference.precision import keypoint_check

    _, model, _, exported, _ = aliked
    graphs = GraphExtractor(model, ort_runner(exported))
    images = [textured_tensor(120, 160, s) for s in (3, 4)]
    report = keypoint_check(graphs, model, images)
    assert report["ok"], report


# --- CUDA-graph code paths, run eagerly on the CPU ------------------------------------------------
def test_padded_static_lengths_match_the_unpadded_layers(aliked):
    from lightglue_ros.models.lightglue import pad_to_length

    _, _, lg, _, _ = aliked
    torch.manual_seed(1)
    m, n, length = 37, 50, 64
    d0, d1 = torch.randn(1, m, 256), torch.randn(1, n, 256)
    e0 = lg.encode(torch.rand(1, m, 2), torch.randn(1, m, 128))[1]
    e1 = lg.encode(torch.rand(1, n, 2), torch.randn(1, n, 128))[1]
    with torch.inference_mode():
        ref0, ref1 = lg.transformers[2](d0, d1, e0, e1)
        (p0, mask0), (p1, mask1) = pad_to_length(d0, length), pad_to_length(d1, length)
        pe0 = torch.cat([e0, torch.ones(2, 1, 1, length - m, 64)], -2)
        pe1 = torch.cat([e1, torch.ones(2, 1, 1, length - n, 64)], -2)
        out0, out1 = lg.transformers[2](p0, p1, pe0, pe1, mask0, mask1)
    assert torch.allclose(out0[:, :m], ref0, atol=1e-4)
    assert torch.allclose(out1[:, :n], ref1, atol=1e-4)


@needs_shared
def test_torch_cuda_graph_paths_run_eagerly_on_cpu():
    """TorchBackend's cuda_graphs code (graph extractor + padded LightGlue) with capture off."""
    from lightglue_ros.inference.torch_backend import TorchBackend

    cfg, _, _ = real_models("aliked", width_confidence=-1.0)
    plain = TorchBackend(cfg)
    padded = TorchBackend(cfg)
    padded._enable_cuda_graphs(use_graphs=False)
    img = textured_tensor(120, 160)
    a, b = plain.extract(img), padded.extract(img)
    assert all(torch.equal(a[k], b[k]) for k in a)
    f0, f1, _ = _golden_pair("aliked", "adaptive", 2)
    args = (f0.keypoints[None], f1.keypoints[None], f0.descriptors[None], f1.descriptors[None],
            torch.tensor(f0.image_size, dtype=torch.float32),
            torch.tensor(f1.image_size, dtype=torch.float32))
    r, p = plain.match(*args), padded.match(*args)
    assert (p["matches0"] == r["matches0"]).float().mean() >= 0.995
    # the same run traced, as TorchBackend.match drives the padded stages
    from lightglue_ros.evaluation.match_trace import traced_match

    conf = dataclasses.replace(padded.matcher.adaptive_conf(padded.device), width_confidence=-1.0)
    padded.padded.begin(len(f0), len(f1))
    ours, trace = traced_match(padded.padded, conf, padded.device, f0, f1)
    assert np.array_equal(ours.matches0, p["matches0"].numpy())
    assert_same_decisions(ours, trace, r, conf, padded.matcher.n_layers)
    with pytest.raises(BackendError, match="CUDA"):
        TorchBackend(cfg.replace(cuda_graphs=True))


# --- CLI ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_export_cli_writes_and_lists_the_graphs(engine_dir):
    real_models("disk")
    proc = run_cli("export", "--extractor", "disk", "--engine-dir", str(engine_dir))
    onnx_files = sorted((engine_dir / "onnx").glob("disk.*.onnx")) + sorted(
        (engine_dir / "onnx").glob("lightglue-disk.*.onnx"))
    assert len(onnx_files) == 1 + 35  # disk dense + LightGlue: encode, 9 layers, 8 + 8 heads, 9
    for path in onnx_files:
        assert str(path) in proc.stdout
    assert "MB" in proc.stdout and "lightglue-disk" in proc.stdout


@needs_shared
@pytest.mark.parametrize("threads", [1, 2])
def test_parity_cli_with_onnxruntime_meets_the_bars(parity_runs, threads):
    """`parity --backend onnxruntime --cpu-threads N` on the golden subset (every extractor, mode
    and image set, extraction and matching), one process per thread count: some of ONNX
    Runtime's kernels split their reductions by thread, so the sums come in another order."""
    name = f"onnxruntime-{threads}"
    assert_parity_meets_the_bars(parity_runs.report(name), parity_runs.golden[name])
