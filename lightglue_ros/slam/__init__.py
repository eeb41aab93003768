"""SLAM above the tracking front end: place recognition, a keyframe database, verification with
LightGlue, a GTSAM pose graph, relocalization, loop closure and the map -> odom correction."""
from .keyframe_database import Keyframe, KeyframeDatabase
from .pose_graph import Edge, PoseGraph
from .system import Slam, SlamConfig, SlamResult

__all__ = ["Edge", "Keyframe", "KeyframeDatabase", "PoseGraph", "Slam", "SlamConfig",
           "SlamResult"]
