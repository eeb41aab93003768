"""XFeat and LighterGlue as graphs: the graph path reproduces XFeat bit for bit when run by torch,
the ONNX Runtime graphs agree with the torch models at dynamic sizes (sides not multiples of 32,
landscape and portrait, gray input) and stage by stage, the host loop over them makes the same
early-exit and pruning decisions, and the graphs carry what TensorRT needs (parser constraints,
FP32 tags, shape ranges of the resized image).

Tolerances come from float32 reordering: ONNX Runtime's kernels sum in another order than
PyTorch's, which moves each value by a few ulps per layer (relative 1e-6 after XFeat's ~20
convolutions, 1e-5 after six attention layers); the bars are ten times that. Keypoints can only
differ where two candidate scores are that close (a swap at the top-k cut)."""
from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import (GOLDEN, needs_shared, run_cli, tensorrt_parser_problems, textured_image,
                      textured_tensor)
from lightglue_ros.config import Config
from lightglue_ros.errors import WeightsError
from lightglue_ros.inference.graphs import (GraphExtractor, GraphStages, TorchGraphRunner,
                                            extractor_graphs)
from lightglue_ros.models.factory import build_extractor, build_matcher
from lightglue_ros.models.lightglue import AdaptiveConf, normalize_keypoints, run_adaptive

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from lightglue_ros.inference.export import export_extractor, export_matcher  # noqa: E402
from lightglue_ros.inference.onnxruntime_backend import OrtRunner  # noqa: E402

# (height, width): VGA, then sides that are not multiples of 32, landscape and portrait
SIZES = ((480, 640), (250, 330), (330, 250))


SLOW_FIXTURES = {"xfeat"}  # the real XFeat and LighterGlue exported to ONNX


@pytest.fixture(scope="module")
def xfeat(tmp_path_factory):
    """The real XFeat and LighterGlue, exported once for the module."""
    cfg = Config(extractor="xfeat", max_keypoints=1024)
    try:
        extractor, matcher = build_extractor(cfg), build_matcher(cfg)
    except WeightsError as exc:
        pytest.skip(f"xfeat weights unavailable: {exc}")
    folder = tmp_path_factory.mktemp("engines")
    exported, exported_lg = (export_extractor(extractor, folder),
                             export_matcher(matcher, "xfeat", folder))
    # as the backend runs them: LightGlue's graphs without ONNX Runtime's rewrites
    runner = OrtRunner([exported, exported_lg], torch.device("cpu"), ["CPUExecutionProvider"],
                       exact=exported_lg.graphs)
    return SimpleNamespace(cfg=cfg, model=extractor, lg=matcher, exported=exported,
                           exported_lg=exported_lg, folder=folder, runner=runner,
                           stages=GraphStages(runner, matcher.n_layers))


# --- the graph path, run by torch: the model to the bit -------------------------------------------
@pytest.mark.parametrize("top_k", [1024, 30])
def test_graph_extractor_reproduces_xfeat_bit_for_bit(xfeat, top_k):
    model = build_extractor(xfeat.cfg.replace(max_keypoints=top_k))
    graphs = GraphExtractor(model, TorchGraphRunner(extractor_graphs(model), torch.device("cpu")))
    images = [textured_tensor(h, w, seed=h) for h, w in SIZES + ((96, 64),)]
    images.append(images[1].mean(dim=1, keepdim=True))  # gray input
    for img in images:
        with torch.inference_mode():
            ref, out = model(img), graphs(img)
        assert 0 < ref["keypoints"].shape[1] <= top_k
        for key in ("keypoints", "keypoint_scores", "descriptors"):
            assert torch.equal(ref[key], out[key]), (tuple(img.shape), key)
    tiny = textured_tensor(31, 64)
    assert graphs(tiny)["keypoints"].shape == (1, 0, 2) == model(tiny)["keypoints"].shape


# --- ONNX Runtime ---------------------------------------------------------------------------------
def test_dense_graph_has_a_dynamic_image_size_and_a_threshold_input(xfeat):
    assert set(xfeat.exported.graphs) == {"dense"}
    graph = onnx.load(str(xfeat.exported.path("dense"))).graph
    image, threshold = graph.input
    assert [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim] == \
        [1, 1, "height", "width"]
    assert [d.dim_value for d in threshold.type.tensor_type.shape.dim] == [1]
    runner = xfeat.runner
    gray = textured_tensor(64, 96).mean(1, keepdim=True)
    strict = runner.run("dense", gray, torch.tensor([0.05]))[1]
    loose = runner.run("dense", gray, torch.tensor([0.0]))[1]
    assert int((loose > 0).sum()) > int((strict > 0).sum())  # the threshold acts in the graph


