"""TensorRT: the engine cache (keys, sidecar metadata, rebuild decisions), profiles and FP32 pinning
tested without TensorRT; the clear errors when TensorRT or a GPU is absent; and real engine builds,
which run only where TensorRT and a CUDA GPU exist."""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import run_cli, textured_image
from lightglue_ros.config import Config
from lightglue_ros.errors import BackendError
from lightglue_ros.inference.engine_cache import (EngineCache, EngineRequest, GpuInfo,
                                                  engine_key, engine_metadata,
                                                  metadata_mismatches, profile_shapes)



def _have_tensorrt() -> bool:
    """The real TensorRT (not a folder of its type stubs) imports here."""
    from lightglue_ros.inference.tensorrt_backend import require_tensorrt

    try:
        require_tensorrt()
    except BackendError:
        return False
    return True


HAVE_TENSORRT = _have_tensorrt()
HAVE_CUDA = torch.cuda.is_available()
needs_tensorrt = pytest.mark.skipif(not (HAVE_TENSORRT and HAVE_CUDA),
                                    reason="TensorRT and a CUDA GPU are needed; not available here")

GPU = GpuInfo("NVIDIA Test GPU", (8, 9))
PROFILE = profile_shapes({"desc0": (1, "n0", 256), "desc1": (1, "n1", 256)},
                         {"n0": (1, 1024, 4096), "n1": (1, 1024, 4096)})


def request(tmp_path: Path, sha: str = "a" * 64, precision: str = "fp16",
            profile=PROFILE) -> EngineRequest:
    onnx = tmp_path / "lightglue-aliked.layer0-k.onnx"
    onnx.write_bytes(b"onnx")
    return EngineRequest("lightglue-aliked", "layer0", onnx, sha, precision, profile)


class FakeTensorRT:
    """A builder that records its calls and a deserializer that accepts only its own plans."""

    def __init__(self) -> None:
        self.builds = 0

    def build(self, req: EngineRequest, timing_cache: Path) -> bytes:
        self.builds += 1
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(b"timing")
        return b"PLAN:" + req.onnx_sha256.encode()

    @staticmethod
    def deserialize(data: bytes):
        return SimpleNamespace(plan=data) if data.startswith(b"PLAN:") else None


def make_cache(tmp_path: Path, fake: FakeTensorRT, version: str = "10.3.0",
               gpu: GpuInfo = GPU) -> EngineCache:
    return EngineCache(tmp_path, version, gpu, fake.build, fake.deserialize)


# --- keys and profiles ----------------------------------------------------------------------------
def test_profile_shapes_replace_named_dimensions():
    assert PROFILE["desc0"] == ((1, 1, 256), (1, 1024, 256), (1, 4096, 256))
    image = profile_shapes({"image": (1, 3, "height", "width")},
                           {"height": (32, 480, 1088), "width": (32, 640, 1920)})
    assert image["image"] == ((1, 3, 32, 32), (1, 3, 480, 640), (1, 3, 1088, 1920))
    with pytest.raises(ValueError, match="no range"):
        profile_shapes({"x": (1, "n")}, {})
    with pytest.raises(ValueError, match="min <= opt <= max"):
        profile_shapes({"x": (1, "n")}, {"n": (10, 5, 20)})


def test_engine_key_covers_graph_precision_shapes_version_and_gpu():
    base = engine_key("a" * 64, "fp16", PROFILE, "10.3.0", GPU)
    assert base == engine_key("a" * 64, "fp16", PROFILE, "10.3.0", GPU)
    wider = profile_shapes({"desc0": (1, "n0", 256), "desc1": (1, "n1", 256)},
                           {"n0": (1, 1024, 8192), "n1": (1, 1024, 4096)})
    variants = [engine_key("b" * 64, "fp16", PROFILE, "10.3.0", GPU),
                engine_key("a" * 64, "fp32", PROFILE, "10.3.0", GPU),
                engine_key("a" * 64, "fp16", wider, "10.3.0", GPU),
                engine_key("a" * 64, "fp16", PROFILE, "10.4.0", GPU),
                engine_key("a" * 64, "fp16", PROFILE, "10.3.0", GpuInfo("NVIDIA Other", (8, 9))),
                engine_key("a" * 64, "fp16", PROFILE, "10.3.0", GpuInfo(GPU.name, (9, 0)))]
    assert len({base, *variants}) == 1 + len(variants)


