"""XFeat as a graph: the network on the image resized to a multiple of 32, with the candidate
ranking (pixels scored as :meth:`XFeat.select` scores them, local maxima above the threshold
kept, one TopK; every pixel scored for TensorRT and CUDA graphs, the maxima alone for ONNX
Runtime, with the same result); the host resizes, averages the channels, cuts at ``top_k`` and
samples the descriptors with the model's own functions, so the output is that of
``XFeat.forward``.

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
    """Every pixel scored (:meth:`XFeat.candidates`), then one TopK: shapes follow from the image
    size alone, as TensorRT engines and CUDA graphs need."""

    def __init__(self, model: XFeat) -> None:
        super().__init__()
        self.candidates, self.k = model.candidates, candidate_count(model)

    def forward(self, heatmap: torch.Tensor, reliability: torch.Tensor, threshold: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        flat = self.candidates(heatmap, reliability, threshold, _max_pool)
        return top_candidates(flat, self.k, -1.0)


class _RankPeaks(nn.Module):
    """Only the local maxima above the threshold scored (as :meth:`XFeat.select` scores them),
    then one TopK: the same candidates (positive scores) with the same values in the same order
    as :class:`_Rank` (scores are computed per pixel; the maxima keep their raster order, so ties
    break alike), without the two grid samples over the whole image that cost ONNX Runtime more
    than the network's convolutions. The count of maxima depends on the data (NonZero), which
    TensorRT's parser and CUDA graphs do not take: ONNX Runtime only."""

    def __init__(self, model: XFeat) -> None:
        super().__init__()
        self.local_maxima, self.pixel_scores = model.local_maxima, model.pixel_scores
        self.k = candidate_count(model)

    def forward(self, heatmap: torch.Tensor, reliability: torch.Tensor, threshold: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = heatmap.shape[-2:]
        peaks = self.local_maxima(heatmap, threshold, _max_pool)[0, 0]
        pixels = peaks.nonzero().flip(-1)  # raster order, x then y
        last = torch.stack([torch.arange(width, device=pixels.device)[-1],  # (W - 1, H - 1),
                            torch.arange(height, device=pixels.device)[-1]])  # from the shape
        values, order = top_candidates(self.pixel_scores(heatmap, reliability, pixels, last),
                                       self.k, -1.0)
        flat = pixels[:, 1] * width + pixels[:, 0]
        padded = torch.cat([flat, flat.new_full((self.k,), height * width)])  # no candidate
        return values, padded[order]


class _Dense(nn.Module):
    def __init__(self, model: XFeat, static: bool) -> None:
        super().__init__()
        self.net = model
        self.fp32 = _Rank(model) if static else _RankPeaks(model)

    def forward(self, image: torch.Tensor, threshold: torch.Tensor) -> tuple[torch.Tensor, ...]:
        descriptors, heatmap, reliability = self.net.dense_maps(image)
        return (descriptors,) + self.fp32(heatmap, reliability, threshold)


def graphs(model: XFeat, static: bool = True) -> list[GraphSpec]:
    """``static``: :class:`_Rank`, else :class:`_RankPeaks`."""
    h, w = TRACE_SIZE
    return [GraphSpec("dense", _Dense(model, static).eval(), ("image", "threshold"), OUTPUTS,
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
