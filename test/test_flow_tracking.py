"""Tracking by optical flow (``track_by_flow``): frames between keyframes placed on the keyframe's
map points followed by Lucas-Kanade flow, without extracting them; LightGlue where the flow
cannot place a frame or a keyframe is due; and the extraction stage's hint changes the time a
frame costs, never its result."""
import numpy as np
import pytest

from conftest import pose_error
from lightglue_ros.datasets.frames import synthetic_frames
from lightglue_ros.evaluation.tracking_run import run_tracker
from lightglue_ros.geometry.se3 import invert_transform
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.synthetic import make_sequence
from lightglue_ros.tracking import Tracker, TrackingStatus
from lightglue_ros.types import FrameInput


@pytest.fixture(scope="module")
def pipe():
    return Pipeline()  # the default: xfeat on this CPU


@pytest.fixture(scope="module")
def seq():
    return make_sequence(num_frames=12)


@pytest.fixture(scope="module")
def frames(seq):
    return list(synthetic_frames(seq))


def flowing(pipe, **overrides):
    return Tracker(pipe, pipe.config.replace(track_by_flow=True, **overrides))


def feed(tracker, frames, hint=None):
    """Each frame extracted as ``wants_features`` says (or always / never, ``hint``), then
    tracked; the records, and whether each frame was placed by flow."""
    records = []
    for frame in frames:
        wanted = tracker.wants_features() if hint is None else hint
        records.append(tracker.track(tracker.extract(frame, wanted)))
    return records


def by_flow(record):
    return "flow" in record.timings and "match" not in record.timings


@pytest.fixture(scope="module")
def flowed(pipe, frames):
    return feed(flowing(pipe), frames)


def test_frames_between_keyframes_are_placed_by_flow_as_accurately(pipe, seq, flowed):
    """RGB-D: the frames after a matched one are placed on the keyframe's map points followed by
    flow: no extraction, no LightGlue, not keyframes, at most ``flow_max_frames`` in a row, and
    as close to the truth as the projection's frames (``test_projection.py``)."""
    assert all(r.status is TrackingStatus.OK for r in flowed)
    placed = [i for i, r in enumerate(flowed) if by_flow(r)]
    assert len(placed) >= 3
    good = pipe.config.resolved().good_inliers
    run = 0
    for i, r in enumerate(flowed):
        run = run + 1 if i in placed else 0
        assert run <= pipe.config.flow_max_frames
    for i in placed:
        r = flowed[i]
        assert "extract" not in r.timings and r.layers == 0 and not r.keyframe
        assert r.model == "pnp" and r.ref_is_keyframe and r.num_inliers >= good
        assert len(r.track_ids) == len(r.cur_points) == r.num_matches
        assert np.all((r.track_ids >= 0) == r.inliers)
        gt = invert_transform(seq.poses[0]) @ seq.poses[i]
        assert pose_error(r.T_odom_cam, gt)[0] < 0.03
        assert pose_error(r.T_odom_cam, gt)[1] < 0.5


def test_the_track_ids_are_the_keyframe_points_followed(pipe, frames, flowed):
    """A frame placed by flow publishes, for each inlier, the id of the keyframe keypoint the
    flow followed into it: the ids are the keyframe's, none new."""
    tracker = flowing(pipe)
    records = feed(tracker, frames[:2])
    assert by_flow(records[1])
    kf = tracker.keyframe
    ids = records[1].track_ids[records[1].inliers]
    assert len(ids) >= pipe.config.resolved().good_inliers
    assert set(ids.tolist()) <= set(kf.ids.tolist())
    # the flowed keypoints land where the keyframe's are, moved by the frame's small motion
    assert np.median(np.linalg.norm(records[1].cur_points - records[1].ref_points, axis=1)) < 40


@pytest.mark.parametrize("hint", [True, False])
def test_the_extraction_hint_changes_the_time_not_the_result(pipe, frames, flowed, hint):
    """Every frame extracted ahead (its features unused when flow places it) or none (the tracker
    extracts the frames it matches itself): the same records, to the bit."""
    other = feed(flowing(pipe), frames, hint=hint)
    assert [by_flow(r) for r in other] == [by_flow(r) for r in flowed]
    for a, b in zip(flowed, other):
        assert (a.status, a.keyframe, a.num_inliers, a.layers) == \
            (b.status, b.keyframe, b.num_inliers, b.layers)
        assert np.array_equal(a.T_odom_cam, b.T_odom_cam)


def test_the_hint_is_right_where_a_match_is_certain(pipe, frames):
    """``wants_features`` says 'match' exactly when the tracker has no flow to follow or has
    placed ``flow_max_frames`` in a row: such frames are always matched; a frame it expects flow
    to place may still be matched (a keyframe due), never the other way round."""
    tracker = flowing(pipe, flow_max_frames=1)
    for frame in frames:
        expected = [tracker.wants_features(ahead) for ahead in range(3)]
        record = tracker.track(tracker.extract(frame, expected[0]))
        if expected[0]:
            assert not by_flow(record)
        if by_flow(record):  # the two after a frame placed by flow are predicted matched, flow
            assert tracker.wants_features(0) and not tracker.wants_features(1)


