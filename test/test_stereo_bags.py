"""Stereo bags: make-bag writes both eyes of a stereo dataset (the right camera_info's P holds
the baseline), the reader pairs them as the node does (stamps within stereo_sync_s, a missing
right image, eyes of other sizes, a swapped pair), and eval and replay carry both topics."""
from __future__ import annotations


import numpy as np
import pytest
from dataset_fixtures import make_kitti_folder
from stereo_fixtures import make_euroc_stereo_folder

from conftest import ROOT, SHARED, run_cli_json
from lightglue_ros.bags import BagWriter, make_bag, open_bag
from lightglue_ros.datasets import open_dataset
from lightglue_ros.datasets.frames import dataset_frames
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.images import load_image
from lightglue_ros.types import FrameInput, to_ns

RIGHT = ("/camera/right/image_raw", "/camera/right/camera_info")
KITTI06 = SHARED / "data" / "kitti06_stereo_0_50"
needs_kitti06 = pytest.mark.skipif(not KITTI06.is_dir(), reason=f"{KITTI06} is absent")


def test_make_bag_of_a_kitti_pair_reads_back_as_the_dataset(tmp_path):
    root = make_kitti_folder(tmp_path / "05")
    made = make_bag(root, tmp_path / "kitti", progress=False)
    assert made.counts == {"/camera/image_raw": 4, "/camera/camera_info": 4,
                           RIGHT[0]: 4, RIGHT[1]: 4}
    with open_bag(made.path) as bag:
        infos = [bag.deserialize(r, t, p) for p, t, _, r in bag.messages([RIGHT[1]])]
        frames = bag.camera_frames(stereo_topics=RIGHT)
        got = list(frames)
    fx, baseline = 718.856, 386.1448 / 718.856
    assert infos[0].p[3] == pytest.approx(-fx * baseline)
    assert infos[0].header.frame_id == "camera_optical_frame_right"
    assert len(got) == 4 and frames.report.frames_without_right == 0
    for i, frame in enumerate(got):
        np.testing.assert_array_equal(frame.right, load_image(root / "image_1" / f"{i:06d}.png"))
        assert frame.baseline_m == pytest.approx(baseline, rel=1e-12)
        np.testing.assert_allclose(frame.camera.K, open_dataset(root).camera.K)
    with open_bag(made.path) as bag:     # read as one camera: no right image
        assert all(f.right is None for f in bag.camera_frames())


def test_make_bag_of_a_raw_euroc_pair_holds_the_rectified_pair(tmp_path):
    root = make_euroc_stereo_folder(tmp_path / "V1_01_easy")
    made = make_bag(root, tmp_path / "euroc", progress=False)
    expected = list(dataset_frames(open_dataset(root)))
    with open_bag(made.path) as bag:
        frames = bag.camera_frames(stereo_topics=RIGHT)
        got = list(frames)
    assert len(got) == 3 and frames.report.frames_without_right == 1   # cam1 lacks the last
    for want, have in zip(expected, got):
        np.testing.assert_array_equal(have.image, want.image)
        assert not have.camera.is_distorted
        np.testing.assert_allclose(have.camera.K, want.camera.K)
        if want.right is None:
            assert have.right is None and have.baseline_m is None
        else:
            np.testing.assert_array_equal(have.right, want.right)
            assert have.baseline_m == pytest.approx(want.baseline_m, rel=1e-12)


CAMERA = CameraModel(64, 48, [[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]])


def _texture(seed: int, shape=(48, 64)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


def _write_problem_bag(path, baseline: float = 0.12) -> None:
    """Four stereo frames 0.1 s apart: the right image at the same stamp, 3 ms later, missing,
    and half the size."""
    with BagWriter(path) as writer:
        for i, (offset, size) in enumerate([(0.0, (48, 64)), (0.003, (48, 64)), (None, None),
                                            (0.0, (24, 32))]):
            t = to_ns(10.0 + 0.1 * i)
            if offset is not None:
                writer.right(_texture(100 + i, size), CAMERA, baseline, t + to_ns(offset), t)
            writer.write(FrameInput(t, _texture(i), CAMERA))


def test_reader_pairs_the_eyes_as_the_node_does(tmp_path):
    _write_problem_bag(tmp_path / "pairs")
    with open_bag(tmp_path / "pairs") as bag:
        frames = bag.camera_frames(stereo_topics=RIGHT, stereo_sync_s=0.005)
        got = list(frames)
        report = frames.report
    assert [f.right is not None for f in got] == [True, True, False]
    np.testing.assert_array_equal(got[1].right, _texture(101))
    assert report.frames_without_right == 1 and report.rejected_images == 1
    assert report.rejected_reasons == ["stereo: the right image is 32x24 but the left 64x48: "
                                       "the eyes must send the same size"]
    assert report.summary()["frames_without_right"] == 1
    assert "1 of 3 frames had no right image within the stereo sync tolerance" in \
        " ".join(report.problems())
    with open_bag(tmp_path / "pairs") as bag:     # exact stamps only: 3 ms apart is unpaired
        exact = bag.camera_frames(stereo_topics=RIGHT, stereo_sync_s=0.0)
        assert [f.right is not None for f in exact] == [True, False, False]


def test_reader_refuses_a_swapped_pair(tmp_path):
    _write_problem_bag(tmp_path / "swapped", baseline=-0.12)
    with open_bag(tmp_path / "swapped") as bag:
        frames = bag.camera_frames(stereo_topics=RIGHT)
        assert list(frames) == []
    assert frames.report.rejected_images == 4
    assert "swapped" in frames.report.rejected_reasons[0]
    assert frames.report.rejected_reasons[0].startswith("stereo: stereo calibration: baseline")


@needs_kitti06
@pytest.mark.slow
def test_eval_and_replay_carry_both_eyes(tmp_path):
    from ros_harness import replay_into_node, ros_available

    bag = tmp_path / "kitti06"
    made = run_cli_json("make-bag", str(KITTI06), str(bag), "--frames", "4")
    assert made["topics"][RIGHT[0]] == made["topics"][RIGHT[1]] == 4
    figures = run_cli_json("eval", str(bag), "--right-image-topic", RIGHT[0], "--out",
                           str(tmp_path / "eval"))
    assert figures["frames"] == 4 and figures["frames_without_right"] == 0
    assert figures["right_image_topic"] == RIGHT[0] and figures["rejected_images"] == 0
    if not ros_available():
        pytest.skip("rclpy is not installed: replay not run")
    live, _ = replay_into_node(
        bag, ["-p", "use_stereo:=true", "-r", "image:=/camera/image_raw",
              "-r", f"right/image:={RIGHT[0]}"], [], tmp_path, timeout=600)
    assert live["images"] == live["answered"] == 4 and live["timeouts"] == 0
    node_log = (tmp_path / "node.log").read_text()
    assert "no right image" not in node_log and "stereo:" not in node_log, node_log[-2000:]
