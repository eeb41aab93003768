"""ROS 2 bags (rosbags only, no rclpy): writer and reader, make-bag for every dataset kind, eval
against track, bag problems (gaps, stamps going back) and the errors of broken input."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import TUM_FR2, needs_tum_fr2, run_cli, run_cli_json, textured_image
from dataset_fixtures import (EUROC_STAMPS_NS, KITTI_TIMES, kitti_poses, make_euroc_folder,
                              make_kitti_folder)
from rosbags.rosbag2 import StoragePlugin, Writer

from lightglue_ros.bags import BagWriter, evaluate_bag, make_bag, open_bag
from lightglue_ros.bags.messages import TYPESTORE, camera_info_message, header, serialize
from lightglue_ros.config import Config
from lightglue_ros.datasets import open_dataset
from lightglue_ros.errors import BagError
from lightglue_ros.types import NS, FrameInput, Trajectory, TrajectoryError, to_ns
from lightglue_ros.geometry.camera import CameraModel
from lightglue_ros.images import load_image
from lightglue_ros.synthetic import make_sequence


# the figures eval must reproduce exactly (everything but wall-clock latency and file names)
SAME_FIGURES = ("frames", "tracked_frames", "lost_frames", "weak_frames", "keyframes", "metric",
                "mean_layers", "mean_matches", "mean_inliers", "ate_rmse_m", "ate_mean_m",
                "ate_max_m", "rpe_trans_m", "rpe_rot_deg", "rel_rot_err_median_deg",
                "path_length_m", "matched", "scale", "align")
JSON_KEYS = ("frames", "ate_rmse_m", "rpe_trans_m", "rpe_rot_deg", "rel_rot_err_median_deg",
             "mean_layers", "mean_latency_ms", "lost_frames", "skipped_before_camera_info",
             "gaps", "max_gap_s", "stamp_jumps_back", "stamp_jumps_forward", "duplicate_stamps",
             "rejected_images", "segments")
DEPTH = "/camera/depth/image_raw"
CAMERA = CameraModel(64, 48, [[60.0, 0, 31.5], [0, 61.0, 23.5], [0, 0, 1]], "plumb_bob",
                     [0.01, -0.02, 0.001, 0.0005, 0.003])


def _timing_free(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if not k.startswith("t_")}
                for row in csv.DictReader(f)]


# --- eval on a TUM bag == track on the folder ---------------------------------------------------

@pytest.fixture(scope="module")
def fr2_bags(tmp_path_factory) -> dict:
    """make-bag of the fr2/desk folder in each storage: storage -> (bag, make-bag's JSON)."""
    root = tmp_path_factory.mktemp("fr2_bags")
    return {storage: (root / storage, run_cli_json("make-bag", str(TUM_FR2), str(root / storage),
                                                   "--preset", "fr2", "--storage", storage))
            for storage in ("sqlite3", "mcap")}


@pytest.mark.slow
@needs_tum_fr2
@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_a_tum_bag_holds_the_folders_frames(fr2_bags, storage):
    """Pixels, header stamps and calibration exactly: what the reader gives is what ``track``
    reads, in either storage (so one storage's eval stands for both)."""
    bag, made = fr2_bags[storage]
    assert made["frames"] == 20 and made["storage"] == storage
    assert made["topics"] == {"/camera/image_raw": 20, "/camera/camera_info": 20}
    assert made["groundtruth"] == str(bag) + ".gt.txt"
    assert Path(made["groundtruth"]).read_text() == (TUM_FR2 / "groundtruth.txt").read_text()
    ds = open_dataset(TUM_FR2, preset="fr2")
    with open_bag(bag) as opened:
        assert opened.storage == storage
        frames = list(opened.camera_frames())
    assert [f.stamp_ns for f in frames] == [f.stamp_ns for f in ds.frames]
    for frame, expected in zip(frames, ds.frames):
        np.testing.assert_array_equal(frame.image, load_image(expected.image_path))
    assert frames[0].camera is frames[-1].camera      # one model while camera_info is unchanged
    np.testing.assert_array_equal(frames[0].camera.K, ds.camera.K)
    np.testing.assert_array_equal(frames[0].camera.D, ds.camera.D)
    assert frames[0].camera.distortion_model == "plumb_bob" and frames[0].depth is None


@pytest.mark.slow
@needs_tum_fr2
def test_eval_of_tum_bag_gives_the_figures_of_track(fr2_bags, track_fr2, tmp_path):
    bag, made = fr2_bags["sqlite3"]
    out = tmp_path / "eval"
    figures = run_cli_json("eval", str(bag), "--gt", made["groundtruth"], "--extractor", "xfeat",
                           "--out", str(out))
    reference, track_out = track_fr2
    assert {k: figures[k] for k in SAME_FIGURES} == {k: reference[k] for k in SAME_FIGURES}
    assert (out / "trajectory.txt").read_text() == (track_out / "trajectory.txt").read_text()
    assert _timing_free(out / "frames.csv") == _timing_free(track_out / "frames.csv")
    assert all(key in figures for key in JSON_KEYS)
    assert figures["storage"] == "sqlite3" and figures["problems"] == []
    assert figures["skipped_before_camera_info"] == figures["gaps"] == 0
    assert figures["stamp_jumps_back"] == 0 and figures["segments"] == 1
    report = (out / "report.md").read_text()
    for picture in ("trajectory.png", "errors.png", "latency_layers.png"):
        assert (out / picture).is_file() and f"]({picture})" in report
    assert "| ATE RMSE |" in report and "| median relative rotation error |" in report


# --- synthetic bag with depth: a metric run --------------------------------------------------

@pytest.mark.slow
def test_synthetic_bag_with_depth_is_metric_and_accurate(tmp_path):
    bag = tmp_path / "synthetic"
    made = run_cli_json("make-bag", "synthetic", str(bag), "--frames", "6", "--storage", "mcap")
    assert made["topics"] == {"/camera/image_raw": 6, "/camera/camera_info": 6, DEPTH: 6}
    seq = make_sequence(num_frames=6)
    with open_bag(bag) as opened:
        assert opened.topics[DEPTH].msgtype == "sensor_msgs/msg/Image"
        frames = list(opened.camera_frames(depth_topic=DEPTH))
    np.testing.assert_array_equal(frames[3].depth, seq.frame(3).depth)     # 32FC1, exact
    assert frames[3].depth_unit == 1.0
    gt = Trajectory.read_tum(made["groundtruth"])
    np.testing.assert_array_equal(gt.stamps, seq.stamps)
    np.testing.assert_allclose(gt.poses, seq.poses, atol=1e-12)

    # --gt defaults to BAG.gt.txt, which make-bag wrote
    figures = run_cli_json("eval", str(bag), "--depth-topic", DEPTH, "--extractor", "aliked",
                           "--out", str(tmp_path / "e"))  # ALIKED's subpixel rotation bound
    assert figures["metric"] is True and figures["align"] == "se3"
    assert figures["frames"] == 6 and figures["lost_frames"] == 0
    assert figures["frames_with_depth"] == 6 and figures["frames_without_depth"] == 0
    assert figures["ate_rmse_m"] < 0.005 and figures["rel_rot_err_median_deg"] < 0.1


# --- a bag with a gap and a stamp going back ---------------------------------------------------

def test_gap_and_backwards_stamp_restart_tracking_and_are_counted(tmp_path):
    seq = make_sequence(num_frames=8, width=320, height=240)
    camera = seq.camera.to_model()
    bag = tmp_path / "jumpy"
    with BagWriter(bag, "sqlite3") as writer:
        for frame in seq:   # received at 30 Hz; header stamps: gap before frame 4, back at 5
            stamp = frame.stamp_ns + (2 * NS if frame.index == 4 else 0)
            writer.write(FrameInput(stamp, frame.rgb, camera, frame.depth, 1.0), frame.stamp_ns)
    gt = Trajectory(seq.stamps, seq.poses)
    figures = evaluate_bag(bag, gt, out_dir=tmp_path / "out", depth_topic=DEPTH,
                           progress=False)
    assert figures["frames"] == 8 and figures["bag_images"] == 8
    assert figures["gaps"] == 1 and figures["max_gap_s"] == pytest.approx(2 + 1 / 30, abs=1e-6)
    assert figures["stamp_jumps_back"] == 1 and figures["stamp_jumps_forward"] == 0
    assert figures["segments"] == 2 and figures["segment_frames"] == [5, 3]
    assert figures["evaluated_segment"] == 1 and figures["matched"] == 4   # frame 4 has no gt
    assert figures["metric"] is True and figures["ate_rmse_m"] < 0.01
    assert any("went back" in p for p in figures["problems"])
    out = tmp_path / "out"
    rows = list(csv.DictReader(open(out / "frames.csv")))
    assert len(rows) == 8
    assert rows[5]["model"] == "init" and rows[5]["keyframe"] == "1"   # tracking restarted
    assert rows[6]["model"] != "init"
    assert len(Trajectory.read_tum(out / "trajectory_segment2.txt")) == 3
    assert "went back" in (out / "report.md").read_text()


# --- the reader: bag order, camera_info, depth pairing, stamps ---------------------------------

def _image(seed: int = 0, grey: bool = False) -> np.ndarray:
    image = textured_image(48, 64, seed)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if grey else image


def test_reader_counts_stamp_problems_and_uses_header_stamps(tmp_path):
    bag = tmp_path / "problems"
    with BagWriter(bag, "mcap") as writer:
        writer.image(_image(0), to_ns(100.0))            # before any camera_info: skipped
        writer.camera_info(CAMERA, to_ns(100.05))
        for stamp, receive in ((100.1, 100.6), (100.2, 100.7), (100.2, 100.8),   # duplicate
                               (101.5, 102.0),           # gap of 1.3 s (receive time as well)
                               (141.6, 102.1),           # clock jump: header +40 s, receive +0.1
                               (141.7, 102.2), (100.3, 102.3), (100.4, 102.4)):   # back
            writer.image(_image(1), to_ns(stamp), to_ns(receive))
    restarts = []
    with open_bag(bag) as opened:
        source = opened.camera_frames(on_restart=lambda: restarts.append(True))
        assert source.total == 9
        frames = list(source)
    report = source.report
    assert [f.stamp_ns for f in frames] == [to_ns(t) for t in (100.1, 100.2, 101.5, 141.6,
                                                                141.7, 100.3, 100.4)]
    assert report.images == 9 and report.frames == 7
    assert report.skipped_before_camera_info == 1 and report.duplicate_stamps == 1
    assert [round(g, 6) for _, g in report.gaps] == [1.3]
    assert report.stamp_jumps_forward == [(101.5, 141.6)]
    assert report.stamp_jumps_back == [(141.7, 100.3)] and report.restarts == [5]
    assert restarts == [True]
    summary = report.summary()
    assert summary["segments"] == 2 and summary["frames_without_depth"] is None
    assert len(report.problems()) == 5


def test_reader_pairs_depth_by_stamp_and_reads_both_depth_encodings(tmp_path):
    bag = tmp_path / "depth"
    depth_mm = (np.arange(64 * 48) % 4000 + 500).astype(np.uint16).reshape(48, 64)
    with BagWriter(bag, "sqlite3") as writer:
        writer.camera_info(CAMERA, to_ns(9.0))
        writer.image(_image(0), to_ns(10.0))
        writer.depth(depth_mm, 0.001, to_ns(10.015), receive_ns=to_ns(10.3))  # after, 15 ms off
        writer.image(_image(1), to_ns(10.1))
        writer.depth(depth_mm, 1 / 5000, to_ns(10.14))               # 40 ms off: not paired
        writer.image(_image(2), to_ns(10.2))
        writer.depth(depth_mm, 1 / 5000, to_ns(10.2))                # TUM units -> 32FC1
    with open_bag(bag) as opened:
        source = opened.camera_frames(depth_topic=DEPTH, depth_sync_s=0.02)
        frames = list(source)
        raw = [opened.deserialize(r, t, p) for p, t, _, r in opened.messages([DEPTH])]
    assert [m.encoding for m in raw] == ["32FC1", "32FC1", "16UC1"]   # in receive order
    assert [f.stamp_ns for f in frames] == [to_ns(10.0), to_ns(10.1), to_ns(10.2)]
    assert frames[0].depth.dtype == np.uint16 and frames[0].depth_unit == 0.001
    np.testing.assert_array_equal(frames[0].depth, depth_mm)
    assert frames[1].depth is None and frames[1].depth_unit is None
    assert frames[2].depth.dtype == np.float32 and frames[2].depth_unit == 1.0
    np.testing.assert_allclose(frames[2].depth, depth_mm / 5000.0, rtol=1e-7)
    assert source.report.frames_with_depth == 2
    assert "1 of 3 frames had no depth" in source.report.problems()[0]


def test_reader_detects_compressed_images_and_opens_bare_files(tmp_path):
    bag = tmp_path / "compressed"
    image = _image(3)
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    compressed = TYPESTORE.types["sensor_msgs/msg/CompressedImage"]
    writer = Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP)
    with writer:
        info = writer.add_connection("/cam/camera_info", "sensor_msgs/msg/CameraInfo",
                                     typestore=TYPESTORE)
        conn = writer.add_connection("/cam/image/compressed", "sensor_msgs/msg/CompressedImage",
                                     typestore=TYPESTORE)
        writer.write(info, 5_000_000_000, serialize(camera_info_message(CAMERA, 5 * NS, "cam")))
        msg = compressed(header=header(5 * NS, "cam"), format="png", data=png.reshape(-1))
        writer.write(conn, 5_000_000_000, TYPESTORE.serialize_cdr(msg, compressed.__msgtype__))
    for path in (bag, bag / "compressed.mcap"):
        with open_bag(path) as opened:
            frames = list(opened.camera_frames("/cam/image/compressed", "/cam/camera_info"))
        assert len(frames) == 1 and frames[0].stamp_ns == 5 * NS
        np.testing.assert_array_equal(frames[0].image, image)


