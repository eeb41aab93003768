"""What a graph is (its module, named inputs and outputs, dynamic dimensions, tracing example),
how one is run, and the candidate ranking every extractor graph ends with."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import nn

from ...models.base import Extractor

MAX_TOPK = 3839  # the largest K TensorRT's TopK accepts ("K must be less than 3840")
TRACE_SIZE = (200, 264)  # height, width of the tracing image: not a multiple of 8, 16 or 32

Dim = int | str  # a fixed size, or the name of a dynamic dimension


@dataclass
class GraphSpec:
    """One graph: the module that computes it, its named inputs and outputs, the input shapes
    (strings name dynamic dimensions shared across inputs) and example inputs for tracing."""

    name: str
    module: nn.Module
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    shapes: dict[str, tuple[Dim, ...]]
    example: Callable[[], tuple[torch.Tensor, ...]] = field(repr=False)
    fp16: bool = True  # False: FP16 engines build this graph in FP32 all the same

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes = {name: {i: d for i, d in enumerate(self.shapes[name]) if isinstance(d, str)}
                for name in self.inputs}
        return {k: v for k, v in axes.items() if v}


class GraphRunner(Protocol):
    """Runs the graph ``name`` on device tensors and returns its outputs in declared order."""

    device: torch.device

    def run(self, name: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


class TorchGraphRunner:
    """Runs the graph modules eagerly with PyTorch: the reference the exported graphs are compared
    with, and the base of the CUDA-graph path of the torch backend."""

    def __init__(self, specs: list[GraphSpec], device: torch.device) -> None:
        self.specs = {s.name: s for s in specs}
        self.device = device

    @torch.inference_mode()
    def run(self, name: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.specs[name].module(*inputs)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def top_candidates(flat: torch.Tensor, k: int, fill: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest values of a flat map with their indices, best first (ties: lower index
    first, as ONNX TopK specifies). The map is padded with k ``fill`` values so that TopK is valid
    for any image size; padded entries have indices >= the map size."""
    padded = torch.cat([flat, flat.new_full((k,), fill)])
    values, indices = torch.topk(padded, k, dim=0, largest=True, sorted=True)
    return values, indices


def keypoint_limit(model: Extractor) -> int:
    """An extractor's keypoint limit (``max_num_keypoints``, XFeat's ``top_k``): exported graphs
    rank a fixed number of candidates, so they need one."""
    key = "top_k" if "top_k" in model.conf else "max_num_keypoints"
    limit = model.conf.get(key)
    if limit is None or limit < 1:
        raise ValueError(f"{model.name}: exported graphs need a keypoint limit "
                         f"(max_keypoints >= 1), got {limit!r}")
    return int(limit)


def candidate_count(model: Extractor) -> int:
    """How many candidates an extractor graph ranks: one more than the keypoint limit, so that
    the host can tell whether more than ``max_keypoints`` passed the threshold."""
    return keypoint_limit(model) + 1


def image_spec(name: str, module: nn.Module, channels: int, outputs: tuple[str, ...],
               size: tuple[int, int] = TRACE_SIZE) -> GraphSpec:
    """A graph of one image (1, C, H, W) with a dynamic height and width."""
    h, w = size
    return GraphSpec(name, module.eval(), ("image",), outputs,
                     {"image": (1, channels, "height", "width")},
                     lambda: (torch.rand(1, channels, h, w),))
