"""Keypoint selection shared by the detectors: non-maximum suppression and top-k."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _max_pool(x: torch.Tensor, radius: int) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=radius * 2 + 1, stride=1, padding=radius)


def simple_nms(scores: torch.Tensor, radius: int) -> torch.Tensor:
    """Zero every score that is not the maximum of its (2r+1)^2 neighbourhood (two refinement passes,
    as in SuperPoint, so that a suppressed maximum's neighbours can become maxima)."""
    zeros = torch.zeros_like(scores)
    is_max = scores == _max_pool(scores, radius)
    for _ in range(2):
        suppressed = _max_pool(is_max.float(), radius) > 0
        remaining = torch.where(suppressed, zeros, scores)
        new_max = remaining == _max_pool(remaining, radius)
        is_max = is_max | (new_max & ~suppressed)
    return torch.where(is_max, scores, zeros)


def top_k(keypoints: torch.Tensor, scores: torch.Tensor, k: int | None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """The k highest-scoring keypoints, best first; all of them when there are no more than k or
    k is None or negative (no limit)."""
    if k is None or k < 0 or k >= len(keypoints):
        return keypoints, scores
    scores, order = torch.topk(scores, k, dim=0, sorted=True)
    return keypoints[order], scores
