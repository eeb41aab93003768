"""The stereo pair's disparity offset, estimated from the map (``mapping.disparity_offset``)."""
import numpy as np

from lightglue_ros.mapping import Observations, adjust
from lightglue_ros.mapping.disparity_offset import offset_step
from lightglue_ros.mapping.local_map import MapKeyframe

FX, BASELINE = 707.0912, 0.5371  # KITTI 06's rectified gray pair
K = np.array([[FX, 0, 601.9], [0, FX, 183.1], [0, 0, 1]])


def _drive(rng: np.random.Generator, offset_px: float, n_frames: int = 8, n_points: int = 400):
    """A car's view: 1 m forward per keyframe, points 5-40 m ahead on both sides; stereo
    disparities measured ``offset_px`` short of the true ones, keypoints with 0.3 px noise."""
    poses = np.repeat(np.eye(4)[None], n_frames, axis=0)
    poses[:, 2, 3] = np.arange(n_frames, dtype=float)
    points = np.c_[rng.uniform(-15, 15, n_points), rng.uniform(-2, 2, n_points),
                   rng.uniform(5 + n_frames, 40 + n_frames, n_points)]
    frame = np.repeat(np.arange(n_frames), n_points)
    point = np.tile(np.arange(n_points), n_frames)
    Xc = points[point] - poses[frame, :3, 3]
    uv = Xc[:, :2] / Xc[:, 2:] * FX + K[:2, 2] + 0.3 * rng.standard_normal((len(frame), 2))
    disparity = FX * BASELINE / Xc[:, 2] - offset_px + 0.3 * rng.standard_normal(len(frame))
    return poses, points, Observations(frame, point, uv, FX * BASELINE / disparity)


def _estimate(poses, points, obs, prior_px: float, rounds: int = 4) -> float:
    """Adjustments alternating with offset steps, as the map runs them keyframe after keyframe."""
    n = len(poses)
    Ks, baselines = np.repeat(K[None], n, axis=0), np.full(n, BASELINE)
    offset, disparity = 0.0, FX * BASELINE / obs.depth
    for _ in range(rounds):
        shifted = Observations(obs.frame, obs.point, obs.uv, FX * BASELINE / (disparity + offset))
        result = adjust(poses, np.arange(n) < 1, points, shifted, Ks, 0.3,
                        0.3 / (FX * BASELINE), 10)
        offset = offset_step(result.poses, result.points, shifted, Ks, baselines,
                             np.ones(len(obs.frame), bool), 0.3, offset, prior_px)
    return offset


def test_an_offset_put_into_the_disparities_is_recovered():
    """The near points' depths from the motion tell the offset from a scale: it comes back
    within a few hundredths of a pixel, and none is found where none was put in."""
    for seed, injected in ((0, 0.15), (1, -0.1), (2, 0.0)):
        poses, points, obs = _drive(np.random.default_rng(seed), injected)
        # sigma of the estimate: 0.3 px over a few thousand disparities, most of them eliminated
        # with their points; 0.05 px is several of it
        assert abs(_estimate(poses, points, obs, prior_px=1.0) - injected) < 0.05, seed


def test_the_prior_holds_the_offset_at_zero_without_evidence():
    """Stereo points seen by one keyframe each say nothing of the offset (each point's depth
    absorbs it), and a monocular window has none: the offset stays at the prior's 0."""
    poses, points, obs = _drive(np.random.default_rng(3), 0.2, n_frames=1)
    assert abs(_estimate(poses[:1], points, obs, prior_px=1.0, rounds=1)) < 1e-6
    n = len(poses)
    assert offset_step(poses, points, obs, np.repeat(K[None], n, axis=0), np.zeros(n),
                       np.ones(len(obs.frame), bool), 0.3, 0.05, 1.0) == 0.05


def test_a_keyframe_depth_with_an_offset():
    """depth = fx b / (disparity + offset) for a stereo keyframe; depth sensors untouched."""
    kf = MapKeyframe(None, np.zeros((3, 2)), np.array([5.0, 40.0, np.nan]), FX * BASELINE)
    d = FX * BASELINE / kf.depth[:2]
    assert np.allclose(kf.depth_with(0.1)[:2], FX * BASELINE / (d + 0.1))
    assert np.isnan(kf.depth_with(0.1)[2])
    assert np.allclose(kf.depth_with(-1e3)[:2], np.nan, equal_nan=True)  # disparity below 0
    rgbd = MapKeyframe(None, np.zeros((1, 2)), np.array([3.0]), 0.0)
    assert rgbd.depth_with(0.1)[0] == 3.0
