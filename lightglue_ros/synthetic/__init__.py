"""Self-contained synthetic RGB-D sequences with exact ground truth, for the demo and the tests.

A textured room is ray-cast along a smooth camera trajectory; poses, depth and intrinsics are
exact, so a tracker's accuracy can be measured exactly. Pure numpy/OpenCV, no ROS.
"""
from .camera import CameraInfo, make_camera, pixel_rays
from .sequence import (EPOCH_NS, TUM_DEPTH_SCALE, SyntheticFrame, SyntheticSequence, make_sequence,
                       write_tum_folder)
from .trajectory import MOTIONS

__all__ = ["CameraInfo", "EPOCH_NS", "MOTIONS", "SyntheticFrame", "SyntheticSequence",
           "TUM_DEPTH_SCALE", "make_camera", "make_sequence", "pixel_rays", "write_tum_folder"]
