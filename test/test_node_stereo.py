"""The tracker node's stereo input with real rclpy, across processes: left and right images with
their camera_infos paired by stamp (exact, within stereo_sync_s, or missing), eyes of different
sizes, a swapped pair, and what /diagnostics says of each. The right images are the synthetic
room seen from 10 cm to the right of the left camera."""
from __future__ import annotations

import time

import numpy as np
import pytest

from ros_harness import (ERROR_LEVEL, LARGE_MESSAGE_GAP_S, WARN_LEVEL, raw_image_msg,
                         right_camera_info_msg, ros_session, stamp_key, synthetic,
                         synthetic_right)

pytest.importorskip("rclpy", reason="rclpy (the ROS 2 wheels) is not installed")

_ = ros_session

BASELINE_M = 0.1
NUM_FRAMES = 12
# a long wait: on a loaded machine the right image may reach the node well after the left
PARAMS = {"use_stereo": True, "stereo_sync_s": 0.005, "stereo_wait_s": 1.0,
          "stale_after_s": 60.0, "diagnostics_period_s": 0.5}
INPUTS = ("image", "camera_info", "right/image", "right/camera_info")


@pytest.fixture(scope="module")
def pair():
    """(camera, left frames, right images) of the synthetic room."""
    camera, frames = synthetic(NUM_FRAMES)
    return camera, frames, synthetic_right(NUM_FRAMES, camera.width, camera.height, BASELINE_M)


def right_info(camera, stamp, baseline: float = BASELINE_M):
    return right_camera_info_msg(camera, stamp, baseline)


@pytest.fixture(scope="module")
def stereo(ros_session, pair):
    from builtin_interfaces.msg import Time
    from rclpy.duration import Duration

    camera = pair[0]
    node = ros_session.start_node("stereo", PARAMS, inputs=INPUTS, camera=camera)
    publish_right_info(node, right_info(camera, node.next_stamp()))
    # a right image no frame pairs with, acknowledged: later ones are not repaired late
    # (ros_harness's prime does the same for camera_info and depth)
    right = node.input_publisher("right/image")
    right.publish(raw_image_msg(np.zeros((2, 2, 3), np.uint8), "rgb8", Time(sec=1)))
    right.wait_for_all_acked(Duration(seconds=10))
    node.index = 0   # the next content frame
    yield node
    node.stop()


