"""The results the core hands around: features of one image and matches of one pair."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Features:
    """Keypoints (N, 2) as pixel (x, y) in the original image, scores (N,), descriptors (N, D)."""

    keypoints: torch.Tensor
    scores: torch.Tensor
    descriptors: torch.Tensor
    image_size: tuple[int, int]  # (width, height) of the original image

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def to(self, device: torch.device | str) -> "Features":
        return Features(self.keypoints.to(device), self.scores.to(device),
                        self.descriptors.to(device), self.image_size)

    @classmethod
    def from_numpy(cls, keypoints: np.ndarray, scores: np.ndarray, descriptors: np.ndarray,
                   image_size: tuple[int, int]) -> "Features":
        return cls(torch.from_numpy(np.asarray(keypoints, np.float32)),
                   torch.from_numpy(np.asarray(scores, np.float32)),
                   torch.from_numpy(np.asarray(descriptors, np.float32)),
                   (int(image_size[0]), int(image_size[1])))


@dataclass
class Matches:
    """LightGlue's answer for one pair; indices are -1 where a point has no match."""

    matches0: np.ndarray  # (M,) index into the second set's keypoints, or -1
    matches1: np.ndarray  # (N,)
    scores0: np.ndarray  # (M,) match confidence, 0 for unmatched points
    scores1: np.ndarray
    layers: int  # transformer layers run before the early exit (9 = all)
    pruned0: np.ndarray  # (M,) layer at which each point was pruned (layers when kept)
    pruned1: np.ndarray

    @classmethod
    def from_output(cls, out: dict) -> "Matches":
        """From the dict of :func:`lightglue_ros.models.lightglue.run_adaptive` (any device)."""
        return cls(out["matches0"].cpu().numpy(), out["matches1"].cpu().numpy(),
                   out["matching_scores0"].float().cpu().numpy(),
                   out["matching_scores1"].float().cpu().numpy(), int(out["stop"]),
                   out["prune0"].cpu().numpy(), out["prune1"].cpu().numpy())

    @property
    def pairs(self) -> np.ndarray:
        """(K, 2) index pairs (i in set 0, j in set 1) of the matches."""
        i = np.flatnonzero(self.matches0 >= 0)
        return np.stack([i, self.matches0[i]], axis=1)

    @property
    def pair_scores(self) -> np.ndarray:
        return self.scores0[self.matches0 >= 0]

    def __len__(self) -> int:
        return int((self.matches0 >= 0).sum())

    def keep_second(self, keep: np.ndarray) -> "Matches":
        """The matches of the second set's points where ``keep`` (N,) holds, renumbered in
        their order (the points of the second set that were not kept lose their matches)."""
        new = np.full(len(keep) + 1, -1, np.int64)  # index len(keep) stands for -1
        new[np.flatnonzero(keep)] = np.arange(int(keep.sum()))
        matches0 = new[self.matches0]
        return Matches(matches0, self.matches1[keep], np.where(matches0 >= 0, self.scores0, 0.0),
                       self.scores1[keep], self.layers, self.pruned0, self.pruned1[keep])
