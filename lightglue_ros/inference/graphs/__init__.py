"""The networks cut into the graphs ONNX Runtime and TensorRT run, and the host code around them.

Extractors. Each extractor's graph holds its dense network (image -> score map, descriptor or
feature maps) with a dynamic image size, followed by the candidate ranking: the model's own
non-maximum suppression and border removal, then one TopK of ``max_keypoints + 1`` candidates
(TensorRT's TopK takes K up to :data:`MAX_TOPK`, so max_keypoints <= 3838 there). The host then
finishes the selection with the model's public methods, so keypoints come out in the same order
and with the same values as from the PyTorch models (up to exactly tied scores). The one extra
candidate tells the host whether more than ``max_keypoints`` passed the threshold, which decides
between raster order and score order exactly as the models do. XFeat ranks heatmap x reliability
at its local maxima above the threshold, which is a graph input (see :mod:`.xfeat`). One module
per extractor.

LightGlue. One graph per stage (:mod:`.lightglue`), driven by the same host loop as the model.

Scopes named ``fp32*`` in the graph modules mark the computations that FP16 engines keep in FP32
(see :mod:`lightglue_ros.inference.precision`).
"""
from __future__ import annotations

from types import ModuleType

import torch

from ...models.base import Extractor
from . import aliked, disk, superpoint, xfeat
from .lightglue import GraphStages, matcher_graphs
from .spec import MAX_TOPK, TRACE_SIZE, GraphRunner, GraphSpec, TorchGraphRunner

_EXTRACTORS: dict[str, ModuleType] = {"superpoint": superpoint, "aliked": aliked, "disk": disk,
                                       "xfeat": xfeat}


def _module(model: Extractor) -> ModuleType:
    if model.name not in _EXTRACTORS:
        raise ValueError(f"no graphs for extractor '{model.name}'")
    return _EXTRACTORS[model.name]


def extractor_graphs(model: Extractor, static: bool = True) -> list[GraphSpec]:
    """The graphs of an extractor (with its weights and keypoint options). ``static=False`` lets
    a graph's intermediate shapes depend on the data where that is faster with the same outputs
    (XFeat's ranking, :mod:`.xfeat`): for ONNX Runtime, not for TensorRT engines or CUDA graphs."""
    if data_dependent(model, static):
        return xfeat.graphs(model, static=False)
    return _module(model).graphs(model)


def data_dependent(model: Extractor, static: bool) -> bool:
    """Whether ``extractor_graphs(model, static)`` differ from the static graphs."""
    return not static and model.name == "xfeat"


class GraphExtractor:
    """Keypoints, scores and descriptors of one image from the extractor graphs run by ``runner``
    plus the host-side selection; the same output as ``model(image)``. ``model`` provides the
    options and the host functions only (its weights are not used)."""

    def __init__(self, model: Extractor, runner: GraphRunner) -> None:
        self.model, self.runner = model, runner
        self._extract = _module(model).extract

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._extract(self.model, self.runner, image)


__all__ = ["MAX_TOPK", "TRACE_SIZE", "GraphExtractor", "GraphRunner", "GraphSpec", "GraphStages",
           "TorchGraphRunner", "data_dependent", "extractor_graphs", "matcher_graphs"]
