"""The tracker node with real rclpy (ROS 2 Kilted wheels from PyPI), across processes.

Each test class starts one node process (``python -m lightglue_ros.node --ros-args ...``) and
reuses it for several tests; this process publishes the synthetic sequence (real 640x480 images,
depth and camera_info) and asserts on what the node publishes. Tests in a class share the node
and its frames (stamps, and content frames within a class, only ever increase) but not each
other's results: each runs alone or in any order.

Transport facts these tests rely on (Fast DDS defaults, measured): between processes, a 640x480
rgb8 image (921 KB) sent best effort mostly does not arrive (a lost UDP fragment loses the whole
sample), a 320x240 one (230 KB) does, and a reliable keep-last-1 subscription receives every VGA
frame. The node's default ``input_qos: auto`` subscribes reliable to a reliable publisher (the
probe's, unless a test says otherwise) and best effort to a best-effort one. It is not asserted
that best-effort VGA never arrives, only that what is lost is counted.
"""
from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest

from conftest import pose_error
from lightglue_ros.geometry.se3 import invert_transform, quaternion_to_rotation
from ros_harness import (ERROR_LEVEL, OK_LEVEL, WARN_LEVEL, best_effort_qos, camera_info_msg,
                         frame_stamp, raw_image_msg, ros_session, stamp_from_key, stamp_key,
                         synthetic, wait_until)

pytest.importorskip("rclpy", reason="rclpy (the ROS 2 wheels) is not installed")
from lightglue_ros.ros import conversions  # noqa: E402  (imports the ROS message packages)

_ = ros_session  # the module-scoped fixture (rclpy context, probe, node processes)

NUM_FRAMES = 24  # VGA synthetic frames used here (30 Hz, 2.5 cm apart)
CAMERA_FRAME = "camera_optical"  # header.frame_id the harness sends


# --- helpers ------------------------------------------------------------------------------------
def pose_matrix(pose) -> np.ndarray:
    q = pose.orientation
    T = np.eye(4)
    T[:3, :3] = quaternion_to_rotation([q.x, q.y, q.z, q.w])
    T[:3, 3] = [pose.position.x, pose.position.y, pose.position.z]
    return T


def covariance(values) -> np.ndarray:
    return np.asarray(values, np.float64).reshape(6, 6)


def assert_psd(C: np.ndarray, what: str) -> None:
    assert np.all(np.isfinite(C)), f"{what}: non-finite covariance"
    assert np.allclose(C, C.T, rtol=1e-9, atol=1e-15), f"{what}: covariance not symmetric"
    eig = np.linalg.eigvalsh(C)
    assert eig.min() >= -1e-9 * max(1.0, eig.max()), f"{what}: eigenvalues {eig}"


def value(status: dict, key: str) -> str:
    assert key in status["values"], f"diagnostics lack '{key}': {status['values']}"
    return status["values"][key]


def counters(status: dict) -> dict[str, int]:
    return {k: int(value(status, f"frames_{k}"))
            for k in ("received", "processed", "dropped", "rejected")}


@pytest.fixture(scope="module")
def vga():
    return synthetic(NUM_FRAMES)


# =================================================================================================
# RGB-D, reliable VGA: odometry against ground truth, relative poses, matches, diagnostics,
# other encodings, the debug image, run-time parameters and the reset service.
# =================================================================================================
@pytest.fixture(scope="class")
def rgbd(ros_session, vga):
    node = ros_session.start_node(
        "rgbd", {"use_depth": True, "stale_after_s": 60.0, "depth_wait_s": 0.5,
                 "diagnostics_period_s": 0.5},
        inputs=("image", "camera_info", "depth"), camera=vga[0])
    subscribe_edges(node)
    yield node
    node.stop()


def subscribe_edges(node) -> None:
    """``node.edges``: the node's ~/edges (lightglue_ros_msgs/KeyframeEdge), which names the
    reference frame of each relative pose; matched before any frame is sent."""
    msgs = pytest.importorskip("lightglue_ros_msgs.msg", reason="lightglue_ros_msgs is not "
                               "built: `make venv` builds it into the venv")
    node.edges = node.subscribe(msgs.KeyframeEdge, "~/edges")
    wait_until(lambda: node.edges.subscription.get_publisher_count() > 0, 30, "~/edges",
               node.alive)


@pytest.fixture(scope="class")
def rgbd_run(rgbd, vga):
    """Frames 0..7 tracked with 32FC1 depth, one at a time (no drops); the node's state the
    tests continue from: which content frame each stamp carried, the next content frame, and
    odom_from_world, which maps a content frame's true pose to its odometry (a reset keeps the
    odometry continuous, so it changes by the one frame step the reset loses)."""
    camera, frames = vga
    run = {"frame_of": {}, "next": 0, "odometry": [],
           "odom_from_world": invert_transform(frames[0].T_world_cam)}
    for stamp, odom in rgbd.track(frames[:8], camera, depth="32FC1"):
        run["frame_of"][stamp_key(stamp)] = run["next"]
        run["odometry"].append((stamp, odom))
        run["next"] += 1
    run["log"] = rgbd.log()
    return run


