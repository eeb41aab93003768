"""The local map behind tracking: keypoint track ids, 3D points with their observations in a
window of keyframes, and the windowed bundle adjustment that refines both."""
from .bundle_adjustment import AdjustmentResult, Observations, adjust
from .local_map import LocalMap, MapConfig, MapKeyframe
from .tracks import TrackIds

__all__ = ["AdjustmentResult", "LocalMap", "MapConfig", "MapKeyframe", "Observations", "TrackIds",
           "adjust"]
