"""The tracking front end on the embedded synthetic sequence and on real TUM frames."""
import cv2
import numpy as np
import pytest

from conftest import SHARED, needs_tum_fr2, pose_error, run_cli_json, textured_image
from lightglue_ros.datasets.frames import synthetic_frames
from lightglue_ros.evaluation.tracking_run import evaluate_records, run_tracker, summarize
from lightglue_ros.types import Trajectory
from lightglue_ros.geometry.se3 import invert_transform, rotation_angle_deg
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.synthetic import make_sequence
from lightglue_ros.tracking import Tracker, TrackingStatus


@pytest.fixture(scope="module")
def pipe():
    return Pipeline()  # the default: xfeat on this CPU


SLOW_FIXTURES = {"aliked"}  # ALIKED tracking whole synthetic sequences: a minute or more each


@pytest.fixture(scope="module")
def aliked():
    """For the bounds that need ALIKED's subpixel keypoints (XFeat's are whole pixels)."""
    return Pipeline(extractor="aliked")


@pytest.fixture(scope="module")
def seq():
    return make_sequence(num_frames=45)


@pytest.fixture(scope="module")
def frames(seq):
    return list(synthetic_frames(seq))


def gt_of(seq):
    return Trajectory(seq.stamps, seq.poses)


def odom_error(record, seq, index):
    """Translation (m) and rotation (deg) error of a record against ground truth, both
    expressed relative to the first frame (the odom origin)."""
    return pose_error(record.T_odom_cam, invert_transform(seq.poses[0]) @ seq.poses[index])


def test_with_depth_the_trajectory_is_metric_and_within_one_percent(aliked, seq, frames):
    records = run_tracker(Tracker(aliked), frames, progress=False)
    assert all(r.status is TrackingStatus.OK for r in records)
    assert all(r.metric and r.model == "pnp" for r in records[1:])
    metrics = evaluate_records(records, gt_of(seq))
    assert metrics.align == "se3" and metrics.matched == len(seq)
    assert metrics.ate_rmse_m <= 0.01 * seq.path_length()
    assert metrics.rel_rot_err_median_deg <= 0.05
    # the odometry is metric without any alignment, too
    assert max(odom_error(r, seq, i)[0] for i, r in enumerate(records)) < 0.03


@pytest.mark.slow
def test_xfeat_with_depth_is_metric_and_within_one_percent(pipe, seq, frames):
    """The CPU default. XFeat's keypoints are whole pixels, so its rotations are about half as
    precise as ALIKED's (median relative error ~0.05 deg here against ~0.02)."""
    assert pipe.config.extractor == "xfeat"
    records = run_tracker(Tracker(pipe), frames, progress=False)
    assert all(r.status is TrackingStatus.OK for r in records)
    assert all(r.metric and r.model == "pnp" for r in records[1:])
    metrics = evaluate_records(records, gt_of(seq))
    assert metrics.ate_rmse_m <= 0.01 * seq.path_length()
    assert metrics.rel_rot_err_median_deg <= 0.1
    assert max(odom_error(r, seq, i)[0] for i, r in enumerate(records)) < 0.03


def test_without_depth_relative_rotation_is_within_a_tenth_of_a_degree(aliked, seq, frames):
    mono = [f.__class__(f.stamp_ns, f.image, f.camera) for f in frames]
    records = run_tracker(Tracker(aliked), mono, progress=False)
    assert not any(r.metric for r in records)
    assert sum(r.status is TrackingStatus.LOST for r in records) == 0
    metrics = evaluate_records(records, gt_of(seq))
    assert metrics.align == "sim3"
    assert metrics.rel_rot_err_median_deg <= 0.1
    assert metrics.ate_rmse_m <= 0.05 * seq.path_length()  # up to scale, after Sim(3)


