"""Exceptions the core raises, each carrying a message meant for the person running the tool."""


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