def test_metadata_mismatches_name_what_differs(tmp_path):
    expected = engine_metadata(request(tmp_path), "10.3.0", GPU)
    stored = dict(expected, tensorrt_version="10.0.1", gpu="NVIDIA Jetson Orin")
    problems = metadata_mismatches(stored, expected)
    assert any("10.0.1" in p and "10.3.0" in p for p in problems)
    assert any("Jetson" in p for p in problems)
    assert metadata_mismatches(expected, expected) == []


def test_gpu_slug_is_a_file_name():
    assert GPU.slug() == "nvidia-test-gpu-sm89"


# --- the cache ------------------------------------------------------------------------------------
def test_first_use_builds_then_loads_from_the_cache(tmp_path):
    fake = FakeTensorRT()
    cache = make_cache(tmp_path, fake)
    req = request(tmp_path)
    first = cache.get(req)
    assert first.built and fake.builds == 1
    assert first.path.is_file() and first.path.parent == tmp_path / "trt"
    assert first.key in first.path.name and "fp16" in first.path.name
    meta = json.loads(first.path.with_suffix(".json").read_text())
    assert meta["gpu"] == GPU.name and meta["tensorrt_version"] == "10.3.0"
    assert meta["key"] == first.key and meta["onnx_sha256"] == req.onnx_sha256
    assert cache.timing_cache.is_file()  # the builder gets the shared timing cache path
    second = cache.get(req)
    assert not second.built and fake.builds == 1 and second.engine.plan == first.engine.plan


def test_missing_engine_without_build_is_a_clear_error(tmp_path):
    cache = make_cache(tmp_path, FakeTensorRT())
    with pytest.raises(BackendError, match="build-engines"):
        cache.get(request(tmp_path), build=False)


def _replace_plan(path: Path, data: bytes, record: bool) -> None:
    """Write another plan; with ``record``, also into the sidecar's sha256 (a plan that was
    built like that, which TensorRT then refuses)."""
    path.write_bytes(data)
    if record:
        sidecar = path.with_suffix(".json")
        meta = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps(dict(meta, engine_sha256=hashlib.sha256(data).hexdigest())))


def test_engine_that_fails_to_deserialize_is_reported_and_rebuilt(tmp_path, caplog):
    fake = FakeTensorRT()
    cache = make_cache(tmp_path, fake)
    req = request(tmp_path)
    path = cache.get(req).path
    _replace_plan(path, b"garbage", record=True)
    with caplog.at_level(logging.WARNING):
        again = cache.get(req)
    assert again.built and fake.builds == 2
    assert "failed to deserialize" in caplog.text
    with pytest.raises(BackendError, match="failed to deserialize"):
        _replace_plan(path, b"garbage", record=True)
        cache.get(req, build=False)