@pytest.mark.parametrize("height,width", SIZES)
def test_backend_dense_graph_ranks_the_maxima_alone_with_the_same_outputs(xfeat, height, width):
    """The onnxruntime backend's export scores only the local maxima (NonZero, so not for
    TensorRT): on ONNX Runtime, and run by torch, the same candidates in the same order as the
    static graph that scores every pixel, to the bit."""
    from lightglue_ros.models.xfeat import resize_to_multiple

    peaks = export_extractor(xfeat.model, xfeat.folder, static=False)
    assert peaks.key != xfeat.exported.key
    ops = {n.op_type for n in onnx.load(str(peaks.path("dense"))).graph.node}
    assert "NonZero" in ops and "NonZero" not in {
        n.op_type for n in onnx.load(str(xfeat.exported.path("dense"))).graph.node}
    cpu = torch.device("cpu")
    runners = [(xfeat.runner, OrtRunner([peaks], cpu, ["CPUExecutionProvider"])),
               (TorchGraphRunner(extractor_graphs(xfeat.model), cpu),
                TorchGraphRunner(extractor_graphs(xfeat.model, static=False), cpu))]
    gray = resize_to_multiple(textured_tensor(height, width, seed=height).mean(1, keepdim=True))
    for threshold in (0.05, 0.5):  # more maxima than candidates, and fewer
        for static, dynamic in runners:
            with torch.inference_mode():
                desc, values, indices = static.run("dense", gray, torch.tensor([threshold]))
                desc2, values2, indices2 = dynamic.run("dense", gray, torch.tensor([threshold]))
            candidate = values > 0
            assert 0 < int(candidate.sum()) and torch.equal(candidate, values2 > 0)
            assert torch.equal(desc, desc2) and torch.equal(values, values2)
            assert torch.equal(indices[candidate], indices2[candidate])