def send_next(node, run, vga, **kwargs):
    """Send the next content frame (with 32FC1 depth unless told otherwise)."""
    camera, frames = vga
    kwargs.setdefault("depth", "32FC1")
    index = run["next"]
    stamp = node.send_frame(frames[index], camera, **kwargs)
    run["frame_of"][stamp_key(stamp)], run["next"] = index, index + 1
    return stamp, index


@pytest.mark.usefixtures("rgbd_run")
class TestRgbdNode:
    def test_odometry_follows_ground_truth(self, rgbd, rgbd_run, vga):
        _, frames = vga
        T0 = frames[0].T_world_cam
        assert len(rgbd_run["odometry"]) == 8
        assert "depth:" not in rgbd_run["log"], rgbd_run["log"]  # every frame had its depth
        for stamp, odom in rgbd_run["odometry"]:
            i = rgbd_run["frame_of"][stamp_key(stamp)]
            assert stamp_key(odom.header.stamp) == stamp_key(stamp)
            # the first camera pose, with optical axes: not named 'odom' without base_frame
            assert odom.header.frame_id == f"{CAMERA_FRAME}_odom"
            assert odom.child_frame_id == CAMERA_FRAME  # the image's optical frame
            T = pose_matrix(odom.pose.pose)
            T_gt = invert_transform(T0) @ frames[i].T_world_cam
            dt, dr = pose_error(T, T_gt)
            assert dt < 0.03 and dr < 0.5, f"frame {i}: {dt:.4f} m, {dr:.3f} deg off"
            C = covariance(odom.pose.covariance)
            assert_psd(C, f"frame {i} odometry")
            if i == 0:
                assert np.allclose(T, np.eye(4)) and np.allclose(C, 0.0)  # the odom origin
            else:
                assert np.all(np.diag(C) > 0) and np.diag(C).max() < 1e-2, np.diag(C)
        # metric motion: 7 frames of a 0.75 m/s orbit at 30 Hz
        assert np.linalg.norm(pose_matrix(rgbd_run["odometry"][-1][1].pose.pose)[:3, 3]) > 0.1

    def test_relative_pose_and_matches_name_their_reference(self, rgbd, rgbd_run, vga):
        camera, frames = vga
        sent = set(rgbd_run["frame_of"])
        K = np.asarray(camera.K)
        for stamp, _ in rgbd_run["odometry"][1:]:
            rel = rgbd.relative_pose.wait_stamp(stamp)
            cloud = rgbd.matches.wait_stamp(stamp)
            edge = rgbd.edges.wait_stamp(stamp)
            for msg in (rel, cloud, edge):  # a TF frame, no '@<stamp>'
                assert msg.header.frame_id == CAMERA_FRAME
            ref_stamp = edge.reference_stamp  # the edge names the reference
            assert stamp_key(ref_stamp) in sent and stamp_key(ref_stamp) < stamp_key(stamp)
            assert pose_matrix(edge.pose.pose) == pytest.approx(pose_matrix(rel.pose.pose))
            assert list(edge.pose.covariance) == list(rel.pose.covariance)
            ref = rgbd_run["frame_of"][stamp_key(ref_stamp)]
            cur = rgbd_run["frame_of"][stamp_key(stamp)]
            # the relative pose is T_ref_cur of the named reference frame
            T_gt = invert_transform(frames[ref].T_world_cam) @ frames[cur].T_world_cam
            dt, dr = pose_error(pose_matrix(rel.pose.pose), T_gt)
            assert dt < 0.02 and dr < 0.5, f"{ref}->{cur}: {dt:.4f} m, {dr:.3f} deg off"
            assert_psd(covariance(rel.pose.covariance), f"{ref}->{cur} relative pose")
            # the matches cloud: named fields, and inliers that are true correspondences
            assert [f.name for f in cloud.fields] == ["x0", "y0", "x1", "y1", "score", "inlier"]
            m = conversions.matches_from_msg(cloud)
            assert cloud.height == 1 and cloud.width == len(m) > 0
            inl = m["inlier"] == 1
            assert inl.sum() > 50, f"{inl.sum()} inliers"
            assert np.all((m["score"] >= 0.1 - 1e-6) & (m["score"] <= 1.0))  # filter_threshold
            for x, y in (("x0", "y0"), ("x1", "y1")):
                assert np.all((m[x] >= -0.5) & (m[x] <= 639.5) & (m[y] >= -0.5) & (m[y] <= 479.5))
            # reference pixel + its depth -> 3D -> current camera (ground truth) -> pixel
            u0, v0 = m["x0"][inl].astype(float), m["y0"][inl].astype(float)
            z = frames[ref].depth[np.clip(np.rint(v0).astype(int), 0, 479),
                                  np.clip(np.rint(u0).astype(int), 0, 639)].astype(float)
            X = np.linalg.inv(K) @ np.vstack([u0, v0, np.ones_like(u0)]) * z
            X = invert_transform(T_gt) @ np.vstack([X, np.ones_like(u0)])
            uv = (K @ X[:3])[:2] / X[2]
            err = np.hypot(uv[0] - m["x1"][inl], uv[1] - m["y1"][inl])
            assert np.median(err) < 1.0, f"{ref}->{cur}: median reprojection {np.median(err)} px"

    def test_diagnostics_report_rate_latency_and_tracking(self, rgbd, rgbd_run):
        status = rgbd.fresh_status()
        assert status["name"] == "lightglue_ros: tracker"
        assert status["level"] == OK_LEVEL and status["message"] == "tracking", status
        sent = len(rgbd_run["frame_of"])  # 8, and those of the tests that ran before
        assert counters(status) == {"received": sent, "processed": sent, "dropped": 0,
                                    "rejected": 0}
        assert float(value(status, "rate_hz")) > 0
        for key in ("latency_ms_mean", "latency_ms_p50", "latency_ms_p99"):
            assert 0 < float(value(status, key)) < 60_000, key
        assert value(status, "tracking_status") == "ok"
        assert value(status, "model") == "pnp" and value(status, "metric") == "True"
        assert int(value(status, "keypoints")) > 200
        assert int(value(status, "matches")) >= int(value(status, "inliers")) > 50
        assert 1 <= int(value(status, "layers")) <= 9
        assert not [k for k in status["values"] if k.startswith("fault.")]

    @pytest.mark.parametrize("encoding,depth", [("bgr8", "16UC1"), ("mono8", "32FC1"),
                                                ("rgba8", "16UC1"), ("bgra8", "32FC1"),
                                                ("mono16", "16UC1")])
    def test_other_encodings_track(self, rgbd, rgbd_run, vga, encoding, depth):
        _, frames = vga
        stamp, index = send_next(rgbd, rgbd_run, vga, encoding=encoding, depth=depth)
        odom = rgbd.odometry.wait_stamp(stamp, alive=rgbd.alive)
        T_gt = rgbd_run["odom_from_world"] @ frames[index].T_world_cam
        dt, dr = pose_error(pose_matrix(odom.pose.pose), T_gt)
        assert dt < 0.03 and dr < 0.5, f"{encoding}/{depth} frame {index}: {dt:.4f} m, {dr:.3f} deg"
        assert 50 < conversions.matches_from_msg(rgbd.matches.wait_stamp(stamp))["inlier"].sum()

    def test_debug_image_published_to_a_subscriber(self, rgbd, rgbd_run, vga):
        """Nobody subscribed during the frames before; a subscriber gets the current image with
        the matches drawn, stamped like its frame. (That nothing is drawn while nobody
        subscribes cannot be seen from outside the node.)"""
        from sensor_msgs.msg import Image

        topic = rgbd.topic("~/debug_image")
        assert rgbd.probe.count_publishers(topic) == 1
        assert rgbd.probe.count_subscribers(topic) == 0  # nobody asked: nothing drawn so far
        debug = rgbd.subscribe(Image, "~/debug_image")
        wait_until(lambda: debug.subscription.get_publisher_count() > 0, 30, "debug publisher")
        stamps = []
        for _ in range(3):  # the node may see the new subscription a frame late
            stamps.append(send_next(rgbd, rgbd_run, vga)[0])
            rgbd.odometry.wait_stamp(stamps[-1], alive=rgbd.alive)
            if debug.messages:
                break
        msg = debug.wait(timeout=10)[0]
        # this test's frames, or the frame the node was finishing as the subscription came
        assert stamp_key(msg.header.stamp) in rgbd_run["frame_of"]
        assert msg.header.frame_id == CAMERA_FRAME
        assert (msg.width, msg.height, msg.encoding, msg.step) == (640, 480, "rgb8", 1920)
        picture = np.frombuffer(bytes(msg.data), np.uint8).reshape(480, 640, 3)
        source = vga[1][rgbd_run["frame_of"][stamp_key(msg.header.stamp)]].rgb
        changed = np.any(picture != source, axis=2).mean()
        assert 0.001 < changed < 0.5, f"{changed:.3f} of the pixels drawn over"
        rgbd.unsubscribe(debug)
        wait_until(lambda: rgbd.probe.count_subscribers(topic) == 0, 30, "debug unsubscribed")
        stamp = send_next(rgbd, rgbd_run, vga)[0]
        rgbd.odometry.wait_stamp(stamp, alive=rgbd.alive)  # tracking goes on without it

    def test_runtime_parameters(self, rgbd, rgbd_run, vga):
        desc = rgbd.describe_parameters("max_keypoints", "filter_threshold", "extractor",
                                        "depth_confidence")
        assert desc["max_keypoints"].read_only and not desc["filter_threshold"].read_only
        assert desc["max_keypoints"].integer_range[0].from_value == 0  # 0: auto
        assert desc["max_keypoints"].integer_range[0].to_value == 8192
        fr = desc["filter_threshold"].floating_point_range[0]
        assert (fr.from_value, fr.to_value) == (0.0, 1.0)
        assert "One of: aliked, superpoint, disk" in desc["extractor"].description
        assert desc["depth_confidence"].description.startswith("LightGlue early-exit")

        # accepted: applied to the next frame (every published match scores >= the threshold)
        before = conversions.matches_from_msg(rgbd.matches.messages[-1])["score"]
        assert before.min() < 0.5  # so the check below means something
        assert rgbd.set_parameters(filter_threshold=0.5)["filter_threshold"].successful
        assert rgbd.get_parameters("filter_threshold") == {"filter_threshold": 0.5}
        stamp = send_next(rgbd, rgbd_run, vga)[0]
        after = conversions.matches_from_msg(rgbd.matches.wait_stamp(stamp, alive=rgbd.alive))
        assert len(after) > 50 and after["score"].min() >= 0.5 - 1e-6
        assert rgbd.set_parameters(filter_threshold=0.1)["filter_threshold"].successful

        # rejected, each with a reason, the value unchanged
        rejected = {"depth_confidence": (2.0, "out of range"),  # the declared range (rclpy)
                    "max_keypoints": (512, "read-only"),  # fixed at start
                    # inside the declared range but not a valid Config (the node's own check)
                    "width_confidence": (0.0, "must be -1 (off) or in (0, 1]"),
                    "good_inliers": (10, "good_inliers (10) must be >= min_inliers (15)")}
        old = rgbd.get_parameters(*rejected)
        for name, (bad, reason) in rejected.items():
            result = rgbd.set_parameters(**{name: bad})[name]
            assert not result.successful and reason in result.reason, (name, result.reason)
        assert rgbd.get_parameters(*rejected) == old == {
            "depth_confidence": 0.95, "max_keypoints": 0, "width_confidence": 0.99,
            "good_inliers": 60}
        rgbd.wait_log("parameter change rejected: parameter 'width_confidence' must be -1")

        # use_sim_time is rclpy's own parameter, not the Config's: it can be set at run time
        assert rgbd.set_parameters(use_sim_time=True)["use_sim_time"].successful
        assert rgbd.get_parameters("use_sim_time") == {"use_sim_time": True}
        assert rgbd.set_parameters(use_sim_time=False)["use_sim_time"].successful

    def test_reset_service_keeps_odom_continuous(self, rgbd, rgbd_run, vga):
        """REP 105: odom is continuous. The first frame after ~/reset starts again at the last
        pose (not the origin) with no velocity measured; tracking then goes on from it."""
        _, frames = vga
        before = rgbd.odometry.messages[-1]
        response = rgbd.reset()
        assert response.success and response.message
        stamp, index = send_next(rgbd, rgbd_run, vga)
        odom = rgbd.odometry.wait_stamp(stamp, alive=rgbd.alive)
        T = pose_matrix(odom.pose.pose)
        assert np.allclose(T, pose_matrix(before.pose.pose), atol=1e-9)
        assert np.all(np.diag(covariance(odom.pose.covariance)) >=
                      np.diag(covariance(before.pose.covariance)) - 1e-12)
        assert np.allclose(covariance(odom.twist.covariance), np.eye(6) * 1e3)  # not measured
        rgbd_run["odom_from_world"] = T @ invert_transform(frames[index].T_world_cam)
        rgbd.wait_log("tracking reset (service call)")
        stamp2, index2 = send_next(rgbd, rgbd_run, vga)
        odom2 = rgbd.odometry.wait_stamp(stamp2, alive=rgbd.alive)
        T_gt = invert_transform(frames[index].T_world_cam) @ frames[index2].T_world_cam
        dt, dr = pose_error(invert_transform(T) @ pose_matrix(odom2.pose.pose), T_gt)
        assert dt < 0.02 and dr < 0.5
        assert rgbd.edges.wait_stamp(stamp2).reference_stamp == stamp  # the frame after it
        assert rgbd.alive() and "no depth image" not in rgbd.log()


