"""Relative pose accuracy on image pairs in the SuperGlue format (ScanNet, MegaDepth lists).

Each line: ``name0 name1 rot0 rot1 K0(9) K1(9) T_0to1(16)``, K scaled to the images and T_0to1
mapping camera-0 points to camera 1. The pose error of a pair is the larger of the rotation angle
and the translation-direction angle; AUC at 5/10/20 degrees as in SuperGlue and LightGlue.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import DatasetError
from ..geometry.camera import CameraModel
from ..geometry.two_view import TwoViewConfig, estimate_relative_pose
from ..images import load_image
from .pose_metrics import pose_auc, relative_pose_error

# (image0, image1) -> matched keypoints (K, 2) in each image, pixels
PairMatcher = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class PosePair:
    name0: str
    name1: str
    K0: np.ndarray
    K1: np.ndarray
    T_0to1: np.ndarray


def read_pairs(path: str | Path) -> list[PosePair]:
    """Parse a SuperGlue-format pairs file; rotated pairs (rot0/rot1 != 0) are refused."""
    pairs = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 38:
            raise DatasetError(f"{path}:{number}: expected 38 fields (name0 name1 rot0 rot1 "
                               f"K0(9) K1(9) T_0to1(16)), got {len(fields)}")
        if int(fields[2]) or int(fields[3]):
            raise DatasetError(f"{path}:{number}: rotated pairs (rot0/rot1) are not supported")
        values = np.array(fields[4:], dtype=np.float64)
        pairs.append(PosePair(fields[0], fields[1], values[:9].reshape(3, 3),
                              values[9:18].reshape(3, 3), values[18:].reshape(4, 4)))
    if not pairs:
        raise DatasetError(f"{path} holds no pairs")
    return pairs


def pair_error(p0: np.ndarray, p1: np.ndarray, cam0: CameraModel, cam1: CameraModel,
               T_0to1: np.ndarray, threshold_px: float) -> tuple[float, int]:
    """Pose error (degrees; inf when no pose) of matched pixels, and the inlier count."""
    result = estimate_relative_pose(p0, p1, cam0, cam1, TwoViewConfig(threshold_px))
    if not result.success or not np.any(result.t):
        return float("inf"), result.num_inliers
    err_R, err_t = relative_pose_error(T_0to1, result.R, result.t)
    return max(err_R, err_t), result.num_inliers


def evaluate_pairs(pairs: list[PosePair], images: Path, matcher: PairMatcher,
                   threshold_px: float = 0.5, progress: bool = True) -> dict[str, Any]:
    """AUC of the pose error over ``pairs`` with ``matcher``'s correspondences."""
    errors, matches, inlier_ratios = [], [], []
    for pair in tqdm(pairs, desc="pairs", disable=not progress):
        img0, img1 = load_image(images / pair.name0), load_image(images / pair.name1)
        p0, p1 = matcher(img0, img1)
        cam0 = CameraModel(img0.shape[1], img0.shape[0], pair.K0)
        cam1 = CameraModel(img1.shape[1], img1.shape[0], pair.K1)
        error, inliers = pair_error(p0, p1, cam0, cam1, pair.T_0to1, threshold_px)
        errors.append(error)
        matches.append(len(p0))
        inlier_ratios.append(inliers / len(p0) if len(p0) else 0.0)
    auc = pose_auc(errors, (5, 10, 20))
    return {"auc@5": auc[0], "auc@10": auc[1], "auc@20": auc[2], "pairs": len(pairs),
            "mean_matches": float(np.mean(matches)),
            "mean_inlier_ratio": float(np.mean(inlier_ratios)),
            "errors_deg": [round(e, 4) if np.isfinite(e) else None for e in errors]}


def reference_pair_error(pair: PosePair, k0: np.ndarray, k1: np.ndarray) -> float:
    """Pose error (degrees) of matched pixels with SuperGlue's OpenCV estimator, the reference
    LightGlue's papers report: RANSAC essential matrix at 0.5 px on normalised coordinates, the
    decomposition with most points in front."""
    if len(k0) < 5:
        return float("inf")
    x0 = (k0 - pair.K0[[0, 1], [2, 2]]) / pair.K0[[0, 1], [0, 1]]
    x1 = (k1 - pair.K1[[0, 1], [2, 2]]) / pair.K1[[0, 1], [0, 1]]
    thr = 0.5 / np.mean([pair.K0[0, 0], pair.K1[1, 1], pair.K0[1, 1], pair.K1[0, 0]])
    E, mask = cv2.findEssentialMat(x0, x1, np.eye(3), threshold=thr, prob=0.99999,
                                   method=cv2.RANSAC)
    if E is None:
        return float("inf")
    best = max((cv2.recoverPose(Ei, x0, x1, np.eye(3), distanceThresh=1e9, mask=mask.copy())[:3]
                for Ei in np.split(E, len(E) // 3)), key=lambda r: r[0])
    return max(relative_pose_error(pair.T_0to1, best[1], best[2].ravel()))


def golden_reference_auc(pairs: list[PosePair], golden: Path, image_set: str = "scannet",
                         mode: str = "adaptive") -> dict[str, Any]:
    """AUC of the official implementation's matches (a golden folder such as
    ``../shared/golden/aliked``) with the OpenCV reference estimator: the figure to beat."""
    errors = []
    for pair in pairs:
        a, b = Path(pair.name0).stem, Path(pair.name1).stem
        f0 = np.load(golden / "features" / image_set / f"{a}.npz")
        f1 = np.load(golden / "features" / image_set / f"{b}.npz")
        m = np.load(golden / "matches" / mode / image_set / f"{a}__{b}.npz")["matches0"]
        valid = m > -1
        errors.append(reference_pair_error(pair, f0["keypoints"][valid].astype(float),
                                           f1["keypoints"][m[valid]].astype(float)))
    auc = pose_auc(errors, (5, 10, 20))
    return {"auc@5": auc[0], "auc@10": auc[1], "auc@20": auc[2], "pairs": len(pairs),
            "errors_deg": [round(e, 4) if np.isfinite(e) else None for e in errors]}
