"""ONNX Runtime backend: the exported graphs on the CPU or CUDA execution provider.

Inputs and outputs are bound with IOBinding to the torch tensors' memory (``data_ptr``) and the
outputs come back through DLPack, so no tensor is copied between torch and ONNX Runtime, on the
host or on the GPU. On CUDA the sessions run on torch's current stream.
"""
from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from ..config import Config
from ..errors import BackendError
from .devices import torch_device
from .export import ExportedGraph, ExportedModel, export_for_config
from .graph_backend import GraphBackend

log = logging.getLogger(__name__)

_NUMPY_TYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64,
                torch.int32: np.int32, torch.bool: np.bool_}


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError(f"ONNX Runtime is not installed: {exc}; install onnxruntime (CPU) or "
                           f"onnxruntime-gpu (CUDA)") from exc
    return onnxruntime


def providers_for(ort: Any, device: torch.device) -> list[Any]:
    """The execution providers for a torch device, or a clear error when CUDA is asked for and
    this ONNX Runtime build has no CUDA provider."""
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type == "cuda":
        available = ort.get_available_providers()
        if "CUDAExecutionProvider" not in available:
            raise BackendError(f"backend onnxruntime on {device} needs the CUDA execution "
                               f"provider, which this onnxruntime {ort.__version__} lacks "
                               f"(available: {', '.join(available)}); install onnxruntime-gpu "
                               f"or use device:=cpu")
        index = device.index if device.index is not None else torch.cuda.current_device()
        stream = torch.cuda.current_stream(index).cuda_stream
        return [("CUDAExecutionProvider", {"device_id": index,
                                           "user_compute_stream": str(stream)}),
                "CPUExecutionProvider"]
    raise BackendError(f"backend onnxruntime does not run on {device}")


@functools.cache
def _register_shared_cpu_arena(ort: Any) -> None:
    """Register the process-wide CPU arena that sessions with ``use_env_allocators`` share."""
    memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                               ort.OrtMemType.DEFAULT)
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, -1, -1, -1))


class OrtRunner:
    """Runs exported graphs with ONNX Runtime sessions, created on first use."""

    def __init__(self, models: list[ExportedModel], device: torch.device, providers: list[Any],
                 threads: int = 0, exact: Iterable[str] = (), own_arena: Iterable[str] = ()
                 ) -> None:
        """``exact``: graphs that run without ONNX Runtime's graph rewrites (see the backend).
        ``own_arena``: graphs whose sessions keep a CPU arena of their own instead of the shared
        one (see ``_options``)."""
        self.ort = import_onnxruntime()
        self.device = device
        self.providers = providers
        self.graphs: dict[str, ExportedGraph] = {}
        for model in models:
            self.graphs.update(model.graphs)
        self.sessions: dict[str, Any] = {}
        self._creating = threading.Lock()  # two threads may ask for a session first at once
        self.exact = set(exact)
        self.own_arena = set(own_arena)
        self.threads = threads
        self._where = ("cuda", device.index or 0) if device.type == "cuda" else ("cpu", 0)

    def _options(self, name: str) -> Any:
        """Session options. Sessions share one CPU arena: LightGlue runs as ~35 graphs with
        dynamic shapes, and an arena per session kept each one's peak (8.5 GB at 2048 keypoints
        here, against 1.4 GB shared, at the same speed). The extractor's graph keeps its own
        (``own_arena``): the two tracking stages run at once on two threads, and on one arena
        LightGlue's match waited on its lock while the extraction ran (BENCHMARKS.md)."""
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3  # errors only
        options.enable_mem_pattern = False  # shapes change from call to call
        if name not in self.own_arena:
            options.add_session_config_entry("session.use_env_allocators", "1")
            _register_shared_cpu_arena(self.ort)
        if name in self.exact:
            options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return options

    def session(self, name: str) -> Any:
        if name not in self.sessions:
            with self._creating:
                if name not in self.sessions:
                    self.sessions[name] = self._load(name)
        return self.sessions[name]

    def _load(self, name: str) -> Any:
        path = self.graphs[name].path
        try:
            return self.ort.InferenceSession(str(path), self._options(name),
                                             providers=self.providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise BackendError(f"ONNX Runtime cannot load {path}: {exc}") from exc

    def run(self, name: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        graph = self.graphs[name]
        session = self.session(name)
        binding = session.io_binding()
        kind, index = self._where
        held = []  # keep the bound tensors alive until the run returns
        for input_name, tensor in zip(graph.inputs, inputs):
            tensor = tensor.to(self.device).contiguous()
            if tensor.dtype == torch.float64 or tensor.dtype == torch.float16:
                tensor = tensor.float()
            held.append(tensor)
            binding.bind_input(input_name, kind, index, _NUMPY_TYPES[tensor.dtype],
                               tuple(tensor.shape), tensor.data_ptr())
        for output_name in graph.outputs:
            binding.bind_output(output_name, kind, index)
        session.run_with_iobinding(binding)
        return tuple(torch.from_dlpack(value) for value in binding.get_outputs())


class OnnxRuntimeBackend(GraphBackend):
    """The extractor and LightGlue graphs on ONNX Runtime (CPU or CUDA provider), FP32."""

    def __init__(self, cfg: Config, weights: bool = True, engine_dir: str | Path | None = None
                 ) -> None:
        super().__init__(cfg)
        ort = import_onnxruntime()
        self.device = torch_device(cfg.device)
        if cfg.precision == "fp16":
            raise BackendError("precision fp16 is not available with backend onnxruntime (its "
                               "graphs run in FP32); use backend tensorrt, or torch on CUDA")
        providers = providers_for(ort, self.device)
        exported_extractor, exported_matcher, extractor, matcher = export_for_config(
            cfg, engine_dir, weights)
        self.exports = (exported_extractor, exported_matcher)
        # LightGlue's graphs run as exported: ONNX Runtime's rewrites (even the basic level) change
        # its FP32 arithmetic enough to flip a near-tie in the mutual check (a 4e-3 score
        # difference on ../shared/golden), and gave no speed on CPU here.
        self._setup(OrtRunner([exported_extractor, exported_matcher], self.device, providers,
                              cfg.cpu_threads, exact=exported_matcher.graphs,
                              own_arena=exported_extractor.graphs),
                    extractor, matcher)

    @property
    def reentrant(self) -> bool:
        """A session runs from several threads at once (each call binds its own inputs and
        outputs), and the host loop keeps no state between calls. On CUDA every session is
        bound to one stream, which was not checked with two threads: a second instance there."""
        return self.device.type == "cpu"