@pytest.mark.parametrize("damage", ["truncated", "tampered"])
def test_truncated_or_tampered_engine_is_detected_before_deserializing(tmp_path, caplog, damage):
    fake = FakeTensorRT()
    seen = []
    cache = EngineCache(tmp_path, "10.3.0", GPU, fake.build,
                        lambda data: seen.append(data) or fake.deserialize(data))
    req = request(tmp_path)
    path = cache.get(req).path
    plan = path.read_bytes()
    seen.clear()
    bad = plan[: len(plan) // 2] if damage == "truncated" else plan[:-1] + b"X"
    assert bad.startswith(b"PLAN:")  # the fake TensorRT would accept it: only the hash tells
    path.write_bytes(bad)
    key, _, problem = cache.check(req)
    assert "truncated or modified since" in problem and path.name in problem
    with pytest.raises(BackendError, match="truncated or modified since"):
        cache.get(req, build=False)
    assert seen == []  # never handed to TensorRT
    with caplog.at_level(logging.WARNING):
        rebuilt = cache.get(req)
    assert rebuilt.built and path.read_bytes() == plan and seen == [plan]
    assert "truncated or modified since" in caplog.text
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    del meta["engine_sha256"]
    sidecar.write_text(json.dumps(meta))
    assert "records no engine sha256" in cache.check(req)[2]


def test_engine_from_another_gpu_or_tensorrt_is_detected_before_use(tmp_path, caplog):
    fake = FakeTensorRT()
    seen = []
    cache = EngineCache(tmp_path, "10.3.0", GPU, fake.build,
                        lambda data: seen.append(data) or fake.deserialize(data))
    req = request(tmp_path)
    built = cache.get(req)
    seen.clear()
    sidecar = built.path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps(dict(meta, gpu="NVIDIA Jetson AGX Orin",
                                       tensorrt_version="8.6.1")))
    key, _, problem = cache.check(req)
    assert key == built.key and "Jetson" in problem and "8.6.1" in problem
    with pytest.raises(BackendError, match="another setup"):
        cache.get(req, build=False)
    assert seen == []  # detected from the sidecar: the plan never reached TensorRT
    with caplog.at_level(logging.WARNING):
        rebuilt = cache.get(req)
    assert rebuilt.built and "rebuilding" in caplog.text
    assert json.loads(sidecar.read_text())["gpu"] == GPU.name
    sidecar.unlink()
    assert "no metadata" in cache.check(req)[2]


def test_a_changed_key_builds_a_new_engine_and_removes_the_stale_one(tmp_path, caplog):
    fake = FakeTensorRT()
    old = make_cache(tmp_path, fake, version="10.3.0").get(request(tmp_path)).path
    with caplog.at_level(logging.INFO):
        new = make_cache(tmp_path, fake, version="10.5.0").get(request(tmp_path))
    assert new.built and new.path != old and not old.exists()
    assert "stale" in caplog.text and "10.5.0" in caplog.text
    # new weights -> new ONNX sha -> new key, old engine replaced
    newer = make_cache(tmp_path, fake, version="10.5.0").get(request(tmp_path, sha="c" * 64))
    assert newer.key != new.key and not new.path.exists()
    # other precisions of the same graph are kept
    fp32 = make_cache(tmp_path, fake, version="10.5.0").get(request(tmp_path, precision="fp32"))
    assert fp32.path.exists() and newer.path.exists()


# --- profiles, dtypes and FP32 pinning (TensorRT faked) -------------------------------------------
def test_shape_ranges_per_graph():
    from lightglue_ros.inference.tensorrt_backend import ShapeRanges

    cfg = Config(max_keypoints=6000)
    ranges = ShapeRanges.for_config(cfg)
    assert ranges.keypoints == (1, 1024, 6000)  # widened to the keypoint limit
    land = ranges.for_graph("dense_landscape", cfg)
    port = ranges.for_graph("dense_portrait", cfg)
    assert land["height"] == port["width"] and land["width"] == port["height"]
    desc = ranges.for_graph("describe", cfg)
    assert desc["height"][2] == desc["width"][2] == 1920 and desc["n"] == (1, 1024, 6000)


