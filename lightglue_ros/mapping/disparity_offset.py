"""The disparity offset of a rectified stereo pair, estimated from the map.

A right camera whose principal point is off by a fraction of a pixel in the rectified calibration
adds the same offset to every disparity: depths come out too large (or small) by a fraction that
grows with depth (d / (d - offset)), and the trajectory is longer (or shorter) than it is. A scale
error cannot do that: it changes every depth by the same fraction. The map tells the two apart,
because a near point seen from several keyframes has a depth of its own from the motion, which
the offset does not change. After each bundle adjustment one Gauss-Newton step on the offset,
with the adjusted rotations held and each point free (its three coordinates eliminated, the Schur
complement), moves the offset to where the window's stereo and motion agree best; a prior at 0
keeps it there until the data demand otherwise. The step also frees the scale of the window's
translations (about its first keyframe), which an offset otherwise drags along: without it most
of the offset's effect would stay in the held poses and each step recover little of it.
"""
from __future__ import annotations

import numpy as np

from ..geometry.se3 import invert_transform
from .bundle_adjustment import HUBER_K, Observations


def offset_step(poses: np.ndarray, points: np.ndarray, obs: Observations, K: np.ndarray,
                baseline_m: np.ndarray, inlier: np.ndarray, sigma_px: float, offset_px: float,
                prior_px: float) -> float:
    """The offset (pixels added to each measured disparity) after one Gauss-Newton step from
    ``offset_px``, which ``obs.depth`` already includes (depth = fx b / (measured + offset)).

    ``poses`` (F, 4, 4) T_odom_cam and ``points`` (P, 3) are an adjustment's result, ``K``
    (F, 3, 3) and ``baseline_m`` (F,) each keyframe's (0: no stereo pair), ``inlier`` (M,) the
    observations to use; ``prior_px`` is the sigma of the prior at 0.
    """
    fxb = K[obs.frame, 0, 0] * baseline_m[obs.frame]
    use = inlier & np.isfinite(obs.uv).all(axis=1)
    stereo = use & np.isfinite(obs.depth) & (fxb > 0)
    if not stereo.any():
        return offset_px
    T_cam_odom = np.array([invert_transform(T) for T in poses]).reshape(-1, 4, 4)[obs.frame]
    R = T_cam_odom[:, :3, :3]
    X = np.einsum("mij,mj->mi", R, points[obs.point]) + T_cam_odom[:, :3, 3]
    use &= X[:, 2] > 0
    stereo &= use
    fx, fy = K[obs.frame, 0, 0], K[obs.frame, 1, 1]
    cx, cy = K[obs.frame, 0, 2], K[obs.frame, 1, 2]
    z = np.where(use, X[:, 2], 1.0)
    # residuals measured - predicted of the left (u, v) and right u, and their Jacobians in the
    # camera frame (the offset enters the right one only: its measured u is u - d - offset)
    pu, pv = fx * X[:, 0] / z + cx, fy * X[:, 1] / z + cy
    with np.errstate(invalid="ignore", divide="ignore"):
        disparity = np.where(stereo, fxb / obs.depth, 0.0)
    r = np.stack([obs.uv[:, 0] - pu, obs.uv[:, 1] - pv,
                  (obs.uv[:, 0] - disparity) - (pu - fxb / z)], axis=1)
    J = np.zeros((len(z), 3, 3))
    J[:, 0, 0] = J[:, 2, 0] = -fx / z
    J[:, 0, 2] = fx * X[:, 0] / z ** 2
    J[:, 1, 1] = -fy / z
    J[:, 1, 2] = fy * X[:, 1] / z ** 2
    J[:, 2, 2] = J[:, 0, 2] - fxb / z ** 2
    J = J @ R  # d residual / d point (odom coordinates)
    # d residual / d (offset, scale of the window's translations about its first keyframe)
    G = np.zeros((len(z), 3, 2))
    G[:, 2, 0] = -1.0
    centres = poses[:, :3, 3] - poses[0, :3, 3]
    G[:, :, 1] = -np.einsum("mij,mj->mi", J, centres[obs.frame])
    weight = np.stack([use, use, stereo], axis=1) / sigma_px ** 2
    r = np.where(weight > 0, r, 0.0)
    # the adjustment's Huber kernel: a far-off observation pulls with a bounded force
    norm = np.sqrt(np.sum(r ** 2 * weight, axis=1))
    weight = weight * np.minimum(1.0, HUBER_K / np.maximum(norm, 1e-12))[:, None]
    n = len(points)
    H_xx, g_x, H_xg = np.zeros((n, 3, 3)), np.zeros((n, 3)), np.zeros((n, 3, 2))
    np.add.at(H_xx, obs.point, np.einsum("mki,mk,mkj->mij", J, weight, J))
    np.add.at(g_x, obs.point, np.einsum("mki,mk,mk->mi", J, weight, r))
    np.add.at(H_xg, obs.point, np.einsum("mki,mk,mkj->mij", J, weight, G))
    H_gg = np.einsum("mki,mk,mkj->ij", G, weight, G)
    g_g = np.einsum("mki,mk,mk->i", G, weight, r)
    H_gg[0, 0] += 1.0 / prior_px ** 2
    g_g[0] += offset_px / prior_px ** 2
    seen = np.linalg.det(H_xx) > 0
    H_inv = np.linalg.pinv(H_xx[seen])
    H_xg, g_x = H_xg[seen], g_x[seen]
    H = H_gg - np.einsum("nia,nij,njb->ab", H_xg, H_inv, H_xg)
    g = g_g - np.einsum("nia,nij,nj->a", H_xg, H_inv, g_x)
    if not np.linalg.det(H) > 0:
        return offset_px
    return offset_px - float(np.linalg.solve(H, g)[0])
