"""CUDA graphs for the torch backend: static shapes captured once, replayed per frame.

A CUDA graph replays a fixed sequence of kernels on fixed buffers, which removes the per-kernel
launch overhead that dominates LightGlue's small layers and a camera-sized extractor network. It
needs static shapes, so:

* Extractors run as the graphs of :mod:`lightglue_ros.inference.graphs` (dense network and keypoint
  ranking, with the host-side selection after it); the dense part is captured once per image size
  (a camera stream has one) by :class:`CudaGraphRunner`.
* LightGlue runs on keypoint sets padded to the next of the official static lengths, with masks in
  self- and cross-attention (the official ``static_lengths`` path, :func:`pad_to_length`); each
  layer is captured once per length by :class:`PaddedStages`. As in the official compiled mode,
  point pruning is off on this path (its point sets are data-dependent); early exit stays, judged
  on the real points only. Sets longer than the largest static length run eagerly.

Capturing uses a side stream and a shared memory pool; FP16 autocast runs inside the capture with
its weight cache disabled, as CUDA graphs require.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch

from ..models.lightglue import LightGlue, pad_to_length
from .graphs import GraphSpec, TorchGraphRunner

STATIC_LENGTHS = (256, 512, 768, 1024, 1280, 1536)  # the official LightGlue defaults
WARMUP_RUNS = 2

AutocastFactory = Callable[[], contextlib.AbstractContextManager]


def _no_autocast() -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


class _Captured:
    """One captured CUDA graph with its static input and output tensors."""

    def __init__(self, fn: Callable[[], tuple[torch.Tensor, ...]], pool: object,
                 device: torch.device) -> None:
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(WARMUP_RUNS):
                fn()
        torch.cuda.current_stream(device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: the two-stage tracker captures the extractor on one thread while the
        # other matches (and synchronises); "global" would fail the capture on that thread's
        # calls.
        with torch.cuda.graph(self.graph, pool=pool, capture_error_mode="thread_local"):
            self.outputs = fn()

    def replay(self) -> tuple[torch.Tensor, ...]:
        self.graph.replay()
        return self.outputs


class CudaGraphRunner(TorchGraphRunner):
    """Runs graph modules with torch; the graphs ``graphed(name)`` selects are captured per input
    shape and replayed (only with ``use_graphs``, i.e. on CUDA; else everything runs eagerly)."""

    def __init__(self, specs: list[GraphSpec], device: torch.device,
                 autocast: AutocastFactory = _no_autocast,
                 graphed: Callable[[str], bool] = lambda name: name.startswith("dense"),
                 use_graphs: bool = True) -> None:
        super().__init__(specs, device)
        self.autocast, self.graphed = autocast, graphed
        self.use_graphs = use_graphs and device.type == "cuda"
        self.pool = torch.cuda.graph_pool_handle() if self.use_graphs else None
        self.captured: dict[tuple, tuple[list[torch.Tensor], _Captured]] = {}

    @torch.inference_mode()
    def run(self, name: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        module = self.specs[name].module
        if not (self.use_graphs and self.graphed(name)):
            with self.autocast():
                out = module(*inputs)
            return tuple(out) if isinstance(out, (tuple, list)) else (out,)
        key = (name,) + tuple((tuple(t.shape), t.dtype) for t in inputs)
        if key not in self.captured:
            static = [t.clone() for t in inputs]

            def fn() -> tuple[torch.Tensor, ...]:
                with self._capture_autocast():
                    out = module(*static)
                return tuple(out) if isinstance(out, (tuple, list)) else (out,)

            self.captured[key] = (static, _Captured(fn, self.pool, self.device))
        static, captured = self.captured[key]
        for buffer, tensor in zip(static, inputs):
            buffer.copy_(tensor)
        return captured.replay()

    def _capture_autocast(self) -> contextlib.AbstractContextManager:
        ctx = self.autocast()
        if isinstance(ctx, torch.autocast):  # CUDA graphs need the weight-cast cache off
            return torch.autocast("cuda", dtype=ctx.fast_dtype, cache_enabled=False)
        return ctx


class PaddedStages:
    """The :class:`~lightglue_ros.models.lightglue.Stages` protocol over sets padded to a static
    length, for :func:`~lightglue_ros.models.lightglue.run_adaptive` with pruning off.

    Call :meth:`begin` with the two real set sizes before each ``run_adaptive``; ``encode`` pads
    (first call: image 0, second: image 1), ``layer`` runs the masked layer (a replayed CUDA graph
    with ``use_graphs``), ``confidence`` returns the real points' tokens and ``assign`` runs on the
    real points, as the official static-lengths path does.
    """

    def __init__(self, model: LightGlue, lengths: tuple[int, ...] = STATIC_LENGTHS,
                 use_graphs: bool = True, autocast: AutocastFactory = _no_autocast) -> None:
        self.model, self.lengths = model, tuple(sorted(lengths))
        self.n_layers = model.n_layers
        self.autocast = autocast
        device = next(model.parameters()).device
        self.device = device
        self.use_graphs = use_graphs and device.type == "cuda"
        self.pool = torch.cuda.graph_pool_handle() if self.use_graphs else None
        self.buffers: dict[tuple, dict[str, torch.Tensor]] = {}
        self.captured: dict[tuple, _Captured] = {}
        self.length = 0
        self.sizes = (0, 0)
        self.masks: list[torch.Tensor] = []
        self.encodings: list[torch.Tensor] = []

    def fits(self, m: int, n: int) -> bool:
        return 0 < max(m, n) <= self.lengths[-1]

    def begin(self, m: int, n: int) -> None:
        if not self.fits(m, n):
            raise ValueError(f"PaddedStages: sets of {m} and {n} points do not fit the static "
                             f"lengths {self.lengths}")
        self.length = min(k for k in self.lengths if k >= max(m, n))
        self.sizes = (m, n)
        self.masks, self.encodings = [], []

    def encode(self, kpts: torch.Tensor, desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self.masks) >= 2:
            raise RuntimeError("PaddedStages.encode: call begin() before each pair")
        kpts, _ = pad_to_length(kpts, self.length)
        desc, mask = pad_to_length(desc, self.length)
        with self.autocast():
            desc, enc = self.model.encode(kpts, desc)
        self.masks.append(mask)
        self.encodings.append(enc)
        return desc, enc

    def layer(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor, enc0: torch.Tensor,
              enc1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask0, mask1 = self.masks
        if not self.use_graphs:
            with self.autocast():
                return self.model.transformers[i](desc0, desc1, enc0, enc1, mask0, mask1)
        key = (self.length, desc0.dtype, enc0.dtype)
        if key not in self.buffers:
            self.buffers[key] = {"desc0": desc0.clone(), "desc1": desc1.clone(),
                                 "enc0": enc0.clone(), "enc1": enc1.clone(),
                                 "mask0": mask0.clone(), "mask1": mask1.clone()}
        b = self.buffers[key]
        for name, tensor in (("desc0", desc0), ("desc1", desc1), ("enc0", enc0), ("enc1", enc1),
                             ("mask0", mask0), ("mask1", mask1)):
            if b[name].data_ptr() != tensor.data_ptr():
                b[name].copy_(tensor)
        if key + (i,) not in self.captured:
            layer = self.model.transformers[i]

            def fn() -> tuple[torch.Tensor, torch.Tensor]:
                with self._capture_autocast():
                    return layer(b["desc0"], b["desc1"], b["enc0"], b["enc1"], b["mask0"],
                                 b["mask1"])

            self.captured[key + (i,)] = _Captured(fn, self.pool, self.device)
        out0, out1 = self.captured[key + (i,)].replay()
        if out0.dtype != desc0.dtype:  # autocast may change the dtype once; keep inputs stable
            out0, out1 = out0.to(desc0.dtype), out1.to(desc1.dtype)
        return out0, out1

    def confidence(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        m, n = self.sizes
        with self.autocast():
            token0, token1 = self.model.confidence(i, desc0[:, :m], desc1[:, :n])
        return token0, token1

    def matchability(self, i: int, desc: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("point pruning is off with padded static shapes")

    def assign(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
        m, n = self.sizes
        with self.autocast():
            return self.model.assign(i, desc0[:, :m], desc1[:, :n])

    def _capture_autocast(self) -> contextlib.AbstractContextManager:
        ctx = self.autocast()
        if isinstance(ctx, torch.autocast):
            return torch.autocast("cuda", dtype=ctx.fast_dtype, cache_enabled=False)
        return ctx