# =================================================================================================
# Compressed input (image/compressed, JPEG and PNG), monocular
# =================================================================================================
@pytest.fixture(scope="class")
def compressed(ros_session, vga):
    node = ros_session.start_node(
        "compressed", {"use_compressed": True, "input_qos": "reliable",
                       "camera_frame": "cam_b_optical", "stale_after_s": 60.0,
                       "diagnostics_period_s": 0.5},
        inputs=("image/compressed", "camera_info"), camera=vga[0])
    yield node
    node.stop()


@pytest.fixture(scope="class")
def compressed_frames(vga):
    """The content frames for the compressed node, in order whatever order the tests run in."""
    return iter(vga[1])


class TestCompressedInput:
    def test_subscribes_compressed_only(self, compressed):
        _, subs = compressed.probe.node_topics("lightglue_tracker", "/compressed")
        assert subs["/compressed/image/compressed"] == ["sensor_msgs/msg/CompressedImage"]
        assert "/compressed/image" not in subs and "/compressed/depth" not in subs

    def test_jpeg_and_png_frames_are_tracked(self, compressed, compressed_frames, vga):
        camera, _ = vga
        before = counters(compressed.fresh_status())
        formats = ["jpeg", "jpeg", "jpeg", "png"]
        for fmt in formats:
            frame = next(compressed_frames)
            stamp = compressed.send_frame(frame, camera, compressed=fmt)
            odom = compressed.odometry.wait_stamp(stamp, alive=compressed.alive)
            assert odom.child_frame_id == "cam_b_optical"  # the camera_frame parameter wins
            assert odom.header.frame_id == "cam_b_optical_odom"
        rel = compressed.relative_pose.wait_stamp(stamp)
        assert rel.header.frame_id == "cam_b_optical"
        m = conversions.matches_from_msg(compressed.matches.wait_stamp(stamp))
        assert m["inlier"].sum() > 50
        status = compressed.fresh_status()
        assert status["level"] == OK_LEVEL, status
        assert value(status, "tracking_status") in ("ok", "weak")
        assert value(status, "metric") == "False"  # monocular: up to scale
        now = counters(status)
        assert {k: now[k] - before[k] for k in now} == {"received": 4, "processed": 4,
                                                        "dropped": 0, "rejected": 0}

    def test_undecodable_compressed_images_are_errors(self, compressed, compressed_frames, vga):
        from sensor_msgs.msg import CompressedImage

        camera, _ = vga
        rejected = counters(compressed.fresh_status())["rejected"]
        compressed.send_camera_info(camera)
        garbage = b"\xff\xd8 not a jpeg" * 10
        for data, text in ((b"", "empty compressed image"),
                           (garbage, f"cannot decode compressed image (format 'jpeg', "
                                     f"{len(garbage)} bytes)")):
            stamp = compressed.next_stamp()
            msg = CompressedImage(format="jpeg", data=data)
            msg.header.stamp, msg.header.frame_id = stamp, CAMERA_FRAME
            compressed.send_image(msg, "image/compressed")
            status = compressed.fresh_status(lambda s, t=text: t in s["message"])
            assert status["level"] == ERROR_LEVEL and status["message"] == f"image: {text}"
            assert compressed.alive()
        stamp = compressed.send_frame(next(compressed_frames), camera, compressed="jpeg")
        compressed.odometry.wait_stamp(stamp, alive=compressed.alive)
        status = compressed.fresh_status(lambda s: "fault.image" not in s["values"])
        assert status["level"] == OK_LEVEL and counters(status)["rejected"] == rejected + 2


    def test_fixed_input_qos_stays_and_camera_info_matches_its_publisher(self, compressed,
                                                                         compressed_frames, vga):
        """input_qos reliable (set here) does not follow a best-effort image publisher; the
        camera_info subscription matches any publisher: a best-effort camera_info is used."""
        from sensor_msgs.msg import CompressedImage

        camera, _ = vga
        small, _ = synthetic(1, 320, 240)
        ros_session = compressed.session
        image_topic = compressed.topic("image/compressed")
        stray = ros_session.probe.publisher(CompressedImage, image_topic, best_effort_qos())
        compressed.probe.drop_publishers(compressed.topic("camera_info"))  # reliable one gone
        info = compressed.input_publisher("camera_info", best_effort_qos())
        wait_until(lambda: info.get_subscription_count() > 0, 30, "camera_info matched")
        status = compressed.fresh_status(
            lambda s: s["values"].get("qos.camera_info") == "best_effort", timeout=30)
        assert value(status, "qos.image/compressed") == "reliable"  # the explicit setting
        assert stray.get_subscription_count() == 0  # and so no match with that publisher
        for _ in range(5):  # a camera_info of another size, best effort, before the next frame
            info.publish(camera_info_msg(small, compressed.next_stamp()))
            time.sleep(0.05)
        stamp = compressed.send_frame(next(compressed_frames), camera, compressed="jpeg",
                                      camera_info=False)
        status = compressed.fresh_status(lambda s: "fault.camera_info" in s["values"])
        assert "camera_info is 320x240 but the image is 640x480" in status["message"], status
        assert stamp_key(stamp) not in compressed.odometry.stamps()
        for _ in range(5):  # the right one, best effort: frames are tracked again
            info.publish(camera_info_msg(camera, compressed.next_stamp()))
            time.sleep(0.05)
        stamp = compressed.send_frame(next(compressed_frames), camera, compressed="jpeg",
                                      camera_info=False)
        compressed.odometry.wait_stamp(stamp, alive=compressed.alive)


