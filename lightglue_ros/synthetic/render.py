"""A numpy ray-caster for scenes of textured quads, exact to the OpenCV camera model.

Every sample is a ray through a known image position (see ``camera.pixel_rays``), so a 3D point
projected with K (and the distortion, through ``cv2.projectPoints``) lands where its texture is
drawn. Colour is the box-filtered mean of ``supersample`` x ``supersample`` rays per pixel, each
read with trilinear mip filtering, which keeps edges and distant texture from aliasing; depth is
cast through the pixel centres, so that back-projecting pixel (u, v) with its depth is exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .atlas import TextureAtlas, build_atlas
from .camera import CameraInfo, pixel_rays
from .scene import Scene

_NEAR = 0.01        # metres; nearer surfaces are not drawn
_EDGE_EPS = 1e-5    # metres; quads sharing an edge overlap by this, so no ray slips between them


@dataclass(frozen=True)
class _RayGrid:
    """Rays (x, y, 1) through an image's sample positions, shaped to broadcast to (H, W).

    Without distortion x is a row (1, W) and y a column (H, 1), which makes every linear form of
    the ray a single full-size operation. ``row_span``/``col_span`` bound y per row and x per
    column, to find the samples a projected polygon can cover.
    """

    x: np.ndarray
    y: np.ndarray
    row_span: np.ndarray     # (H, 2) min, max of y
    col_span: np.ndarray     # (W, 2) min, max of x
    norm_cubed: np.ndarray   # |(x, y, 1)|^3, broadcastable
    step: np.ndarray | float  # side of one sample's footprint at unit distance, broadcastable

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.row_span), len(self.col_span)

    def window(self, points: np.ndarray) -> tuple[slice, slice] | None:
        """Rows and columns that may see the convex polygon ``points`` (camera frame, (N, 3))."""
        points = _clip_near(points)
        if len(points) == 0:
            return None
        x, y = points[:, 0] / points[:, 2], points[:, 1] / points[:, 2]
        rows = np.flatnonzero((self.row_span[:, 1] >= y.min()) & (self.row_span[:, 0] <= y.max()))
        cols = np.flatnonzero((self.col_span[:, 1] >= x.min()) & (self.col_span[:, 0] <= x.max()))
        if len(rows) == 0 or len(cols) == 0:
            return None
        return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _ray_grid(camera: CameraInfo, supersample: int) -> _RayGrid:
    """Rays through the supersample^2 sub-pixel centres of each pixel, e.g. (+-1/4, +-1/4)."""
    w, h = camera.width * supersample, camera.height * supersample
    u = (np.arange(w) + 0.5) / supersample - 0.5
    v = (np.arange(h) + 0.5) / supersample - 0.5
    if camera.distortion_model == "none":
        x, y = pixel_rays(camera, u[None, :], v[:, None])
        step = 1.0 / (supersample * float(np.sqrt(camera.K[0, 0] * camera.K[1, 1])))
    else:
        x, y = pixel_rays(camera, *np.meshgrid(u, v))
        (x_v, x_u), (y_v, y_u) = np.gradient(x), np.gradient(y)
        step = np.sqrt(np.abs(x_u * y_v - x_v * y_u)).astype(np.float32)
    xb, yb = np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w))
    spans = [np.stack([np.fmin.reduce(a, axis), np.fmax.reduce(a, axis)], -1)
             for a, axis in ((yb, 1), (xb, 0))]
    x, y = x.astype(np.float32), y.astype(np.float32)
    return _RayGrid(x, y, spans[0], spans[1], (x * x + y * y + 1) ** 1.5, step)


def _clip_near(polygon: np.ndarray) -> np.ndarray:
    """The part of a convex polygon in front of the near plane (Sutherland-Hodgman, one plane)."""
    out = []
    for p, q in zip(polygon, np.roll(polygon, -1, axis=0)):
        if p[2] >= _NEAR:
            out.append(p)
        if (p[2] >= _NEAR) != (q[2] >= _NEAR):
            out.append(p + (q - p) * (_NEAR - p[2]) / (q[2] - p[2]))
    return np.array(out).reshape(-1, 3)


@dataclass
class _Hits:
    """Per sample: the quad hit (-1: none), its depth, texture coordinates (metres) and n . ray."""

    quad: np.ndarray
    z: np.ndarray
    s: np.ndarray
    t: np.ndarray
    n_dot_ray: np.ndarray


class Renderer:
    """Renders a Scene seen by one camera from any pose ``T_world_cam``."""

    def __init__(self, scene: Scene, camera: CameraInfo, supersample: int = 2,
                 atlas: TextureAtlas | None = None):
        self.scene = scene
        self.camera = camera
        self.supersample = int(supersample)
        self._atlas = atlas if atlas is not None else build_atlas([q.texture for q in scene.quads])
        self._colour_rays = _ray_grid(camera, self.supersample)
        self._depth_rays = self._colour_rays if supersample == 1 else _ray_grid(camera, 1)
        # Lookup tables indexed by (quad + 1) * levels + level; quad -1 (no surface) reads
        # outside the atlas, which cv2.remap's constant border turns black.
        outside = np.full((1, self._atlas.levels), -1e4, np.float32)
        self._offset_x = np.concatenate([outside, self._atlas.offset_x]).ravel()
        self._offset_y = np.concatenate([outside, self._atlas.offset_y]).ravel()

    def render(self, T_world_cam: np.ndarray, noise_sigma: float = 0.0,
               noise_seed: int | tuple[int, ...] = 0) -> tuple[np.ndarray, np.ndarray]:
        """RGB (H, W, 3) uint8 and depth (H, W) float32 metres (0: no surface) from a pose.

        ``noise_sigma`` adds Gaussian noise of that standard deviation (grey levels), drawn from
        ``noise_seed`` so that a frame is reproducible.
        """
        colour = self._shade(self._cast(self._colour_rays, T_world_cam))
        if self.supersample > 1:
            colour = cv2.resize(colour, (self.camera.width, self.camera.height),
                                interpolation=cv2.INTER_AREA)
        rgb = np.ascontiguousarray(colour[..., :3])
        if noise_sigma > 0:
            noise = np.random.default_rng(noise_seed).standard_normal(rgb.shape, np.float32)
            rgb = np.clip(np.rint(rgb + noise_sigma * noise), 0, 255).astype(np.uint8)
        hits = self._cast(self._depth_rays, T_world_cam)
        depth = np.where(hits.quad >= 0, hits.z, 0.0).astype(np.float32)
        return rgb, depth

    def _cast(self, rays: _RayGrid, T_world_cam: np.ndarray) -> _Hits:
        """Nearest quad along every ray: a z-buffer over the quads, each tested in its window."""
        R, c = T_world_cam[:3, :3], T_world_cam[:3, 3]
        hits = _Hits(np.full(rays.shape, -1, np.int32), np.full(rays.shape, np.inf, np.float32),
                     *(np.zeros(rays.shape, np.float32) for _ in range(3)))
        for index, quad in enumerate(self.scene.quads):
            n, u, v = R.T @ quad.normal, R.T @ quad.u, R.T @ quad.v
            o = R.T @ (quad.origin - c)
            d = float(n @ o)      # plane n . X = d; the front side, with the camera, has d < 0
            if d >= 0:
                continue
            corners = o + np.outer([0, quad.width, quad.width, 0], u) + \
                np.outer([0, 0, quad.height, quad.height], v)
            window = rays.window(corners)
            if window is None:
                continue
            x, y = _take(rays.x, window), _take(rays.y, window)
            # Python floats as coefficients keep the per-ray arithmetic in float32.
            (nx, ny, nz), (ux, uy, uz), (vx, vy, vz) = n.tolist(), u.tolist(), v.tolist()
            with np.errstate(divide="ignore", invalid="ignore"):
                n_dot_ray = nx * x + (ny * y + nz)
                z = d / n_dot_ray
                s = z * (ux * x + (uy * y + uz)) - float(u @ o)
                t = z * (vx * x + (vy * y + vz)) - float(v @ o)
                zbuf = hits.z[window]
                hit = (z > _NEAR) & (z < zbuf) & (s >= -_EDGE_EPS) & (s <= quad.width + _EDGE_EPS) \
                    & (t >= -_EDGE_EPS) & (t <= quad.height + _EDGE_EPS)
            np.copyto(zbuf, z, where=hit)
            np.copyto(hits.quad[window], index, where=hit)
            np.copyto(hits.s[window], s, where=hit)
            np.copyto(hits.t[window], t, where=hit)
            np.copyto(hits.n_dot_ray[window], n_dot_ray, where=hit)
        return hits

    def _shade(self, hits: _Hits) -> np.ndarray:
        """RGBA uint8 colour of the hits, trilinearly filtered from the mip-mapped atlas."""
        rays, atlas, density = self._colour_rays, self._atlas, self.scene.texels_per_metre
        with np.errstate(divide="ignore", invalid="ignore"):
            # Texels per sample: distance * angular step, stretched by 1/sqrt(cos(incidence)) as
            # a compromise between the short and the long axis of the footprint. Squared, with
            # z |r| the distance and -n.r / |r| the cosine.
            texels_squared = (density * rays.step) ** 2 * (hits.z * hits.z) * rays.norm_cubed \
                / -hits.n_dot_ray
            level = 0.5 * np.log2(texels_squared)
        level = np.clip(np.nan_to_num(level, nan=0.0), 0.0, atlas.levels - 1.001)
        floor = np.floor(level)
        key = (hits.quad + 1) * atlas.levels + floor.astype(np.int32)
        scale = np.exp2(-floor)
        ax, ay = density * hits.s - 0.5, density * hits.t - 0.5     # level-0 texel coordinates
        fine = cv2.remap(atlas.image, np.take(self._offset_x, key) + ax * scale,
                         np.take(self._offset_y, key) + ay * scale, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT)
        scale *= 0.5
        key += 1
        coarse = cv2.remap(atlas.image, np.take(self._offset_x, key) + ax * scale,
                           np.take(self._offset_y, key) + ay * scale, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
        fraction = level - floor
        return cv2.blendLinear(fine, coarse, 1.0 - fraction, fraction)


def _take(a: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
    """``a[window]`` for an array broadcastable to the grid (length-1 axes are kept whole)."""
    return a[tuple(w if n > 1 else slice(None) for w, n in zip(window, a.shape))]
