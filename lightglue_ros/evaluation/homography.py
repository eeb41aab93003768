"""Homography accuracy on HPatches-style sequences: image 1 against images 2..6.

Protocol of LightGlue's evaluation (glue-factory): both images resized so that the shorter side is
480 pixels, the ground-truth homography rescaled to match, and the error is the mean distance of
the four image corners mapped by the estimate and by the ground truth, in resized pixels. The
network settings of that protocol are :data:`PROTOCOL`.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..images import load_image
from ..pipeline import Pipeline
from .pose_metrics import homography_corner_error

SHORT_SIDE = 480
# The extractor and matcher settings of glue-factory's LightGlue evaluation configs: up to 2048
# keypoints with no score threshold, all nine layers (no early exit, no pruning).
PROTOCOL = {"max_keypoints": 2048, "detection_threshold": 0.0, "depth_confidence": -1.0,
            "width_confidence": -1.0}


def estimate_homography(p0: np.ndarray, p1: np.ndarray, threshold_px: float = 3.0
                        ) -> np.ndarray | None:
    """Pixel homography image 0 -> image 1 from matches (MAGSAC++), None when it fails."""
    if len(p0) < 4:
        return None
    H, _ = cv2.findHomography(p0, p1, cv2.USAC_MAGSAC, threshold_px, confidence=0.9999,
                              maxIters=10000)
    return H


def _resized(path: Path, short_side: int) -> tuple[np.ndarray, float]:
    image = load_image(path)
    scale = short_side / min(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def sequence_corner_errors(pipe: Pipeline, folder: str | Path, targets=range(2, 7),
                           threshold_px: float = 3.0, short_side: int = SHORT_SIDE
                           ) -> dict[int, float]:
    """Mean corner error (pixels) of image 1 -> image k for each k, inf when no homography."""
    folder = Path(folder)
    img1, s1 = _resized(folder / "1.ppm", short_side)
    f1 = pipe.extract(img1)
    errors = {}
    for k in targets:
        imgk, sk = _resized(folder / f"{k}.ppm", short_side)
        fk = pipe.extract(imgk)
        pairs = pipe.match(f1, fk).pairs
        H = estimate_homography(f1.keypoints.numpy()[pairs[:, 0]].astype(float),
                                fk.keypoints.numpy()[pairs[:, 1]].astype(float), threshold_px)
        H_gt = np.diag([sk, sk, 1.0]) @ np.loadtxt(folder / f"H_1_{k}") @ np.diag(
            [1 / s1, 1 / s1, 1.0])
        errors[k] = float("inf") if H is None else homography_corner_error(
            H, H_gt, img1.shape[1], img1.shape[0])
    return errors
