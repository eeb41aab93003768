"""Tracking by projection (``track_by_projection``): frames between keyframes located on the map
without a LightGlue match, and LightGlue where the map cannot place them."""
import numpy as np
import pytest

from conftest import pose_error
from lightglue_ros.datasets.frames import synthetic_frames
from lightglue_ros.geometry.se3 import invert_transform
from lightglue_ros.mapping.projection_search import _near, search_by_projection
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.synthetic import make_sequence
from lightglue_ros.tracking import Tracker, TrackingStatus
from lightglue_ros.tracking.estimation import PROJECTION_MAX_RATIO


@pytest.fixture(scope="module")
def pipe():
    return Pipeline()  # the default: xfeat on this CPU


@pytest.fixture(scope="module")
def seq():
    return make_sequence(num_frames=12)


@pytest.fixture(scope="module")
def frames(seq):
    return list(synthetic_frames(seq))


def projecting(pipe):
    return Tracker(pipe, pipe.config.replace(track_by_projection=True))


def feed(tracker, frames):
    return [tracker.process(f.image, f.stamp_ns, f.camera, f.depth, f.depth_unit) for f in frames]


def test_the_search_finds_the_lightglue_matches_again(pipe, seq, frames):
    """The keyframe's depth points projected with the true motion into the next frame land on
    the keypoints LightGlue matched them to: the same pairs, so the same track ids."""
    tracker = Tracker(pipe)  # LightGlue only
    feed(tracker, frames[:2])
    kf, cur = tracker.keyframe, tracker.previous
    assert kf is not cur  # frame 1 was matched, not made a keyframe
    X = kf.depth_points
    known = np.flatnonzero(np.isfinite(X[:, 0]))
    T_cur_kf = invert_transform(seq.poses[1]) @ seq.poses[0]
    rows, cols, cosine = search_by_projection(
        X[known] @ T_cur_kf[:3, :3].T + T_cur_kf[:3, 3], kf.descriptors[known], cur.camera,
        cur.keypoints, cur.descriptors, 15.0, tracker.map.config.min_cosine,
        PROJECTION_MAX_RATIO)
    assert len(set(cols.tolist())) == len(cols) and len(set(rows.tolist())) == len(rows)
    assert np.all(cosine >= tracker.map.config.min_cosine)
    found = dict(zip(known[rows].tolist(), cols.tolist()))
    # LightGlue's verified pairs (they handed the keyframe's id on) on keypoints with depth
    of_id = {int(i): k for k, i in enumerate(kf.ids)}
    lightglue = {of_id[int(i)]: j for j, i in enumerate(cur.ids)
                 if int(i) in of_id and np.isfinite(X[of_id[int(i)], 0])}
    assert len(lightglue) > 100
    again = [k for k, j in lightglue.items() if found.get(k) == j]
    assert len(again) >= 0.9 * len(lightglue)
    assert all(kf.ids[k] == cur.ids[found[k]] for k in again)  # so the same ids


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_candidates_are_exactly_the_pairs_within_the_radius(dtype):
    """The search looks only near each point's x; it must keep what the full distance matrix
    keeps, in its order: pairs at exactly the radius, points behind the camera (NaN) none."""
    rng = np.random.default_rng(11)
    keypoints = (rng.random((700, 2)) * [640, 480]).astype(dtype)
    uv = rng.random((900, 2)) * [700, 540] - 30
    uv[:40] = keypoints[:40] + [15.0, 0.0]  # at the radius along x
    uv[40:80] = keypoints[40:80] + [9.0, -12.0]  # at the radius (3-4-5)
    uv[rng.random(len(uv)) < 0.05] = np.nan
    expected = np.nonzero(np.linalg.norm(uv[:, None] - keypoints[None], axis=2) <= 15.0)
    rows, cols = _near(uv, keypoints, 15.0)
    assert np.array_equal(rows, expected[0]) and np.array_equal(cols, expected[1])
    assert len(rows) > len(uv)  # most points have candidates: the test sees the search work


def test_frames_between_keyframes_are_placed_by_projection_with_the_tracks_ids(pipe, seq,
                                                                               frames):
    """RGB-D: the start and keyframes are matched, the frames between placed on the map (no
    LightGlue layers), as accurately, and their published ids are the ones LightGlue gives."""
    on = feed(projecting(pipe), frames)
    off = feed(Tracker(pipe), frames)
    assert all(r.status is TrackingStatus.OK for r in on)
    projected = [i for i, r in enumerate(on) if r.layers == 0 and not r.keyframe and i > 0]
    assert projected and all(on[i].model == "pnp" and on[i].ref_is_keyframe for i in projected)
    assert all(on[i].num_inliers >= pipe.config.resolved().good_inliers for i in projected)
    for i in projected:
        r = on[i]
        assert len(r.track_ids) == len(r.cur_points) == r.num_matches
        assert np.all((r.track_ids >= 0) == r.inliers)
        gt = invert_transform(seq.poses[0]) @ seq.poses[i]
        assert pose_error(r.T_odom_cam, gt)[0] < 0.03
        assert pose_error(r.T_odom_cam, gt)[1] < 0.5
    # where a frame was matched by LightGlue in the other run, at the same keyframe, a
    # keypoint both runs tracked carries the same id
    compared = 0
    for i in projected:
        a, b = on[i], off[i]
        if b.layers == 0 or b.ref_index != a.ref_index:
            continue
        compared += 1
        ids_a = {tuple(p): t for p, t in zip(a.cur_points.tolist(), a.track_ids) if t >= 0}
        ids_b = {tuple(p): t for p, t in zip(b.cur_points.tolist(), b.track_ids) if t >= 0}
        both = ids_a.keys() & ids_b.keys()
        assert len(both) > 50
        assert sum(ids_a[p] == ids_b[p] for p in both) >= 0.95 * len(both)
    assert compared


def test_without_a_map_the_tracker_matches_with_lightglue(pipe, frames):
    """Monocular start: no map points yet, so the projection cannot place a frame and the
    LightGlue match does; after a reset the same."""
    mono = [f.__class__(f.stamp_ns, f.image, f.camera) for f in frames]
    tracker = projecting(pipe)
    feed(tracker, mono[:1])
    assert len(tracker.map) == 0
    second = feed(tracker, mono[1:2])[0]
    assert second.status is not TrackingStatus.LOST and second.layers > 0
    tracker.reset()
    again = feed(tracker, mono[3:5])
    assert again[0].model == "init" and again[1].layers > 0
