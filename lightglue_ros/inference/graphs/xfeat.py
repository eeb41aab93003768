"""XFeat as a graph: the network on the image resized to a multiple of 32, with the candidate
ranking (every pixel scored as :meth:`XFeat.select` scores it, local maxima above the threshold
kept, one TopK); the host resizes, averages the channels, cuts at ``top_k`` and samples the
descriptors with the model's own functions, so the output is that of ``XFeat.forward``.

The host does the resize (:func:`resize_to_multiple`) and the channel average, in the order the
model does them, and the graph takes the gray image: one graph for RGB and gray input, and the
graph's own average over one channel is the identity, so its input is the model's to the bit. The
detection threshold is a graph input: XFeat ranks by heatmap x reliability but thresholds the
heatmap, so the threshold must act before the TopK, and as an input it does so without a new
export (or TensorRT engine) per value. XFeat always returns keypoints best first; the one extra
candidate of the ranking is not needed here and only keeps the limit the same as for the others.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...models.xfeat import SIZE_MULTIPLE, XFeat, resize_to_multiple
from .spec import GraphRunner, GraphSpec, candidate_count, keypoint_limit, top_candidates

OUTPUTS = ("descriptor_map", "candidate_scores", "candidate_indices")
TRACE_SIZE = (7 * SIZE_MULTIPLE, 11 * SIZE_MULTIPLE)  # the graph only sees multiples of 32


def _max_pool(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """The window maximum as one MaxPool (the same values as the model's ``window_max``)."""
    return F.max_pool2d(x, kernel, stride=1, padding=kernel // 2)


class _Rank(nn.Module):
    def __init__(self, model: XFeat) -> None:
        super().__init__()
        self.candidates, self.k = model.candidates, candidate_count(model)

    def forward(self, heatmap: torch.Tensor, reliability: torch.Tensor, threshold: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        flat = self.candidates(heatmap, reliability, threshold, _max_pool)
        return top_candidates(flat, self.k, -1.0)


class _Dense(nn.Module):
    def __init__(self, model: XFeat) -> None:
        super().__init__()
        self.net = model
        self.fp32 = _Rank(model)

    def forward(self, image: torch.Tensor, threshold: torch.Tensor) -> tuple[torch.Tensor, ...]:
        descriptors, heatmap, reliability = self.net.dense_maps(image)
        return (descriptors,) + self.fp32(heatmap, reliability, threshold)


def graphs(model: XFeat) -> list[GraphSpec]:
    h, w = TRACE_SIZE
    return [GraphSpec("dense", _Dense(model).eval(), ("image", "threshold"), OUTPUTS,
                      {"image": (1, 1, "height", "width"), "threshold": (1,)},
                      lambda: (torch.rand(1, 1, h, w), torch.tensor([0.05])))]


def extract(model: XFeat, run: GraphRunner, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """As ``XFeat.forward``, from the candidates the graph ranked."""
    height, width = model.check_input(image)
    if model.too_small(height, width):
        return model.no_keypoints(image)
    resized = resize_to_multiple(image)
    gray = resized.mean(dim=1, keepdim=True)  # as dense_maps averages, before the graph
    threshold = torch.tensor([model.conf["detection_threshold"]], dtype=torch.float32,
                             device=image.device)
    descriptors, values, indices = run.run("dense", gray, threshold)
    values, indices = values.float(), indices.long()
    keep = (values > 0) & (indices < gray.shape[-2] * gray.shape[-1])
    limit = keypoint_limit(model)
    values, indices = values[keep][:limit], indices[keep][:limit]
    w = gray.shape[-1]
    pixels = torch.stack([indices % w, indices // w], dim=-1)
    return model.describe(image, resized, descriptors.float(), pixels, values)
