"""The interface every feature extractor network implements."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class Extractor(nn.Module):
    """A keypoint detector and descriptor.

    ``forward`` takes a batch of one image, float32 in [0, 1], shaped (1, C, H, W) with C equal to
    ``input_channels``, and returns keypoints (1, N, 2) as pixel (x, y) in that image, their scores
    (1, N) and L2-normalised descriptors (1, N, ``descriptor_dim``). N may be 0.
    """

    name: ClassVar[str]
    default_conf: ClassVar[dict[str, Any]]
    input_channels: ClassVar[int]
    descriptor_dim: ClassVar[int]

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        unknown = set(conf or {}) - set(self.default_conf)
        if unknown:
            raise ValueError(f"{self.name}: unknown option(s) {sorted(unknown)}")
        self.conf = {**self.default_conf, **(conf or {})}

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def no_keypoints(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The output for an image without keypoints, shaped and typed like any other."""
        return {
            "keypoints": image.new_zeros((1, 0, 2)),
            "keypoint_scores": image.new_zeros((1, 0)),
            "descriptors": image.new_zeros((1, 0, self.descriptor_dim)),
        }
