"""The node as a SLAM backend meets it: at its defaults, real frames one at a time, with a black
frame and a ``~/reset`` in the middle (real rclpy, across processes; see ``ros_harness``).

60 frames of KITTI 07 (1226x370 grey, monocular) at 10 Hz; a black frame after the 21st and a
``~/reset`` after the 41st. What a backend must get: no odometry message that rtabmap takes for a
reset, nor a jump that robot_localization's differential mode would fuse (``backend_rules``), an
estimated twist on at least 80% of the tracked frames, a pose covariance that recovers after the
lost frame, odom continuous across the reset, a KeyframeEdge and TrackedMatches per tracked frame
with track ids that persist, and no '@' in any frame id.
"""
from __future__ import annotations

import numpy as np
import pytest

from backend_rules import differential_twists, no_differential_jump, rtabmap_resets
from conftest import SHARED
from ros_harness import frame_stamp, ros_session, stamp_key, wait_until

pytest.importorskip("rclpy", reason="rclpy (the ROS 2 wheels) is not installed")
msgs = pytest.importorskip("lightglue_ros_msgs.msg", reason="lightglue_ros_msgs is not built: "
                           "`make venv` builds it into the venv")

_ = ros_session  # the module-scoped fixture (rclpy context, probe, node processes)

KITTI = SHARED / "data" / "kitti07_0_159"
FRAMES, BLACK_AFTER, RESET_AFTER = 60, 21, 41
UNKNOWN = 1e3  # the variance of a twist component that is not measured (ros.odometry)


def _matrix(pose) -> np.ndarray:
    from lightglue_ros.geometry.se3 import quaternion_to_rotation

    q, p = pose.orientation, pose.position
    T = np.eye(4)
    T[:3, :3] = quaternion_to_rotation([q.x, q.y, q.z, q.w])
    T[:3, 3] = [p.x, p.y, p.z]
    return T


def _cov(values) -> np.ndarray:
    return np.asarray(values, np.float64).reshape(6, 6)


@pytest.fixture(scope="module")
def run(ros_session):
    if not (KITTI / "calib.txt").is_file():
        pytest.skip(f"test data {KITTI} is absent (../shared sits beside the clone in CI)")
    from types import SimpleNamespace

    from lightglue_ros.datasets import open_dataset
    from lightglue_ros.images import load_image

    ds = open_dataset(str(KITTI))
    node = ros_session.start_node("kitti", {"stale_after_s": 60.0, "diagnostics_period_s": 0.5},
                                  camera=ds.camera)
    typed = {"edges": node.subscribe(msgs.KeyframeEdge, "~/edges"),
             "tracks": node.subscribe(msgs.TrackedMatches, "~/tracks")}
    for collector in typed.values():
        wait_until(lambda c=collector: c.subscription.get_publisher_count() > 0, 30,
                   collector.topic, node.alive)
    events = {}
    for i, frame in enumerate(ds.frames[:FRAMES]):
        image = load_image(frame.image_path)
        stamp = node.send_frame(SimpleNamespace(rgb=image), ds.camera, encoding="mono8",
                                stamp=frame_stamp(2 * i, rate_hz=20))
        node.odometry.wait_stamp(stamp, alive=node.alive)
        if i + 1 == BLACK_AFTER:
            events["black"] = node.send_frame(SimpleNamespace(rgb=np.zeros_like(image)),
                                              ds.camera, encoding="mono8",
                                              stamp=frame_stamp(2 * i + 1, rate_hz=20))
            node.odometry.wait_stamp(events["black"], alive=node.alive)
        if i + 1 == RESET_AFTER:
            assert node.reset().success
            events["reset_before"] = stamp
    for collector in typed.values():  # the last frame's typed messages come after its odometry
        collector.wait_stamp(stamp, alive=node.alive)
    node.stop()
    odometry = node.odometry.messages
    stamps = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in odometry]
    keys = [stamp_key(m.header.stamp) for m in odometry]
    return SimpleNamespace(node=node, odometry=odometry, stamps=stamps, keys=keys,
                           edges=typed["edges"].messages, tracks=typed["tracks"].messages,
                           black=keys.index(stamp_key(events["black"])),
                           reset=keys.index(stamp_key(events["reset_before"])) + 1,
                           triples=[(_matrix(m.pose.pose), _cov(m.pose.covariance),
                                     _cov(m.twist.covariance)) for m in odometry])


def _lost(pose_cov: np.ndarray) -> bool:
    return bool(np.allclose(pose_cov, np.eye(6) * 1e6))


def test_every_frame_has_odometry_and_the_black_frame_is_lost(run):
    assert len(run.odometry) == FRAMES + 1 and run.keys == sorted(run.keys)
    assert _lost(run.triples[run.black][1])
    assert sum(_lost(c) for _, c, _ in run.triples) <= 3, "more than the black frame lost"


