"""DISK (Tyszkiewicz et al., NeurIPS 2020): a U-Net that predicts a keypoint heatmap and dense
128-d descriptors at full resolution.

This reproduces what the official LightGlue pipeline gets from kornia's DISK with the "depth"
checkpoint: the same network, zero padding to a multiple of 16, strict 5x5 non-maximum suppression,
the n strongest maxima kept in raster order, and L2-normalised descriptors read at integer pixels.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .base import Extractor

_KERNEL = 5
_DOWN_CHANNELS = (16, 32, 64, 64, 64)  # encoder levels, full resolution first
_UP_CHANNELS = (64, 64, 64, 128 + 1)  # decoder levels; the last is 128 descriptor + 1 heatmap
_SIZE_MULTIPLE = 2 ** len(_UP_CHANNELS)  # four halvings: each side must divide by 16


def _conv_block(in_channels: int, out_channels: int, normalise: bool = True) -> nn.Sequential:
    """Instance norm, PReLU, then a 5x5 'same' convolution (pre-activation).

    Index 2 is an empty slot where DISK's training code had dropout; it is kept so that the
    checkpoint's parameter names (norm 0, PReLU 1, conv 3) load unchanged.
    """
    return nn.Sequential(
        nn.InstanceNorm2d(in_channels) if normalise else nn.Identity(),
        nn.PReLU(in_channels) if normalise else nn.Identity(),
        nn.Identity(),
        nn.Conv2d(in_channels, out_channels, _KERNEL, padding=_KERNEL // 2),
    )


class _UpBlock(nn.Module):
    """Doubles the coarser map bilinearly and fuses it with the encoder's skip connection."""

    def __init__(self, bottom_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = _conv_block(bottom_channels + skip_channels, out_channels)

    def forward(self, bottom: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        upsampled = F.interpolate(bottom, scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv(torch.cat([upsampled, skip], dim=1))


class _UNet(nn.Module):
    """DISK's thin U-Net: five encoder levels (avg-pool halving), four decoder levels (bilinear
    doubling plus skip connection). The RGB image enters the first convolution as given, with no
    mean/std normalisation and no norm or PReLU in front of it."""

    def __init__(self) -> None:
        super().__init__()
        inputs = (3, *_DOWN_CHANNELS[:-1])
        self.path_down = nn.ModuleList(
            # Level 0 works at full resolution; every later level first halves it.
            nn.Sequential(nn.AvgPool2d(2) if level else nn.Identity(),
                          _conv_block(c_in, c_out, normalise=level > 0))
            for level, (c_in, c_out) in enumerate(zip(inputs, _DOWN_CHANNELS)))
        bottoms = (_DOWN_CHANNELS[-1], *_UP_CHANNELS[:-1])
        skips = _DOWN_CHANNELS[-2::-1]
        self.path_up = nn.ModuleList(
            _UpBlock(c_bottom, c_skip, c_out)
            for c_bottom, c_skip, c_out in zip(bottoms, skips, _UP_CHANNELS))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        levels = [image]
        for block in self.path_down:
            levels.append(block(levels[-1]))
        x = levels[-1]
        # levels[-2::-1] pairs each decoder block with the encoder output of its resolution.
        for block, skip in zip(self.path_up, levels[-2::-1]):
            x = block(x, skip)
        return x


def strict_local_maxima(scores: torch.Tensor, window: int) -> torch.Tensor:
    """Boolean mask of the positions of a (H, W) map greater than every other value in their
    ``window`` x ``window`` neighbourhood.

    This is kornia's ``nms2d`` rule, which the official DISK pipeline uses and which differs from
    ``keypoints.simple_nms``: plateaus give no maximum, and a position whose window runs off the
    map is never a maximum (it was not compared with all its neighbours), so a border strip of
    ``(window - 1) // 2`` before and ``window // 2`` after stays False on each axis.
    """
    before, after = (window - 1) // 2, window // 2
    height, width = scores.shape
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if height < window or width < window:
        return mask
    centre = scores[before:height - after, before:width - after]
    is_max = torch.ones_like(centre, dtype=torch.bool)
    for dy in range(window):
        for dx in range(window):
            if (dy, dx) != (before, before):
                is_max &= centre > scores[dy:dy + height - window + 1, dx:dx + width - window + 1]
    mask[before:height - after, before:width - after] = is_max
    return mask


def strongest_in_raster_order(scores: torch.Tensor, n: int | None) -> torch.Tensor:
    """Indices of the ``n`` highest of ``scores`` (given in raster order), returned in raster order.

    Scores tied at the cut are taken in raster order, as the reference does: a stable descending
    sort keeps equal scores in their original order, which ``torch.topk`` does not promise.
    """
    if n is None or n >= len(scores):
        return torch.arange(len(scores), device=scores.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    return order[:n].sort().values


class DISK(Extractor):
    """DISK keypoints and descriptors.

    Keypoints are integer pixel positions listed in raster order (row by row), not by score, as the
    reference returns them; scores are raw heatmap logits. An image too small for the network or
    the suppression window gives no keypoints.

    Weights are not loaded here: pass the official checkpoint through ``convert_state_dict`` to
    ``load_state_dict``.
    """

    name = "disk"
    default_conf: ClassVar[dict[str, Any]] = {
        "max_num_keypoints": None,  # None or negative: keep every maximum above the threshold
        "nms_window_size": 5,  # side of the square suppression window, in pixels
        "detection_threshold": 0.0,  # heatmap logits must be strictly above it
        "pad_if_not_divisible": True,  # zero-pad bottom/right to a multiple of 16 (else: error)
    }
    input_channels = 3
    descriptor_dim = 128

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        window = self.conf["nms_window_size"]
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"disk: nms_window_size must be a positive integer, got {window!r}")
        self.unet = _UNet()

    @classmethod
    def convert_state_dict(cls, state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The official checkpoint nests the weights under "extractor"; unwrap them if so."""
        return dict(state_dict.get("extractor", state_dict))

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        height, width = self.check_input(image)
        if self.too_small(height, width):
            return self.no_keypoints(image)
        heatmap, descriptors = self.dense_maps(image)
        keypoints, scores = self._detect(heatmap)
        x, y = keypoints.unbind(-1)
        sparse = F.normalize(descriptors[:, y, x].T, dim=-1)
        return {
            "keypoints": keypoints[None].to(image.dtype),
            "keypoint_scores": scores[None].to(image.dtype),
            "descriptors": sparse[None].to(image.dtype).contiguous(),
        }

    def check_input(self, image: torch.Tensor) -> tuple[int, int]:
        height, width = super().check_input(image)
        divisible = height % _SIZE_MULTIPLE == 0 and width % _SIZE_MULTIPLE == 0
        if not (divisible or self.conf["pad_if_not_divisible"]):
            raise ValueError(f"disk: image size {width}x{height} is not a multiple of "
                             f"{_SIZE_MULTIPLE}; enable pad_if_not_divisible")
        return height, width

    def too_small(self, height: int, width: int) -> bool:
        """No keypoint can come out: the suppression window does not fit in the image, or the
        padded image is a single 16x16 cell, which leaves the U-Net's coarsest level one pixel,
        where instance norm is undefined (the reference raises there)."""
        padded_cells = -(-height // _SIZE_MULTIPLE) * -(-width // _SIZE_MULTIPLE)
        return min(height, width) < self.conf["nms_window_size"] or padded_cells < 2

    def dense_maps(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The heatmap (H, W) and unnormalised descriptors (128, H, W) of a (1, 3, H, W) image.

        The image is zero-padded at the bottom and right so that the U-Net's four halvings divide
        evenly, and the maps are cropped back before suppression, so that no keypoint can lie in
        the padding and the border rule of the suppression applies at the real image border.
        """
        height, width = image.shape[-2:]
        padded = F.pad(image, (0, -width % _SIZE_MULTIPLE, 0, -height % _SIZE_MULTIPLE))
        output = self.unet(padded)[0, :, :height, :width]
        return output[self.descriptor_dim], output[:self.descriptor_dim]

    def _detect(self, heatmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints (N, 2) as integer x, y in raster order, and their scores (N,)."""
        detected = strict_local_maxima(heatmap, self.conf["nms_window_size"])
        detected &= heatmap > self.conf["detection_threshold"]
        keypoints = detected.nonzero().flip(-1)
        scores = heatmap[detected]
        limit = self.conf["max_num_keypoints"]
        keep = strongest_in_raster_order(scores, None if limit is None or limit < 0 else limit)
        return keypoints[keep], scores[keep]