def test_records_carry_both_stamps_matches_and_timings(pipe, frames):
    tracker = Tracker(pipe)
    first = tracker.process(frames[0].image, frames[0].stamp_ns, frames[0].camera, frames[0].depth)
    assert first.keyframe and first.model == "init" and first.ref_stamp_ns is None
    assert first.index == 0
    second = tracker.process(frames[1].image, frames[1].stamp_ns, frames[1].camera, frames[1].depth)
    assert second.ref_stamp_ns == frames[0].stamp_ns and second.stamp_ns == frames[1].stamp_ns
    assert (second.index, second.ref_index) == (1, 0)
    assert second.ref_points.shape == second.cur_points.shape == (second.num_matches, 2)
    assert second.inliers.sum() == second.num_inliers > 100
    assert 1 <= second.layers <= 9
    assert set(second.timings) == {"extract", "match", "pose"}
    T = second.T_ref_cam
    assert np.allclose(second.T_odom_cam, first.T_odom_cam @ T)
    assert np.all(np.linalg.eigvalsh(second.covariance) >= -1e-12)
    assert np.trace(second.relative_covariance) < 1e-2


def test_identical_frames_give_no_motion(pipe, frames):
    for depth in (frames[0].depth, None):
        tracker = Tracker(pipe)
        tracker.process(frames[0].image, 0.0, frames[0].camera, depth)
        again = tracker.process(frames[0].image, 0.1, frames[0].camera, depth)
        assert again.status is not TrackingStatus.LOST
        assert np.linalg.norm(again.T_odom_cam[:3, 3]) < 1e-3
        assert rotation_angle_deg(again.T_odom_cam[:3, :3]) < 0.01


def test_black_and_unrelated_frames_are_lost_then_tracking_recovers(pipe, seq, frames):
    tracker = Tracker(pipe)
    for i in range(6):
        tracker.process(frames[i].image, frames[i].stamp_ns, frames[i].camera, frames[i].depth)
    black = tracker.process(np.zeros_like(frames[6].image), frames[6].stamp_ns, frames[6].camera)
    assert black.status is TrackingStatus.LOST and "keypoints" in black.reason
    assert np.all(np.diag(black.covariance) >= 1e6)
    tiny = tracker.process(np.zeros((4, 4, 3), np.uint8), frames[6].stamp_ns + 1_000_000,
                           frames[6].camera)
    assert tiny.status is TrackingStatus.LOST and "too small" in tiny.reason
    # the next good frame still matches the old keyframe: no jump in the trajectory
    back = tracker.process(frames[7].image, frames[7].stamp_ns, frames[7].camera, frames[7].depth)
    assert back.status is TrackingStatus.OK and not back.reinitialized
    assert odom_error(back, seq, 7)[0] < 0.01
    # an unrelated view cannot be placed: lost, and tracking restarts from it
    other = cv2.resize(textured_image(240, 320, seed=5), (640, 480))
    lost = tracker.process(other, frames[8].stamp_ns, frames[8].camera)
    assert lost.status is TrackingStatus.LOST and lost.reinitialized
    # back to the scene: the keyframe from before the restart is found again
    again = tracker.process(frames[9].image, frames[9].stamp_ns, frames[9].camera, frames[9].depth)
    assert again.status is TrackingStatus.OK
    assert odom_error(again, seq, 9)[0] < 0.01


def test_intrinsics_that_change_and_depth_with_holes(aliked, seq, frames):
    rng = np.random.default_rng(0)
    tracker = Tracker(aliked)
    for i in range(0, 24, 2):
        f = frames[i]
        image, camera, depth = f.image, f.camera, f.depth.copy()
        depth[rng.random(depth.shape) < 0.3] = np.nan  # holes
        depth[:, :80] = 0  # a band without depth
        if i >= 12:  # the driver switches to half resolution, depth in 16UC1 millimetres
            image = cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA)
            camera = camera.scaled(0.5, 0.5)
            depth = cv2.resize(np.nan_to_num(depth), (320, 240),
                               interpolation=cv2.INTER_NEAREST)
            depth = np.round(depth * 1000).astype(np.uint16)
        record = tracker.process(image, f.stamp_ns, camera, depth)
        assert record.status is not TrackingStatus.LOST, record.reason
        assert record.metric
        trans, rot = odom_error(record, seq, i)
        assert trans < 0.03 and rot < 0.3, (i, trans, rot)


def test_mismatched_depth_is_ignored_with_a_reason(pipe, frames):
    tracker = Tracker(pipe)
    record = tracker.process(frames[0].image, frames[0].stamp_ns, frames[0].camera,
                             np.ones((10, 10), np.float32))
    assert record.status is TrackingStatus.OK and "depth ignored" in record.reason
    assert not record.metric