# =================================================================================================
# Bad messages, flooding and shutdown: raw images, reliable VGA
# =================================================================================================
ROBUST_PARAMS = {"stale_after_s": 60.0, "diagnostics_period_s": 0.5}


@pytest.fixture(scope="class")
def robust(ros_session, vga):
    """A node that has its camera_info (sent ahead of the first frame)."""
    node = ros_session.start_node("robust", ROBUST_PARAMS, camera=vga[0])
    yield node
    node.stop()


@pytest.fixture
def own_node(ros_session):
    """A node of the test's own, that has seen nothing yet. Not beside another node: statuses on
    /diagnostics are told apart by node name, which every node here shares."""
    node = ros_session.start_node("own", ROBUST_PARAMS)
    yield node
    node.stop()


@pytest.fixture(scope="class")
def robust_frames(vga):
    """The content frames for the robust node, in order whatever order the tests run in."""
    return iter(vga[1])


def _bad(kind: str, stamp):
    rgb = np.zeros((480, 640, 3), np.uint8)
    if kind == "depth image 32FC1":
        return (raw_image_msg(np.ones((480, 640), np.float32), "32FC1", stamp),
                "encoding '32FC1' is a depth image (REP 118), not a camera image")
    if kind == "unknown encoding foo":
        return raw_image_msg(rgb, "foo", stamp), "unsupported encoding 'foo'"
    if kind == "step smaller than a row":
        return (raw_image_msg(rgb, "rgb8", stamp, step=1000),
                "step 1000 is smaller than a rgb8 row of 640 pixels (1920 bytes)")
    if kind == "data shorter than step x height":
        return (raw_image_msg(rgb, "rgb8", stamp, step=2048),
                "data holds 921600 bytes but 640x480 rgb8 with step 2048 needs 983040")
    if kind == "empty data":
        return (raw_image_msg(rgb, "rgb8", stamp, data=b""),
                "data holds 0 bytes but 640x480 rgb8 with step 1920 needs 921600")
    if kind == "zero size":
        return raw_image_msg(rgb, "rgb8", stamp, width=0, height=0, data=b""), "empty image (0x0)"
    raise ValueError(kind)


