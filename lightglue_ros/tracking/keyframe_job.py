"""A keyframe extracted and matched on a worker thread while the frames after it are placed by
flow (``track_by_flow`` with ``keyframe_lag_frames``).

An extraction and a LightGlue match take several camera periods on a CPU; done in line, they
hold up every frame behind the keyframe. Here the frame the keyframe policy asks for is placed by
flow like the others, and a worker extracts it, matches it against the current keyframe and
follows its keypoints by flow through the images that arrive meanwhile. The ``lag``-th frame
after it becomes the keyframe: it takes those keypoints where the flow put them, their
descriptors and the match. Offline, which frame becomes the keyframe, and everything it gets,
depends on the frames alone, never on how fast the worker was: the tracker waits for the worker
when it is late (the flow is followed frame after frame, whichever thread does it). Live, no
frame waits: the first frame after the worker is done becomes the keyframe. A frame on which the
flow loses the old keyframe first becomes the keyframe at once (waiting for the worker if need
be: that costs less than extracting and matching it in line).
"""
from __future__ import annotations

from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..features import Features, Matches
from .flow import follow
from .frames import ExtractedFrame


@dataclass
class Followed:
    """A frame's keypoints as the images after it see them."""

    at: np.ndarray  # (N, 2) positions in the last image followed
    kept: np.ndarray  # (N,) still followed
    images: int  # images followed so far

    def step(self, gray0: np.ndarray, gray1: np.ndarray) -> None:
        landed, ok = follow(gray0, gray1, self.at[self.kept])
        self.at[self.kept] = landed
        self.kept[self.kept] = ok
        self.images += 1


@dataclass
class _Done:
    features: Features
    matches: Matches
    followed: Followed


class KeyframeJob:
    """One keyframe on its way; see the module docstring. The tracker hands it each later
    frame's grey image (``add``) and takes the keyframe at the ``lag``-th (``keyframe``)."""

    def __init__(self, executor: Executor, extracted: ExtractedFrame, gray: np.ndarray,
                 reference: Features, lag: int,
                 complete: Callable[[ExtractedFrame], ExtractedFrame],
                 match: Callable[[Features, Features], Matches]) -> None:
        self.lag, self.gray = lag, gray
        self.grays: list[np.ndarray] = []  # the frames after it (appended by the tracker)
        self._future: Future[_Done | str] = executor.submit(self._run, extracted, reference,
                                                      complete, match)

    def add(self, gray: np.ndarray) -> bool:
        """A later frame's image; whether this is the frame to become the keyframe."""
        self.grays.append(gray)
        return len(self.grays) >= self.lag

    def cancel(self) -> None:
        """Drop the job (a reset, a frame the flow lost): its result is never used."""
        self._future.cancel()

    def done(self) -> bool:
        """Whether the worker is done (or failed)."""
        return self._future.done()

    def wait(self) -> None:
        """Until the worker is done (or failed)."""
        wait([self._future])

    def keyframe(self, frame: ExtractedFrame) -> tuple[ExtractedFrame, Matches] | str:
        """The last frame added (``frame``) with the job frame's keypoints followed into it and
        their match against the reference; or why not."""
        try:
            done = self._future.result()
        except Exception as exc:  # noqa: BLE001 - the frame is then matched in line
            return f"the keyframe's worker failed: {exc}"
        if isinstance(done, str):
            return done
        followed = done.followed
        self._catch_up(followed)
        kept = followed.kept
        if not kept.any():
            return "the flow lost every keypoint of the keyframe matched in the background"
        f = done.features
        features = Features.from_numpy(followed.at[kept], f.scores.cpu().numpy()[kept],
                                       f.descriptors.cpu().numpy()[kept], f.image_size)
        return ExtractedFrame(frame.frame, features), done.matches.keep_second(kept)

    def _run(self, extracted: ExtractedFrame, reference: Features,
             complete: Callable[[ExtractedFrame], ExtractedFrame],
             match: Callable[[Features, Features], Matches]) -> _Done | str:
        """The worker's part: the frame's features, match and followed keypoints, or why not."""
        complete(extracted)
        features = extracted.features
        if features is None:
            return extracted.reason
        matches = match(reference, features)
        followed = Followed(features.keypoints.cpu().numpy().astype(np.float64),
                            np.ones(len(features), bool), 0)
        self._catch_up(followed)  # as far as the tracker has gone
        return _Done(features, matches, followed)

    def _catch_up(self, followed: Followed) -> None:
        """Follow the keypoints through the images added and not yet followed."""
        while followed.images < len(self.grays):
            i = followed.images
            followed.step(self.gray if i == 0 else self.grays[i - 1], self.grays[i])
