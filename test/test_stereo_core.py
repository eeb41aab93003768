"""Metric tracking from a rectified stereo pair: the depth of a keyframe from its right image."""
from dataclasses import replace

import numpy as np
import pytest

from conftest import SHARED
from lightglue_ros.config import Config
from lightglue_ros.datasets import open_dataset
from lightglue_ros.datasets.frames import dataset_frames
from lightglue_ros.evaluation.tracking_run import evaluate_records, run_tracker
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.images import load_image
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.tracking import Tracker, TrackingStatus
from lightglue_ros.tracking.stereo import stereo_points

KITTI06 = SHARED / "data" / "kitti06_stereo_0_50"
CAMERA = CameraModel(640, 480, np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]))


def _pair(rng: np.random.Generator, n: int = 200, baseline: float = 0.12):
    X = np.c_[rng.uniform(-2, 2, (n, 2)), rng.uniform(1.5, 12, n)]
    left = CAMERA.project(X)
    right = CAMERA.project(X - [baseline, 0, 0])  # the right camera sits at +x
    return X, left, right


def test_stereo_points_recover_depth_on_a_rectified_pair():
    X, left, right = _pair(np.random.default_rng(0))
    order = np.random.default_rng(1).permutation(len(right))  # right keypoints in any order
    right = right[order]
    pairs = np.c_[order, np.arange(len(order))]
    pairs[:5, 1] = np.roll(pairs[:5, 1], 1)  # five wrong matches: other rows, other depths
    result = stereo_points(left, right, pairs, CAMERA, 0.12, 1.0, 0.1, 100.0)
    assert not result.reason and result.matched == len(pairs)
    good = np.isfinite(result.points[:, 0])
    assert good.sum() >= len(X) - 5
    assert np.allclose(result.points[good], X[good], rtol=1e-9, atol=1e-9)


def test_a_swapped_pair_is_reported_not_turned_into_a_wrong_scale():
    X, left, right = _pair(np.random.default_rng(2))
    pairs = np.c_[np.arange(len(X)), np.arange(len(X))]
    swapped = stereo_points(right, left, pairs, CAMERA, 0.12, 1.0, 0.1, 100.0)
    assert "swapped" in swapped.reason and not np.isfinite(swapped.points).any()
    negative = stereo_points(left, right, pairs, CAMERA, -0.12, 1.0, 0.1, 100.0)
    assert "baseline" in negative.reason and not np.isfinite(negative.points).any()


def _kitti06_stereo_frames():
    ds = open_dataset(KITTI06)
    rows = [line.split() for line in (KITTI06 / "calib.txt").read_text().splitlines()]
    P1 = np.array([float(v) for v in next(r for r in rows if r[0] == "P1:")[1:]]).reshape(3, 4)
    rights = sorted((KITTI06 / "image_1").glob("*.png"))
    frames = [replace(f, right=load_image(r), baseline_m=-P1[0, 3] / P1[0, 0])
              for f, r in zip(dataset_frames(ds, use_depth=False), rights)]
    return ds, frames


@pytest.mark.slow
@pytest.mark.skipif(not (KITTI06 / "image_1").is_dir(),
                    reason=f"{KITTI06} is absent (../shared sits beside the clone in CI)")
def test_kitti06_stereo_is_metric_without_alignment():
    """51 real stereo pairs, 60 m: metric from the first frame (SE(3) alignment, no scale, the
    scale within 1% of the truth), no frame lost, and the end of the raw odometry near the ground
    truth's."""
    ds, frames = _kitti06_stereo_frames()
    records = run_tracker(Tracker(Pipeline()), frames, progress=False)
    assert all(r.status is not TrackingStatus.LOST for r in records)
    assert all(r.metric for r in records)
    metrics = evaluate_records(records, ds.groundtruth)
    assert metrics.align == "se3"
    assert metrics.ate_rmse_m <= 0.002 * metrics.path_length_m  # ORB-SLAM3 stereo: 0.08%
    assert metrics.rel_rot_err_median_deg <= 0.1
    # the scale from the pair: +0.50% here (ORB-SLAM3 +0.29%); a wrong baseline or focal length
    # in the depth would be several per cent off
    assert metrics.scale_error_percent is not None and abs(metrics.scale_error_percent) < 1.0
    gt = ds.groundtruth.poses
    end = np.linalg.inv(gt[0]) @ gt[-1]
    assert np.linalg.norm(records[-1].T_odom_cam[:3, 3] - end[:3, 3]) < 0.01 * \
        metrics.path_length_m


def _offset_estimates(frames) -> list[float]:
    tracker = Tracker(Pipeline(), Config(stereo_offset_prior_px=2.0))
    return [r.disparity_offset_px for r in run_tracker(tracker, frames, progress=False)]


@pytest.mark.slow
@pytest.mark.skipif(not (KITTI06 / "image_1").is_dir(),
                    reason=f"{KITTI06} is absent (../shared sits beside the clone in CI)")
def test_the_map_finds_a_disparity_offset_put_into_real_pairs():
    """KITTI 06's first pairs, then the same with each right image moved one pixel right
    (every disparity one pixel short): the map's offset estimate follows that pixel."""
    _, frames = _kitti06_stereo_frames()
    frames = frames[:16]
    shifted = []
    for f in frames:
        right = np.zeros_like(f.right)
        right[:, 1:] = f.right[:, :-1]
        shifted.append(replace(f, right=right))
    plain, moved = _offset_estimates(frames), _offset_estimates(shifted)
    assert plain[:8] == moved[:8] == [0.0] * 8  # nothing estimated before the window is full
    # one Gauss-Newton step per keyframe: the estimate moves towards the pixel put in, keyframe
    # after keyframe (0.3 px at the first full window, 1.0-1.3 px eight keyframes later here)
    gained = np.subtract(moved, plain)[8:]
    assert np.all(gained > 0) and 0.5 < gained[-1] < 2.0, (plain, moved)


@pytest.mark.slow
@pytest.mark.skipif(not (KITTI06 / "image_1").is_dir(),
                    reason=f"{KITTI06} is absent (../shared sits beside the clone in CI)")
def test_a_keyframe_is_published_with_its_adjusted_pose_when_asked():
    """publish_adjusted_keyframes: a keyframe's record has the pose its own window adjustment
    gave it; by default the pose from before that adjustment, which then moves it."""
    _, frames = _kitti06_stereo_frames()
    for adjusted in (True, False):
        tracker = Tracker(Pipeline(), Config(publish_adjusted_keyframes=adjusted))
        moved = []
        for frame in frames[:6]:
            record = tracker.track(tracker.extract(frame))
            assert record.keyframe  # every stereo frame here becomes one
            if record.index >= 2:  # the first keyframes: nothing or little to adjust
                tracker.map.collect()  # the adjustment it started, if still pending
                T_after = tracker.map.keyframes[-1].frame.T_odom_cam
                moved.append(np.abs(T_after[:3, 3] - record.T_odom_cam[:3, 3]).max())
        if adjusted:
            assert max(moved) == 0.0
        else:
            assert min(moved) > 0.0