def test_build_engines_and_the_node_use_the_same_shape_ranges():
    """An engine built with custom sizes is the one the node looks up: build-engines takes its
    ranges from the Config (its --engine-* flags), the node from the same parameters (YAML)."""
    import argparse

    import yaml

    from lightglue_ros.cli import build_engines
    from lightglue_ros.inference.tensorrt_backend import ShapeRanges
    from lightglue_ros.ros.yaml_config import params_yaml

    parser = argparse.ArgumentParser()
    build_engines.register(parser.add_subparsers())
    args = parser.parse_args(["build-engines", "--engine-keypoints", "1,512,2048",
                              "--engine-image-size", "320x240", "--engine-max-image-size",
                              "1280x720", "--max-keypoints", "2048"])
    built = build_engines.engine_config(args)
    node_yaml = params_yaml(config=Config(max_keypoints=2048, engine_keypoints="1,512,2048",
                                          engine_image_size="320x240",
                                          engine_max_image_size="1280x720"))
    node = Config.from_mapping(yaml.safe_load(node_yaml)["/**"]["ros__parameters"])
    shapes = {"image": (1, 3, "height", "width"), "desc0": (1, "n0", 128)}
    for graph in ("dense_landscape", "describe", "layer0"):
        profiles = [profile_shapes(shapes, ShapeRanges.for_config(c).for_graph(graph, c))
                    for c in (built, node, Config())]
        keys = [engine_key("a" * 64, "fp16", p, "10.3.0", GPU) for p in profiles]
        assert keys[0] == keys[1], graph  # what was built is what the node loads
        assert keys[0] != keys[2], graph  # and the defaults would not find it
    assert ShapeRanges.for_config(built).image_width == (32, 320, 1280)
    assert ShapeRanges.for_config(built).keypoints == (1, 512, 2048)


def test_keypoint_limit_respects_the_tensorrt_topk_limit():
    from lightglue_ros.inference.graphs import MAX_TOPK
    from lightglue_ros.inference.tensorrt_backend import check_topk

    check_topk(Config(max_keypoints=MAX_TOPK - 1))
    with pytest.raises(BackendError, match="max_keypoints"):
        check_topk(Config(max_keypoints=MAX_TOPK))


class _Enum:
    def __init__(self, name: str) -> None:
        self.name = name


class _Tensor:
    def __init__(self, dtype) -> None:
        self.dtype = dtype


class _Layer:
    def __init__(self, name: str, dtypes: list) -> None:
        self.name, self.metadata = name, ""
        self.outputs = [_Tensor(d) for d in dtypes]
        self.num_outputs = len(dtypes)
        self.precision = None
        self.output_types: dict[int, object] = {}

    def get_output(self, j: int) -> _Tensor:
        return self.outputs[j]

    def set_output_type(self, j: int, dtype) -> None:
        self.output_types[j] = dtype


def test_fp32_tagged_layers_are_pinned_to_fp32(monkeypatch):
    from lightglue_ros.inference.tensorrt_backend import mark_fp32_layers, torch_dtype

    trt = SimpleNamespace(float32=_Enum("FLOAT"), float16=_Enum("HALF"), int64=_Enum("INT64"))
    monkeypatch.setitem(sys.modules, "tensorrt", trt)  # what `import tensorrt` finds
    layers = [_Layer("/backbone/conv1/Conv", [trt.float32]),
              _Layer("fp32:/fp32/TopK", [trt.float32, trt.int64]),
              _Layer("fp32:/fp32/Shape_3", [trt.int64]),
              _Layer("fp32:/ReduceL2_1", [trt.float32])]
    network = SimpleNamespace(num_layers=len(layers), get_layer=lambda i: layers[i])
    assert mark_fp32_layers(network) == 2
    assert layers[0].precision is None and layers[2].precision is None
    assert layers[1].precision is trt.float32 and layers[1].output_types == {0: trt.float32}
    assert layers[3].output_types == {0: trt.float32}
    assert torch_dtype(trt.float16) == torch.float16 and torch_dtype(trt.int64) == torch.int64


