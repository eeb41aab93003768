"""Two-view residuals in pixels: Sampson errors of the epipolar and homography constraints.

Conventions: points are normalized image coordinates (N, 2) of cameras 0 and 1 (see ``camera``);
the relative pose maps camera-0 points to camera 1, X1 = R @ X0 + t, so the essential matrix is
E = [t]x R with x1^T E x0 = 0, and a homography maps x1 ~ H x0.

The Sampson error is the first-order distance, in the 4D space of a match (u0, v0, u1, v1),
from the match to the model: the reprojection error a full bundle adjustment would give, without
solving for the 3D points. Gradients are scaled by the focal lengths ``f0``/``f1`` = (fx, fy) so
that the distance is measured in pixels, where the keypoint noise lives. Shared by model selection
(GRIC needs comparable errors for every model) and by the covariance (its residuals).
"""
from __future__ import annotations

import numpy as np

_TINY = 1e-300  # keeps a zero gradient (E = 0, point at the epipole) from dividing by zero


def _homogeneous(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ones((len(x), 1))], axis=1)


def sampson_essential(E: np.ndarray, x0: np.ndarray, x1: np.ndarray, f0: np.ndarray,
                      f1: np.ndarray) -> np.ndarray:
    """Signed Sampson distance (N,) in pixels of each match to the epipolar constraint of E."""
    x0h, x1h = _homogeneous(x0), _homogeneous(x1)
    Ex0 = x0h @ E.T
    Etx1 = x1h @ E
    eps = np.sum(x1h * Ex0, axis=1)
    grad2 = (Etx1[:, 0] / f0[0]) ** 2 + (Etx1[:, 1] / f0[1]) ** 2 \
        + (Ex0[:, 0] / f1[0]) ** 2 + (Ex0[:, 1] / f1[1]) ** 2
    return eps / np.sqrt(np.maximum(grad2, _TINY))


def sampson_homography(H: np.ndarray, x0: np.ndarray, x1: np.ndarray, f0: np.ndarray,
                       f1: np.ndarray) -> np.ndarray:
    """Whitened residuals (N, 2) in pixels of x1 ~ H x0; a row's squared norm is the Sampson error.

    The two constraints per match, e = (u1 c - a, v1 c - b) with (a, b, c) = H x0, are whitened by
    the Cholesky factor of J J^T (J: their gradient in pixels), which turns e^T (J J^T)^-1 e into a
    sum of squares: the form a least-squares Jacobian needs.
    """
    x0h = _homogeneous(x0)
    h = x0h @ H.T
    a, b, c = h[:, 0], h[:, 1], h[:, 2]
    u1, v1 = x1[:, 0], x1[:, 1]
    e1, e2 = u1 * c - a, v1 * c - b
    # Gradients of e1, e2 with respect to (u0, v0, u1, v1) in pixels.
    j1 = np.stack([(u1 * H[2, 0] - H[0, 0]) / f0[0], (u1 * H[2, 1] - H[0, 1]) / f0[1],
                   c / f1[0], np.zeros_like(c)], axis=1)
    j2 = np.stack([(v1 * H[2, 0] - H[1, 0]) / f0[0], (v1 * H[2, 1] - H[1, 1]) / f0[1],
                   np.zeros_like(c), c / f1[1]], axis=1)
    a11 = np.maximum(np.sum(j1 * j1, axis=1), _TINY)
    a21 = np.sum(j1 * j2, axis=1)
    a22 = np.sum(j2 * j2, axis=1)
    l11 = np.sqrt(a11)
    l21 = a21 / l11
    l22 = np.sqrt(np.maximum(a22 - l21 * l21, _TINY))
    r1 = e1 / l11
    r2 = (e2 - l21 * r1) / l22
    return np.stack([r1, r2], axis=1)
