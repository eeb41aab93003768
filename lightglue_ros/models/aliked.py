"""ALIKED (Zhao et al., 2023): a light keypoint detector with deformable descriptors.

A re-implementation of the official network (Shiaoming/ALIKED, as shipped in cvg/LightGlue) that
loads its checkpoints unchanged and reproduces its outputs. Where the official code makes a choice
that looks arbitrary (the order of float operations on keypoint coordinates, the patch placement
near the border), it is kept on purpose: keypoint selection compares floats, so any deviation
would change which keypoints come out. The only departures are in ``ALIKED.select``, for
images where the official code returns junk keypoints.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .base import Extractor
from .deform_conv import DeformConv2d
from .keypoints import simple_nms


class _Widths(NamedTuple):
    """Channel widths of one ALIKED variant."""

    c1: int
    c2: int
    c3: int
    c4: int
    dim: int  # descriptor (and aggregated feature) dimension
    n_pos: int  # sampling positions per keypoint in the descriptor head


VARIANTS: dict[str, _Widths] = {
    "aliked-t16": _Widths(8, 16, 32, 64, 64, 16),
    "aliked-n16": _Widths(16, 32, 64, 128, 128, 16),
    "aliked-n16rot": _Widths(16, 32, 64, 128, 128, 16),
    "aliked-n32": _Widths(16, 32, 64, 128, 128, 32),
}

PAD_MULTIPLE = 32  # the encoder downsamples by 32 in all
PATCH_SIZE = 3  # the descriptor head predicts its sampling offsets from a 3x3 feature patch
SOFTMAX_TEMPERATURE = 0.1  # of the sub-pixel soft-argmax, tuned by the authors
N_LIMIT_MAX = 20000  # keypoint cap in threshold mode when max_num_keypoints is unlimited


class _Block(nn.Module):
    """Two 3x3 convolutions, each followed by BatchNorm and SELU; with ``residual`` the input,
    projected by a 1x1 convolution, is added before the second activation (a ResNet basic block)."""

    def __init__(self, c_in: int, c_out: int, deformable: bool, residual: bool) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, deformable)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv3x3(c_out, c_out, deformable)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = nn.Conv2d(c_in, c_out, 1) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.selu(self.bn1(self.conv1(x)))))
        if self.downsample is not None:
            out = out + self.downsample(x)
        return F.selu(out)


def _conv3x3(c_in: int, c_out: int, deformable: bool) -> nn.Module:
    if deformable:
        return DeformConv2d(c_in, c_out, kernel_size=3, padding=1)
    return nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)


class SDDH(nn.Module):
    """Sparse deformable descriptor head: for each keypoint, a small network looks at the 3x3
    feature patch around it and predicts ``n_pos`` sampling positions; the features sampled there
    are projected, weighted per position and summed into one L2-normalised descriptor.

    The image size comes in as a tensor ``wh`` = (W - 1, H - 1) and every step is a tensor
    operation, so the exported ONNX graph of this same module keeps a dynamic image size and
    keypoint count. The ``fp32_*`` parts hold the coordinate arithmetic, which FP16 engines keep in
    FP32 (see ``inference/precision.py``).
    """

    def __init__(self, dim: int, n_pos: int) -> None:
        super().__init__()
        self.n_pos = n_pos
        self.offset_conv = nn.Sequential(
            nn.Conv2d(dim, 2 * n_pos, PATCH_SIZE), nn.SELU(), nn.Conv2d(2 * n_pos, 2 * n_pos, 1))
        self.sf_conv = nn.Conv2d(dim, dim, 1, bias=False)
        self.agg_weights = nn.Parameter(torch.rand(n_pos, dim, dim))
        self.fp32_patches = _Patches()
        self.fp32_positions = _Positions(n_pos)

    def forward(self, features: torch.Tensor, keypoints: torch.Tensor, wh: torch.Tensor
                ) -> torch.Tensor:
        """Descriptors (N, dim) of ``keypoints`` (N, 2), given as x, y in [-1, 1] (corners at +-1),
        from the feature map (1, dim, H, W)."""
        dim = features.shape[1]
        pixels, patches = self.fp32_patches(features, keypoints, wh)
        sampled = self.fp32_positions(self.offset_conv(patches), pixels, wh, features)
        sampled = sampled.reshape(dim, -1, self.n_pos, 1).permute(1, 0, 2, 3)
        # [..., 0] rather than squeeze(-1), which exports as an If that TensorRT rejects
        projected = F.selu(self.sf_conv(sampled))[..., 0]  # (N, dim, n_pos)
        return F.normalize(torch.einsum("ncp,pcd->nd", projected, self.agg_weights), p=2.0, dim=1)


class _Patches(nn.Module):
    """Keypoints in pixels, and the PATCH_SIZE^2 feature patches (N, dim, P, P) around them. As in
    the official code, the patch's corner is clamped to [0, side - 1 - P], one pixel short of the
    last possible corner, so a keypoint in the last two columns (rows) gets a patch shifted
    inwards."""

    def forward(self, features: torch.Tensor, keypoints: torch.Tensor, wh: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = (keypoints / 2 + 0.5) * wh
        steps = torch.arange(PATCH_SIZE, device=features.device)
        corner = pixels.long() - PATCH_SIZE // 2
        limit = wh.long() - PATCH_SIZE  # side - 1 - P
        zero = torch.zeros_like(limit[0])
        # clamp(min=0, max=limit) as Max then Min: TensorRT's Clip takes no integers
        x0 = torch.minimum(torch.maximum(corner[:, 0], zero), limit[0])
        y0 = torch.minimum(torch.maximum(corner[:, 1], zero), limit[1])
        rows, cols = y0[:, None] + steps, x0[:, None] + steps  # (N, P) each
        patches = features[0][:, rows[:, :, None], cols[:, None, :]].permute(1, 0, 2, 3)
        return pixels, patches


class _Positions(nn.Module):
    """Predicted offsets -> bilinear samples (1, dim, N * n_pos, 1) of the feature map. The
    offsets are clamped to a quarter of the larger side of the map; the network gives all x
    shifts, then all y shifts."""

    def __init__(self, n_pos: int) -> None:
        super().__init__()
        self.n_pos = n_pos

    def forward(self, raw_offsets: torch.Tensor, pixels: torch.Tensor, wh: torch.Tensor,
                features: torch.Tensor) -> torch.Tensor:
        max_offset = (wh.max() + 1) / 4.0  # max(height, width) / 4
        offsets = torch.minimum(torch.maximum(raw_offsets, -max_offset), max_offset)  # clamp
        offsets = offsets.reshape(-1, 2, self.n_pos).transpose(1, 2)  # (N, n_pos, 2)
        positions = 2.0 * (pixels[:, None] + offsets) / wh - 1
        return F.grid_sample(features, positions.reshape(1, -1, 1, 2), mode="bilinear",
                             align_corners=True)


class ALIKED(Extractor):
    """ALIKED keypoints and descriptors; see the module docstring.

    Options: ``model_name`` picks the variant (``VARIANTS``). With ``detection_threshold`` > 0 the
    keypoints are the local maxima scoring above it, at most ``max_num_keypoints`` of them (the
    best; -1: up to N_LIMIT_MAX); with ``detection_threshold`` <= 0, the ``max_num_keypoints``
    best local maxima (-1: those above the image's mean score). ``nms_radius`` is
    both the non-maximum suppression radius and that of the sub-pixel refinement window, and no
    keypoint is taken within it of the border.

    Weights are not loaded here: pass the official checkpoint to ``load_state_dict``.
    """

    name = "aliked"
    default_conf: ClassVar[dict[str, Any]] = {
        "model_name": "aliked-n16",
        "max_num_keypoints": -1,
        "detection_threshold": 0.2,
        "nms_radius": 2,
    }
    input_channels = 3
    descriptor_dim = 128

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        if self.conf["model_name"] not in VARIANTS:
            raise ValueError(f"aliked: unknown model_name {self.conf['model_name']!r}; "
                             f"choose one of {sorted(VARIANTS)}")
        if self.conf["nms_radius"] < 1:
            raise ValueError(f"aliked: nms_radius must be >= 1, got {self.conf['nms_radius']}")
        c1, c2, c3, c4, dim, n_pos = VARIANTS[self.conf["model_name"]]
        self.descriptor_dim = dim
        self.block1 = _Block(3, c1, deformable=False, residual=False)
        self.block2 = _Block(c1, c2, deformable=False, residual=True)
        self.block3 = _Block(c2, c3, deformable=True, residual=True)
        self.block4 = _Block(c3, c4, deformable=True, residual=True)
        self.conv1, self.conv2, self.conv3, self.conv4 = (
            nn.Conv2d(c, dim // 4, 1, bias=False) for c in (c1, c2, c3, c4))
        self.score_head = nn.Sequential(
            nn.Conv2d(dim, 8, 1, bias=False), nn.SELU(),
            nn.Conv2d(8, 4, 3, padding=1, bias=False), nn.SELU(),
            nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.SELU(),
            nn.Conv2d(4, 1, 3, padding=1, bias=False))
        self.desc_head = SDDH(dim, n_pos)

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Keypoints, scores and descriptors of one RGB image; see ``Extractor``."""
        height, width = self.check_input(image)
        if self.too_small(height, width):
            return self.no_keypoints(image)
        features, scores = self.dense_maps(image)
        selected = self.select(self.candidates(scores).reshape(-1), scores.reshape(-1))
        if len(selected) == 0:
            return self.no_keypoints(image)
        return self.describe(image, features, scores, selected)

    def too_small(self, height: int, width: int) -> bool:
        """No keypoint fits: all pixels are within nms_radius of the border, or the image is
        narrower than a descriptor patch plus the one pixel the patch clamping leaves out."""
        side = min(height, width)
        return side <= 2 * self.conf["nms_radius"] or side < PATCH_SIZE + 1

    def dense_maps(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The L2-normalised feature map (1, dim, H, W) and the score map (1, 1, H, W) in (0, 1).
        The image is padded (edge replication) to a multiple of 32 and the maps cropped back."""
        pad = _padding(*image.shape[-2:])
        x1 = self.block1(F.pad(image, pad, mode="replicate"))
        x2 = self.block2(F.avg_pool2d(x1, 2))
        x3 = self.block3(F.avg_pool2d(x2, 4))
        x4 = self.block4(F.avg_pool2d(x3, 4))
        aggregated = torch.cat([
            F.selu(self.conv1(x1)),
            _upsample(F.selu(self.conv2(x2)), 2),
            _upsample(F.selu(self.conv3(x3)), 8),
            _upsample(F.selu(self.conv4(x4)), 32),
        ], dim=1)
        scores = torch.sigmoid(self.score_head(aggregated))
        features = F.normalize(aggregated, p=2, dim=1)
        return _crop(features, pad), _crop(scores, pad)

    def candidates(self, scores: torch.Tensor) -> torch.Tensor:
        """The score map (H, W) after non-maximum suppression, with the border strip zeroed: the
        keypoint candidates (0 = dropped)."""
        radius = self.conf["nms_radius"]
        candidates = simple_nms(scores, radius)[0, 0]
        candidates[:radius], candidates[-radius:] = 0, 0
        candidates[:, :radius], candidates[:, -radius:] = 0, 0
        return candidates

    def select(self, candidates: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Flat indices of the kept candidates (scores after NMS and border removal, 0 = dropped).

        The official rule picks the mode: a positive detection_threshold means threshold mode,
        capped at max_num_keypoints (unlimited: N_LIMIT_MAX), in raster order unless the cap
        applies, then best first; otherwise the max_num_keypoints best, best first (or, with no
        limit either, threshold mode at the image's mean score). Two deliberate departures, both
        only where the official output is junk: threshold mode has no fall-back to the mean score
        when nothing passes (officially, a blank image yields hundreds of keypoints scoring ~0.002),
        and top-k mode does not fill up with dropped pixels when there are fewer candidates than k
        (which of the equal zeros torch.topk returns is not even specified).
        """
        limit = self.conf["max_num_keypoints"]
        threshold = self.conf["detection_threshold"]
        if threshold <= 0 and limit > 0:
            best = torch.topk(candidates, min(limit, len(candidates)))
            return best.indices[best.values > 0]
        kept = candidates > (threshold if threshold > 0 else scores.mean())
        indices = kept.nonzero()[:, 0]
        n_limit = limit if limit > 0 else N_LIMIT_MAX
        if len(indices) > n_limit:
            order = scores[indices].sort(descending=True).indices
            indices = indices[order[:n_limit]]
        return indices

    def describe(self, image: torch.Tensor, features: torch.Tensor, scores: torch.Tensor,
                 selected: torch.Tensor,
                 head: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
                 | None = None) -> dict[str, torch.Tensor]:
        """The output for the selected flat indices: keypoints refined to sub-pixel positions by a
        soft-argmax over the score map, their scores, and their descriptors from ``head`` (the
        descriptor head, or a runner of its exported graph with the same signature)."""
        height, width = image.shape[-2:]
        radius = self.conf["nms_radius"]
        pixels = torch.stack([selected % width, selected // width], dim=1)
        keypoints = pixels + _soft_argmax(scores[0, 0], pixels, radius)
        keypoints = keypoints / scores.new_tensor([width - 1, height - 1]) * 2 - 1  # corners +-1
        wh = image.new_tensor([width - 1, height - 1])
        descriptors = (head or self.desc_head)(features, keypoints.contiguous(), wh)
        return {
            "keypoints": (wh * (keypoints + 1) / 2.0)[None],
            "keypoint_scores": _sample(scores, keypoints)[None],
            "descriptors": descriptors[None],
        }


def _padding(height: int, width: int) -> list[int]:
    """F.pad amounts (left, right, top, bottom) up to a multiple of PAD_MULTIPLE, split as the
    official InputPadder does (the odd pixel goes to the right / bottom)."""
    pad_h, pad_w = -height % PAD_MULTIPLE, -width % PAD_MULTIPLE
    return [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2]


def _crop(x: torch.Tensor, pad: list[int]) -> torch.Tensor:
    left, right, top, bottom = pad
    height, width = x.shape[-2:]
    return x[..., top:height - bottom, left:width - right]


def _upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=True)


def _soft_argmax(scores: torch.Tensor, pixels: torch.Tensor, radius: int) -> torch.Tensor:
    """Sub-pixel shifts (N, 2), x then y: the softmax-weighted mean position in the
    (2r+1)^2 window of ``scores`` (H, W) around each integer pixel, zero outside the map."""
    size = 2 * radius + 1
    steps = torch.arange(size, device=scores.device)
    padded = F.pad(scores, [radius] * 4)  # window (r, c) of a pixel (y, x): padded[y + r, x + c]
    rows = pixels[:, 1, None] + steps.repeat_interleave(size)  # (N, size^2), tap order row-major
    cols = pixels[:, 0, None] + steps.repeat(size)
    window = padded[rows, cols]
    weights = ((window - window.max(dim=1, keepdim=True).values) / SOFTMAX_TEMPERATURE).exp()
    taps = torch.stack([steps.repeat(size), steps.repeat_interleave(size)], dim=1) - radius
    return weights @ taps.to(scores.dtype) / weights.sum(dim=1)[:, None]


def _sample(scores: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """Bilinear values (N,) of the score map (1, 1, H, W) at keypoints in [-1, 1]."""
    grid = keypoints.reshape(1, 1, -1, 2)
    return F.grid_sample(scores, grid, mode="bilinear", align_corners=True)[0, 0, 0]
