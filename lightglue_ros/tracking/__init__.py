"""The tracking front end: frames in, relative poses, trajectory and per-frame records out."""
from .frames import ExtractedFrame
from .records import FrameRecord, TrackingStatus
from .tracker import Tracker
from .two_stage import StageCounters, StageOutput, TwoStageTracker

__all__ = ["ExtractedFrame", "FrameRecord", "StageCounters", "StageOutput", "Tracker",
           "TrackingStatus", "TwoStageTracker"]