def send_pair(node, pair, *, right_offset_ns: int | None = 0, right=None, wait: bool = True):
    """The next content frame: its right image (stamped ``right_offset_ns`` from the left, none
    when None), then the left; returns the left stamp and, with ``wait``, its odometry."""
    from builtin_interfaces.msg import Time

    camera, frames, rights = pair
    i = node.index % len(frames)
    node.index += 1
    stamp = node.next_stamp()
    if right_offset_ns is not None:
        ns = stamp.sec * 10**9 + stamp.nanosec + right_offset_ns
        image = rights[i] if right is None else right
        node.send_image(raw_image_msg(image, "rgb8", Time(sec=ns // 10**9, nanosec=ns % 10**9)),
                        "right/image")
        # two VGA images back to back overflow the receiver's socket buffer: the first would be
        # repaired seconds later (ros_harness does the same after a depth image)
        time.sleep(LARGE_MESSAGE_GAP_S)
    node.send_frame(frames[i], camera, stamp=stamp)
    odom = node.odometry.wait_stamp(stamp, 60.0, node.alive) if wait else None
    return stamp, odom


def publish_right_info(node, msg) -> None:
    """A new right calibration, acknowledged by the node's reader."""
    from rclpy.duration import Duration

    pub = node.input_publisher("right/camera_info")
    pub.publish(msg)
    pub.wait_for_all_acked(Duration(seconds=10))


def send_until(node, pair, predicate, tries: int = 5, wait: bool = True) -> tuple:
    """Send pairs until /diagnostics satisfies ``predicate``: a camera_info acknowledged by the
    node's reader may still wait for its executor, so the first frame after it can see the old
    one. Returns (status, stamps sent)."""
    stamps = []
    for _ in range(tries):
        stamps.append(send_pair(node, pair, wait=wait)[0])
        try:
            return node.fresh_status(predicate, timeout=5.0), stamps
        except TimeoutError:
            continue
    raise AssertionError(f"no diagnostics as expected after {tries} pairs: "
                         f"{node.status()['values']}")


def test_equal_and_near_stamps_are_paired(stereo, pair):
    for offset in (0, 0, 3_000_000, -4_000_000):     # within stereo_sync_s (5 ms)
        send_pair(stereo, pair, right_offset_ns=offset)
    values = stereo.fresh_status(lambda s: "fault.stereo" not in s["values"])["values"]
    assert values["stereo"] == f"baseline {BASELINE_M:.4f} m, already rectified"
    assert values["input"] == "stereo, raw images"


def test_missing_or_far_right_image_is_tracked_without_it(stereo, pair):
    before = int(stereo.status()["values"].get("frames_without_right", 0))
    send_pair(stereo, pair, right_offset_ns=None)      # no right image at all
    send_pair(stereo, pair, right_offset_ns=20_000_000)  # 20 ms apart: beyond 5 ms
    status = stereo.fresh_status(lambda s: "fault.stereo" in s["values"])
    assert status["level"] >= WARN_LEVEL
    assert "no right image within 0.005 s of the left one: tracked without it" in \
        status["values"]["fault.stereo"]
    assert int(status["values"]["frames_without_right"]) == before + 2
    # a wider tolerance, set at run time, pairs them again
    stereo.set_parameters(stereo_sync_s=0.03)
    send_pair(stereo, pair, right_offset_ns=20_000_000)
    stereo.set_parameters(stereo_sync_s=0.005)
    status = stereo.fresh_status()
    assert int(status["values"]["frames_without_right"]) == before + 2


def test_eyes_of_different_sizes_are_refused(stereo, pair):
    rejected = int(stereo.status()["values"]["frames_rejected"])
    small = np.zeros((240, 320, 3), np.uint8)
    stamp, _ = send_pair(stereo, pair, right=small, wait=False)
    status = stereo.fresh_status(lambda s: int(s["values"]["frames_rejected"]) > rejected)
    assert status["level"] == ERROR_LEVEL
    assert status["message"] == ("stereo: the right image is 320x240 but the left 640x480: the "
                                 "eyes must send the same size")
    assert stamp_key(stamp) not in stereo.odometry.stamps()


def test_swapped_pair_is_an_error_not_a_wrong_scale(stereo, pair):
    camera = pair[0]
    publish_right_info(stereo, right_info(camera, stereo.next_stamp(), baseline=-BASELINE_M))
    status, stamps = send_until(stereo, pair, lambda s: "swapped" in s["message"], wait=False)
    assert status["level"] == ERROR_LEVEL
    assert status["message"].startswith("stereo: stereo calibration: baseline from P is -0.1 m")
    assert stamp_key(stamps[-1]) not in stereo.odometry.stamps()
    # the right calibration again: frames are tracked, the fault clears
    publish_right_info(stereo, right_info(camera, stereo.next_stamp()))
    status, _ = send_until(stereo, pair, lambda s: "fault.stereo" not in s["values"])
    assert status["values"]["stereo"].startswith("baseline 0.1000 m")


def test_raw_pair_is_rectified_from_camera_info_R_and_P(stereo, pair):
    """A right camera_info whose R turns the eye (a raw pair): the node resamples the right
    image onto the rectified grid and says so; back to R = I, the pair is used as it is."""
    from scipy.spatial.transform import Rotation

    camera = pair[0]
    turned = right_info(camera, stereo.next_stamp())
    turned.r = [float(v) for v in Rotation.from_euler("y", 0.5, degrees=True).as_matrix().ravel()]
    publish_right_info(stereo, turned)
    status, _ = send_until(stereo, pair, lambda s: s["values"].get("stereo", "").endswith("here"))
    assert status["values"]["stereo"] == f"baseline {BASELINE_M:.4f} m, rectified here"
    publish_right_info(stereo, right_info(camera, stereo.next_stamp()))
    status, _ = send_until(stereo, pair,
                           lambda s: s["values"].get("stereo", "").endswith("rectified"))
    assert status["values"]["stereo"] == f"baseline {BASELINE_M:.4f} m, already rectified"
