"""SuperPoint (DeTone, Malisiewicz, Rabinovich, CVPRW 2018), as used by the official LightGlue.

Loads the official ``superpoint_v1.pth`` layout (conv1a ... convDb). The weights carry a
non-commercial licence and are never shipped: see ``lightglue-ros weights fetch superpoint``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import Extractor
from .keypoints import simple_nms, top_k

CELL = 8  # the detector head predicts one 8x8 cell per feature-map pixel


def sample_descriptors(keypoints: torch.Tensor, descriptors: torch.Tensor, s: int = CELL
                       ) -> torch.Tensor:
    """Bilinearly interpolate the coarse descriptor map at pixel keypoints (1,N,2) -> (1,D,N)."""
    b, c, h, w = descriptors.shape
    keypoints = keypoints - s / 2 + 0.5
    keypoints = keypoints / keypoints.new_tensor([w * s - s / 2 - 0.5, h * s - s / 2 - 0.5])
    grid = (keypoints * 2 - 1).view(b, 1, -1, 2)
    sampled = F.grid_sample(descriptors, grid, mode="bilinear", align_corners=True)
    return F.normalize(sampled.reshape(b, c, -1), p=2, dim=1)


def _conv(c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=k, stride=1, padding=k // 2)


class SuperPoint(Extractor):
    name = "superpoint"
    default_conf: dict[str, Any] = {
        "descriptor_dim": 256,
        "nms_radius": 4,
        "max_num_keypoints": None,
        "detection_threshold": 0.0005,
        "remove_borders": 4,
    }
    input_channels = 1
    descriptor_dim = 256

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        c1, c2, c3, c4, c5 = 64, 64, 128, 128, 256
        self.conv1a, self.conv1b = _conv(1, c1), _conv(c1, c1)
        self.conv2a, self.conv2b = _conv(c1, c2), _conv(c2, c2)
        self.conv3a, self.conv3b = _conv(c2, c3), _conv(c3, c3)
        self.conv4a, self.conv4b = _conv(c3, c4), _conv(c4, c4)
        self.convPa, self.convPb = _conv(c4, c5), _conv(c5, 65, 1)
        self.convDa, self.convDb = _conv(c4, c5), _conv(c5, self.conf["descriptor_dim"], 1)

    def backbone(self, image: torch.Tensor) -> torch.Tensor:
        x = image
        pairs = [(self.conv1a, self.conv1b), (self.conv2a, self.conv2b),
                 (self.conv3a, self.conv3b), (self.conv4a, self.conv4b)]
        for i, (ca, cb) in enumerate(pairs):
            x = F.relu(cb(F.relu(ca(x))))
            if i < 3:
                x = F.max_pool2d(x, 2, 2)
        return x

    def score_map(self, features: torch.Tensor) -> torch.Tensor:
        """Dense keypoint probability (B, H, W) at full resolution, dustbin channel dropped."""
        scores = F.softmax(self.convPb(F.relu(self.convPa(features))), 1)[:, :-1]
        b, _, h, w = scores.shape
        scores = scores.permute(0, 2, 3, 1).reshape(b, h, w, CELL, CELL)
        return scores.permute(0, 1, 3, 2, 4).reshape(b, h * CELL, w * CELL)

    def descriptor_map(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.convDb(F.relu(self.convDa(features))), p=2, dim=1)

    def candidates(self, scores: torch.Tensor) -> torch.Tensor:
        """The score map (B, H, W) after non-maximum suppression, with the border strip set to -1:
        the keypoint candidates. Pooled as (B, 1, H, W): the same values, and a valid 2-D ONNX
        MaxPool when exported."""
        scores = simple_nms(scores[:, None], self.conf["nms_radius"])[:, 0]
        pad = self.conf["remove_borders"]
        if pad:
            scores[:, :pad] = -1
            scores[:, :, :pad] = -1
            scores[:, -pad:] = -1
            scores[:, :, -pad:] = -1
        return scores

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if image.shape[-1] < CELL or image.shape[-2] < CELL:
            raise ValueError(f"superpoint needs images of at least {CELL}x{CELL} pixels, "
                             f"got {image.shape[-1]}x{image.shape[-2]}")
        features = self.backbone(image)
        scores = self.candidates(self.score_map(features))
        idx = torch.nonzero(scores[0] > self.conf["detection_threshold"])
        kpts, kscores = top_k(idx, scores[0][idx[:, 0], idx[:, 1]], self.conf["max_num_keypoints"])
        kpts = torch.flip(kpts, [1]).to(image.dtype)  # (row, col) -> (x, y)
        desc = sample_descriptors(kpts[None], self.descriptor_map(features), CELL)[0]
        return {"keypoints": kpts[None], "keypoint_scores": kscores[None],
                "descriptors": desc.transpose(-1, -2).contiguous()[None]}
