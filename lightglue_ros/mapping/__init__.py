"""The local map behind tracking: keypoint track ids, 3D points with their observations in a
window of keyframes, and the windowed bundle adjustment that refines both."""
from .adjuster import AdjustmentJob, make_adjuster
from .bundle_adjustment import AdjustmentResult, Observations, adjust
from .local_map import LocalMap, MapConfig, MapKeyframe
from .tracks import TrackIds, common_ids

__all__ = ["AdjustmentJob", "AdjustmentResult", "LocalMap", "MapConfig", "MapKeyframe",
           "Observations", "TrackIds", "adjust", "common_ids", "make_adjuster"]