BAD = ("depth image 32FC1", "unknown encoding foo", "step smaller than a row",
       "data shorter than step x height", "empty data", "zero size")


class TestFreshNode:
    def test_no_camera_info_yet_is_an_error(self, own_node, vga):
        camera, frames = vga
        stamp = own_node.send_frame(frames[0], camera, camera_info=False)
        status = own_node.fresh_status(lambda s: s["level"] == ERROR_LEVEL)
        assert status["message"] == ("camera_info: no camera_info received yet: frames are "
                                     "dropped until it arrives")
        assert counters(status)["rejected"] == 1
        assert stamp_key(stamp) not in own_node.odometry.stamps() and own_node.alive()
        # the camera_info arrives: the next frame is tracked and the fault clears
        own_node.send_camera_info(camera)
        own_node.track(frames[1:2], camera)
        status = own_node.fresh_status()
        assert status["level"] == OK_LEVEL and "fault.camera_info" not in status["values"]
        own_node.wait_log("camera_info: recovered after 1 occurrence(s)")

    def test_clean_shutdown_on_sigint(self, own_node, vga):
        camera, frames = vga
        own_node.prime(camera)
        own_node.track(frames[:2], camera)  # a node that has worked
        assert own_node.stop() == 0
        log = own_node.log()
        assert "Traceback" not in log, log[-3000:]


