"""Inference backends: one interface, several runtimes (torch, ONNX Runtime, TensorRT)."""
from .backend import Backend
from .factory import make_backend

__all__ = ["Backend", "make_backend"]
