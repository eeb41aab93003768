"""Pick the backend a Config names. Each backend is imported only when asked for, so that one
runtime's library (ONNX Runtime, TensorRT) is never needed to run another."""
from __future__ import annotations

from ..config import Config
from .backend import Backend
from .devices import set_cpu_threads


def make_backend(cfg: Config) -> Backend:
    """The backend cfg.backend names; a BackendError says what is missing (library, GPU)."""
    cfg = cfg.resolved()
    set_cpu_threads(cfg.cpu_threads)
    if cfg.backend == "torch":
        from .torch_backend import TorchBackend
        return TorchBackend(cfg)
    if cfg.backend == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeBackend
        return OnnxRuntimeBackend(cfg)
    if cfg.backend == "tensorrt":
        from .tensorrt_backend import TensorRTBackend
        return TensorRTBackend(cfg)
    raise ValueError(f"backend '{cfg.backend}' is not available in this build")
