"""All textures and their mip levels packed into one RGBA image, sampled by a single cv2.remap.

Mip levels are what keeps distant or grazing surfaces from aliasing (shimmering between frames):
the renderer reads each sample from the level whose texels match the sample's footprint. One atlas
turns the per-surface lookups into one call; four channels take OpenCV's fast remap path.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_BORDER = 2          # replicated texels around each image, so bilinear reads never bleed
_MIN_WIDTH = 4096
_MAX_SIZE = 32767    # cv2.remap addresses its source with 16-bit integers


@dataclass(frozen=True)
class TextureAtlas:
    """``image`` holds level L of texture q at offset (offset_x[q, L], offset_y[q, L]).

    Level L texel (i, j) sits at level-0 texel coordinates (2^L i, 2^L j) (cv2.pyrDown's
    alignment), so a level-0 texel coordinate a is found at a / 2^L + offset in level L.
    """

    image: np.ndarray        # (H, W, 4) uint8, RGB + unused
    offset_x: np.ndarray     # (Q, levels) float32
    offset_y: np.ndarray     # (Q, levels) float32

    @property
    def levels(self) -> int:
        return self.offset_x.shape[1]


def build_atlas(textures: list[np.ndarray], levels: int = 5) -> TextureAtlas:
    """Pack ``levels`` mip levels of each RGB texture with shelf packing (tallest first)."""
    tiles = []
    for q, tex in enumerate(textures):
        level = cv2.cvtColor(tex, cv2.COLOR_RGB2RGBA)
        for L in range(levels):
            tiles.append((q, L, cv2.copyMakeBorder(level, *[_BORDER] * 4, cv2.BORDER_REPLICATE)))
            level = cv2.pyrDown(level) if min(level.shape[:2]) > 1 else level
    tiles.sort(key=lambda tile: -tile[2].shape[0])
    width = max(_MIN_WIDTH, max(tile.shape[1] for _, _, tile in tiles))
    positions, x, y, shelf = [], 0, 0, 0
    for _, _, tile in tiles:
        h, w = tile.shape[:2]
        if x + w > width:
            x, y, shelf = 0, y + shelf, 0
        positions.append((x, y))
        x, shelf = x + w, max(shelf, h)
    if max(width, y + shelf) > _MAX_SIZE:
        raise ValueError(f"textures too large for one atlas ({width} x {y + shelf} texels); "
                         "lower the texel density")
    image = np.zeros((y + shelf, width, 4), np.uint8)
    offset_x = np.zeros((len(textures), levels), np.float32)
    offset_y = np.zeros_like(offset_x)
    for (q, L, tile), (x, y) in zip(tiles, positions):
        image[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
        offset_x[q, L], offset_y[q, L] = x + _BORDER, y + _BORDER
    return TextureAtlas(image, offset_x, offset_y)