def test_two_stages_give_the_sequential_records(pipe, frames, flowed):
    """Offline, the extraction stage guesses from the state a frame or two behind: the records
    are still the sequential ones."""
    staged = run_tracker(flowing(pipe), frames, progress=False)
    assert [by_flow(r) for r in staged] == [by_flow(r) for r in flowed]
    for a, b in zip(flowed, staged):
        assert np.allclose(a.T_odom_cam, b.T_odom_cam, rtol=0, atol=1e-9)


def test_without_a_map_or_after_a_reset_frames_are_matched(pipe, frames):
    """Monocular start: no map points to follow, so LightGlue places the frames until the map
    exists; a reset forgets what the flow followed."""
    mono = [FrameInput(f.stamp_ns, f.image, f.camera) for f in frames]
    tracker = flowing(pipe)
    first = feed(tracker, mono[:2])
    assert len(tracker.map) == 0 and not any(by_flow(r) for r in first)
    assert tracker.wants_features()
    rgbd = flowing(pipe)
    feed(rgbd, frames[:1])
    assert not rgbd.wants_features()  # depth gives the first keyframe its points at once
    rgbd.reset()
    assert rgbd.wants_features()
    again = feed(rgbd, frames[3:5])
    assert again[0].model == "init" and by_flow(again[1])


def test_a_black_frame_is_lost_and_the_next_frames_recover(pipe, frames):
    """A frame with nothing to follow: the flow keeps no point, the frame is extracted, found
    unusable (lost, with the reason) and the frames after it are tracked again."""
    black = FrameInput(frames[2].stamp_ns, np.zeros_like(frames[2].image), frames[2].camera,
                       frames[2].depth, frames[2].depth_unit)
    records = feed(flowing(pipe), [*frames[:2], black, *frames[3:6]])
    assert records[2].status is TrackingStatus.LOST and records[2].reason
    assert all(r.status is not TrackingStatus.LOST for r in records[3:])