# --- make-bag for KITTI and EuRoC ------------------------------------------------------------

def test_make_bag_kitti_grey_images_calibration_and_groundtruth(tmp_path):
    root = make_kitti_folder(tmp_path / "sequences" / "05")
    made = make_bag(root, tmp_path / "kitti", "mcap", use_stereo=False, progress=False)
    assert made.kind == "kitti" and made.frames == 4
    assert made.counts == {"/camera/image_raw": 4, "/camera/camera_info": 4}
    with open_bag(made.path) as opened:
        assert opened.storage == "mcap"
        assert {n: (t.msgtype, t.count) for n, t in opened.topics.items()} == {
            "/camera/image_raw": ("sensor_msgs/msg/Image", 4),
            "/camera/camera_info": ("sensor_msgs/msg/CameraInfo", 4)}
        msgs = [opened.deserialize(r, t, p) for p, t, _, r in opened.messages(
            ["/camera/image_raw", "/camera/camera_info"])]
        frames = list(opened.camera_frames())
    images, infos = msgs[1::2], msgs[0::2]
    assert {m.encoding for m in images} == {"mono8"}
    assert {m.header.frame_id for m in msgs} == {"camera_optical_frame"}
    assert (infos[0].width, infos[0].height, infos[0].distortion_model) == (40, 12, "plumb_bob")
    np.testing.assert_array_equal(infos[0].k, [718.856, 0, 607.1928, 0, 718.856, 185.2157,
                                               0, 0, 1])
    np.testing.assert_array_equal(infos[0].d, np.zeros(5))
    np.testing.assert_array_equal(infos[0].p[[3, 7, 11]], 0.0)
    assert [f.stamp_ns for f in frames] == [to_ns(t) for t in KITTI_TIMES]
    np.testing.assert_array_equal(frames[2].image, load_image(root / "image_0" / "000002.png"))
    assert not frames[0].camera.is_distorted
    gt = Trajectory.read_tum(made.groundtruth)
    assert made.groundtruth == tmp_path / "kitti.gt.txt"
    np.testing.assert_allclose(gt.stamps, KITTI_TIMES, rtol=0, atol=1e-9)
    np.testing.assert_allclose(gt.poses, kitti_poses(), atol=1e-9)


