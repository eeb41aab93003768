"""What the tracker reports for every frame: enough for a SLAM backend, diagnostics and a CSV."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from ..geometry.covariance import lost_covariance
from ..types import seconds


class TrackingStatus(str, enum.Enum):
    OK = "ok"  # enough inliers: the pose is trustworthy
    WEAK = "weak"  # a pose, from few inliers: use with its (larger) covariance
    LOST = "lost"  # no pose: odometry holds the last pose with a huge covariance


@dataclass
class FrameRecord:
    """One processed frame. Poses are 4x4 T_a_b (maps points from frame b into frame a).

    ``T_odom_cam`` is the camera pose in the odom frame; ``T_ref_cam`` the pose of this camera in
    the reference frame it was matched against (stamp ``ref_stamp_ns``, ``ref_index``): the
    relative motion. Stamps are the header's integer nanoseconds, so that an output's header is
    rebuilt exactly from the record; ``index`` numbers the records of one tracker from 0 (a
    reset does not restart it), for naming the reference in a pose graph.
    """

    stamp_ns: int
    status: TrackingStatus
    T_odom_cam: np.ndarray
    covariance: np.ndarray = field(default_factory=lost_covariance)  # of T_odom_cam, 6x6
    ref_stamp_ns: int | None = None
    ref_is_keyframe: bool = True
    T_ref_cam: np.ndarray | None = None
    relative_covariance: np.ndarray = field(default_factory=lost_covariance)
    model: str = "none"  # pnp | essential | homography | init | none
    metric: bool = False  # translation in metres (depth) rather than up to scale
    keyframe: bool = False  # this frame became a keyframe
    reinitialized: bool = False  # tracking restarted here: no motion link to the frame before
    num_keypoints: int = 0
    num_matches: int = 0
    num_inliers: int = 0
    layers: int = 0  # LightGlue layers run for the pose's match (0: no match)
    flow_px: float = 0.0  # median keypoint motion since the reference frame
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    reason: str = ""  # why the status is not ok
    # Matched keypoints (pixels) for publishing and drawing: reference, current, score, inlier.
    ref_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    cur_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    match_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    inliers: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    # Persistent keypoint track id of each matched pair (the same physical point keeps its id
    # while it is tracked, through keyframes); -1 where none was assigned.
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    index: int = 0
    ref_index: int | None = None
    ref_began_anew: bool = False  # tracking (re)started at the reference: no link before it
    # the stereo pair's disparity offset as the local map estimates it (stereo_offset_prior_px)
    disparity_offset_px: float = 0.0

    CSV_FIELDS = ("stamp", "status", "model", "metric", "keyframe", "reinitialized", "ref_stamp",
                  "num_keypoints", "num_matches", "num_inliers", "layers", "flow_px",
                  "t_extract_ms", "t_match_ms", "t_flow_ms", "t_pose_ms", "t_stereo_ms",
                  "t_map_ms", "tx", "ty", "tz", "reason")

    @property
    def seconds(self) -> float:
        return seconds(self.stamp_ns)

    @property
    def ref_seconds(self) -> float | None:
        return None if self.ref_stamp_ns is None else seconds(self.ref_stamp_ns)

    def csv_row(self) -> dict[str, object]:
        ms = {k: round(1e3 * self.timings.get(k, 0.0), 3)
              for k in ("extract", "match", "flow", "pose", "stereo", "map")}
        tx, ty, tz = self.T_odom_cam[:3, 3]
        return {"stamp": f"{self.seconds:.6f}", "status": self.status.value, "model": self.model,
                "metric": int(self.metric), "keyframe": int(self.keyframe),
                "reinitialized": int(self.reinitialized),
                "ref_stamp": "" if self.ref_stamp_ns is None else f"{self.ref_seconds:.6f}",
                "num_keypoints": self.num_keypoints, "num_matches": self.num_matches,
                "num_inliers": self.num_inliers, "layers": self.layers,
                "flow_px": round(self.flow_px, 3), "t_extract_ms": ms["extract"],
                "t_match_ms": ms["match"], "t_flow_ms": ms["flow"], "t_pose_ms": ms["pose"], "t_stereo_ms": ms["stereo"],
                "t_map_ms": ms["map"], "tx": tx, "ty": ty, "tz": tz,
                "reason": self.reason}
