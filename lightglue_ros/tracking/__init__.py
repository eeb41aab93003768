"""The tracking front end: frames in, relative poses, trajectory and per-frame records out."""
from .records import FrameRecord, TrackingStatus
from .tracker import Tracker

__all__ = ["FrameRecord", "Tracker", "TrackingStatus"]
