"""ALIKED as graphs: the dense network with the candidate ranking, and the model's own descriptor
head with a dynamic keypoint count; the host selects and refines between the two.

ALIKED's deformable convolutions clamp their offsets to a quarter of the larger side of the feature
map (``max(h, w) / 4``); a traced graph keeps the side that was larger when it was traced, so ALIKED
has one dense graph per orientation (``dense_landscape`` for width >= height, ``dense_portrait``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...models.aliked import ALIKED
from .spec import TRACE_SIZE, GraphRunner, GraphSpec, candidate_count, image_spec, top_candidates

OUTPUTS = ("features", "scores", "candidate_scores", "candidate_indices")


class _Rank(nn.Module):
    def __init__(self, model: ALIKED) -> None:
        super().__init__()
        self.candidates, self.k = model.candidates, candidate_count(model)

    def forward(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return top_candidates(self.candidates(scores).reshape(-1), self.k, -1.0)


class _Dense(nn.Module):
    def __init__(self, model: ALIKED) -> None:
        super().__init__()
        self.net = model
        self.fp32 = _Rank(model)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features, scores = self.net.dense_maps(image)
        return (features, scores) + self.fp32(scores)


def graphs(model: ALIKED) -> list[GraphSpec]:
    h, w = TRACE_SIZE
    c, dim = model.input_channels, model.descriptor_dim
    dense = _Dense(model)

    def describe_example() -> tuple[torch.Tensor, ...]:
        features = F.normalize(torch.rand(1, dim, h, w), dim=1)
        keypoints = torch.rand(37, 2) * 2 - 1
        return features, keypoints, torch.tensor([w - 1.0, h - 1.0])

    return [
        image_spec("dense_landscape", dense, c, OUTPUTS, (h, w)),
        image_spec("dense_portrait", dense, c, OUTPUTS, (w, h)),
        GraphSpec("describe", model.desc_head.eval(), ("features", "keypoints", "wh"),
                  ("descriptors",), {"features": (1, dim, "height", "width"),
                                     "keypoints": ("n", 2), "wh": (2,)}, describe_example),
    ]


def extract(model: ALIKED, run: GraphRunner, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """As ``ALIKED.forward``, from the candidates the graph ranked."""
    height, width = model.check_input(image)
    if model.too_small(height, width):
        return model.no_keypoints(image)
    orientation = "landscape" if width >= height else "portrait"
    features, scores, values, indices = (t.float() for t in run.run(f"dense_{orientation}", image))
    indices = indices.long()
    n = height * width
    keep = indices < n
    candidates = scores.new_zeros(n)
    candidates[indices[keep]] = values[keep]
    selected = model.select(candidates, scores.reshape(-1))
    if len(selected) == 0:
        return model.no_keypoints(image)

    def head(features: torch.Tensor, keypoints: torch.Tensor, wh: torch.Tensor) -> torch.Tensor:
        return run.run("describe", features, keypoints, wh)[0].float()

    return model.describe(image, features, scores, selected, head)
