"""The NEES diagnosis tool's ground-truth check (``lightglue_ros_tools.accuracy.nees_frames``):
a stretch whose rotation increments repeat to a thousandth of a degree is marked, measured motion
is not; on the real clips, KITTI 06's first twelve poses are such a stretch and KITTI 07 has none."""
from __future__ import annotations

import numpy as np

from conftest import SHARED, needs_shared
from lightglue_ros_tools.accuracy.nees_frames import constant_rate, rotation_increments_deg
from lightglue_ros.geometry.se3 import make_transform
from lightglue_ros.types import Trajectory


def _trajectory(rotvecs_deg: np.ndarray) -> Trajectory:
    from scipy.spatial.transform import Rotation

    poses = [np.eye(4)]
    for r in rotvecs_deg:
        step = make_transform(Rotation.from_rotvec(np.radians(r)).as_matrix(), [0, 0, 1.0])
        poses.append(poses[-1] @ step)
    return Trajectory(np.arange(len(poses)) * 0.1, np.array(poses))


def test_a_constant_rate_stretch_is_marked_and_measured_motion_is_not() -> None:
    rng = np.random.default_rng(0)
    jitter = rng.normal(scale=0.03, size=(30, 3))  # a vehicle's measured vibration, deg/frame
    steps = jitter.copy()
    steps[10:18] = [0.01, -0.04, -0.04]  # eight identical increments: samples 10..18 filled
    gt = _trajectory(steps)
    increments = rotation_increments_deg(gt)
    np.testing.assert_allclose(increments, steps, atol=1e-9)
    marked = constant_rate(increments, 0.002, 5)
    assert np.flatnonzero(marked).tolist() == list(range(10, 19))
    assert not constant_rate(rotation_increments_deg(_trajectory(jitter)), 0.002, 5).any()
    assert not constant_rate(increments, 0.002, 9).any()  # a run shorter than asked for


@needs_shared
def test_kitti06_starts_on_filled_ground_truth_and_kitti07_has_none() -> None:
    from lightglue_ros.datasets import open_dataset

    k06 = open_dataset(SHARED / "data" / "kitti06_stereo_0_50").groundtruth
    k07 = open_dataset(SHARED / "data" / "kitti07_0_159").groundtruth
    assert np.flatnonzero(constant_rate(rotation_increments_deg(k06), 0.002, 5)).tolist() == \
        list(range(12))
    assert not constant_rate(rotation_increments_deg(k07), 0.002, 5).any()