def test_track_counts_the_frames_placed_by_flow_and_tracks_every_nth_frame(tmp_path):
    """``lightglue-ros track --track-by-flow --every 2``: every other frame tracked (what a node
    that keeps up with one frame in two sees), the frames placed by flow counted in the figures
    as frames.csv shows them (flow timed, no match)."""
    import csv

    from conftest import run_cli_json

    figures = run_cli_json("track", "synthetic", "--frames", "12", "--every", "2",
                           "--track-by-flow", "--keyframe-flow-px", "60", "--out", str(tmp_path))
    seq = make_sequence(num_frames=12)
    stamps = [float(line.split()[0]) for line in
              (tmp_path / "trajectory.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert figures["frames"] == 6 and figures["lost_frames"] == 0
    np.testing.assert_allclose(stamps, np.asarray(seq.stamps[::2]), rtol=0, atol=1e-6)
    rows = list(csv.DictReader((tmp_path / "frames.csv").open()))
    flowed = [r for r in rows if float(r["t_flow_ms"]) > 0 and float(r["t_match_ms"]) == 0]
    assert figures["flow_frames"] == len(flowed) > 0


def in_background(pipe, **overrides):
    return flowing(pipe, keyframe_lag_frames=2, **overrides)


def assert_same_records(expected, records):
    """The same keyframes, layers, poses, covariances and track ids, to the bit."""
    assert [(r.keyframe, r.layers) for r in records] == \
        [(r.keyframe, r.layers) for r in expected]
    for a, b in zip(expected, records):
        assert np.array_equal(a.T_odom_cam, b.T_odom_cam)
        assert np.array_equal(a.covariance, b.covariance)
        assert np.array_equal(a.track_ids, b.track_ids)


@pytest.fixture(scope="module")
def backgrounded(pipe, frames):
    tracker = in_background(pipe)
    records = feed(tracker, frames)
    tracker.close()
    return records


def test_keyframes_are_matched_in_the_background(pipe, seq, backgrounded):
    """``keyframe_lag_frames: 2``: the frame the policy wants as a keyframe is placed by flow
    like the others; two frames on, a frame becomes the keyframe with the keypoints the worker
    extracted, matched (LightGlue's layers) and followed into it. No frame is held up by an
    extraction or a match of its own (apart from the first), and every pose is as close to the
    truth as the frames placed in line."""
    assert all(r.status is TrackingStatus.OK for r in backgrounded)
    good = pipe.config.resolved().good_inliers
    made = [i for i, r in enumerate(backgrounded) if r.keyframe]
    assert made[0] == 0 and len(made) >= 3
    for i, r in enumerate(backgrounded[1:], start=1):
        assert "extract" not in r.timings and "match" not in r.timings
        assert r.keyframe == (r.layers > 0)
        if r.keyframe:  # two frames after the one the job started on
            assert by_flow(backgrounded[i - 1]) and by_flow(backgrounded[i - 2])
            assert r.num_inliers >= good and r.ref_is_keyframe
        gt = invert_transform(seq.poses[0]) @ seq.poses[i]
        assert pose_error(r.T_odom_cam, gt)[0] < 0.03
        assert pose_error(r.T_odom_cam, gt)[1] < 0.5
    # the new keyframe carries on the tracks its match with the old one found
    i = made[1]
    assert np.any(backgrounded[i].track_ids >= 0)


def test_a_slow_worker_changes_the_time_not_the_result(pipe, frames, backgrounded, monkeypatch):
    """The tracker waits for a late worker at the frame that becomes the keyframe, and the
    flow is followed through the same images whoever follows it: a worker slower than the
    camera gives the same records to the bit, in one stage or two, whether the keyframe
    reached the worker extracted (the hint) or not."""
    import time

    from lightglue_ros.tracking import keyframe_job

    run = keyframe_job.KeyframeJob._run

    def slow(self, *args):
        time.sleep(0.3)
        return run(self, *args)

    monkeypatch.setattr(keyframe_job.KeyframeJob, "_run", slow)
    for records in (feed(in_background(pipe), frames),
                    feed(in_background(pipe), frames, hint=False),
                    feed(in_background(pipe), frames, hint=True),
                    run_tracker(in_background(pipe), frames, progress=False)):
        assert_same_records(backgrounded, records)


def test_settling_the_background_work_changes_the_time_not_the_result(pipe, frames,
                                                                      backgrounded):
    """``settle`` (what a benchmark calls at the end of its turn) waits for the keyframe's
    worker and the bundle adjustment without applying anything early: settled after every
    frame, the tracker gives the same records to the bit."""
    tracker = in_background(pipe)
    records, settled_on_a_job = [], 0
    for frame in frames:
        records += feed(tracker, [frame])
        job = tracker.job
        tracker.settle()
        if job is not None:
            assert job.done()
            settled_on_a_job += 1
    tracker.close()
    assert settled_on_a_job > 0
    assert_same_records(backgrounded, records)


def test_a_reset_or_a_lost_frame_drops_the_keyframe_on_its_way(pipe, frames):
    """A reset forgets the keyframe being matched; a frame the flow cannot place (black) cannot
    take the worker's keypoints either, so it is matched in line (lost, with its reason), and
    the frames after it recover."""
    tracker, fed = in_background(pipe), 0
    while tracker.job is None:
        feed(tracker, frames[fed:fed + 1])
        fed += 1
    tracker.reset()
    assert tracker.job is None
    again = feed(tracker, frames[fed:fed + 2])
    assert again[0].model == "init" and by_flow(again[1])
    tracker.close()

    tracker = in_background(pipe)
    records = []
    for frame in frames:
        if tracker.job is not None and not any(r.status is TrackingStatus.LOST for r in records):
            frame = FrameInput(frame.stamp_ns, np.zeros_like(frame.image), frame.camera,
                               frame.depth, frame.depth_unit)
        records += feed(tracker, [frame])
    lost = [i for i, r in enumerate(records) if r.status is TrackingStatus.LOST]
    assert len(lost) == 1 and records[lost[0]].reason
    assert all(r.status is not TrackingStatus.LOST for r in records[lost[0] + 1:])
    tracker.close()


def test_matches_keep_the_second_sets_kept_points_renumbered():
    from lightglue_ros.features import Matches

    m = Matches(np.array([2, -1, 0, 3]), np.array([2, -1, 0, 3]), np.array([.9, 0, .8, .7]),
                np.array([.8, 0, .9, .7]), 4, np.full(4, 4), np.full(4, 4))
    kept = m.keep_second(np.array([True, False, False, True]))
    assert kept.matches0.tolist() == [-1, -1, 0, 1] and kept.scores0.tolist() == [0, 0, .8, .7]
    assert kept.matches1.tolist() == [2, 3] and kept.pairs.tolist() == [[2, 0], [3, 1]]


def test_live_no_frame_waits_for_a_late_worker(pipe, frames, monkeypatch):
    """Live (``wait_for_keyframes`` off, as the node sets it): while the
    worker is late, the frames past the lag are placed by flow instead of waiting; the first
    frame after it is done becomes the keyframe, with the keypoints followed that far."""
    import threading

    from lightglue_ros.tracking import keyframe_job

    release, run = threading.Event(), keyframe_job.KeyframeJob._run

    def held(self, *args):
        release.wait(30)
        return run(self, *args)

    monkeypatch.setattr(keyframe_job.KeyframeJob, "_run", held)
    tracker = in_background(pipe)
    tracker.wait_for_keyframes = False
    fed = iter(frames)
    records = []
    while tracker.job is None:
        records += feed(tracker, [next(fed)])
    started = len(records)
    records += feed(tracker, [next(fed) for _ in range(4)])  # two past the lag
    assert all(by_flow(r) and not r.keyframe for r in records[started:])
    release.set()
    tracker.job.wait()
    (joined,) = feed(tracker, [next(fed)])
    assert joined.keyframe and joined.layers > 0 and "match" not in joined.timings
    assert joined.status is TrackingStatus.OK
    tracker.close()
