"""Trajectories: TUM format, association, ATE/RPE with alignment, relative rotation error, plots."""
from __future__ import annotations


import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import TUM_FR2
from lightglue_ros.errors import LightGlueRosError
from lightglue_ros.evaluation.trajectory import evaluate
from lightglue_ros.types import Trajectory, TrajectoryError, associate, associate_stamps
from lightglue_ros.geometry.se3 import make_transform
from lightglue_ros.synthetic import make_sequence
from lightglue_ros.viz.trajectory import plot_errors, plot_trajectory

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def gt() -> Trajectory:
    seq = make_sequence(num_frames=60, width=64, height=48)    # poses only, nothing rendered
    return Trajectory(seq.stamps, seq.poses)


def _with_poses(traj: Trajectory, poses: np.ndarray) -> Trajectory:
    return Trajectory(traj.stamps, poses)


def test_identical_estimate_has_no_error(gt):
    m = evaluate(gt, gt)
    assert m.matched == len(gt) == 60 and m.scale == 1.0 and m.align == "se3"
    for value in (m.ate_rmse_m, m.ate_mean_m, m.ate_max_m, m.rpe_trans_m, m.rpe_rot_deg,
                  m.rel_rot_err_median_deg):
        assert value < 1e-6
    steps = np.linalg.norm(np.diff(gt.positions, axis=0), axis=1)
    assert m.path_length_m == pytest.approx(steps.sum(), rel=1e-12)
    assert m.ate_errors_m.shape == (60,)
    np.testing.assert_array_equal(m.aligned.stamps, gt.stamps)
    assert set(m.summary()) >= {"ate_rmse_m", "rpe_trans_m", "rel_rot_err_median_deg", "matched"}


def test_rigid_transform_is_removed_by_se3_alignment(gt):
    T = make_transform(Rotation.from_euler("zyx", [40, -15, 70], degrees=True).as_matrix(),
                       [2.0, -1.0, 0.5])
    est = _with_poses(gt, T @ gt.poses)          # the same motion in another world frame
    aligned = evaluate(est, gt, align="se3")
    assert aligned.ate_rmse_m < 1e-9 and aligned.ate_max_m < 1e-9
    np.testing.assert_allclose(aligned.aligned.poses, gt.poses, atol=1e-9)
    raw = evaluate(est, gt, align="none")
    assert raw.ate_rmse_m > 1.0 and raw.scale == 1.0
    # relative motion does not see the world frame at all
    assert raw.rpe_trans_m < 1e-9 and raw.rpe_rot_deg < 1e-6
    assert raw.rel_rot_err_median_deg < 1e-6


def test_scale_is_recovered_by_sim3_only(gt):
    poses = gt.poses.copy()
    p0 = gt.positions[0]
    poses[:, :3, 3] = p0 + 2.0 * (gt.positions - p0)   # twice as large about the first pose
    est = _with_poses(gt, poses)
    sim3 = evaluate(est, gt, align="sim3")
    assert sim3.scale == pytest.approx(0.5, abs=1e-9)
    assert sim3.ate_rmse_m < 1e-9 and sim3.rpe_trans_m < 1e-9
    se3 = evaluate(est, gt, align="se3")
    assert se3.scale == 1.0 and se3.ate_rmse_m > 0.05
    assert se3.rpe_trans_m > 0.01


def test_constant_rotation_error_per_step(gt):
    step_error = Rotation.from_rotvec(np.radians(0.5) * np.array([0.3, -0.5, 0.81]) /
                                      np.linalg.norm([0.3, -0.5, 0.81])).as_matrix()
    R_gt = gt.poses[:, :3, :3]
    poses = gt.poses.copy()
    for i in range(1, len(gt)):    # every relative rotation is the true one times step_error
        poses[i, :3, :3] = poses[i - 1, :3, :3] @ (R_gt[i - 1].T @ R_gt[i]) @ step_error
    m = evaluate(_with_poses(gt, poses), gt)
    assert m.rel_rot_err_median_deg == pytest.approx(0.5, abs=1e-9)
    assert m.rpe_rot_deg == pytest.approx(0.5, abs=1e-6)


def test_association_is_nearest_and_one_to_one(gt):
    ia, ib = associate_stamps([0.0, 0.008, 0.5, 2.0], [0.01, 0.49, 0.6], max_diff=0.02)
    assert ia.tolist() == [1, 2] and ib.tolist() == [0, 1]
    # every second pose, 5 ms late: all associate with their own ground-truth pose
    est = Trajectory(gt.stamps[::2] + 0.005, gt.poses[::2])
    est_idx, gt_idx = associate(est, gt)
    assert est_idx.tolist() == list(range(30)) and gt_idx.tolist() == list(range(0, 60, 2))
    m = evaluate(est, gt)
    assert m.matched == 30 and m.ate_rmse_m < 1e-9
    steps = np.linalg.norm(np.diff(gt.positions[:59], axis=0), axis=1)
    assert m.path_length_m == pytest.approx(steps.sum(), rel=1e-12)   # over the dense gt span


