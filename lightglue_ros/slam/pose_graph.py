"""The pose graph of the keyframes, on GTSAM: odometry edges, loop edges, and their optimum.

Nodes are keyframe poses in the map frame (camera-to-map, optical frame). Odometry edges join
consecutive keyframes of one tracking segment with the tracker's relative pose and covariance;
loop edges come from verified revisits and carry a Huber kernel, so that one wrong loop that
got through verification bends the graph little instead of folding it. Not Cauchy: a true loop
after long drift is hundreds of its own sigmas off at first, where Cauchy's weight (1/r^2) all but
drops it and the solver stays in the drifted minimum; Huber's (1/r) still pulls it in, and its
weight grows back as the residual shrinks. The first keyframe is held
(the map's origin); a segment that no edge joins to it gets a weak prior at its current pose, so
the problem stays determined. Batch Levenberg-Marquardt: a graph of a few hundred keyframes
solves in milliseconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import gtsam
import numpy as np

from ..messages.covariance import to_gtsam

HELD_SIGMA = 1e-6  # of the held first pose: a prior this tight is a constraint
FREE_SIGMA = 1e3  # of a segment's first pose when nothing else ties it
HUBER_K = 1.345  # loop kernel threshold, whitened units (95% efficiency on Gaussian noise)
MIN_SIGMA = (1e-3, 1e-3)  # floor of (rotation rad, translation) sigmas of an edge


@dataclass
class Edge:
    """T_i_j: pose of keyframe j in keyframe i's camera frame, with its 6x6 covariance in the
    project's convention (x, y, z, rx, ry, rz; see messages.covariance)."""

    i: int
    j: int
    T_i_j: np.ndarray
    covariance: np.ndarray
    loop: bool = False


class PoseGraph:
    """Keyframe poses and the edges between them."""

    def __init__(self) -> None:
        self.poses: dict[int, np.ndarray] = {}
        self.edges: list[Edge] = []

    def add_node(self, key: int, T_map_cam: np.ndarray) -> None:
        self.poses[key] = np.asarray(T_map_cam, np.float64).copy()

    def add_edge(self, edge: Edge) -> None:
        self.edges.append(edge)

    @property
    def loop_edges(self) -> list[Edge]:
        return [e for e in self.edges if e.loop]

    def optimize(self, iterations: int = 50) -> dict[int, np.ndarray]:
        """Optimise every pose; updates and returns ``poses``."""
        if not self.poses:
            return self.poses
        graph = gtsam.NonlinearFactorGraph()
        initial = gtsam.Values()
        for key, T in self.poses.items():
            initial.insert(key, gtsam.Pose3(T))
        first = min(self.poses)
        for root in self._roots():
            sigma = HELD_SIGMA if root == first else FREE_SIGMA
            graph.add(gtsam.PriorFactorPose3(root, gtsam.Pose3(self.poses[root]),
                                             gtsam.noiseModel.Isotropic.Sigma(6, sigma)))
        huber = gtsam.noiseModel.mEstimator.Huber.Create(HUBER_K)
        for e in self.edges:
            noise: gtsam.noiseModel.Base = gtsam.noiseModel.Gaussian.Covariance(
                _floored(to_gtsam(e.T_i_j, e.covariance)))
            if e.loop:
                noise = gtsam.noiseModel.Robust.Create(huber, noise)
            graph.add(gtsam.BetweenFactorPose3(e.i, e.j, gtsam.Pose3(e.T_i_j), noise))
        params = gtsam.LevenbergMarquardtParams()
        params.setMaxIterations(iterations)
        result = gtsam.LevenbergMarquardtOptimizer(graph, initial, params).optimize()
        for key in self.poses:
            self.poses[key] = result.atPose3(key).matrix()
        return self.poses

    def _roots(self) -> list[int]:
        """The smallest key of each connected component."""
        parent = {k: k for k in self.poses}

        def find(k: int) -> int:
            while parent[k] != k:
                parent[k] = parent[parent[k]]
                k = parent[k]
            return k

        for e in self.edges:
            a, b = find(e.i), find(e.j)
            if a != b:
                parent[max(a, b)] = min(a, b)
        return sorted({find(k) for k in self.poses})


def _floored(cov: np.ndarray) -> np.ndarray:
    """GTSAM-order covariance (rotation, translation) with its diagonal floored, so that an
    edge the tracker reports as near-exact cannot make the graph singular."""
    floor = np.array([MIN_SIGMA[0] ** 2] * 3 + [MIN_SIGMA[1] ** 2] * 3)
    out = cov.copy()
    out[np.diag_indices(6)] = np.maximum(np.diag(out), floor)
    return out
