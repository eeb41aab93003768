"""The synthetic sequence generator: determinism, exact geometry, feature richness, TUM export."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lightglue_ros.synthetic import (EPOCH_NS, TUM_DEPTH_SCALE, make_camera, make_sequence,
                                     pixel_rays, write_tum_folder)

DISTORTION = (-0.25, 0.08, 0.001, -0.0007, -0.01)   # moderate barrel, like a webcam


def _back_project(depth: np.ndarray, K: np.ndarray, step: int = 3):
    """Pixel grid (every ``step``) with depth, and its 3D points in the camera frame."""
    v, u = np.mgrid[0:depth.shape[0]:step, 0:depth.shape[1]:step]
    z = depth[v, u]
    keep = z > 0
    u, v, z = u[keep], v[keep], z[keep].astype(np.float64)
    X = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], -1)
    return u, v, X


def _transform(T: np.ndarray, X: np.ndarray) -> np.ndarray:
    return X @ T[:3, :3].T + T[:3, 3]


def _sample(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` at float pixel positions."""
    return cv2.remap(image.astype(np.float32), u.astype(np.float32)[:, None],
                     v.astype(np.float32)[:, None], cv2.INTER_LINEAR)[:, 0]


def _depth_at(depth: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Depth at float pixel positions, interpolating inverse depth (exact within a plane)."""
    inverse = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-6), 0.0)
    return 1.0 / _sample(inverse, u, v)


def _rotation_deg(R: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0))))


def test_frames_are_deterministic_and_stamped_at_rate():
    a = make_sequence(5, 160, 120, rate_hz=20.0)
    b = make_sequence(5, 160, 120, rate_hz=20.0)
    fa, fb = a.frame(4), b.frame(4)
    assert fa.rgb.shape == (120, 160, 3) and fa.rgb.dtype == np.uint8
    assert fa.depth.shape == (120, 160) and fa.depth.dtype == np.float32
    assert np.array_equal(fa.rgb, fb.rgb) and np.array_equal(fa.depth, fb.depth)
    assert not np.array_equal(make_sequence(5, 160, 120, seed=1).frame(4).rgb, fa.rgb)
    assert a.stamps_ns[0] == EPOCH_NS and a.stamps.dtype == np.float64
    assert np.all(np.diff(a.stamps_ns) == 50_000_000)
    np.testing.assert_allclose(np.diff(a.stamps), 1 / 20.0, atol=1e-6)   # float64 at 1.7e9 s
    assert [f.index for f in a] == list(range(5)) and len(a) == 5
    assert fa.stamp_ns == a.stamps_ns[4] and fa.seconds == a.stamps[4]
    assert np.array_equal(fa.T_world_cam, a.poses[4])
    with pytest.raises(IndexError):
        a.frame(5)


def test_default_trajectory_is_smooth_inside_the_room_and_sees_surfaces_everywhere():
    seq = make_sequence(width=80, height=60, supersample=1, noise_sigma=0)
    R = seq.poses[:, :3, :3]
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-12)
    relative = np.linalg.inv(seq.poses[:-1]) @ seq.poses[1:]
    step_m = np.linalg.norm(relative[:, :3, 3], axis=1)
    step_deg = [_rotation_deg(T[:3, :3]) for T in relative]
    assert 0.01 < step_m.min() and step_m.max() < 0.05
    assert 0.3 < min(step_deg) and max(step_deg) < 2.5
    assert 2.0 < seq.path_length() < 3.5
    depth = np.stack([seq.frame(i).depth for i in range(0, len(seq), 3)])
    assert depth.min() > 0.5 and depth.max() < 10.5     # closed room, never near a surface


def test_depth_and_colour_agree_between_frames():
    seq = make_sequence(20, 320, 240, noise_sigma=0)
    K = seq.camera.K
    a, b = seq.frame(10), seq.frame(14)
    u, v, X = _back_project(a.depth, K)
    Xb = _transform(np.linalg.inv(b.T_world_cam) @ a.T_world_cam, X)
    ub, vb = K[0, 0] * Xb[:, 0] / Xb[:, 2] + K[0, 2], K[1, 1] * Xb[:, 1] / Xb[:, 2] + K[1, 2]
    inside = (ub > 1) & (ub < 318) & (vb > 1) & (vb < 238)
    assert inside.mean() > 0.7
    u, v, Xb, ub, vb = u[inside], v[inside], Xb[inside], ub[inside], vb[inside]
    error = np.abs(_depth_at(b.depth, ub, vb) / Xb[:, 2] - 1)
    visible = error < 1e-4          # elsewhere occluded in b, or next to a depth edge
    assert visible.mean() > 0.9
    colour_a = a.rgb[v[visible], u[visible]].astype(np.float32)
    colour_b = _sample(b.rgb, ub[visible], vb[visible])
    difference = np.abs(colour_a - colour_b).mean(axis=1)
    unrelated = np.abs(colour_a - np.roll(colour_b, 1000, axis=0)).mean(axis=1)
    assert np.median(difference) < 2.0 and np.percentile(difference, 90) < 8.0
    assert np.median(unrelated) > 20.0


@pytest.mark.parametrize("distortion", [None, DISTORTION])
def test_sift_matches_obey_the_true_epipolar_geometry(distortion):
    """Renderer, intrinsics and poses agree, and the texture is rich enough for SIFT."""
    seq = make_sequence(12, distortion=distortion)
    cam = seq.camera
    a, b = seq.frame(10), seq.frame(11)
    sift = cv2.SIFT_create()
    ka, da = sift.detectAndCompute(cv2.cvtColor(a.rgb, cv2.COLOR_RGB2GRAY), None)
    kb, db = sift.detectAndCompute(cv2.cvtColor(b.rgb, cv2.COLOR_RGB2GRAY), None)
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(da, db, k=2)
    matches = [m for m, n in pairs if m.distance < 0.8 * n.distance]
    assert len(matches) > 200
    pa = np.float64([ka[m.queryIdx].pt for m in matches])[:, None]
    pb = np.float64([kb[m.trainIdx].pt for m in matches])[:, None]
    na, nb = (cv2.undistortPoints(p, cam.K, cam.D)[:, 0] for p in (pa, pb))
    truth = np.linalg.inv(b.T_world_cam) @ a.T_world_cam          # camera a -> camera b
    R_true, direction = truth[:3, :3], truth[:3, 3] / np.linalg.norm(truth[:3, 3])
    assert _rotation_deg(R_true) > 0.3

    # Distance (pixels) of each match to its epipolar line under the true relative pose.
    tx, ty, tz = direction
    lines = np.hstack([na, np.ones((len(na), 1))]) @ (np.array(
        [[0, -tz, ty], [tz, 0, -tx], [-ty, tx, 0]]) @ R_true).T
    residual = np.abs(np.sum(np.hstack([nb, np.ones((len(nb), 1))]) * lines, axis=1)) \
        / np.linalg.norm(lines[:, :2], axis=1) * cam.K[0, 0]
    assert np.median(residual) < 0.1 and (residual < 1.0).sum() > 200

    # The essential matrix from the matches alone gives back the true rotation (USAC_ACCURATE
    # refines the model; plain RANSAC on a 2.5 cm baseline scatters by a few tenths of a degree).
    E, mask = cv2.findEssentialMat(na, nb, np.eye(3), cv2.USAC_ACCURATE, 0.9999,
                                   0.5 / cam.K[0, 0])
    _, R, t, _, _ = cv2.recoverPose(E, na, nb, np.eye(3), distanceThresh=1e6, mask=mask)
    assert _rotation_deg(R.T @ R_true) < 0.1
    assert np.degrees(np.arccos(float(direction @ t.ravel()))) < 5.0


def test_pixel_rays_invert_opencv_distortion():
    cam = make_camera(640, 480, DISTORTION)
    assert cam.distortion_model == "plumb_bob" and make_camera(64, 48).distortion_model == "none"
    uv = np.random.default_rng(0).uniform((-0.5, -0.5), (639.5, 479.5), (2000, 2))
    x, y = pixel_rays(cam, uv[:, 0], uv[:, 1])
    rays = np.stack([x, y, np.ones_like(x)], -1)
    back, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), cam.K, cam.D)
    assert np.abs(back[:, 0] - uv).max() < 1e-3


def test_distorted_frame_agrees_with_project_points():
    """Scene points seen in an ideal frame land where cv2.projectPoints puts them when distorted."""
    ideal = make_sequence(3, 320, 240, noise_sigma=0).frame(2)
    seq = make_sequence(3, 320, 240, distortion=DISTORTION, noise_sigma=0)
    distorted, K, D = seq.frame(2), seq.camera.K, seq.camera.D
    u, v, X = _back_project(ideal.depth, K)
    projected, _ = cv2.projectPoints(X, np.zeros(3), np.zeros(3), K, D)
    ud, vd = projected[:, 0, 0], projected[:, 0, 1]
    inside = (ud > 1) & (ud < 318) & (vd > 1) & (vd < 238)
    assert inside.mean() > 0.5
    u, v, X, ud, vd = u[inside], v[inside], X[inside], ud[inside], vd[inside]
    assert np.median(np.abs(_depth_at(distorted.depth, ud, vd) / X[:, 2] - 1)) < 1e-5
    colour = ideal.rgb[v, u].astype(np.float32)
    offsets = (-0.5, -0.25, 0.0, 0.25, 0.5)
    shifts = [(du, dv) for du in offsets for dv in offsets]
    mismatch = [np.abs(_sample(distorted.rgb, ud + du, vd + dv) - colour).mean()
                for du, dv in shifts]
    assert shifts[int(np.argmin(mismatch))] == (0.0, 0.0) and min(mismatch) < 2.5


def test_depth_noise_has_the_stated_sigma_and_its_own_stream():
    """Depth noise a z^2 (the tracker's ``depth_noise`` model): the normalised difference to the
    exact depth has standard deviation 1 (about 19000 pixels: +-2% at 4.5 sigma), no surface
    stays no surface, and the colour image is untouched."""
    a = 0.003
    exact = make_sequence(2, 160, 120).frame(1)
    noisy = make_sequence(2, 160, 120, depth_noise=a).frame(1)
    surface = exact.depth > 0
    assert np.array_equal(noisy.depth > 0, surface) and np.array_equal(noisy.rgb, exact.rgb)
    z = exact.depth[surface].astype(np.float64)
    normalised = (noisy.depth[surface] - z) / (a * z ** 2)
    assert abs(np.std(normalised) - 1.0) < 4.5 / np.sqrt(2 * normalised.size)
    assert abs(np.mean(normalised)) < 4.5 / np.sqrt(normalised.size)
    with pytest.raises(ValueError):
        make_sequence(2, 160, 120, depth_noise=-1.0)


def test_planar_and_rotation_motions():
    planar = make_sequence(60, 80, 60, motion="planar", supersample=1, noise_sigma=0)
    for index in (0, 30, 59):
        frame = planar.frame(index)
        _, _, X = _back_project(frame.depth, planar.camera.K, step=1)
        assert len(X) == 80 * 60
        np.testing.assert_allclose(_transform(frame.T_world_cam, X)[:, 0], 4.0, atol=1e-4)
    rotation = make_sequence(30, 80, 60, motion="rotation")
    assert np.ptp(rotation.poses[:, :3, 3], axis=0).max() == 0.0 and rotation.path_length() == 0.0
    assert _rotation_deg(rotation.poses[0, :3, :3].T @ rotation.poses[-1, :3, :3]) > 10.0
    with pytest.raises(ValueError):
        make_sequence(motion="teleport")


def test_write_tum_folder(tmp_path):
    seq = make_sequence(4, 160, 120, distortion=DISTORTION)
    out = write_tum_folder(seq, tmp_path / "tum", progress=False)
    for name in ("rgb.txt", "depth.txt"):
        rows = [r.split() for r in (out / name).read_text().splitlines() if not r.startswith("#")]
        assert [float(r[0]) for r in rows] == pytest.approx(seq.stamps.tolist(), abs=1e-6)
        assert all((out / r[1]).is_file() for r in rows)
    frame = seq.frame(2)
    name = f"{frame.seconds:.6f}.png"
    rgb = cv2.cvtColor(cv2.imread(str(out / "rgb" / name)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(rgb, frame.rgb)
    depth = cv2.imread(str(out / "depth" / name), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16
    assert np.abs(depth / TUM_DEPTH_SCALE - frame.depth).max() <= 0.5 / TUM_DEPTH_SCALE + 1e-6
    gt = np.loadtxt(out / "groundtruth.txt")
    np.testing.assert_allclose(gt[:, 0], seq.stamps, atol=1e-6)
    np.testing.assert_allclose(gt[:, 1:4], seq.poses[:, :3, 3], atol=1e-8)
    np.testing.assert_allclose(np.linalg.norm(gt[:, 4:], axis=1), 1.0, atol=1e-8)
    np.testing.assert_allclose(Rotation.from_quat(gt[:, 4:]).as_matrix(), seq.poses[:, :3, :3],
                               atol=1e-8)
    yaml = (out / "camera.yaml").read_text()
    assert "distortion_model: plumb_bob" in yaml and f"{seq.camera.K[0, 0]:.10g}" in yaml
