"""TensorRT backend: engines built from the exported ONNX graphs, run on torch CUDA tensors.

Written against the TensorRT 10 Python API. Each graph becomes one engine with one optimisation
profile over its dynamic dimensions (keypoint counts, image sizes; see :class:`ShapeRanges`). FP16
engines keep the nodes the export tagged FP32 in FP32 (``layer.precision``, ``set_output_type``
and ``BuilderFlag.OBEY_PRECISION_CONSTRAINTS``; see :mod:`lightglue_ros.inference.precision`), and
LightGlue's ``encode`` graph is always FP32. All builds share a timing cache. Engines are cached by
:class:`~lightglue_ros.inference.engine_cache.EngineCache` under a key of ONNX graph, precision,
profile, TensorRT version and GPU, and rebuilt when any of them changes.

Execution binds the data pointers of torch CUDA tensors (``set_tensor_address``) and enqueues on
torch's current stream (``execute_async_v3``): inputs and outputs stay on the GPU, no host copy.

``import tensorrt`` happens only here; without it, or without a CUDA GPU, the backend raises a
:class:`~lightglue_ros.errors.BackendError` saying so.

Every TensorRT object is typed with its class in the TensorRT 10.13 Python API (``trt.Builder``,
``trt.INetworkDefinition``, ``trt.ICudaEngine``, ``trt.IExecutionContext``, ...), and every
function that calls TensorRT imports the module itself, so mypy checks each call against the
``tensorrt-stubs`` (``make typecheck``; ``test/test_typecheck.py``). The stubs are not TensorRT:
what they cannot check (shapes, streams, plan compatibility, FP16 numerics) is tested on a GPU.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from ..config import Config, parse_range, parse_size
from ..errors import BackendError
from ..files import atomic_write_bytes
from ..models.xfeat import SIZE_MULTIPLE, resized_side
from .devices import torch_device
from .engine_cache import EngineCache, EngineRequest, GpuInfo, Profile, Range, profile_shapes
from .export import ExportedGraph, ExportedModel, engine_dir_for, export_for_config
from .graph_backend import GraphBackend
from .graphs import MAX_TOPK
from .precision import is_fp32_layer

if TYPE_CHECKING:
    import tensorrt as trt

    from ..models.base import Extractor
    from ..models.lightglue import LightGlue

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 2 << 30


def require_tensorrt() -> str:
    """The TensorRT version, or a BackendError saying how to get TensorRT. A ``tensorrt`` that
    imports as an empty namespace package (a folder of type stubs on the path) is no TensorRT."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendError(f"TensorRT is not installed: {exc}. Install the `tensorrt` Python "
                           f"package (TensorRT 10, matching the CUDA driver) on a machine with "
                           f"an NVIDIA GPU, or use backend onnxruntime or torch") from exc
    spec = tensorrt.__spec__
    if spec is None or spec.origin is None or not hasattr(tensorrt, "Builder"):
        where = ", ".join(spec.submodule_search_locations or []) if spec else "?"
        raise BackendError(f"TensorRT is not installed: `tensorrt` at {where} is a folder "
                           f"without the TensorRT library (type stubs?). Install the `tensorrt` "
                           f"Python package, or use backend onnxruntime or torch")
    return tensorrt.__version__


def cuda_device(name: str) -> torch.device:
    """The CUDA device for TensorRT, or a BackendError when there is none."""
    device = torch.device(name)
    if device.type != "cuda":
        raise BackendError(f"backend tensorrt needs a CUDA GPU: set device:=cuda (got "
                           f"device {name!r})")
    if not torch.cuda.is_available():
        raise BackendError(f"backend tensorrt needs a CUDA GPU, and torch {torch.__version__} "
                           f"sees none here; use backend onnxruntime or torch with device:=cpu")
    return torch_device(name)


