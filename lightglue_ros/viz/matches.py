"""Side-by-side match pictures, drawn with OpenCV so the node can render them cheaply."""
from __future__ import annotations

import cv2
import numpy as np


def _rgb8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = (np.clip(np.nan_to_num(image), 0, 1) * 255).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image[..., :3])


def score_colour(score: float) -> tuple[int, int, int]:
    """Red (weak) to green (confident), RGB."""
    s = float(np.clip(score, 0.0, 1.0))
    return int(255 * (1 - s)), int(255 * s), 0


def draw_matches(image0: np.ndarray, image1: np.ndarray, kpts0: np.ndarray, kpts1: np.ndarray,
                 pairs: np.ndarray, scores: np.ndarray | None = None,
                 inliers: np.ndarray | None = None, text: str = "",
                 max_lines: int = 2000) -> np.ndarray:
    """An RGB picture of both images side by side with keypoints and match lines.

    Lines are coloured by score (red to green); when an inlier mask is given, outliers are drawn
    grey. At most ``max_lines`` matches are drawn, the best-scoring ones.
    """
    a, b = _rgb8(image0), _rgb8(image1)
    h = max(a.shape[0], b.shape[0])
    canvas = np.zeros((h, a.shape[1] + b.shape[1], 3), np.uint8)
    canvas[:a.shape[0], :a.shape[1]] = a
    canvas[:b.shape[0], a.shape[1]:] = b
    offset = np.array([a.shape[1], 0.0])
    for x, y in np.asarray(kpts0, float):
        cv2.circle(canvas, (int(round(x)), int(round(y))), 1, (0, 160, 255), -1, cv2.LINE_AA)
    for x, y in np.asarray(kpts1, float) + offset:
        cv2.circle(canvas, (int(round(x)), int(round(y))), 1, (0, 160, 255), -1, cv2.LINE_AA)
    scores = np.ones(len(pairs)) if scores is None else np.asarray(scores)
    order = np.argsort(-scores)[:max_lines]
    for k in order:
        i, j = pairs[k]
        p0 = tuple(int(round(v)) for v in kpts0[i])
        p1 = tuple(int(round(v)) for v in np.asarray(kpts1[j], float) + offset)
        colour = (128, 128, 128) if inliers is not None and not inliers[k] else \
            score_colour(scores[k])
        cv2.line(canvas, p0, p1, colour, 1, cv2.LINE_AA)
    _put_text(canvas, text)
    return canvas


def draw_flow(image: np.ndarray, pts0: np.ndarray, pts1: np.ndarray,
               inliers: np.ndarray | None = None, text: str = "") -> np.ndarray:
    """The current image with each match drawn from its reference position to where it is now:
    green for inliers, red for outliers. Needs only one image, which suits a live camera."""
    canvas = _rgb8(image).copy()
    inliers = np.ones(len(pts0), bool) if inliers is None else inliers
    for p0, p1, ok in zip(np.asarray(pts0, float), np.asarray(pts1, float), inliers):
        colour = (0, 220, 0) if ok else (220, 0, 0)
        end = (int(round(p1[0])), int(round(p1[1])))
        cv2.line(canvas, (int(round(p0[0])), int(round(p0[1]))), end, colour, 1, cv2.LINE_AA)
        cv2.circle(canvas, end, 2, colour, -1, cv2.LINE_AA)
    _put_text(canvas, text)
    return canvas


def _put_text(canvas: np.ndarray, text: str) -> None:
    for i, line in enumerate(text.splitlines()):
        org = (8, 22 + 22 * i)
        cv2.putText(canvas, line, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, line, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                    cv2.LINE_AA)


def save_rgb(path: str, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write image {path}")