class _FakeBuilderAPI:
    """Just enough of the TensorRT 10 builder API to run TrtBuilder and record what it does."""

    def __init__(self, fail_obey: bool = False) -> None:
        self.calls: list = []
        self.fail_obey = fail_obey
        api = self
        self.__version__ = "10.3.0"
        self.float32, self.float16 = _Enum("FLOAT"), _Enum("HALF")
        self.BuilderFlag = SimpleNamespace(FP16="FP16", OBEY_PRECISION_CONSTRAINTS="OBEY",
                                           PREFER_PRECISION_CONSTRAINTS="PREFER")
        self.MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")
        self.Dims = tuple
        layers = [_Layer("fp32:/fp32/TopK", [self.float32]), _Layer("/conv/Conv", [self.float32])]
        inputs = [SimpleNamespace(name="desc0", shape=(1, -1, 256)),
                  SimpleNamespace(name="wh", shape=(2,))]
        self.network = SimpleNamespace(num_layers=2, get_layer=lambda i: layers[i],
                                       num_inputs=2, get_input=lambda i: inputs[i])
        self.layers = layers

        class Config:
            flags: set = set()

            def set_memory_pool_limit(self, pool, size):
                api.calls.append(("workspace", size))

            def set_flag(self, flag):
                self.flags.add(flag)

            def clear_flag(self, flag):
                self.flags.discard(flag)

            def add_optimization_profile(self, profile):
                api.calls.append(("profile", dict(profile.shapes)))

            def create_timing_cache(self, data):
                api.calls.append(("timing_cache_in", bytes(data)))
                return SimpleNamespace(serialize=lambda: b"new-timing")

            def set_timing_cache(self, cache, ignore_mismatch):
                return True

            def get_timing_cache(self):
                return SimpleNamespace(serialize=lambda: b"new-timing")

        class Builder:
            platform_has_fast_fp16 = True

            def __init__(self, logger):
                self.config = Config()

            def create_network(self, flags):
                api.calls.append(("network", flags))
                return api.network

            def create_builder_config(self):
                return self.config

            def create_optimization_profile(self):
                shapes: dict = {}
                return SimpleNamespace(shapes=shapes, set_shape=lambda n, a, b, c: shapes.update(
                    {n: (a, b, c)}))

            def build_serialized_network(self, network, config):
                api.calls.append(("build", sorted(config.flags)))
                if api.fail_obey and "OBEY" in config.flags:
                    return None
                return b"PLAN"

        class Parser:
            num_errors = 0

            def __init__(self, network, logger):
                pass

            def parse_from_file(self, path):
                api.calls.append(("parse", path))
                return True

        self.Builder, self.OnnxParser = Builder, Parser


@pytest.mark.parametrize("fail_obey", [False, True])
def test_builder_calls_the_tensorrt_api_in_order(tmp_path, monkeypatch, fail_obey):
    from lightglue_ros.inference.tensorrt_backend import TrtBuilder

    api = _FakeBuilderAPI(fail_obey)
    monkeypatch.setitem(sys.modules, "tensorrt", api)
    req = EngineRequest("aliked-n16", "describe", tmp_path / "g.onnx", "a" * 64, "fp16",
                        {"desc0": ((1, 1, 256), (1, 8, 256), (1, 64, 256)),
                         "wh": ((2,), (2,), (2,))})
    cache_file = tmp_path / "trt" / "timing.cache"
    cache_file.parent.mkdir()
    cache_file.write_bytes(b"old-timing")
    plan = TrtBuilder(logger=None)(req, cache_file)
    assert plan == b"PLAN"
    kinds = [c[0] for c in api.calls]
    assert kinds[:2] == ["network", "parse"] and api.calls[0][1] == 0  # explicit batch (TRT 10)
    assert ("timing_cache_in", b"old-timing") in api.calls
    assert cache_file.read_bytes() == b"new-timing"  # the shared timing cache is written back
    profile = next(c[1] for c in api.calls if c[0] == "profile")
    assert set(profile) == {"desc0"}  # the static input gets no range
    builds = [c[1] for c in api.calls if c[0] == "build"]
    assert "FP16" in builds[0] and "OBEY" in builds[0]
    if fail_obey:  # falls back to preferring the FP32 pins
        assert len(builds) == 2 and "PREFER" in builds[1] and "OBEY" not in builds[1]
    assert api.layers[0].precision is api.float32 and api.layers[1].precision is None


# --- without TensorRT or a GPU --------------------------------------------------------------------
@pytest.mark.skipif(HAVE_TENSORRT, reason="TensorRT is installed here")
def test_missing_tensorrt_is_a_clear_error():
    from lightglue_ros.inference import make_backend

    with pytest.raises(BackendError, match="TensorRT is not installed"):
        make_backend(Config(backend="tensorrt", device="cuda"))
    proc = run_cli("build-engines", check=False)
    assert proc.returncode == 2
    assert "TensorRT is not installed" in proc.stderr


