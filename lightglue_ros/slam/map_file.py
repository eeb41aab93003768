"""A SLAM map on disk: one .npz file, version 1, readable with numpy alone.

Arrays (K keyframes, N_k keypoints of keyframe k, offsets split the concatenated rows):

    version          ()            int64, 1
    features         ()            str, the extractor that made the descriptors (e.g. "xfeat",
                                   "aliked/aliked-n16"); absent in files of older writers
    meta             ()            str, JSON: per keyframe its stamp_ns, segment, metric and
                                   camera (width, height, K, distortion_model, D)
    offsets          (K + 1,)      int64, keyframe k's rows are offsets[k]:offsets[k+1]
    keypoints        (sum N_k, 2)  float32 pixels (x, y)
    scores           (sum N_k,)    float32
    descriptors      (sum N_k, D)  float32, the extractor's
    points_cam       (sum N_k, 3)  float64, 3D point of each keypoint in its keyframe's camera
                                   frame, NaN where none
    image_size       (K, 2)        int64 (width, height)
    T_odom_cam       (K, 4, 4)     float64, as tracked
    T_map_cam        (K, 4, 4)     float64, as optimised
    global_desc      (K, G)        float32, place-recognition descriptor
    edge_ij          (E, 2)        int64 keyframe indices i, j of each pose-graph edge
    edge_T           (E, 4, 4)     float64, T_i_j (pose of j in i's camera frame)
    edge_covariance  (E, 6, 6)     float64 (x, y, z, rx, ry, rz; see messages.covariance)
    edge_loop        (E,)          bool, loop edge (else odometry)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..config import Config
from ..errors import LightGlueRosError
from ..features import Features
from ..geometry.camera import CameraModel
from ..tracking import Tracker
from .keyframe_database import Keyframe, KeyframeDatabase
from .pose_graph import Edge, PoseGraph
from .system import Slam

VERSION = 1


class MapFileError(LightGlueRosError, RuntimeError):
    """A map file that cannot be read as this version's format (a LightGlueRosError: the
    commands report it as bad input, not with a traceback)."""


def feature_kind(config: Config) -> str:
    """What makes two maps' descriptors comparable: the extractor (and ALIKED's variant)."""
    resolved = config.resolved()
    if resolved.extractor == "aliked":
        return f"aliked/{resolved.aliked_model}"
    return resolved.extractor


def save_map(path: str | Path, db: KeyframeDatabase, graph: PoseGraph, features: str) -> Path:
    """Write the database and the graph to ``path`` (.npz); ``features`` is ``feature_kind``
    of the tracker that made them."""
    path = Path(path)
    kfs = db.keyframes
    meta = [{"stamp_ns": int(k.stamp_ns), "segment": k.segment, "metric": bool(k.metric),
             "camera": {"width": k.camera.width, "height": k.camera.height,
                        "K": k.camera.K.tolist(), "distortion_model": k.camera.distortion_model,
                        "D": k.camera.D.tolist()}} for k in kfs]
    rows = [len(k.features) for k in kfs]
    dim = kfs[0].features.descriptors.shape[1] if kfs else 0
    edges = graph.edges

    def cat(arrays: list[np.ndarray], shape: tuple[int, ...], dtype: type) -> np.ndarray:
        return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(shape, dtype)

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(
            f, version=np.int64(VERSION), features=np.array(features),
            meta=np.array(json.dumps(meta)),
            offsets=np.concatenate([[0], np.cumsum(rows)]).astype(np.int64),
            keypoints=cat([k.features.keypoints.cpu().numpy() for k in kfs], (0, 2), np.float32),
            scores=cat([k.features.scores.cpu().numpy() for k in kfs], (0,), np.float32),
            descriptors=cat([k.features.descriptors.cpu().numpy() for k in kfs], (0, dim),
                            np.float32),
            points_cam=cat([k.points_cam for k in kfs], (0, 3), np.float64),
            image_size=np.array([k.features.image_size for k in kfs], np.int64).reshape(-1, 2),
            T_odom_cam=np.array([k.T_odom_cam for k in kfs]).reshape(-1, 4, 4),
            T_map_cam=np.array([k.T_map_cam for k in kfs]).reshape(-1, 4, 4),
            global_desc=np.array([k.descriptor for k in kfs], np.float32).reshape(len(kfs), -1),
            edge_ij=np.array([[e.i, e.j] for e in edges], np.int64).reshape(-1, 2),
            edge_T=np.array([e.T_i_j for e in edges]).reshape(-1, 4, 4),
            edge_covariance=np.array([e.covariance for e in edges]).reshape(-1, 6, 6),
            edge_loop=np.array([e.loop for e in edges], bool))
    return path


def save_slam(path: str | Path, slam: Slam) -> Path:
    """``save_map`` of a SLAM layer's database and graph, marked with its tracker's features."""
    return save_map(path, slam.db, slam.graph, feature_kind(slam.tracker.config))


def load_map(path: str | Path, features: str | None = None
             ) -> tuple[KeyframeDatabase, PoseGraph]:
    """The database and graph written by ``save_map``; with ``features``, MapFileError when
    the map's descriptors are another extractor's (nothing in it could ever match)."""
    with np.load(Path(path), allow_pickle=False) as data:
        version = int(data["version"]) if "version" in data else -1
        if version != VERSION:
            raise MapFileError(f"{path}: map format version {version}, this reads {VERSION}")
        a = {name: data[name] for name in data.files}
    made_with = str(a["features"]) if "features" in a else None
    if features is not None and made_with is not None and made_with != features:
        raise MapFileError(f"{path}: a map of {made_with} features; this tracker extracts "
                           f"{features} (start it with the map's extractor, or build a new map)")
    db, graph = KeyframeDatabase(), PoseGraph()
    off = a["offsets"]
    for k, m in enumerate(json.loads(str(a["meta"]))):
        rows = slice(off[k], off[k + 1])
        cam = m["camera"]
        features = Features.from_numpy(a["keypoints"][rows], a["scores"][rows],
                                       a["descriptors"][rows], tuple(a["image_size"][k]))
        kf = db.add(Keyframe(0, m["stamp_ns"], m["segment"],
                             CameraModel(cam["width"], cam["height"], np.array(cam["K"]),
                                         cam["distortion_model"], np.array(cam["D"])),
                             features, a["points_cam"][rows].copy(), a["T_odom_cam"][k].copy(),
                             a["T_map_cam"][k].copy(), a["global_desc"][k].copy(), m["metric"]))
        graph.add_node(kf.index, kf.T_map_cam)
    for (i, j), T, cov, loop in zip(a["edge_ij"], a["edge_T"], a["edge_covariance"],
                                    a["edge_loop"]):
        graph.add_edge(Edge(int(i), int(j), T.copy(), cov.copy(), bool(loop)))
    return db, graph


def open_slam(tracker: Tracker, map_path: str | Path = "") -> tuple[Slam, bool]:
    """The SLAM layer over ``tracker``: in the map at ``map_path`` when that file exists (then
    True: its first frames are relocalized in it), else a new map."""
    if map_path and Path(map_path).is_file():
        try:
            db, graph = load_map(map_path, feature_kind(tracker.config))
        except (OSError, KeyError, ValueError) as exc:
            raise MapFileError(f"{map_path}: not a map file ({exc})") from exc
        return Slam(tracker, database=db, graph=graph), True
    return Slam(tracker), False
