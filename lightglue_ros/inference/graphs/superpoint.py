"""SuperPoint as graphs: the dense network with the candidate ranking, and the host-side rest."""
from __future__ import annotations

import torch
from torch import nn

from ...models.superpoint import CELL, SuperPoint, sample_descriptors
from ...models.keypoints import top_k
from .spec import GraphRunner, GraphSpec, candidate_count, image_spec, top_candidates

RANKED = ("candidate_scores", "candidate_indices")


class _Rank(nn.Module):
    def __init__(self, model: SuperPoint) -> None:
        super().__init__()
        self.candidates, self.k = model.candidates, candidate_count(model)

    def forward(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        candidates = self.candidates(scores)
        return top_candidates(candidates.reshape(-1), self.k, -1.0)


class _Dense(nn.Module):
    def __init__(self, model: SuperPoint) -> None:
        super().__init__()
        self.net = model
        self.fp32 = _Rank(model)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.net.backbone(image)
        return (self.net.descriptor_map(features),) + self.fp32(self.net.score_map(features))


def graphs(model: SuperPoint) -> list[GraphSpec]:
    return [image_spec("dense", _Dense(model), model.input_channels, ("descriptor_map",) + RANKED)]


def extract(model: SuperPoint, run: GraphRunner, image: torch.Tensor) -> dict[str, torch.Tensor]:
    if image.shape[-1] < CELL or image.shape[-2] < CELL:
        return model(image)  # the model's own error
    desc_map, values, indices = run.run("dense", image)
    h, w = image.shape[-2] // CELL * CELL, image.shape[-1] // CELL * CELL
    values, indices = values.float(), indices.long()
    keep = (indices < h * w) & (values > model.conf["detection_threshold"])
    values, indices = values[keep], indices[keep]
    order = torch.argsort(indices)  # raster order, as torch.nonzero gives them
    values, indices = values[order], indices[order]
    rows_cols = torch.stack([indices // w, indices % w], dim=1)
    kpts, kscores = top_k(rows_cols, values, model.conf["max_num_keypoints"])
    kpts = torch.flip(kpts, [1]).to(image.dtype)
    desc = sample_descriptors(kpts[None], desc_map.float(), CELL)[0]
    return {"keypoints": kpts[None], "keypoint_scores": kscores[None],
            "descriptors": desc.transpose(-1, -2).contiguous()[None]}
