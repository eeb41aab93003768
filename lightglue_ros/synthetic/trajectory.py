"""Smooth camera trajectories inside the room of ``scene.py``, as T_world_cam poses.

Every quantity is a sum of sinusoids of the distance travelled, s = speed * t, so that ``speed``
replays the same path faster or slower and the seed only shifts phases. The camera keeps to the
middle of the room, clear of the boxes, and looks outwards at the walls and furniture.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from .scene import ROOM_SIZE

MOTIONS = ("orbit", "rotation", "planar")

# Optical axes (x right, y down, z forward) in a REP 103 body frame (x forward, y left, z up).
_R_BODY_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
_ORBIT_RADII = (1.8, 1.2)       # metres, semi-axes of the ellipse the camera drives around
_EYE_HEIGHT = 1.4               # metres
_PLANAR_DISTANCE = 1.6          # metres from the +x wall in the "planar" motion


def make_trajectory(num_frames: int, rate_hz: float = 30.0, speed: float = 0.75, seed: int = 0,
                    motion: str = "orbit") -> np.ndarray:
    """(N, 4, 4) camera-to-world poses sampled at rate_hz.

    speed: metres per second along the path; at the default 0.75 m/s and 30 Hz the camera moves
    about 2.5 cm and 1 degree per frame.
    motion: "orbit" drives around the room looking outwards; "rotation" turns on the spot as
    "orbit" does, without translating; "planar" faces the bare +x wall, so that every pixel sees
    one plane (about 1 cm and 0.4 degree per frame).
    """
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {MOTIONS}, got {motion!r}")
    rng = np.random.default_rng((seed, 2))       # stream 2 of the seed: trajectory phases
    phases = rng.uniform(0, 2 * np.pi, 6)
    s = speed * np.arange(num_frames) / rate_hz

    def wave(amplitude: float, wavelength: float, k: int) -> np.ndarray:
        return amplitude * np.sin(2 * np.pi * s / wavelength + phases[k])

    if motion == "planar":
        position = np.stack([ROOM_SIZE[0] / 2 - _PLANAR_DISTANCE + wave(0.15, 3.1, 0),
                             wave(0.5, 4.3, 1),
                             ROOM_SIZE[2] / 2 + wave(0.12, 2.3, 2)], -1)
        yaw, pitch, roll = wave(0.12, 2.3, 3), wave(0.07, 1.9, 4), wave(0.05, 2.9, 5)
    else:
        angle = phases[0] + s / np.mean(_ORBIT_RADII)
        radius = 1.0 + wave(0.08, 3.3, 1)
        orbit = np.stack([_ORBIT_RADII[0] * radius * np.cos(angle),
                          _ORBIT_RADII[1] * radius * np.sin(angle),
                          _EYE_HEIGHT + wave(0.12, 2.3, 2)], -1)
        centre = np.tile([0.0, 0.0, _EYE_HEIGHT], (num_frames, 1))
        position = orbit if motion == "orbit" else centre
        yaw = angle + 0.25 + wave(0.12, 3.1, 3)         # outwards, leading the motion a little
        pitch = 0.12 + wave(0.08, 2.7, 4)               # about 7 degrees down
        roll = wave(0.05, 3.7, 5)
    poses = np.tile(np.eye(4), (num_frames, 1, 1))
    R_world_body = Rotation.from_euler("ZYX", np.stack([yaw, pitch, roll], -1)).as_matrix()
    poses[:, :3, :3] = R_world_body @ _R_BODY_OPTICAL
    poses[:, :3, 3] = position
    return poses