def test_make_bag_euroc(tmp_path):
    small = make_euroc_folder(tmp_path / "small")          # 32x24 images, 752x480 calibration
    with pytest.raises(BagError, match="camera_info would not fit"):
        make_bag(small, tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()                   # no half-written bag left behind

    root = make_euroc_folder(tmp_path / "MH_01_easy", width=752, height=480)
    made = make_bag(root, tmp_path / "euroc", "sqlite3", frames=2, progress=False)
    ds = open_dataset(root)
    assert made.frames == 2 and made.counts["/camera/image_raw"] == 2
    with open_bag(tmp_path / "euroc") as opened:
        assert opened.storage == "sqlite3"
        raw = next(opened.messages(["/camera/image_raw"]))
        assert opened.deserialize(raw[3], raw[1], raw[0]).encoding == "mono8"
        frames = list(opened.camera_frames())
    assert [f.stamp_ns for f in frames] == EUROC_STAMPS_NS[:2]   # exact, to the nanosecond
    camera = frames[0].camera
    np.testing.assert_array_equal(camera.K, ds.camera.K)
    np.testing.assert_array_equal(camera.D, ds.camera.D)
    np.testing.assert_array_equal(frames[1].image, load_image(ds.frames[1].image_path))
    gt = Trajectory.read_tum(made.groundtruth)
    np.testing.assert_allclose(gt.poses, ds.groundtruth.poses, atol=1e-12)


# --- errors ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_bags(tmp_path_factory):
    """Two-frame bags of each storage: camera_info and image at 10.0 and 10.1 s."""
    root = tmp_path_factory.mktemp("small")
    for storage in ("sqlite3", "mcap"):
        with BagWriter(root / storage, storage) as writer:
            for i in range(2):
                writer.write(FrameInput(to_ns(10.0 + 0.1 * i), _image(i), CAMERA))
    return root


def _copy(small_bags: Path, storage: str, dest: Path) -> Path:
    shutil.copytree(small_bags / storage, dest)
    return dest


def test_broken_and_missing_bags(small_bags, tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        open_bag(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BagError, match="not a ROS 2 bag"):
        open_bag(empty)
    garbage = _copy(small_bags, "sqlite3", tmp_path / "garbage")
    (garbage / "sqlite3.db3").write_bytes(b"not a database " * 200)
    with pytest.raises(BagError, match=r"garbage/sqlite3\.db3 is corrupt, truncated"):
        evaluate_bag(garbage, None, out_dir=tmp_path / "o")
    truncated = _copy(small_bags, "mcap", tmp_path / "truncated")
    data = (truncated / "mcap.mcap").read_bytes()
    (truncated / "mcap.mcap").write_bytes(data[:len(data) // 2])
    with pytest.raises(BagError, match=r"truncated/mcap\.mcap is corrupt, truncated"):
        open_bag(truncated)


def test_topic_errors(small_bags, tmp_path):
    with open_bag(small_bags / "mcap") as opened:
        with pytest.raises(BagError, match=r"image topic /cam/image is not in bag .*; its "
                                           r"topics: /camera/camera_info \(sensor_msgs/msg/"
                                           r"CameraInfo, 2\), /camera/image_raw"):
            opened.camera_frames("/cam/image")
        with pytest.raises(BagError, match="holds sensor_msgs/msg/CameraInfo, expected "
                                           "sensor_msgs/msg/Image or sensor_msgs/msg/Compressed"):
            opened.camera_frames("/camera/camera_info")
        with pytest.raises(BagError, match="depth topic /camera/depth/image_raw is not in"):
            opened.camera_frames(depth_topic=DEPTH)
    no_info = tmp_path / "no_info"
    with BagWriter(no_info, "sqlite3") as writer:    # the camera_info topic, never written to
        writer.image(_image(0), NS)
    with open_bag(no_info) as opened:
        with pytest.raises(BagError, match="camera_info topic /camera/camera_info .* has no "
                                           "messages"):
            opened.camera_frames()
    late_info = tmp_path / "late_info"
    with BagWriter(late_info, "sqlite3") as writer:
        writer.image(_image(0), to_ns(1.0))
        writer.image(_image(1), to_ns(1.1))
        writer.camera_info(CAMERA, to_ns(1.2))
    with open_bag(late_info) as opened, pytest.raises(BagError, match="none of the 2 images"):
        list(opened.camera_frames())


def test_groundtruth_that_does_not_overlap(small_bags, tmp_path):
    far = Trajectory(np.array([500.0, 500.1, 500.2]), np.tile(np.eye(4), (3, 1, 1)))
    with pytest.raises(TrajectoryError, match="do not overlap in time"):
        evaluate_bag(small_bags / "sqlite3", far, Config(), out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()      # refused before tracking anything


@pytest.mark.slow
def test_cli_errors_are_one_line_with_exit_code_2(small_bags, tmp_path):
    far = tmp_path / "far.txt"
    Trajectory(np.array([500.0, 500.1, 500.2]), np.tile(np.eye(4), (3, 1, 1))).write_tum(far)
    garbage = _copy(small_bags, "sqlite3", tmp_path / "garbage")
    (garbage / "sqlite3.db3").write_bytes(b"\x00garbage" * 100)
    cases = [
        (("eval", str(garbage)), "corrupt, truncated"),
        (("eval", str(small_bags / "mcap"), "--image-topic", "/nope"), "its topics:"),
        (("eval", str(small_bags / "mcap"), "--gt", str(far)), "do not overlap in time"),
        (("eval", str(tmp_path / "missing")), "does not exist"),
        (("make-bag", "synthetic", str(small_bags / "mcap")), "already exists"),
    ]
    for args, message in cases:
        proc = run_cli(*args, "--out", str(tmp_path / "out"), check=False) \
            if args[0] == "eval" else run_cli(*args, check=False)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith(f"lightglue-ros {args[0]}: error: ")
        assert message in lines[0], lines[0]