def test_tum_round_trip_keeps_stamps(gt, tmp_path):
    est = Trajectory(gt.stamps + 1.234567e-6, gt.poses)
    path = est.write_tum(tmp_path / "out" / "est.txt", header="estimate\nfrom a test")
    text = path.read_text()
    assert text.startswith("# estimate\n# from a test\n")
    first = next(line for line in text.splitlines() if not line.startswith("#"))
    assert len(first.split()[0].split(".")[1]) >= 6
    back = Trajectory.read_tum(path)
    assert len(back) == len(est)
    np.testing.assert_allclose(back.stamps, est.stamps, rtol=0, atol=1e-6)
    assert np.max(np.abs(back.stamps - est.stamps)) < 1e-6
    np.testing.assert_allclose(back.poses, est.poses, atol=1e-12)


def test_read_tum_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("# t tx ty tz qx qy qz qw\n1.0 0 0 0 0 0 0 1\n2.0 0 0 0 0 0 1\n")
    with pytest.raises(TrajectoryError, match="line 3.*expected 8 values"):
        Trajectory.read_tum(bad)
    bad.write_text("1.0 0 0 nan 0 0 0 1\n")
    with pytest.raises(TrajectoryError, match="NaN"):
        Trajectory.read_tum(bad)
    bad.write_text("1.0 0 0 0 0 0 0 0\n")
    with pytest.raises(TrajectoryError, match="line 1.*zero"):
        Trajectory.read_tum(bad)
    with pytest.raises(TrajectoryError, match="cannot read"):
        Trajectory.read_tum(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="ascending"):
        Trajectory([1.0, 0.5], np.tile(np.eye(4), (2, 1, 1)))


def test_clear_errors_without_overlap(gt):
    later = Trajectory(gt.stamps + 100.0, gt.poses)
    with pytest.raises(TrajectoryError, match="do not overlap in time") as info:
        evaluate(later, gt)
    assert isinstance(info.value, LightGlueRosError)
    sparse = Trajectory(gt.stamps[[0, 30]] + 0.001, gt.poses[[0, 30]])
    with pytest.raises(TrajectoryError, match="only 2 of 2 .* at least 3"):
        evaluate(sparse, gt)
    with pytest.raises(TrajectoryError, match="at least 61"):
        evaluate(gt, gt, rpe_delta=60)
    with pytest.raises(ValueError, match="align"):
        evaluate(gt, gt, align="sim2")


@pytest.mark.skipif(not (TUM_FR2 / "gt_at_frames.txt").is_file(),
                    reason=f"test data {TUM_FR2} is absent (see shared/README.md)")
def test_real_ground_truth_against_itself_interpolated():
    gt = Trajectory.read_tum(TUM_FR2 / "groundtruth.txt")
    at_frames = Trajectory.read_tum(TUM_FR2 / "gt_at_frames.txt")
    m = evaluate(at_frames, gt, align="none")
    assert m.matched == 20
    assert m.ate_max_m < 1e-3 and m.rel_rot_err_median_deg < 0.05
    assert 0.3 < m.path_length_m < 0.7


def test_plots_are_written(gt, tmp_path):
    rng = np.random.default_rng(0)
    poses = gt.poses.copy()
    drift = np.cumsum(rng.normal(0.0, 0.004, (len(gt), 3)), axis=0)
    poses[:, :3, 3] += drift
    T = make_transform(Rotation.from_euler("z", 30, degrees=True).as_matrix(), [0.5, 0.2, 0.0])
    m = evaluate(_with_poses(gt, T @ poses), gt, align="se3")
    assert 0.001 < m.ate_rmse_m < 0.1
    paths = [plot_trajectory(m.aligned, gt, tmp_path / "plots" / "trajectory.png",
                             title="synthetic orbit, drifting estimate"),
             plot_errors(m.aligned, m.ate_errors_m, m.ate_rmse_m, m.align,
                         tmp_path / "plots" / "errors.png"),
             plot_trajectory(m.aligned, gt, "/tmp/trajectory_preview.png",
                             title=f"ATE RMSE {m.ate_rmse_m * 100:.2f} cm (se3)")]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 10_000