def test_distorted_camera_is_handled_by_undistorting_keypoints(aliked):
    seq = make_sequence(num_frames=24, distortion=(0.12, -0.25, 0.001, -0.001, 0.1))
    records = run_tracker(Tracker(aliked), synthetic_frames(seq), progress=False)
    metrics = evaluate_records(records, gt_of(seq))
    assert all(r.status is not TrackingStatus.LOST for r in records)
    assert metrics.ate_rmse_m <= 0.01 * seq.path_length()
    assert metrics.rel_rot_err_median_deg <= 0.05


@pytest.mark.slow
def test_pure_rotation_selects_the_homography_model(pipe):
    seq = make_sequence(num_frames=12, motion="rotation")
    records = run_tracker(Tracker(pipe), synthetic_frames(seq, use_depth=False),
                          progress=False)
    assert {r.model for r in records[1:]} == {"homography"}
    for i, r in enumerate(records):
        assert odom_error(r, seq, i)[1] < 0.1
        assert np.linalg.norm(r.T_odom_cam[:3, 3]) < 1e-6  # no translation invented


def test_reset_keeps_odom_continuous_and_can_restart_at_the_origin(pipe, frames):
    tracker = Tracker(pipe)
    for f in frames[:4]:
        last = tracker.process(f.image, f.stamp_ns, f.camera, f.depth)
    assert np.linalg.norm(last.T_odom_cam[:3, 3]) > 0.01  # the camera moved
    tracker.reset()
    record = tracker.process(frames[10].image, frames[10].stamp_ns, frames[10].camera)
    assert record.keyframe and record.model == "init"
    assert np.allclose(record.T_odom_cam, last.T_odom_cam)  # no jump: REP 105 odom
    tracker.reset(to_origin=True)
    record = tracker.process(frames[12].image, frames[12].stamp_ns, frames[12].camera)
    assert np.allclose(record.T_odom_cam, np.eye(4))


def test_summary_figures(pipe, frames):
    records = run_tracker(Tracker(pipe), frames[:8], progress=False)
    figures = summarize(records)
    assert figures["frames"] == 8 and figures["lost_frames"] == 0 and figures["metric"]
    assert 1 <= figures["mean_layers"] <= 9 and figures["mean_latency_ms"] > 0


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "data/tum_fr2_desk/rgb.txt").is_file(),
                    reason=f"{SHARED}/data/tum_fr2_desk is absent (see shared/README.md)")
def test_tum_fr2_desk_relative_rotation_matches_the_official_reference(tmp_path):
    figures = run_cli_json("track", str(SHARED / "data/tum_fr2_desk"), "--preset", "fr2",
                           "--extractor", "aliked", "--out", str(tmp_path))
    assert figures["frames"] == 20 and figures["lost_frames"] == 0
    assert figures["rel_rot_err_median_deg"] <= 0.31  # official LightGlue + OpenCV: 0.31
    assert 1 <= figures["mean_layers"] <= 9
    assert (tmp_path / "trajectory.txt").is_file() and (tmp_path / "frames.csv").is_file()
    assert all(p.endswith(".png") for p in figures["pictures"]) and len(figures["pictures"]) == 3


@pytest.mark.slow
@needs_tum_fr2
def test_tum_fr2_desk_xfeat_beats_the_official_pairwise_reference_by_a_fifth(track_fr2):
    """The CPU default against the official XFeat + LighterGlue pairwise reference on the same
    frames (0.64 deg, shared/README.md): at least 20% better."""
    figures, _ = track_fr2
    assert figures["frames"] == 20 and figures["lost_frames"] == 0
    assert figures["rel_rot_err_median_deg"] <= 0.8 * 0.64
    assert 1 <= figures["mean_layers"] <= 6


def test_frames_compare_as_themselves():
    """The tracker asks whether the previous frame is the keyframe (``in``): frames with
    keypoint sets of different sizes compare by identity, never by their tensors."""
    from lightglue_ros.features import Features
    from lightglue_ros.geometry.camera import CameraModel
    from lightglue_ros.tracking.frames import TrackedFrame

    camera = CameraModel(64, 48, np.array([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]]))

    def frame(n):
        return TrackedFrame(0, camera, Features.from_numpy(
            np.zeros((n, 2)), np.ones(n), np.zeros((n, 8), np.float32), (64, 48)))

    a, b = frame(768), frame(170)
    assert a not in (None, b) and a in (None, a) and a != frame(768)
