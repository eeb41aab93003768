"""DISK as a graph: the U-Net with the candidate ranking; the host keeps the strongest candidates
in raster order and samples their descriptors, as ``DISK.forward`` does."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...models.disk import DISK, strict_local_maxima, strongest_in_raster_order
from .spec import GraphRunner, GraphSpec, candidate_count, image_spec, top_candidates

OUTPUTS = ("descriptor_map", "candidate_scores", "candidate_indices")


class _Rank(nn.Module):
    def __init__(self, window: int, k: int) -> None:
        super().__init__()
        self.window, self.k = window, k

    def forward(self, heatmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maxima = strict_local_maxima(heatmap, self.window)
        candidates = torch.where(maxima, heatmap, heatmap.new_tensor(float("-inf")))
        return top_candidates(candidates.reshape(-1), self.k, float("-inf"))


class _Dense(nn.Module):
    def __init__(self, model: DISK) -> None:
        super().__init__()
        self.net = model
        self.fp32 = _Rank(model.conf["nms_window_size"], candidate_count(model))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        heatmap, descriptors = self.net.dense_maps(image)
        return (descriptors[None],) + self.fp32(heatmap)


def graphs(model: DISK) -> list[GraphSpec]:
    return [image_spec("dense", _Dense(model), model.input_channels, OUTPUTS)]


def extract(model: DISK, run: GraphRunner, image: torch.Tensor) -> dict[str, torch.Tensor]:
    height, width = model.check_input(image)
    if model.too_small(height, width):
        return model.no_keypoints(image)
    descriptors, values, indices = run.run("dense", image)
    values, indices = values.float(), indices.long()
    keep = (indices < height * width) & (values > model.conf["detection_threshold"])
    values, indices = values[keep], indices[keep]
    order = torch.argsort(indices)  # raster order, as torch.nonzero gives them
    values, indices = values[order], indices[order]
    limit = model.conf["max_num_keypoints"]
    chosen = strongest_in_raster_order(values, None if limit is None or limit < 0 else limit)
    values, indices = values[chosen], indices[chosen]
    x, y = indices % width, indices // width
    sparse = F.normalize(descriptors[0].float()[:, y, x].T, dim=-1)
    return {"keypoints": torch.stack([x, y], dim=-1)[None].to(image.dtype),
            "keypoint_scores": values[None].to(image.dtype),
            "descriptors": sparse[None].to(image.dtype).contiguous()}