def test_no_message_is_an_rtabmap_reset(run):
    assert rtabmap_resets(run.triples) == []


def test_robot_localization_differential_mode_fuses_no_jump(run):
    assert no_differential_jump(differential_twists(run.triples, run.stamps)) is None


def test_the_twist_is_estimated_on_most_tracked_frames(run):
    """Estimated: the angular velocity measured (monocular: the linear one is up to scale, its
    variance says so)."""
    tracked = [tw for _, pc, tw in run.triples if not _lost(pc)]
    estimated = [tw for tw in tracked if np.diag(tw)[3:].max() < UNKNOWN]
    assert len(estimated) >= 0.8 * len(tracked), f"{len(estimated)} of {len(tracked)}"
    assert all(np.diag(tw).max() <= UNKNOWN * (1 + 1e-9) for _, _, tw in run.triples)
    moving = [m.twist.twist.angular for m, (_, pc, tw) in zip(run.odometry, run.triples)
              if not _lost(pc) and np.diag(tw)[3:].max() < UNKNOWN]
    assert np.median([np.linalg.norm([a.x, a.y, a.z]) for a in moving]) > 0  # not all zero


def test_the_pose_covariance_recovers_after_the_lost_frame(run):
    """The rotation's variance (measured in every mode) a few frames after the lost frame is
    of the order it had before it, not the lost frame's 1e6 carried on."""
    def rotation_variance(k: int) -> float:
        return float(np.diag(run.triples[k][1])[3:].max())

    before = rotation_variance(run.black - 1)
    after = max(rotation_variance(k) for k in range(run.black + 3, run.black + 6))
    assert after < 1.0 and after < 100 * max(before, 1e-6), (before, after)


def test_odom_is_continuous_across_the_reset(run):
    T_before, T_after = run.triples[run.reset - 1][0], run.triples[run.reset][0]
    assert np.allclose(T_after, T_before, atol=1e-9), "odom moved at ~/reset"
    assert not np.allclose(T_after, np.eye(4), atol=1e-3)


def test_typed_edges_name_both_frames(run):
    sent = set(run.keys)
    assert len(run.edges) >= 0.8 * FRAMES
    models = {msgs.KeyframeEdge.MODEL_PNP, msgs.KeyframeEdge.MODEL_ESSENTIAL,
              msgs.KeyframeEdge.MODEL_HOMOGRAPHY}
    for edge in run.edges:
        key, ref = stamp_key(edge.header.stamp), stamp_key(edge.reference_stamp)
        assert key in sent and ref in sent and ref < key
        assert edge.reference_index < edge.frame_index
        assert edge.model in models and not edge.metric
        assert edge.num_matches >= edge.num_inliers > 0 and edge.layers > 0
        eig = np.linalg.eigvalsh(_cov(edge.pose.covariance))
        assert eig.min() > 0, eig
    assert any(e.became_keyframe for e in run.edges)
    # no edge across the reset; those from the frame after it say it began anew
    reset_key = run.keys[run.reset]
    assert all(stamp_key(e.reference_stamp) >= reset_key for e in run.edges
               if stamp_key(e.header.stamp) > reset_key)
    assert all(e.reinitialized == (stamp_key(e.reference_stamp) in (run.keys[0], reset_key))
               for e in run.edges if not _lost(run.triples[run.keys.index(
                   stamp_key(e.reference_stamp))][1]))


def test_tracked_matches_carry_persistent_track_ids(run):
    by_stamp = {stamp_key(t.header.stamp): t for t in run.tracks}
    assert set(by_stamp) == {stamp_key(e.header.stamp) for e in run.edges}
    for edge in run.edges:
        t = by_stamp[stamp_key(edge.header.stamp)]
        n = len(t.track_ids)
        assert n == edge.num_matches == len(t.current_x) == len(t.scores) == len(t.inliers)
        assert sum(t.inliers) == edge.num_inliers
        ids = [i for i in t.track_ids if i >= 0]
        assert len(ids) == len(set(ids)), "one id twice in a frame"
    # the same physical point keeps its id: ids seen in 5 consecutive frames' matches
    seen = [set(i for i in t.track_ids if i >= 0) for t in run.tracks]
    lasting = [set.intersection(*seen[k:k + 5]) for k in range(len(seen) - 4)]
    assert np.median([len(s) for s in lasting]) > 20, [len(s) for s in lasting]


def test_no_frame_id_contains_an_at_sign(run):
    node = run.node
    ids = {m.header.frame_id for m in run.odometry} | {m.child_frame_id for m in run.odometry}
    for collected in (node.relative_pose, node.matches):
        ids |= {m.header.frame_id for m in collected.messages}
    ids |= {m.header.frame_id for m in run.edges + run.tracks}
    assert ids == {"camera_optical", "camera_optical_odom"}, ids
