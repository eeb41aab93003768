"""Recall@k of place recognition on revisits: is a true neighbour among the k best retrieved?"""
from __future__ import annotations

import numpy as np


def recall_at_k(db_descriptors: np.ndarray, db_positions: np.ndarray,
                query_descriptors: np.ndarray, query_positions: np.ndarray, radius: float,
                ks: tuple[int, ...] = (1, 5)) -> dict[int, float]:
    """Share of the queries (those with a database place within ``radius``) whose ``k`` most
    similar database entries (dot product) hold one within ``radius`` of the query's true
    position."""
    dist = np.linalg.norm(query_positions[:, None] - db_positions[None], axis=2)
    near = dist <= radius
    has = near.any(axis=1)
    if not has.any():
        raise ValueError(f"no query has a database place within {radius}")
    order = np.argsort(-(query_descriptors @ db_descriptors.T), axis=1)
    hits = np.take_along_axis(near, order, axis=1)[has]
    return {k: float(hits[:, :k].any(axis=1).mean()) for k in ks}