class TestRobustness:
    @pytest.mark.parametrize("kind", BAD)
    def test_bad_image_is_an_error_not_a_crash(self, robust, vga, kind):
        logged = len(robust.log())
        rejected = counters(robust.status())["rejected"]
        stamps = [robust.next_stamp() for _ in range(2)]
        for n, stamp in enumerate(stamps, 1):  # the same fault twice: logged once
            msg, text = _bad(kind, stamp)
            robust.send_image(msg)
            status = robust.fresh_status(
                lambda s, n=n: int(s["values"]["frames_rejected"]) >= rejected + n)
        assert status["level"] == ERROR_LEVEL
        assert status["message"].startswith(f"image: {text}"), status["message"]
        assert text in value(status, "fault.image") and value(status, "fault.image").startswith(
            "ERROR")
        assert robust.log()[logged:].count(text) == 1, f"'{text}' not logged exactly once"
        assert robust.alive()
        assert not set(robust.odometry.stamps()) & {stamp_key(s) for s in stamps}

    def test_recovers_with_good_frames(self, robust, robust_frames, vga):
        camera, _ = vga
        logged = len(robust.log())
        rejected = counters(robust.fresh_status())["rejected"]
        robust.send_image(_bad("zero size", robust.next_stamp())[0])
        robust.fresh_status(lambda s: int(s["values"]["frames_rejected"]) == rejected + 1)
        good = [next(robust_frames) for _ in range(2)]
        for stamp, odom in robust.track(good, camera):
            assert stamp_key(odom.header.stamp) == stamp_key(stamp)
        status = robust.fresh_status()
        assert status["level"] == OK_LEVEL, status
        assert not [k for k in status["values"] if k.startswith("fault.")], status["values"]
        assert counters(status)["rejected"] == rejected + 1
        log = robust.log()[logged:]
        assert "image: recovered after" in log, log[-3000:]

    def test_flood_drops_frames_keeps_latest(self, robust, robust_frames, vga):
        camera, _ = vga
        before = counters(robust.fresh_status())
        sent = []
        for _ in range(15):  # 15 frames at a camera's 30 Hz, much faster than tracking
            frame = next(robust_frames)
            sent.append(stamp_key(robust.send_frame(frame, camera)))
            time.sleep(1 / 30)
        last = robust.odometry.wait_stamp(stamp_from_key(sent[-1]), alive=robust.alive)
        assert stamp_key(last.header.stamp) == sent[-1]  # the newest frame is never dropped
        status = robust.fresh_status(
            lambda s: int(s["values"]["frames_processed"]) + int(s["values"]["frames_dropped"])
            + int(s["values"]["frames_rejected"]) == int(s["values"]["frames_received"]))
        now = counters(status)
        assert now["dropped"] > before["dropped"], (before, now)
        got = [s for s in robust.odometry.stamps() if s >= sent[0]]
        assert set(got) <= set(sent) and got == sorted(set(got)), got
        assert now["processed"] - before["processed"] == len(got) < len(sent)
        assert now["rejected"] == before["rejected"]
        assert status["level"] == OK_LEVEL and robust.alive()



