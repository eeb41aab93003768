"""Following the keyframe's map points by optical flow, frame to frame (``track_by_flow``).

A frame between keyframes needs no new keypoints: the points it is located on are the keyframe's
map points, which the last frame already saw. Pyramidal Lucas-Kanade flow takes them from the
last frame's image to this one for a fraction of an extraction and a LightGlue match, and PnP
places the frame on them (``tracking.estimation``). Each followed point is kept only when the
flow back lands within ``FB_PX`` of where it started (forward-backward check), inside the image.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from .keyframes import KeyframeFigures

# Lucas-Kanade window and pyramid levels (OpenCV's defaults for a few tens of pixels of motion)
WINDOW, LEVELS = (21, 21), 3
FB_PX = 1.0  # forward-backward disagreement (px) beyond which a followed point is dropped


def follow(gray0: np.ndarray, gray1: np.ndarray, pts: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Each point's position in image 1 and whether it is kept: found, inside the image, and
    back within ``FB_PX`` of where it started when followed back."""
    if len(pts) == 0:
        return np.zeros((0, 2)), np.zeros(0, bool)
    p0 = pts.astype(np.float32).reshape(-1, 1, 2)
    p1, ok1, _ = cv2.calcOpticalFlowPyrLK(gray0, gray1, p0, None, winSize=WINDOW,
                                          maxLevel=LEVELS)
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(gray1, gray0, p1, None, winSize=WINDOW,
                                            maxLevel=LEVELS)
    fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
    landed = p1.reshape(-1, 2).astype(np.float64)
    h, w = gray1.shape[:2]
    inside = np.all((landed >= 0) & (landed <= [w - 1, h - 1]), axis=1)
    return landed, (ok1.ravel() > 0) & (ok2.ravel() > 0) & (fb < FB_PX) & inside


def matched_next(steps: int, keyframe_in: int | None, max_steps: int) -> bool:
    """Whether the frame after ``steps`` frames placed by flow in a row is matched instead:
    ``max_steps`` reached, or a keyframe likely due with it."""
    return steps >= max_steps or keyframe_in == 1


@dataclass
class FlowChain:
    """The keyframe's map points as the last tracked frame saw them: where they are in its image
    and which keyframe keypoint each one is."""

    gray: np.ndarray  # the last tracked frame's grey image
    at: np.ndarray  # (M, 2) pixel positions in it
    kf_index: np.ndarray  # (M,) index into the keyframe's keypoints
    # the keyframe's 3D points (N, 3, its camera frame, NaN where none) and their covariances
    # (N, 3, 3), as the map had them when the chain began: it does not change before the next
    # matched frame, which begins a new chain
    points: np.ndarray
    covariances: np.ndarray
    steps: int = 0  # frames placed by flow since the last matched frame
    figures: KeyframeFigures | None = None  # the keyframe policy's, at the last frame
    # frames until the policy will likely ask for a keyframe (its figures carried on as they
    # changed over the last frame); such a frame is matched without trying the flow first
    keyframe_in: int | None = None

    def then(self, gray: np.ndarray, at: np.ndarray, kf_index: np.ndarray,
             figures: KeyframeFigures, keyframe_in: int | None) -> "FlowChain":
        """The chain one frame on: the points as ``gray`` (a frame placed by flow) has them."""
        return replace(self, gray=gray, at=at, kf_index=kf_index, steps=self.steps + 1,
                       figures=figures, keyframe_in=keyframe_in)

    def matches_next(self, max_steps: int) -> bool:
        """Whether the next frame is matched rather than placed by flow."""
        return matched_next(self.steps, self.keyframe_in, max_steps)

    def followed(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The points in the next image: (positions, keyframe indices) of those kept."""
        landed, kept = follow(self.gray, gray, self.at)
        return landed[kept], self.kf_index[kept]
