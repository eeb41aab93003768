"""Camera trajectories: stamped camera-to-world poses T_world_cam (see ``geometry/se3.py``), read
and written in the TUM format, and associated with each other by nearest stamp, one to one,
within a tolerance, as TUM's benchmark tools and evo do. Nothing is interpolated: an estimate is
always compared with a measured pose, never with one invented between two samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LightGlueRosError
from .tum_format import format_tum_poses, parse_tum_poses


class TrajectoryError(LightGlueRosError):
    """A trajectory cannot be read, or cannot be evaluated against its ground truth."""


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Stamped camera-to-world poses; ``stamps`` (N,) ascending seconds, ``poses`` (N, 4, 4).

    Both arrays are stored read-only float64, so a trajectory can be shared without copies.
    """

    stamps: np.ndarray
    poses: np.ndarray

    def __post_init__(self) -> None:
        stamps = np.array(self.stamps, dtype=np.float64).reshape(-1)
        poses = np.array(self.poses, dtype=np.float64).reshape(-1, 4, 4)
        if len(poses) != len(stamps):
            raise ValueError(f"{len(stamps)} stamps but {len(poses)} poses")
        if not (np.all(np.isfinite(stamps)) and np.all(np.isfinite(poses))):
            raise ValueError("trajectory contains NaN or Inf")
        if np.any(np.diff(stamps) < 0):
            raise ValueError("trajectory stamps must be in ascending order")
        stamps.setflags(write=False)
        poses.setflags(write=False)
        object.__setattr__(self, "stamps", stamps)
        object.__setattr__(self, "poses", poses)

    def __len__(self) -> int:
        return len(self.stamps)

    @property
    def positions(self) -> np.ndarray:
        """(N, 3) camera centres in the world frame."""
        return self.poses[:, :3, 3]

    def subset(self, indices: np.ndarray) -> "Trajectory":
        """The poses at ``indices`` (ascending), e.g. those associated with another trajectory."""
        return Trajectory(self.stamps[indices], self.poses[indices])

    @classmethod
    def read_tum(cls, path: str | Path) -> "Trajectory":
        """Read a TUM-format file (``t tx ty tz qx qy qz qw``); poses are sorted by stamp."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise TrajectoryError(f"cannot read trajectory {path}: {err.strerror}") from None
        try:
            stamps, poses = parse_tum_poses(text)
            order = np.argsort(stamps, kind="stable")
            return cls(stamps[order], poses[order])
        except ValueError as err:
            raise TrajectoryError(f"{path} is not a TUM trajectory: {err}") from None

    def write_tum(self, path: str | Path, header: str = "") -> Path:
        """Write the TUM format (what evo and TUM's tools read); ``header`` becomes # comments."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(format_tum_poses(self.stamps, self.poses, header))
        return path


def associate_stamps(a: np.ndarray, b: np.ndarray, max_diff: float = 0.02
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (ia, ib), ascending in ia, of nearest stamps at most ``max_diff`` apart.

    Each stamp of ``a`` takes its nearest stamp in ``b`` (which must be ascending); when several
    take the same one, only the closest keeps it, so the pairing is one to one as in TUM's
    associate.py (whose default tolerance is 0.02 s).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if np.any(np.diff(b) < 0):
        raise ValueError("the stamps associated with must be in ascending order")
    empty = np.zeros(0, dtype=np.intp)
    if len(a) == 0 or len(b) == 0:
        return empty, empty
    right = np.clip(np.searchsorted(b, a), 0, len(b) - 1)
    left = np.clip(right - 1, 0, len(b) - 1)
    nearest = np.where(np.abs(b[left] - a) <= np.abs(b[right] - a), left, right)
    diff = np.abs(b[nearest] - a)
    ia = np.flatnonzero(diff <= max_diff)
    ia = ia[np.lexsort((diff[ia], nearest[ia]))]          # grouped by partner, closest first
    _, first = np.unique(nearest[ia], return_index=True)
    ia = np.sort(ia[first])
    return ia, nearest[ia]


def associate(est: Trajectory, gt: Trajectory, max_diff: float = 0.02
              ) -> tuple[np.ndarray, np.ndarray]:
    """(est_idx, gt_idx): each estimated pose paired with the ground-truth pose nearest in time."""
    return associate_stamps(est.stamps, gt.stamps, max_diff)
