"""~/odometry as the backends that read it see it (``lightglue_ros.ros.odometry``, no ROS).

rtabmap's reset rule and robot_localization's differential mode (``backend_rules``, from their
sources) are asserted on the odometry of real tracked frames with a black frame and a reset in
the middle; the twist itself against ground truth on the synthetic RGB-D sequence.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from backend_rules import (RTABMAP_BAD_VARIANCE, differential_twists, no_differential_jump,
                           rtabmap_resets)
from conftest import TUM_FR2, needs_tum_fr2
from lightglue_ros.datasets import open_dataset
from lightglue_ros.datasets.frames import dataset_frames, synthetic_frames
from lightglue_ros.geometry.se3 import invert_transform, make_transform
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.ros.odometry import (UNKNOWN_TWIST_VARIANCE, OdometryEstimator, se3_log,
                                        twist_of_motion)


def _triples(messages: list) -> list:
    return [(m.T, m.pose_covariance, m.twist_covariance) for m in messages]
from lightglue_ros.synthetic import make_sequence
from lightglue_ros.tracking import FrameRecord, Tracker, TrackingStatus
from lightglue_ros.types import FrameInput, to_ns


# --- unit behaviour -----------------------------------------------------------------------------
def _record(stamp: float, T_odom: np.ndarray, status=TrackingStatus.OK,
            ref_stamp: float | None = None, **kw) -> FrameRecord:
    return FrameRecord(to_ns(stamp), status, T_odom, np.eye(6) * 1e-4,
                       ref_stamp_ns=None if ref_stamp is None else to_ns(ref_stamp), **kw)


def test_se3_log_is_the_constant_body_velocity():
    xi = np.array([0.3, -0.1, 1.2, 0.05, -0.2, 0.1])
    # integrate the body twist in small steps: the log of the result is the twist back
    T, steps = np.eye(4), 2000
    step = make_transform(cv2.Rodrigues(xi[3:] / steps)[0], xi[:3] / steps)
    for _ in range(steps):
        T = T @ step
    assert np.allclose(se3_log(T), xi, atol=1e-4)


def test_twist_covariance_is_the_motion_covariance_over_dt_squared():
    T = make_transform(np.eye(3), [0.1, 0.0, 0.0])
    cov = np.diag([1e-4, 2e-4, 3e-4, 1e-6, 2e-6, 3e-6])
    twist, twist_cov = twist_of_motion(T, cov, 0.1)
    assert np.allclose(twist[:3], [1.0, 0, 0]) and np.allclose(twist[3:], 0)
    # no rotation: the log is the identity map to first order, apart from the rotation's
    # lever arm on the translation (rho = t - t x dr / 2)
    assert np.allclose(np.diag(twist_cov)[[0, 3, 4, 5]], np.diag(cov)[[0, 3, 4, 5]] / 0.01,
                       rtol=1e-3)


def test_lost_and_unlinked_frames_have_the_unknown_twist_and_monocular_speed_is_unknown():
    est = OdometryEstimator()
    T1 = make_transform(np.eye(3), [0.0, 0.0, 0.1])
    first = est.update(_record(0.0, np.eye(4), model="init", keyframe=True))
    assert not first.twist_estimated
    second = est.update(_record(0.1, T1, ref_stamp=0.0, T_ref_cam=T1,
                                relative_covariance=np.eye(6) * 1e-4, metric=True))
    assert second.twist_estimated and np.allclose(second.twist[:3], [0, 0, 1.0])
    lost = est.update(FrameRecord(0.2, TrackingStatus.LOST, T1))
    assert not lost.twist_estimated and np.allclose(lost.T, T1)  # the pose is held
    assert lost.pose_covariance[0, 0] >= 1e3  # no weight in an absolute-mode EKF
    assert np.allclose(lost.twist_covariance, np.eye(6) * UNKNOWN_TWIST_VARIANCE)
    # after the lost frame: the motion since the last frame with a pose (0.1 -> 0.3)
    T3 = make_transform(np.eye(3), [0.0, 0.0, 0.3])
    mono = est.update(_record(0.3, T3, ref_stamp=0.1, T_ref_cam=invert_transform(T1) @ T3,
                              relative_covariance=np.eye(6) * 1e-4, metric=False))
    assert mono.twist_estimated and np.allclose(mono.twist[:3], [0, 0, 1.0])
    # up to scale: the linear velocity is there, its variance says it is not measured
    assert np.allclose(np.diag(mono.twist_covariance)[:3], UNKNOWN_TWIST_VARIANCE)
    assert np.all(np.diag(mono.twist_covariance)[3:] < 1e-1)
    restart = est.update(_record(0.4, T3, reinitialized=True, keyframe=True))
    assert not restart.twist_estimated


def test_every_twist_variance_stays_below_rtabmaps_reset_threshold():
    est = OdometryEstimator()
    est.update(_record(0.0, np.eye(4)))
    T1 = make_transform(np.eye(3), [0.0, 0.0, 5.0])
    out = est.update(_record(0.1, T1, ref_stamp=0.0, T_ref_cam=T1, metric=True,
                             relative_covariance=np.eye(6) * 1e6))  # e.g. a monocular edge
    assert np.linalg.eigvalsh(out.twist_covariance).max() <= UNKNOWN_TWIST_VARIANCE * (1 + 1e-9)
    assert UNKNOWN_TWIST_VARIANCE < RTABMAP_BAD_VARIANCE


# --- real frames: TUM fr2/desk, monocular, with a black frame and a reset -----------------------
SLOW_FIXTURES = {"fr2_odometry"}  # the 20 TUM fr2 frames tracked: about 15 s


@pytest.fixture(scope="module")
def fr2_odometry():
    """Records and odometry of the 20 fr2/desk frames at the defaults, fed one at a time, with
    a black frame after the 7th and a tracker reset after the 14th."""
    ds = open_dataset(str(TUM_FR2), preset="fr2")
    tracker, est = Tracker(Pipeline()), OdometryEstimator()
    records, stamps = [], []
    for i, frame in enumerate(dataset_frames(ds, use_depth=False)):
        if i == 7:
            black = FrameInput(frame.stamp_ns - 50_000_000, np.zeros_like(frame.image),
                               frame.camera)
            records.append(tracker.process(black.image, black.stamp_ns, black.camera))
        if i == 14:
            tracker.reset()
        records.append(tracker.process(frame.image, frame.stamp_ns, frame.camera))
    messages = [est.update(r) for r in records]
    return records, messages


@needs_tum_fr2
def test_real_frames_never_signal_an_rtabmap_reset(fr2_odometry):
    records, messages = fr2_odometry
    assert records[7].status is TrackingStatus.LOST  # the black frame
    assert rtabmap_resets(_triples(messages)) == []


@needs_tum_fr2
def test_real_frames_have_an_estimated_twist_on_most_tracked_frames(fr2_odometry):
    records, messages = fr2_odometry
    tracked = [m for r, m in zip(records, messages) if r.status is not TrackingStatus.LOST]
    share = sum(m.twist_estimated for m in tracked) / len(tracked)
    assert share >= 0.8, f"{share:.2f} of the tracked frames have an estimated twist"


@needs_tum_fr2
def test_robot_localization_differential_mode_sees_no_jump(fr2_odometry):
    """Across the lost frame and the reset, differential mode fuses no jump."""
    records, messages = fr2_odometry
    twists = differential_twists(_triples(messages), [r.seconds for r in records])
    assert no_differential_jump(twists) is None


# --- the twist against ground truth (synthetic RGB-D, metric) ------------------------------------
def test_metric_twist_follows_the_true_velocity():
    """Each twist is the motion since the frame before over the interval: its error times dt is
    a per-frame pose error (XFeat's whole-pixel keypoints: under 1.5 cm, 0.3 deg at 30 Hz), and
    errors do not accumulate, so the mean velocity over the run is the true one."""
    seq = make_sequence(num_frames=10)
    tracker, est = Tracker(Pipeline()), OdometryEstimator()
    twists, truths = [], []
    for i, frame in enumerate(synthetic_frames(seq)):
        out = est.update(tracker.process(frame.image, frame.stamp_ns, frame.camera, frame.depth,
                                         frame.depth_unit))
        if i == 0:
            assert not out.twist_estimated
            continue
        dt = seq.stamps[i] - seq.stamps[i - 1]
        truth = se3_log(invert_transform(seq.poses[i - 1]) @ seq.poses[i]) / dt
        assert out.twist_estimated
        assert np.linalg.norm(out.twist[:3] - truth[:3]) * dt < 0.015, (i, out.twist, truth)
        assert np.degrees(np.linalg.norm(out.twist[3:] - truth[3:])) * dt < 0.3, (i, out.twist)
        twists.append(out.twist)
        truths.append(truth)
    mean, true_mean = np.mean(twists, axis=0), np.mean(truths, axis=0)
    assert np.linalg.norm(mean[:3] - true_mean[:3]) < 0.05 * np.linalg.norm(true_mean[:3])


def test_with_a_base_frame_the_twist_is_the_bases():
    """A base driving forward at 1 m/s, its camera looking forward (optical z = base x): the
    records say the camera moved along its z; the odometry says the base moved along its x."""
    B = np.eye(4)  # T_base_cam: optical axes in base axes, 0.2 m ahead and 0.5 m up
    B[:3, :3] = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]
    B[:3, 3] = [0.2, 0.0, 0.5]
    step = make_transform(np.eye(3), [0.0, 0.0, 0.1])  # the camera, 0.1 m along z in 0.1 s
    est = OdometryEstimator()
    est.update(_record(0.0, np.eye(4)), B)
    out = est.update(_record(0.1, step, ref_stamp=0.0, T_ref_cam=step, metric=True,
                             relative_covariance=np.diag([1e-4, 1e-4, 4e-4, 1e-6, 1e-6, 1e-6])),
                     B)
    assert np.allclose(out.twist, [1.0, 0, 0, 0, 0, 0], atol=1e-9)
    assert np.allclose(out.T[:3, 3], [0.1, 0, 0])
    # the camera's z variance is the base's x variance (over dt^2)
    assert np.isclose(out.twist_covariance[0, 0], 4e-4 / 0.01, rtol=1e-3)