@dataclass
class ShapeRanges:
    """Optimisation profile ranges (min, opt, max) of the dynamic dimensions."""

    keypoints: Range = (1, 1024, 4096)  # LightGlue keypoint counts (n, n0, n1)
    image_height: Range = (32, 480, 1088)  # landscape images; portrait swaps height and width
    image_width: Range = (32, 640, 1920)
    extra: dict[str, Range] = field(default_factory=dict)

    @classmethod
    def for_config(cls, cfg: Config, keypoints: Range | None = None,
                   image_height: Range | None = None, image_width: Range | None = None
                   ) -> "ShapeRanges":
        """The Config's engine_* ranges (those given replace them), the keypoint maximum widened
        to max_keypoints: build-engines and the node derive them the same way, so the engines
        one builds are the ones the other looks up."""
        small = parse_size(cfg.engine_min_image_size, "engine_min_image_size")
        usual = parse_size(cfg.engine_image_size, "engine_image_size")
        large = parse_size(cfg.engine_max_image_size, "engine_max_image_size")
        ranges = cls(keypoints or parse_range(cfg.engine_keypoints),
                     image_height or (small[1], usual[1], large[1]),
                     image_width or (small[0], usual[0], large[0]))
        lo, opt, hi = ranges.keypoints
        ranges.keypoints = (lo, min(max(opt, lo), max(hi, cfg.max_keypoints)),
                            max(hi, cfg.max_keypoints))
        return ranges

    def for_graph(self, graph: str, cfg: Config) -> dict[str, Range]:
        h, w = self.image_height, self.image_width
        if graph == "dense_portrait":
            h, w = w, h
        elif graph == "describe":  # ALIKED's descriptor head sees both orientations
            side = (min(h[0], w[0]), max(h[2], w[2]))
            h = (side[0], h[1], side[1])
            w = (side[0], w[1], side[1])
        if cfg.extractor == "xfeat":  # its graph sees the image resized to a multiple of 32
            h, w = _resized_range(h), _resized_range(w)
        n = cfg.max_keypoints
        dims = {"height": h, "width": w, "n0": self.keypoints, "n1": self.keypoints,
                "n": (1, min(self.keypoints[1], n), n) if graph == "describe" else self.keypoints}
        dims.update(self.extra)
        return dims


def _resized_range(sides: Range) -> Range:
    """The sides XFeat's graph sees for images with sides in ``sides`` (smaller than 32 pixels:
    no keypoints, the graph does not run)."""
    lo, opt, hi = (max(SIZE_MULTIPLE, resized_side(s)) for s in sides)
    return lo, opt, hi


_TORCH_TYPES: dict[str, torch.dtype] = {"FLOAT": torch.float32, "HALF": torch.float16,
                                        "INT32": torch.int32, "INT64": torch.int64,
                                        "BOOL": torch.bool, "INT8": torch.int8,
                                        "UINT8": torch.uint8, "BF16": torch.bfloat16}


def torch_dtype(trt_dtype: trt.DataType) -> torch.dtype:
    name = trt_dtype.name.upper()
    if name not in _TORCH_TYPES:
        raise BackendError(f"TensorRT tensor type {trt_dtype} has no torch equivalent here")
    return _TORCH_TYPES[name]


def dims_tuple(dims: trt.Dims) -> tuple[int, ...]:
    return tuple(dims[i] for i in range(len(dims)))


# --- building -------------------------------------------------------------------------------------
def mark_fp32_layers(network: trt.INetworkDefinition) -> int:
    """Pin the layers of FP32-tagged ONNX nodes to FP32 (computation and float outputs)."""
    import tensorrt as trt

    marked = 0
    floats = (trt.float32, trt.float16)
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if not is_fp32_layer(layer.name, layer.metadata or ""):
            continue
        outputs = [j for j in range(layer.num_outputs) if layer.get_output(j).dtype in floats]
        if not outputs:
            continue  # index and shape arithmetic: not affected by the FP16 flag
        layer.precision = trt.float32
        for j in outputs:
            layer.set_output_type(j, trt.float32)
        marked += 1
    return marked


