"""The TUM RGB-D trajectory text format: one pose per line, ``t tx ty tz qx qy qz qw``.

Poses are camera-to-world (T_world_cam) with the quaternion (x, y, z, w), as in TUM's ground-truth
files and evo's ``tum`` format. Lines starting with # are comments; commas and tabs separate values
as well as spaces, as TUM's associate.py accepts.
"""
from __future__ import annotations

import numpy as np

from ..geometry.se3 import make_transform, quaternion_to_rotation, rotation_to_quaternion


def parse_tum_poses(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Stamps (N,) and poses (N, 4, 4) of a TUM trajectory; ValueError names the first bad line."""
    stamps, poses = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.replace(",", " ").split()
        try:
            if len(fields) != 8:
                raise ValueError(f"expected 8 values (t tx ty tz qx qy qz qw), got {len(fields)}")
            values = [float(x) for x in fields]
            pose = make_transform(quaternion_to_rotation(values[4:]), values[1:4])
        except ValueError as err:
            raise ValueError(f"line {number} ({line!r}): {err}") from None
        stamps.append(values[0])
        poses.append(pose)
    return np.array(stamps, dtype=np.float64), np.array(poses, dtype=np.float64).reshape(-1, 4, 4)


def format_tum_poses(stamps: np.ndarray, poses: np.ndarray, header: str = "") -> str:
    """The text of a TUM trajectory file.

    Stamps get nine decimals (nanoseconds, the resolution of ROS time; for stamps around 1.7e9 s
    finer than a float64 step, so they read back exactly); pose values are written with ``repr``,
    the shortest text that reads back to the same float.
    """
    lines = [f"# {row}" for row in header.splitlines()]
    lines.append("# timestamp tx ty tz qx qy qz qw")
    for t, T in zip(np.asarray(stamps, dtype=np.float64), np.asarray(poses, dtype=np.float64)):
        values = (*T[:3, 3], *rotation_to_quaternion(T[:3, :3]))
        lines.append(f"{t:.9f} " + " ".join(repr(float(x)) for x in values))
    return "\n".join(lines) + "\n"