def _same_pixels(ref: dict, out: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """For each reference keypoint, whether ours has the same pixel, and which one."""
    dist = torch.cdist(ref["keypoints"][0], out["keypoints"][0],
                       compute_mode="donot_use_mm_for_euclid_dist")  # exact zeros
    nearest = dist.min(1)
    return nearest.values == 0, nearest.indices


@pytest.mark.parametrize("height,width", SIZES)
def test_xfeat_graph_agrees_with_torch_at_dynamic_sizes(xfeat, height, width):
    model = xfeat.model
    graphs = GraphExtractor(model, xfeat.runner)
    img = textured_tensor(height, width, seed=width)
    with torch.inference_mode():
        ref, out = model(img), graphs(img)
    assert out["keypoints"].shape[1] == ref["keypoints"].shape[1] == 1024
    same, idx = _same_pixels(ref, out)
    assert float(same.float().mean()) >= 0.99
    scores = (out["keypoint_scores"][0, idx] - ref["keypoint_scores"][0])[same]
    assert float(scores.abs().max()) <= 1e-5
    cosine = (out["descriptors"][0, idx] * ref["descriptors"][0]).sum(-1)[same]
    assert float(cosine.min()) >= 1 - 1e-5
    assert bool((out["keypoint_scores"][0, :-1] >= out["keypoint_scores"][0, 1:]).all())


def test_lighterglue_stage_graphs_agree_with_torch(xfeat):
    lg, stages = xfeat.lg, xfeat.stages
    assert (lg.conf["num_heads"], lg.conf["descriptor_dim"], lg.n_layers) == (1, 96, 6)
    # encode, layers, confidence, matchability, assign
    assert len(xfeat.exported_lg.graphs) == 1 + 6 + 5 + 5 + 6

    def close(ours, ref):
        assert ours.shape == ref.shape
        bound = 1e-4 * float(ref.abs().max()) + 1e-6
        assert float((ours - ref).abs().max()) <= bound

    for m, n in ((1, 1), (23, 9), (300, 211)):
        torch.manual_seed(m + n)
        k0, k1 = torch.rand(1, m, 2) * 2 - 1, torch.rand(1, n, 2) * 2 - 1
        d0 = torch.nn.functional.normalize(torch.randn(1, m, 64), dim=-1)
        d1 = torch.nn.functional.normalize(torch.randn(1, n, 64), dim=-1)
        with torch.inference_mode():
            (a0, e0), (r0, f0) = stages.encode(k0, d0), lg.encode(k0, d0)
            (a1, e1), (r1, f1) = stages.encode(k1, d1), lg.encode(k1, d1)
            close(a0, r0), close(e0, f0), close(a1, r1), close(e1, f1)
            for i in range(lg.n_layers):
                close(stages.layer(i, r0, r1, f0, f1)[0], lg.layer(i, r0, r1, f0, f1)[0])
                close(stages.assign(i, r0, r1), lg.assign(i, r0, r1))
                if i < lg.n_layers - 1:
                    for a, b in zip(stages.confidence(i, r0, r1), lg.confidence(i, r0, r1)):
                        close(a, b)
                    close(stages.matchability(i, r1), lg.matchability(i, r1))
                r0, r1 = lg.layer(i, r0, r1, f0, f1)


MODES = {"official": (-1.0, 0.95), "adaptive": (0.95, 0.95), "full": (-1.0, -1.0)}


def _check_same_decisions(lg, stages, f0: dict, f1: dict, size0, size1, conf: AdaptiveConf):
    k0 = normalize_keypoints(f0["keypoints"].float(), size0)
    k1 = normalize_keypoints(f1["keypoints"].float(), size1)
    with torch.inference_mode():
        ref = run_adaptive(lg, conf, k0, k1, f0["descriptors"], f1["descriptors"])
        ours = run_adaptive(stages, conf, k0, k1, f0["descriptors"], f1["descriptors"])
    assert ours["stop"] == ref["stop"]
    assert float((ours["matches0"] == ref["matches0"]).float().mean()) >= 0.995
    assert float((ours["prune0"] == ref["prune0"]).float().mean()) >= 0.99
    assert float((ours["matching_scores0"] - ref["matching_scores0"]).abs().max()) <= 1e-3
    return ref


def test_host_loop_on_graphs_exits_early_and_prunes_as_torch(xfeat):
    """Synthetic consecutive frames: easy, so both early exit and pruning happen."""
    from lightglue_ros.images import to_tensor
    from lightglue_ros.synthetic import make_sequence

    lg, stages = xfeat.lg, xfeat.stages
    seq = make_sequence(num_frames=2)
    f0, f1 = (xfeat.model(to_tensor(seq.frame(i).rgb, 3)[0]) for i in range(2))
    size = torch.tensor([640.0, 480.0])
    adaptive = _check_same_decisions(lg, stages, f0, f1, size, size, AdaptiveConf(0.95, 0.95))
    assert adaptive["stop"] < lg.n_layers and bool((adaptive["prune0"] < adaptive["stop"]).any())
    pruned = _check_same_decisions(lg, stages, f0, f1, size, size, AdaptiveConf(-1.0, 0.95))
    assert pruned["stop"] == lg.n_layers and bool((pruned["prune0"] < lg.n_layers).any())


@needs_shared
@pytest.mark.parametrize("mode", MODES)
def test_host_loop_on_graphs_makes_the_golden_decisions(xfeat, mode):
    """The official code's pairs in each mode: same stop layer, pruning and matches as torch."""
    from lightglue_ros.evaluation.parity import GoldenSet, find_images

    gold = GoldenSet(GOLDEN, "xfeat", find_images(GOLDEN))
    for path in gold.pair_files(mode)[:1]:
        name0, name1 = path.stem.split("__")
        g0, g1 = (gold.features(path.parent.name, name) for name in (name0, name1))
        f0 = {"keypoints": g0.keypoints[None], "descriptors": g0.descriptors[None]}
        f1 = {"keypoints": g1.keypoints[None], "descriptors": g1.descriptors[None]}
        ref = _check_same_decisions(xfeat.lg, xfeat.stages, f0, f1,
                                    torch.tensor(g0.image_size, dtype=torch.float32),
                                    torch.tensor(g1.image_size, dtype=torch.float32),
                                    AdaptiveConf(*MODES[mode], 0.1))
        assert ref["stop"] == int(np.load(path)["stop"])


def test_onnxruntime_backend_runs_xfeat_through_the_pipeline(xfeat):
    from lightglue_ros.pipeline import Pipeline

    cfg = xfeat.cfg.replace(backend="onnxruntime", engine_dir=str(xfeat.folder),
                            max_keypoints=512)
    ours, ref = Pipeline(cfg), Pipeline(cfg.replace(backend="torch"))
    scene = textured_image(300, 400, 1)
    img0, img1 = scene[:250, :330].copy(), scene[20:270, 40:370].copy()
    f0, f1, g0 = ours.extract(img0), ours.extract(img1), ref.extract(img0)
    assert len(f0) == len(g0) == 512
    m, r = ours.match(f0, f1), ref.match(f0, f1)
    assert m.layers == r.layers and (m.matches0 == r.matches0).mean() >= 0.995
    ours.set_thresholds(depth_confidence=-1.0, width_confidence=-1.0)
    assert ours.match(f0, f1).layers == 6


def test_the_slam_thread_shares_the_onnxruntime_networks_and_two_threads_match_alike(xfeat):
    """With ``slam: true`` the SLAM thread verifies with the tracker's own sessions instead of
    building the networks twice; matches run from two threads at once are the ones each gives
    alone (one intra-op thread: the same kernels in the same order)."""
    from lightglue_ros.pipeline import Pipeline
    from lightglue_ros.slam.background import verification_pipeline

    pipe = Pipeline(xfeat.cfg.replace(backend="onnxruntime", engine_dir=str(xfeat.folder),
                                      max_keypoints=512, cpu_threads=1))
    shared = verification_pipeline(pipe)
    assert shared.backend is pipe.backend and shared.timings is not pipe.timings
    scene = textured_image(300, 400, 2)
    crops = [scene[dy:dy + 250, dx:dx + 330].copy() for dy, dx in ((0, 0), (20, 40), (40, 10))]
    feats = [pipe.extract(c) for c in crops]
    pairs = [(feats[0], feats[1]), (feats[1], feats[2])]
    alone = [pipe.match(a, b) for a, b in pairs]
    together: dict[int, list] = {0: [], 1: []}
    start = threading.Barrier(2)

    def matcher(k: int, p: Pipeline) -> None:
        start.wait()
        together[k] = [p.match(*pairs[k]) for _ in range(4)]

    threads = [threading.Thread(target=matcher, args=(k, p))
               for k, p in enumerate((pipe, shared))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for k, ref in enumerate(alone):
        assert len(together[k]) == 4
        for m in together[k]:
            assert m.layers == ref.layers and np.array_equal(m.matches0, ref.matches0)
            assert np.array_equal(m.scores0, ref.scores0)


# --- what TensorRT needs --------------------------------------------------------------------------
def test_parser_check_finds_what_tensorrt_rejects(tmp_path):
    """The check itself: an integer Clip and a TopK beyond 3839 are reported."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Clip", ["i", "lo"], ["c"], name="clip"),
             helper.make_node("TopK", ["x", "k"], ["v", "j"], name="topk")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("i", TensorProto.INT64, [4]),
                     helper.make_tensor_value_info("x", TensorProto.FLOAT, [5000])],
        [helper.make_tensor_value_info(n, t, None)
         for n, t in (("c", TensorProto.INT64), ("v", TensorProto.FLOAT),
                      ("j", TensorProto.INT64))],
        [helper.make_tensor("lo", TensorProto.INT64, [], [0]),
         helper.make_tensor("k", TensorProto.INT64, [1], [4000])])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    problems = tensorrt_parser_problems(path)
    assert len(problems) == 2 and "integer" in problems[0] and "K > 3839" in problems[1]


def test_xfeat_graphs_avoid_what_the_tensorrt_parser_rejects(xfeat):
    assert [p for path in xfeat.exported.files() + xfeat.exported_lg.files()
            for p in tensorrt_parser_problems(path)] == []


def test_fp16_engines_keep_xfeat_selection_and_normalisation_in_fp32(xfeat):
    nodes = onnx.load(str(xfeat.exported.path("dense"))).graph.node
    tagged = {n.op_type for n in nodes if n.name.startswith("fp32:")}
    assert {"TopK", "MaxPool", "GridSample", "Greater", "Softmax", "Sigmoid", "ReduceL2",
            "InstanceNormalization", "DepthToSpace"} <= tagged
    convs = [n.name for n in nodes if n.op_type == "Conv"]
    tagged_convs = sorted(c for c in convs if c.startswith("fp32:"))
    assert len(convs) > 20 and len(tagged_convs) == 2  # only the last conv of each score head
    assert "heatmap_head" in tagged_convs[0] and "keypoint_head" in tagged_convs[1]
    manifest = json.loads(xfeat.exported_lg.manifest.read_text())
    assert manifest["graphs"]["encode"]["fp16"] is False
    assert all(g["fp16"] for name, g in manifest["graphs"].items() if name != "encode")


def test_tensorrt_profiles_cover_the_resized_image_sizes(xfeat):
    from lightglue_ros.inference.engine_cache import profile_shapes
    from lightglue_ros.inference.tensorrt_backend import ShapeRanges

    cfg = xfeat.cfg
    ranges = ShapeRanges.for_config(cfg, image_height=(40, 375, 1000),
                                    image_width=(31, 500, 1920))
    dims = ranges.for_graph("dense", cfg)
    assert dims["height"] == (32, 352, 992) and dims["width"] == (32, 480, 1920)
    profile = profile_shapes(xfeat.exported.graphs["dense"].shapes, dims)
    assert profile["image"] == ((1, 1, 32, 32), (1, 1, 352, 480), (1, 1, 992, 1920))
    assert profile["threshold"] == ((1,), (1,), (1,))  # static: no range
    other = ranges.for_graph("dense", cfg.replace(extractor="disk"))
    assert other["height"] == (40, 375, 1000)  # only XFeat's graph sees a resized image


def test_export_cli_knows_xfeat(xfeat):
    """The graphs TensorRT builds from (static XFeat graph) are the fixture's; ONNX Runtime's
    (the CPU default) score only the local maxima and are a graph of their own."""
    args = ("export", "--extractor", "xfeat", "--max-keypoints", str(xfeat.cfg.max_keypoints),
            "--engine-dir", str(xfeat.folder))
    proc = run_cli(*args, "--backend", "tensorrt")
    for path in xfeat.exported.files() + xfeat.exported_lg.files():
        assert str(path) in proc.stdout  # the cached export of the same configuration, listed
    default = run_cli(*args).stdout
    assert all(str(path) not in default for path in xfeat.exported.files())
    assert all(str(path) in default for path in xfeat.exported_lg.files())
    assert "lightglue-xfeat" in proc.stdout


# --- the runtime comparison (its logic on a tiny case; the figures come from the command) ------
def test_runtime_comparison_replays_recorded_inputs_and_checks_outputs(xfeat):
    from lightglue_ros.cli.bench_runtimes import summary
    from lightglue_ros.evaluation.runtimes import available_runtimes, cases_for, run_comparison

    cases = cases_for("xfeat", [24, 40], (96, 64), engine_dir=xfeat.folder)
    lg = "lightglue-xfeat"
    assert [(c.model, c.graph, c.label) for c in cases] == [
        ("xfeat", "dense", "96x64"),
        (lg, "layer0", "24 keypoints"), (lg, "assign5", "24 keypoints"),
        (lg, "layer0", "40 keypoints"), (lg, "assign5", "40 keypoints")]
    assert cases[0].inputs[0].shape == (1, 1, 64, 96) and cases[3].inputs[0].shape == (1, 40, 96)
    available, _ = available_runtimes()
    runtimes = ["torch", "onnxruntime:disabled", "onnxruntime:all"] + [
        r for r in available if r == "openvino"]
    rows = run_comparison(cases, runtimes, [1], repeats=1, warmup=1)
    assert len(rows) == len(cases) * len(runtimes)
    for row in rows:  # FP32 everywhere: the same outputs up to float32 reordering
        assert row["median_ms"] > 0 and row["max_relative_difference"] <= 1e-4, row
    entry = summary(rows)[1]
    ratio = entry["speedup_over_backend_onnxruntime"]
    assert ratio["onnxruntime:disabled"] == 1.0  # LightGlue's graphs run unrewritten


def test_runtime_comparison_says_when_openvino_is_absent(monkeypatch):
    import importlib.util

    from lightglue_ros.evaluation.runtimes import available_runtimes

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real(name, *a))
    names, missing = available_runtimes()
    assert not any(n.startswith("openvino") for n in names) and "torch" in names
    assert "OpenVINO is not installed" in missing["openvino"]
