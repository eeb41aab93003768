"""What a SLAM backend receives: the typed messages (lightglue_ros_msgs), the covariance in
GTSAM's convention, and GTSAM building a pose graph from the published edges of a real run."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from lightglue_ros.datasets.frames import synthetic_frames
from lightglue_ros.geometry.covariance import perturb_pose
from lightglue_ros.geometry.se3 import make_transform
from lightglue_ros.messages.covariance import to_gtsam
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.synthetic import make_sequence
from lightglue_ros.tracking import FrameRecord, Tracker, TrackingStatus

gtsam = pytest.importorskip("gtsam", reason="gtsam (requirements.txt) is not installed")
needs_msgs = pytest.mark.skipif(
    importlib.util.find_spec("lightglue_ros_msgs") is None,
    reason="lightglue_ros_msgs is not built: `make venv` builds it into the venv")


def _pose3(T: np.ndarray):
    return gtsam.Pose3(gtsam.Rot3(T[:3, :3]), gtsam.Point3(*T[:3, 3]))


def _random_pose(rng) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return make_transform(Rotation.from_rotvec(rng.normal(0, 0.5, 3)).as_matrix(),
                          rng.normal(0, 1, 3))


def _random_covariance(rng) -> np.ndarray:
    A = rng.normal(size=(6, 6)) * np.array([1e-2] * 3 + [1e-3] * 3)[:, None]
    return A @ A.T + np.eye(6) * 1e-8


def test_to_gtsam_is_the_covariance_of_gtsams_body_frame_perturbation():
    """Sample perturbations in the published convention (t + dt, exp(dr) R), read them the way
    GTSAM does (Pose3.Logmap(T^-1 T'): rotation first, body frame): their covariance is what
    to_gtsam says, and not the published matrix itself."""
    rng = np.random.default_rng(0)
    T, cov = _random_pose(rng), _random_covariance(rng)
    xis = []
    for delta in rng.multivariate_normal(np.zeros(6), cov, 20000):
        R, t = perturb_pose(T[:3, :3], T[:3, 3], delta)
        xis.append(gtsam.Pose3.Logmap(_pose3(T).between(_pose3(make_transform(R, t)))))
    empirical = np.cov(np.array(xis).T)
    expected = to_gtsam(T, cov)
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    assert np.abs(empirical - expected).max() / scale.max() < 0.05
    assert np.abs(empirical - cov).max() / scale.max() > 0.5  # the conventions differ


# --- the typed messages --------------------------------------------------------------------------
# stamps that float seconds cannot hold exactly (a float64 step is 238 ns at 1.7e9 s)
STAMP_NS, REF_STAMP_NS = 1_700_000_002_000_000_001, 1_700_000_001_999_999_999


def _record() -> FrameRecord:
    T = make_transform(np.eye(3), [0.1, 0.0, 0.5])
    pts = np.array([[10.0, 20.0], [30.5, 40.25], [50.0, 60.0]], np.float32)
    return FrameRecord(STAMP_NS, TrackingStatus.OK, T, np.eye(6) * 1e-3,
                       ref_stamp_ns=REF_STAMP_NS, index=41, ref_index=40,
                       ref_is_keyframe=True, T_ref_cam=T,
                       relative_covariance=np.diag([1, 2, 3, 4, 5, 6]) * 1e-4, model="pnp",
                       metric=True, keyframe=True, num_matches=3, num_inliers=2, layers=5,
                       ref_points=pts, cur_points=pts + 1.5,
                       match_scores=np.array([0.9, 0.5, 0.2], np.float32),
                       inliers=np.array([True, True, False]),
                       track_ids=np.array([7, 12, -1], np.int64))


@needs_msgs
def test_edge_and_tracks_messages_carry_the_record():
    from builtin_interfaces.msg import Time
    from lightglue_ros_msgs.msg import KeyframeEdge

    from lightglue_ros.ros.backend_msgs import edge_msg, tracks_msg

    record, stamp = _record(), Time(sec=1_700_000_002, nanosec=1)
    ref = Time(sec=1_700_000_001, nanosec=999_999_999)  # rebuilt exactly from the record
    edge = edge_msg(record, stamp, "camera_optical")
    assert (edge.header.stamp, edge.header.frame_id) == (stamp, "camera_optical")
    assert (edge.frame_index, edge.reference_index, edge.reference_stamp) == (41, 40, ref)
    assert edge.model == KeyframeEdge.MODEL_PNP and edge.metric
    assert edge.became_keyframe and edge.reference_is_keyframe and not edge.reinitialized
    record.ref_began_anew = True
    assert edge_msg(record, stamp, "camera_optical").reinitialized
    assert (edge.num_matches, edge.num_inliers, edge.layers) == (3, 2, 5)
    p = edge.pose.pose.position
    assert (p.x, p.y, p.z) == (0.1, 0.0, 0.5)
    assert np.allclose(np.reshape(edge.pose.covariance, (6, 6)), record.relative_covariance)
    tracks = tracks_msg(record, stamp, "camera_optical")
    assert (tracks.frame_index, tracks.reference_index, tracks.reference_stamp) == (41, 40, ref)
    assert list(tracks.track_ids) == [7, 12, -1]
    assert list(tracks.reference_x) == [10.0, 30.5, 50.0]
    assert list(tracks.current_y) == [21.5, 41.75, 61.5]
    assert np.allclose(tracks.scores, [0.9, 0.5, 0.2]) and list(tracks.inliers) == [
        True, True, False]
    # a tracker that assigned no ids: every match says so
    record.track_ids = np.zeros(0, np.int64)
    assert list(tracks_msg(record, stamp, "c").track_ids) == [-1, -1, -1]
    record.ref_stamp_ns = record.ref_index = None  # no reference: nothing to publish
    with pytest.raises(ValueError, match="no reference"):
        edge_msg(record, stamp, "c")


# --- GTSAM consumes the edges of a real run ------------------------------------------------------
@needs_msgs
def test_gtsam_pose_graph_from_the_published_edges_reproduces_the_odometry():
    """The synthetic RGB-D sequence tracked at the defaults; each frame's KeyframeEdge (as the
    node publishes it) becomes a BetweenFactorPose3 with the published covariance in GTSAM's
    convention. The graph is a tree, so its solution is the odometry, and its marginals are
    the odometry's covariance: same poses, same uncertainty, read through the convention."""
    from builtin_interfaces.msg import Time

    from lightglue_ros.ros.backend_msgs import edge_msg

    seq = make_sequence(num_frames=12)
    tracker = Tracker(Pipeline())
    records = [tracker.process(f.image, f.stamp_ns, f.camera, f.depth, f.depth_unit)
               for f in synthetic_frames(seq)]
    assert [r.index for r in records] == list(range(len(records)))
    edges = [edge_msg(r, Time(sec=i), "c") for i, r in enumerate(records)
             if r.T_ref_cam is not None]
    assert len(edges) == len(records) - 1
    assert [e.reinitialized for e in edges] == [e.reference_index == 0 for e in edges]

    graph, initial = gtsam.NonlinearFactorGraph(), gtsam.Values()
    graph.add(gtsam.PriorFactorPose3(0, gtsam.Pose3(),
                                     gtsam.noiseModel.Isotropic.Sigma(6, 1e-6)))
    rng = np.random.default_rng(1)
    for edge in edges:
        p, q = edge.pose.pose.position, edge.pose.pose.orientation
        T = _pose3_from_msg(p, q)
        cov = to_gtsam(T, np.reshape(edge.pose.covariance, (6, 6)))
        graph.add(gtsam.BetweenFactorPose3(edge.reference_index, edge.frame_index, _pose3(T),
                                           gtsam.noiseModel.Gaussian.Covariance(cov)))
    for i, r in enumerate(records):  # a start away from the answer
        initial.insert(i, _pose3(r.T_odom_cam).compose(gtsam.Pose3.Expmap(rng.normal(0, 0.02, 6))))
    result = gtsam.LevenbergMarquardtOptimizer(graph, initial).optimize()
    marginals = gtsam.Marginals(graph, result)
    for i, r in enumerate(records[1:], 1):
        # The bundle adjustment refines a keyframe's pose after its edge went out, and the
        # frames after it are placed on the refined pose: the odometry is the chain of the
        # edges plus those refinements, a correction the odometry's own covariance must allow
        # (99.9% quantile of chi-square with 6 DOF).
        published = to_gtsam(r.T_odom_cam, r.covariance)
        gap = gtsam.Pose3.Logmap(result.atPose3(i).between(_pose3(r.T_odom_cam)))
        assert gap @ np.linalg.solve(published, gap) < 22.46, (i, gap)
        assert np.allclose(marginals.marginalCovariance(i), published, rtol=0.02,
                           atol=0.02 * np.abs(published).max()), i


def _pose3_from_msg(p, q) -> np.ndarray:
    from lightglue_ros.geometry.se3 import quaternion_to_rotation

    return make_transform(quaternion_to_rotation([q.x, q.y, q.z, q.w]), [p.x, p.y, p.z])



def test_a_node_without_the_messages_says_why(monkeypatch):
    import importlib.util as util

    from lightglue_ros.ros import backend_msgs

    real = util.find_spec
    monkeypatch.setattr(util, "find_spec",
                        lambda name, *a: None if name == "lightglue_ros_msgs" else real(name, *a))
    reason = backend_msgs.unavailable()
    assert reason and "lightglue_ros_msgs is not installed" in reason and "~/edges" in reason
    monkeypatch.undo()
    assert (backend_msgs.unavailable() is None) == (util.find_spec("lightglue_ros_msgs")
                                                    is not None)