# =================================================================================================
# Default QoS (auto) with a best-effort camera: 320x240 arrives, 640x480 is lost and reported
# =================================================================================================
def settle_best_effort(pub, msg, times: int = 5) -> None:
    """Publish a small best-effort message a few times: the first may go out before the reader
    has matched the writer (best effort repairs nothing)."""
    for _ in range(times):
        pub.publish(msg)
        time.sleep(0.05)


def test_default_qos_matches_a_best_effort_camera_and_reports_losses(ros_session):
    camera, frames = synthetic(4, 320, 240)
    vga_camera, vga_frames = synthetic(10)
    node = ros_session.start_node("besteffort", {"stale_after_s": 60.0,
                                                 "diagnostics_period_s": 0.5}, inputs=())
    try:
        assert node.get_parameters("input_qos") == {"input_qos": "auto"}  # the default
        status = node.fresh_status()
        assert value(status, "qos.image") == value(status, "qos.camera_info") == "reliable"
        qos = best_effort_qos()  # what many camera drivers publish with
        pubs = [node.input_publisher(topic, qos) for topic in ("image", "camera_info")]
        for pub in pubs:  # a reliable subscription would never match them: the node adapts
            wait_until(lambda p=pub: p.get_subscription_count() > 0, 30, f"{pub.topic_name}")
        status = node.fresh_status()
        assert value(status, "qos.image") == value(status, "qos.camera_info") == "best_effort"
        node.wait_log("/besteffort/image: 1 publisher(s), subscribing best effort")
        settle_best_effort(pubs[1], camera_info_msg(camera, frame_stamp(0)))
        for stamp, odom in node.track(frames, camera, qos=qos, timeout=30):
            assert stamp_key(odom.header.stamp) == stamp_key(stamp)
        status = node.fresh_status()
        assert counters(status) == {"received": 4, "processed": 4, "dropped": 0, "rejected": 0}
        assert value(status, "samples_lost_in_transport") == "0"
        # a 640x480 camera at 30 Hz, best effort: most frames are lost in transport
        for frame in vga_frames:
            node.send_frame(frame, vga_camera, qos=qos)
            time.sleep(1 / 30)
        status = node.fresh_status(lambda s: "fault.transport" in s["values"], timeout=30)
        assert status["level"] == WARN_LEVEL, status
        text = value(status, "fault.transport")
        assert text.startswith("WARN") and "samples lost in transport" in text
        assert "best-effort input" in text and "publish it reliable" in text
        assert "FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA" in text and "net.core.rmem_max" in text
        lost = int(value(status, "samples_lost_in_transport"))
        assert 1 <= lost <= 2 * len(vga_frames)  # images and their camera_infos at most
        assert node.log().count("samples lost in transport") == 1  # logged once
        node.wait_log("transport: recovered", timeout=30)  # once no more are lost
    finally:
        returncode = node.stop()
    assert returncode == 0  # SIGINT: a clean exit


# =================================================================================================
# A robot: odometry of base_link with a camera extrinsic, and a still camera (RGB-D, 160x120)
# =================================================================================================
# A forward-looking camera 0.2 m ahead of and 0.5 m above base_link, tilted 10 degrees down:
# its optical axes (z forward, x right, y down) in the base's (x forward, y left, z up).
_TILT = np.array([[np.cos(np.radians(10)), 0, np.sin(np.radians(10))], [0, 1, 0],
                  [-np.sin(np.radians(10)), 0, np.cos(np.radians(10))]])
