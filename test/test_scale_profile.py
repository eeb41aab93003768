"""The scale profile tool (``lightglue_ros_tools.accuracy.scale_profile``): a trajectory whose
steps grow by 20% from the middle of a turn on is reported so, segment by segment, and the turn
is found with its angle."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from lightglue_ros.geometry.se3 import make_transform
from lightglue_ros.types import Trajectory
from lightglue_ros_tools.accuracy.scale_profile import profile

TURN = slice(20, 40)  # steps turning 3 deg each about the camera's y axis (a car's yaw)


def _drive(step_scale: np.ndarray, turn_deg: float = 3.0) -> Trajectory:
    """60 frames driving 1 m per frame along z, each step's length times ``step_scale``,
    turning ``turn_deg`` per step in the turn."""
    yaw = np.zeros(len(step_scale))
    yaw[TURN] = turn_deg
    poses = [np.eye(4)]
    for s, y in zip(step_scale, yaw):
        R = Rotation.from_euler("y", y, degrees=True).as_matrix()
        poses.append(poses[-1] @ make_transform(R, [0.0, 0.0, s]))
    return Trajectory(np.arange(len(poses)) * 0.1, np.array(poses))


def test_a_scale_step_in_a_turn_is_located_and_the_turn_measured() -> None:
    gt = _drive(np.ones(60))
    steps = np.ones(60)
    steps[30:] = 1.2  # from the middle of the turn on, 20% longer
    est = _drive(steps * 3.0)  # and a whole-run scale of 3, which the profile divides out
    result = profile(est, gt, segment=10, turn_deg_per_frame=1.0)
    whole = steps.sum() / 60
    np.testing.assert_allclose(result["local_scale"], np.r_[[1.0] * 3, [1.2] * 3] / whole,
                               rtol=1e-9)
    np.testing.assert_allclose(result["gt_turn_rate_deg_per_frame"],
                               [0, 0, 3, 3, 0, 0], atol=1e-9)
    (turn,) = result["turns"]
    assert turn["frames"] == [20, 40]
    assert result["segment_start_frames"] == [0, 10, 20, 30, 40, 50]
    np.testing.assert_allclose(turn["gt_turn_deg"], 60.0, rtol=1e-9)
    np.testing.assert_allclose(turn["turn_ratio"], 1.0, rtol=1e-9)  # the same rotations
    np.testing.assert_allclose([turn["scale_before"], turn["scale_after"]],
                               np.array([1.0, 1.2]) / whole, rtol=1e-9)


def test_an_underestimated_turn_is_reported_below_one() -> None:
    gt = _drive(np.ones(60))
    est = _drive(np.ones(60), turn_deg=2.97)  # 1% short of the true 3 deg per frame
    (turn,) = profile(est, gt, segment=10, turn_deg_per_frame=1.0)["turns"]
    np.testing.assert_allclose(turn["turn_ratio"], 0.99, rtol=1e-9)
    (first,) = profile(est.subset(np.arange(21, 61)), gt, segment=10,
                       turn_deg_per_frame=1.0)["turns"]  # a run that starts inside the turn
    assert first["frames"] == [21, 41] and first["scale_before"] is None