class TrtBuilder:
    """Builds serialized engines from ONNX files with the TensorRT 10 builder API."""

    def __init__(self, logger: trt.ILogger, workspace_bytes: int = WORKSPACE_BYTES) -> None:
        self.logger, self.workspace = logger, workspace_bytes

    def __call__(self, request: EngineRequest, timing_cache_path: Path) -> bytes:
        import tensorrt as trt

        builder = trt.Builder(self.logger)
        flags = 0
        if int(trt.__version__.split(".")[0]) < 10:  # explicit batch is the only mode in 10
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(request.onnx_path)):
            errors = "; ".join(str(parser.get_error(i))  # type: ignore[misc]  # stub: -> ...
                               for i in range(parser.num_errors))
            raise BackendError(f"TensorRT cannot parse {request.onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace)
        if request.precision == "fp16":
            if not builder.platform_has_fast_fp16:
                log.warning("this GPU has no fast FP16; building %s in FP16 anyway",
                            request.label)
            config.set_flag(trt.BuilderFlag.FP16)
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
            marked = mark_fp32_layers(network)
            log.info("%s: %d of %d layers pinned to FP32", request.label, marked,
                     network.num_layers)
        profile = builder.create_optimization_profile()
        inputs = {t.name: t for t in (network.get_input(i) for i in range(network.num_inputs))}
        for name, (lo, opt, hi) in request.profile.items():
            if name not in inputs:
                raise BackendError(f"{request.label}: the network has no input '{name}'")
            if -1 in dims_tuple(inputs[name].shape):  # static inputs (ALIKED's wh) need no range
                profile.set_shape(name, trt.Dims(list(lo)), trt.Dims(list(opt)),
                                  trt.Dims(list(hi)))
        config.add_optimization_profile(profile)
        cache_data = timing_cache_path.read_bytes() if timing_cache_path.is_file() else b""
        cache = config.create_timing_cache(cache_data)
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            log.warning("timing cache %s does not fit this GPU/TensorRT: starting a new one",
                        timing_cache_path)
            config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
        plan: trt.IHostMemory | None = builder.build_serialized_network(network, config)
        if plan is None and request.precision == "fp16":
            log.warning("%s: no engine obeys the FP32 pins; retrying with them as preferences "
                        "(check the FP16 keypoint report)", request.label)
            config.clear_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
            config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
            plan = builder.build_serialized_network(network, config)
        if plan is None:  # the stubs say IHostMemory; TensorRT returns None on failure
            raise BackendError(f"TensorRT failed to build {request.label} ({request.precision}); "
                               f"see the TensorRT log above")
        atomic_write_bytes(timing_cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
        return bytes(memoryview(plan))


# --- running --------------------------------------------------------------------------------------
class TrtGraph:
    """One engine with its execution context, run on torch CUDA tensors."""

    def __init__(self, engine: trt.ICudaEngine, graph: ExportedGraph, device: torch.device,
                 profile: Profile) -> None:
        import tensorrt as trt

        self.engine, self.graph, self.device, self.profile = engine, graph, device, profile
        context: trt.IExecutionContext | None = engine.create_execution_context()
        if context is None:  # the stubs say IExecutionContext; TensorRT returns None on failure
            raise BackendError(f"TensorRT could not create an execution context for {graph.name}")
        self.context = context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = {n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT}
        if inputs != set(graph.inputs) or set(names) - inputs != set(graph.outputs):
            raise BackendError(f"engine of {graph.name} has tensors {names}, the graph "
                               f"{graph.inputs + graph.outputs}")
        self.dtypes = {n: torch_dtype(engine.get_tensor_dtype(n)) for n in names}

    def run(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        ctx = self.context
        held = []
        for name, tensor in zip(self.graph.inputs, inputs):
            tensor = tensor.to(device=self.device, dtype=self.dtypes[name]).contiguous()
            held.append(tensor)
            shape: tuple[int, ...] = tuple(tensor.shape)
            if not ctx.set_input_shape(name, shape):
                raise BackendError(
                    f"{self.graph.name}: input {name} of shape {shape} is outside "
                    f"the engine's optimisation profile {self.profile.get(name)}; rebuild the "
                    f"engines with wider ranges (lightglue-ros build-engines --help)")
            ctx.set_tensor_address(name, tensor.data_ptr())
        outputs = []
        for name in self.graph.outputs:
            out = torch.empty(dims_tuple(ctx.get_tensor_shape(name)), dtype=self.dtypes[name],
                              device=self.device)
            ctx.set_tensor_address(name, out.data_ptr())
            outputs.append(out)
        stream = torch.cuda.current_stream(self.device)
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise BackendError(f"TensorRT execution of {self.graph.name} failed")
        return tuple(outputs)


class TrtRunner:
    def __init__(self, graphs: dict[str, TrtGraph], device: torch.device) -> None:
        self.graphs, self.device = graphs, device

    def run(self, name: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.graphs[name].run(*inputs)


@dataclass
class BuiltEngine:
    model: str
    graph: str
    precision: str
    key: str
    path: Path
    built: bool


def _requests(exported: ExportedModel, cfg: Config, ranges: ShapeRanges) -> list[EngineRequest]:
    out = []
    for name, graph in exported.graphs.items():
        precision = cfg.precision if graph.fp16 else "fp32"
        profile = profile_shapes(graph.shapes, ranges.for_graph(name, cfg))
        out.append(EngineRequest(exported.model, name, graph.path, graph.sha256, precision,
                                 profile))
    return out


def check_topk(cfg: Config) -> None:
    if cfg.max_keypoints + 1 > MAX_TOPK:
        raise BackendError(f"backend tensorrt supports max_keypoints <= {MAX_TOPK - 1} (its TopK "
                           f"ranks max_keypoints + 1 candidates, at most {MAX_TOPK}); got "
                           f"{cfg.max_keypoints}")


def open_engines(cfg: Config, engine_dir: str | Path | None = None,
                 ranges: ShapeRanges | None = None, build: bool = True, weights: bool = True,
                 progress: Callable[[BuiltEngine], None] | None = None
                 ) -> tuple[dict[str, TrtGraph], list[BuiltEngine], Extractor, LightGlue,
                            torch.device]:
    """Export (or reuse) cfg's ONNX graphs and load (or build) one engine per graph."""
    version = require_tensorrt()
    import tensorrt as trt

    device = cuda_device(cfg.device)
    check_topk(cfg)
    ranges = ranges or ShapeRanges.for_config(cfg)
    folder = engine_dir_for(cfg, engine_dir)
    exported_extractor, exported_matcher, extractor, matcher = export_for_config(
        cfg, folder, weights)
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    with torch.cuda.device(device):
        cache: EngineCache[trt.ICudaEngine] = EngineCache(
            folder, version, GpuInfo.of(device), TrtBuilder(logger),
            runtime.deserialize_cuda_engine)
        graphs: dict[str, TrtGraph] = {}
        report: list[BuiltEngine] = []
        for exported in (exported_extractor, exported_matcher):
            for request in _requests(exported, cfg, ranges):
                cached = cache.get(request, build=build)
                graphs[request.graph] = TrtGraph(cached.engine, exported.graphs[request.graph],
                                                 device, request.profile)
                entry = BuiltEngine(request.model, request.graph, request.precision,
                                    cached.key, cached.path, cached.built)
                report.append(entry)
                if progress is not None:
                    progress(entry)
    return graphs, report, extractor, matcher, device


class TensorRTBackend(GraphBackend):
    """The extractor and LightGlue as TensorRT engines (FP16 or FP32) on one CUDA GPU."""

    def __init__(self, cfg: Config, weights: bool = True, engine_dir: str | Path | None = None,
                 ranges: ShapeRanges | None = None, build: bool = True) -> None:
        super().__init__(cfg)
        graphs, self.engines, extractor, matcher, self.device = open_engines(
            cfg, engine_dir, ranges, build, weights)
        self._setup(TrtRunner(graphs, self.device), extractor, matcher)