T_BASE_CAM = np.eye(4)
T_BASE_CAM[:3, :3] = _TILT @ np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
T_BASE_CAM[:3, 3] = [0.2, 0.0, 0.5]
STILL_FRAMES = 60


@pytest.fixture(scope="class")
def robot(ros_session):
    from lightglue_ros.geometry.se3 import rotation_to_quaternion

    camera, frames = synthetic(8, 160, 120)
    extrinsic = " ".join(f"{v:.17g}" for v in [*T_BASE_CAM[:3, 3],
                                               *rotation_to_quaternion(T_BASE_CAM[:3, :3])])
    node = ros_session.start_node(
        "robot", {"extractor": "aliked",  # the bounds below are ALIKED's sub-pixel accuracy
                  "use_depth": True, "base_frame": "base_link", "base_to_camera": extrinsic,
                  "max_keypoints": 256, "keyframe_min_inliers": 30, "stale_after_s": 60.0,
                  "depth_wait_s": 0.5, "diagnostics_period_s": 0.5},
        inputs=("image", "camera_info", "depth"), camera=camera)
    node.camera, node.frames = camera, frames
    subscribe_edges(node)
    # the moving frames, first: the odometry's origin is frame 0 whatever order the tests run in
    node.moving = node.track(frames, camera, depth="32FC1")
    yield node
    node.stop()


class TestRobot:
    def test_odometry_of_the_base_follows_ground_truth(self, robot):
        frames = robot.frames
        T0 = frames[0].T_world_cam
        for i, (stamp, odom) in enumerate(robot.moving):
            assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
            # REP 105: odom is the base's first pose, with the base's axes
            T_gt = T_BASE_CAM @ invert_transform(T0) @ frames[i].T_world_cam \
                @ invert_transform(T_BASE_CAM)
            dt, dr = pose_error(pose_matrix(odom.pose.pose), T_gt)
            assert dt < 0.03 and dr < 1.0, f"frame {i}: {dt:.4f} m, {dr:.3f} deg off"
            assert_psd(covariance(odom.pose.covariance), f"frame {i} base odometry")
        # the camera moved: the base odometry differs from the camera odometry
        assert np.linalg.norm(T_gt[:3, 3] - (invert_transform(T0) @ frames[-1].T_world_cam)[
            :3, 3]) > 0.05

    def test_a_still_camera_gets_a_relative_pose_and_matches_for_every_frame(self, robot):
        """60 frames of one image after the moving ones: every frame is published against a
        named reference (its record carries the reference's stamp: no memory of stamps to
        outgrow), the keyframe is held throughout, and the relative pose is the true motion
        from it."""
        frames = robot.frames
        index_of = {key: i for i, key in enumerate(robot.sent)}  # the moving frames: 0..7
        still = len(frames) - 1
        for _ in range(STILL_FRAMES):
            stamp = robot.send_frame(frames[still], robot.camera, depth="32FC1")
            index_of[stamp_key(stamp)] = still
            robot.odometry.wait_stamp(stamp, alive=robot.alive)
            rel = robot.relative_pose.wait_stamp(stamp, timeout=10)
            cloud = robot.matches.wait_stamp(stamp, timeout=10)
            ref = stamp_key(robot.edges.wait_stamp(stamp, timeout=10).reference_stamp)
            assert cloud.header.frame_id == rel.header.frame_id == CAMERA_FRAME
            assert conversions.matches_from_msg(cloud)["inlier"].sum() > 30
            T_gt = invert_transform(frames[index_of[ref]].T_world_cam) @ \
                frames[still].T_world_cam
            dt, dr = pose_error(pose_matrix(rel.pose.pose), T_gt)
            assert dt < 0.01 and dr < 0.5, f"{ref}: {dt:.4f} m, {dr:.3f} deg"
        held = len(robot.sent) - 1 - robot.sent.index(ref)  # frames since the last reference
        assert held >= STILL_FRAMES, held
        status = robot.fresh_status()
        assert status["level"] == OK_LEVEL and counters(status)["dropped"] == 0, status


def test_base_frame_without_an_extrinsic_refuses_to_start(ros_session):
    """No base_to_camera and no tf2_ros to look it up: a ConfigError saying so, raised before
    the networks load (``main`` prints it and exits with status 2)."""
    from rclpy.parameter import Parameter

    from lightglue_ros.config import ConfigError
    from lightglue_ros.ros.node import TrackerNode

    if importlib.util.find_spec("tf2_ros") is not None:
        pytest.skip("tf2_ros is installed here: the extrinsic would be looked up in TF")
    with pytest.raises(ConfigError, match="base_frame 'base_link' needs the camera's pose in "
                                          "it: set base_to_camera"):
        TrackerNode(context=ros_session.context, parameter_overrides=[
            Parameter("base_frame", value="base_link")])
