"""Exceptions the core raises, each carrying a message meant for the person running the tool."""
from __future__ import annotations

import traceback
from pathlib import Path


class LightGlueRosError(Exception):
    """Base class: every error lightglue_ros raises on bad input or setup."""


class WeightsError(LightGlueRosError):
    """A checkpoint is missing, unreadable, tampered with, or of the wrong layout."""


class ImageError(LightGlueRosError):
    """An image cannot be used for feature extraction (empty, wrong type, non-finite values)."""


class BackendError(LightGlueRosError):
    """An inference backend cannot run here (missing library, GPU, or engine)."""


class DatasetError(LightGlueRosError):
    """A dataset folder is missing, incomplete or malformed, or lacks the intrinsics it needs."""


class BagError(LightGlueRosError):
    """A ROS 2 bag is missing, corrupt or truncated, or lacks the topics or messages asked for."""


def describe(exc: BaseException, stage: str) -> str:
    """One line for a log: what ``stage`` raised and where (the innermost frame, and the
    innermost of this package's when that is elsewhere, e.g. in a message's generated code)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    ours = [f for f in frames if f"{__package__}/" in Path(f.filename).as_posix()]
    where = ", from ".join(dict.fromkeys(f"{Path(f.filename).name}:{f.lineno}"
                                         for f in frames[-1:] + ours[-1:]))
    return f"{stage} failed: {exc.__class__.__name__}: {exc}" + (f" (at {where})" if where else "")
