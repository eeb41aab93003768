"""Procedural, seeded surface textures: non-repeating, rich in corners and blobs at several scales.

Keypoint detectors (SuperPoint, ALIKED, DISK, SIFT) need corners and blobs at the scales a 640x480
camera sees from 0.5 to 6 m away, and matching needs them not to repeat, so every surface gets its
own random layout of polygons, ellipses and strokes over a smooth coloured noise background.
Sizes are in metres, so the content does not depend on the texel density.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

# (smallest, largest) shape size in metres and shapes per square metre, one row per scale.
_SHAPE_SCALES = ((0.15, 0.6, 4.0), (0.04, 0.15, 30.0), (0.015, 0.04, 60.0))
# Cell sizes (metres) and amplitudes (0..255) of the value-noise octaves of the background.
_NOISE_OCTAVES = ((1.2, 35.0), (0.3, 20.0), (0.08, 10.0))
_NOISE_CHROMA = 0.35            # colour part of the background noise, relative to its brightness
_BACKGROUND_STEP = 4            # texels per background noise sample
_SHIFT = 4                      # fractional bits of cv2 drawing coordinates
_ONE = 1 << _SHIFT


def make_texture(width_m: float, height_m: float, texels_per_metre: float,
                 rng: np.random.Generator) -> np.ndarray:
    """An RGB uint8 texture covering width_m x height_m metres, drawn from ``rng``."""
    w = max(1, math.ceil(width_m * texels_per_metre))
    h = max(1, math.ceil(height_m * texels_per_metre))
    tex = _background(h, w, texels_per_metre, rng)
    for lo, hi, per_m2 in _SHAPE_SCALES:
        count = rng.poisson(per_m2 * width_m * height_m)
        _draw_shapes(tex, count, lo * texels_per_metre, hi * texels_per_metre, rng)
    return tex


def _background(h: int, w: int, texels_per_metre: float, rng: np.random.Generator) -> np.ndarray:
    """A random base colour with smooth multi-octave colour noise, so flat areas are not flat.

    The noise is smooth over _BACKGROUND_STEP texels, so it is made that much coarser and enlarged.
    """
    hc, wc = math.ceil(h / _BACKGROUND_STEP), math.ceil(w / _BACKGROUND_STEP)
    img = np.empty((hc, wc, 3), np.float32)
    img[:] = _colours(1, rng, brightness=(80, 210))[0]
    for cell_m, amplitude in _NOISE_OCTAVES:
        cells = max(2.0, cell_m * texels_per_metre / _BACKGROUND_STEP)
        shape = (math.ceil(hc / cells) + 2, math.ceil(wc / cells) + 2)
        grid = rng.standard_normal((*shape, 1)) + _NOISE_CHROMA * rng.standard_normal((*shape, 3))
        img += amplitude * cv2.resize(grid.astype(np.float32), (wc, hc),
                                      interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def _colours(n: int, rng: np.random.Generator, brightness: tuple[float, float] = (15, 255)
             ) -> np.ndarray:
    """n random RGB colours spread in brightness, so that greyscale detectors see the contrast."""
    hsv = np.stack([rng.uniform(0, 180, n), rng.uniform(30, 220, n), rng.uniform(*brightness, n)],
                   -1)
    return cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0].astype(np.float64)


def _draw_shapes(tex: np.ndarray, count: int, lo: float, hi: float,
                 rng: np.random.Generator) -> None:
    """Draw ``count`` anti-aliased shapes of size lo..hi texels (log-uniform) into ``tex``.

    The geometry of every kind is computed for every shape at once; the loop only draws.
    """
    if count == 0:
        return
    h, w = tex.shape[:2]
    centres = rng.uniform((0, 0), (w, h), (count, 1, 2))
    half = 0.5 * np.exp(rng.uniform(math.log(lo), math.log(hi), (count, 1)))
    kinds = rng.integers(0, 4, count).tolist()
    vertices = rng.integers(3, 8, count).tolist()
    colours = [tuple(c) for c in _colours(count, rng).tolist()]
    angles = rng.uniform(0, 2 * math.pi, (count, 7))
    radii = rng.uniform(0.35, 1.0, (count, 7))
    aspect, angle = radii[:, :1], angles[:, :1]
    direction = np.stack([np.cos(angle), np.sin(angle)], -1)                  # (count, 1, 2)
    normal = direction[..., ::-1] * (-1, 1)
    # Rotated rectangles (four sharp corners) and star polygons (corners of many angles).
    corners = centres + half[..., None] * (np.array([-1, 1, 1, -1])[:, None] * direction
                                           + np.array([-1, -1, 1, 1])[:, None] * aspect[..., None]
                                           * normal)
    used = np.arange(7) < np.array(vertices)[:, None]
    phi = np.sort(np.where(used, angles, angles + 4 * math.pi), axis=1)    # used ones first
    stars = centres + (half * radii)[..., None] * np.stack([np.cos(phi), np.sin(phi)], -1)
    corners, stars = _fixed(corners), _fixed(stars)
    # Ellipses (blobs) and thick strokes (edges and line ends).
    centre = _fixed(centres[:, 0]).tolist()
    axes = _fixed(np.hstack([half, half * aspect])).tolist()
    degrees = np.degrees(angle[:, 0]).tolist()
    ends = _fixed(centres + half[..., None] * direction * np.array([[-1], [1]])).tolist()
    thickness = np.maximum(1, np.rint(half[:, 0] * aspect[:, 0] / 2)).astype(int).tolist()
    for i, kind in enumerate(kinds):
        if kind == 0:
            cv2.fillPoly(tex, [corners[i]], colours[i], cv2.LINE_AA, _SHIFT)
        elif kind == 1:
            cv2.fillPoly(tex, [stars[i, :vertices[i]]], colours[i], cv2.LINE_AA, _SHIFT)
        elif kind == 2:
            cv2.ellipse(tex, centre[i], axes[i], degrees[i], 0, 360, colours[i], -1,
                        cv2.LINE_AA, _SHIFT)
        else:
            cv2.line(tex, ends[i][0], ends[i][1], colours[i], thickness[i], cv2.LINE_AA, _SHIFT)


def _fixed(points: np.ndarray) -> np.ndarray:
    """Texel coordinates as cv2's fixed-point integers (texel centres at integers)."""
    return np.rint(points * _ONE).astype(np.int32)