@pytest.mark.skipif(HAVE_TENSORRT, reason="TensorRT is installed here")
def test_a_folder_of_tensorrt_type_stubs_is_no_tensorrt(tmp_path, monkeypatch):
    """Type stubs on the path make `import tensorrt` succeed as an empty namespace package; the
    backend must still say that TensorRT is not installed."""
    from lightglue_ros.inference.tensorrt_backend import require_tensorrt

    (tmp_path / "tensorrt").mkdir()
    (tmp_path / "tensorrt" / "__init__.pyi").write_text("class Builder: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    importlib.invalidate_caches()
    try:
        with pytest.raises(BackendError, match="type stubs") as err:
            require_tensorrt()
    finally:  # the namespace package it imported must not outlive the test
        sys.modules.pop("tensorrt", None)
    assert str(tmp_path / "tensorrt") in str(err.value)


@pytest.mark.skipif(HAVE_CUDA, reason="a CUDA GPU is present here")
def test_tensorrt_without_a_gpu_is_a_clear_error():
    from lightglue_ros.inference.tensorrt_backend import cuda_device

    with pytest.raises(BackendError, match="needs a CUDA GPU"):
        cuda_device("cuda")
    with pytest.raises(BackendError, match="needs a CUDA GPU"):
        cuda_device("cpu")


# --- with TensorRT and a GPU ----------------------------------------------------------------------
SMALL = dict(keypoints=(1, 256, 1024), image_height=(32, 240, 480), image_width=(32, 320, 640))


@needs_tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_backend_builds_caches_and_matches_torch(tmp_path, precision):
    from lightglue_ros.inference.precision import keypoint_check
    from lightglue_ros.inference.tensorrt_backend import ShapeRanges, TensorRTBackend
    from lightglue_ros.inference.torch_backend import TorchBackend

    cfg = Config(extractor="aliked", backend="tensorrt", device="cuda", precision=precision,
                 max_keypoints=512, engine_dir=str(tmp_path))
    ranges = ShapeRanges.for_config(cfg, **SMALL)
    trt_backend = TensorRTBackend(cfg, ranges=ranges)
    assert all(e.built for e in trt_backend.engines)
    again = TensorRTBackend(cfg, ranges=ranges, build=False)
    assert not any(e.built for e in again.engines)
    ref = TorchBackend(cfg.replace(backend="torch", precision="fp32"))
    scene = textured_image(300, 400, 0)
    images = [torch.from_numpy(scene[:240, :320]).permute(2, 0, 1)[None].float() / 255,
              torch.from_numpy(scene[40:280, 60:380]).permute(2, 0, 1)[None].float() / 255]
    report = keypoint_check(trt_backend.extract, ref.extract, images)
    assert report["ok"], report  # FP16 engines lose no keypoints
    f = [trt_backend.extract(img) for img in images]
    g = [ref.extract(img) for img in images]
    for out in f:
        assert out["keypoints"].is_cuda  # no host copy
    size = torch.tensor([320.0, 240.0], device="cuda")
    args = (g[0]["keypoints"], g[1]["keypoints"], g[0]["descriptors"], g[1]["descriptors"],
            size, size)
    m, r = trt_backend.match(*args), ref.match(*args)
    agreement = (m["matches0"] == r["matches0"]).float().mean()
    assert agreement >= (0.995 if precision == "fp32" else 0.95)
    if precision == "fp32":
        assert m["stop"] == r["stop"]


@needs_tensorrt
def test_tensorrt_input_outside_the_profile_is_a_clear_error(tmp_path):
    from lightglue_ros.inference.tensorrt_backend import ShapeRanges, TensorRTBackend

    cfg = Config(extractor="disk", backend="tensorrt", device="cuda", precision="fp32",
                 max_keypoints=256, engine_dir=str(tmp_path))
    backend = TensorRTBackend(cfg, ranges=ShapeRanges.for_config(cfg, **SMALL))
    with pytest.raises(BackendError, match="profile"):
        backend.extract(torch.rand(1, 3, 720, 1280))
