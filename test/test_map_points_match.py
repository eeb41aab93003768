"""``match_map_points_only``: frames matched against only the keyframe's keypoints that have a 3D
point, the pairs mapped back to the keyframe's own rows."""
import numpy as np
import pytest

from lightglue_ros.datasets.frames import synthetic_frames
from lightglue_ros.geometry.se3 import invert_transform
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.synthetic import make_sequence
from lightglue_ros.tracking import Tracker, TrackingStatus
from lightglue_ros.tracking.frames import TrackedFrame


@pytest.fixture(scope="module")
def pipe_seq():
    """The default pipeline (xfeat on this CPU) and a short synthetic sequence."""
    return Pipeline(), make_sequence(num_frames=12)


def subset_tracker(pipe):
    return Tracker(pipe, pipe.config.replace(match_map_points_only=True))


def test_the_subset_pairs_index_the_keyframes_own_keypoints(pipe_seq):
    """Monocular, once the keyframe has triangulated points: the next frame matched on those
    keypoints only. Every pair's first index is one of those rows, and the keyframe keypoint it
    names, at its true depth and moved by the true motion, projects onto the frame's keypoint of
    the pair (a pair left in the subset's numbering would name another keypoint, far off)."""
    pipe, seq = pipe_seq
    frames = list(synthetic_frames(seq, use_depth=False))
    tracker = subset_tracker(pipe)
    for k, frame in enumerate(frames):
        tracker.track(tracker.extract(frame))
        rows = tracker.estimator.point_rows(tracker.keyframe)
        if rows is not None:
            break
    kf, nxt = tracker.keyframe, frames[k + 1]
    tracker.close()
    assert rows is not None and len(rows) < len(kf.features)  # a real subset
    cur = TrackedFrame(nxt.stamp_ns, nxt.camera, pipe.extract(nxt.image))
    est = tracker.estimator.estimate(kf, cur, {}, 1.0, rows)
    assert est.model == "pnp" and est.num_inliers >= tracker.config.good_inliers
    assert np.isin(est.pairs[:, 0], rows).all()
    uv = kf.keypoints[est.pairs[:, 0]]
    depth = seq.frame(kf.index).depth
    z = depth[np.round(uv[:, 1]).astype(int), np.round(uv[:, 0]).astype(int)]
    X = np.c_[uv, np.ones(len(uv))] @ np.linalg.inv(kf.camera.K).T * z[:, None]
    T_cur_kf = invert_transform(seq.poses[k + 1]) @ seq.poses[kf.index]
    seen = cur.camera.project(X @ T_cur_kf[:3, :3].T + T_cur_kf[:3, 3])
    err = np.linalg.norm(seen - cur.keypoints[est.pairs[:, 1]], axis=1)
    assert np.mean(err < 3.0) > 0.9


def test_a_subset_tracker_tracks_the_synthetic_sequence(pipe_seq):
    """Monocular (with depth every keypoint has a point here: nothing to leave out): no frame
    lost, and frames between keyframes did take the subset match (the test sees the flag work,
    not only the full match behind it)."""
    pipe, seq = pipe_seq
    tracker = subset_tracker(pipe)
    subsets = []
    estimate = tracker.estimator.estimate

    def spy(ref, cur, timings, metres_per_flow_px, rows=None):
        subsets.append(rows is not None)
        return estimate(ref, cur, timings, metres_per_flow_px, rows)

    tracker.estimator.estimate = spy
    records = [tracker.track(tracker.extract(f)) for f in synthetic_frames(seq, False)]
    tracker.close()
    assert all(r.status is not TrackingStatus.LOST for r in records)
    assert sum(subsets) >= 3
