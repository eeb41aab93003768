"""The synthetic world: a furnished room made of textured planar quads.

World frame per REP 103: x forward, y left, z up, metres; the floor is z = 0 and the room is centred
on the origin. The layout is fixed, so that the trajectories in ``trajectory.py`` are known to keep
clear of every surface; only the textures depend on the seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .textures import make_texture

ROOM_SIZE = (8.0, 6.0, 3.0)     # x, y, z extent of the room, metres
# Obstacles as (centre x, centre y, base z, size x, size y, size z, yaw rad). They stand against
# the walls, outside the region the camera moves in, and leave the +x wall free in front of the
# "planar" trajectory.
_BOXES = (
    (2.9, 2.3, 0.0, 0.9, 0.8, 0.7, 0.3),
    (-3.0, -2.0, 0.0, 1.0, 1.2, 0.9, -0.2),
    (-3.1, -1.9, 0.9, 0.5, 0.5, 0.4, 0.5),      # stacked on the previous one
    (3.0, -2.2, 0.0, 0.7, 0.7, 1.2, 0.6),
    (-2.8, 2.2, 0.0, 1.2, 0.6, 0.5, 0.1),
    (0.3, 2.5, 0.0, 0.8, 0.6, 0.8, 0.0),
    (-0.5, -2.5, 0.0, 0.6, 0.6, 0.4, 0.8),
)
# Flat shading from one distant light, baked into the textures: faces that meet at an edge differ
# in brightness as in a real room, and the shading does not depend on the viewpoint.
_LIGHT = np.array([0.4, 0.3, 1.0]) / np.linalg.norm([0.4, 0.3, 1.0])
_AMBIENT = 0.6


@dataclass(frozen=True)
class Quad:
    """A textured rectangle: the world points origin + s * u + t * v, s in [0, width] and
    t in [0, height] (metres).

    Its front side, the only one rendered, faces ``normal = u x v``; texel (i, j) of ``texture``
    covers s in [j, j + 1] / texels_per_metre, t in [i, i + 1] / texels_per_metre.
    """

    origin: np.ndarray      # (3,)
    u: np.ndarray           # (3,) unit
    v: np.ndarray           # (3,) unit, orthogonal to u
    width: float
    height: float
    texture: np.ndarray     # (H, W, 3) uint8 RGB, shading included

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.u, self.v)


@dataclass(frozen=True)
class Scene:
    quads: tuple[Quad, ...]
    texels_per_metre: float


def build_scene(seed: int = 0, texels_per_metre: float = 200.0) -> Scene:
    """The room (inward-facing), its boxes (outward-facing, no bottom), with seeded textures."""
    rng = np.random.default_rng((seed, 1))       # stream 1 of the seed: textures
    sx, sy, sz = ROOM_SIZE
    faces = _box_faces((0.0, 0.0, sz / 2), (sx, sy, sz), 0.0, inward=True)
    for x, y, z, bx, by, bz, yaw in _BOXES:
        faces += [f for f in _box_faces((x, y, z + bz / 2), (bx, by, bz), yaw, inward=False)
                  if not np.allclose(f[3], (0, 0, -1))]
    quads = []
    for origin, u, v, normal, width, height in faces:
        shade = _AMBIENT + (1 - _AMBIENT) * max(0.0, float(normal @ _LIGHT))
        texture = make_texture(width, height, texels_per_metre, rng)
        quads.append(Quad(origin, u, v, width, height, cv2.convertScaleAbs(texture, alpha=shade)))
    return Scene(tuple(quads), float(texels_per_metre))


def _box_faces(centre, size, yaw: float, inward: bool) -> list[tuple]:
    """The six faces of a box rotated by yaw about z, as (origin, u, v, normal, width, height).

    Face normals point out of the box, or into it for a room seen from inside.
    """
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    half = np.asarray(size, np.float64) / 2
    faces = []
    for k in range(3):
        for sign in (1.0, -1.0):
            # u x v must be the normal: cyclic axes give +e_k, swapping them gives -e_k.
            i, j = (k + 1) % 3, (k + 2) % 3
            if (sign > 0) == inward:
                i, j = j, i
            normal = -sign if inward else sign
            centre_local = np.zeros(3)
            centre_local[k] = sign * half[k]
            origin = centre_local - half[i] * np.eye(3)[i] - half[j] * np.eye(3)[j]
            faces.append((R @ origin + centre, R[:, i], R[:, j], normal * R[:, k],
                          2 * half[i], 2 * half[j]))
    return faces
