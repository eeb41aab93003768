"""Dataset readers: TUM (real and synthetic), KITTI and EuRoC fixtures, image folders, errors."""
from __future__ import annotations


import cv2
import numpy as np
import pytest
from dataset_fixtures import (EUROC_STAMPS_NS, KITTI_TIMES, kitti_poses, make_euroc_folder,
                              make_kitti_folder, write_png)
from scipy.spatial.transform import Rotation

from conftest import TUM_FR2, needs_tum_fr2
from lightglue_ros.datasets import (TUM_PRESETS, dataset_kind, open_dataset, read_euroc,
                                    read_image_folder, read_kitti, read_tum)
from lightglue_ros.errors import DatasetError, LightGlueRosError
from lightglue_ros.synthetic import TUM_DEPTH_SCALE, make_sequence, write_tum_folder



# --- TUM -----------------------------------------------------------------------------------

@needs_tum_fr2
def test_tum_fr2_desk_with_preset():
    ds = open_dataset(TUM_FR2, preset="fr2")
    assert ds.kind == "tum" and ds.name == "tum_fr2_desk" and len(ds) == 20
    assert ds.frames[0].stamp_ns == 1311868169_163498000  # exactly as listed
    assert ds.frames[-1].stamp_ns == 1311868171_063438000
    assert np.all(np.diff([f.stamp_ns for f in ds.frames]) > 0)
    assert [f.index for f in ds.frames] == list(range(20))
    assert all(f.image_path.is_file() and f.depth_path is None for f in ds.frames)
    assert ds.depth_unit is None
    cam = ds.camera
    assert (cam.width, cam.height) == (640, 480)
    np.testing.assert_array_equal(cam.K, [[520.9, 0, 325.1], [0, 521.0, 249.7], [0, 0, 1]])
    assert cam.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(cam.D, [0.2312, -0.7849, -0.0033, -0.0001, 0.9172])
    gt = ds.groundtruth
    assert gt is not None and len(gt) > 1000
    assert gt.stamps[0] < ds.frames[0].seconds and gt.stamps[-1] > ds.frames[-1].seconds
    np.testing.assert_allclose(gt.positions[0], [-0.3569, -1.9109, 1.4557])
    R = gt.poses[:, :3, :3]
    np.testing.assert_allclose(np.einsum("nji,njk->nik", R, R), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-12)


@needs_tum_fr2
def test_tum_needs_intrinsics_and_image_folder_reads_stamp_names():
    with pytest.raises(DatasetError, match="preset"):
        open_dataset(TUM_FR2)
    tum = open_dataset(TUM_FR2, preset="fr2")
    images = read_image_folder(TUM_FR2 / "rgb", preset="fr2")
    assert images.kind == "images" and len(images) == 20
    assert [f.stamp_ns for f in images.frames] == [f.stamp_ns for f in tum.frames]
    assert [f.image_path.name for f in images.frames] == \
        [f.image_path.name for f in tum.frames]


@pytest.fixture(scope="module")
def synthetic_tum(tmp_path_factory):
    seq = make_sequence(num_frames=6, width=160, height=120)
    return seq, write_tum_folder(seq, tmp_path_factory.mktemp("tum") / "synthetic", progress=False)


def test_tum_synthetic_depth_camera_yaml_and_groundtruth(synthetic_tum):
    seq, folder = synthetic_tum
    ds = open_dataset(folder)
    assert ds.kind == "tum" and len(ds) == 6
    np.testing.assert_allclose([f.seconds for f in ds.frames], seq.stamps, rtol=0, atol=1e-6)
    assert all(f.depth_path is not None and f.depth_path.name == f.image_path.name
               for f in ds.frames)
    assert ds.depth_unit == 1.0 / TUM_DEPTH_SCALE
    np.testing.assert_allclose(ds.camera.K, seq.camera.K, rtol=1e-9)
    assert (ds.camera.width, ds.camera.height) == (160, 120)
    assert not ds.camera.is_distorted
    np.testing.assert_allclose(ds.groundtruth.stamps, seq.stamps, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ds.groundtruth.poses, seq.poses, atol=1e-8)
    frame = ds.frames[2]
    depth = cv2.imread(str(frame.depth_path), cv2.IMREAD_UNCHANGED) * ds.depth_unit
    np.testing.assert_allclose(depth, seq.frame(2).depth, atol=0.6 / TUM_DEPTH_SCALE)


def test_tum_depth_association_tolerance_and_intrinsics_override(synthetic_tum, tmp_path):
    _, folder = synthetic_tum
    lines = (folder / "depth.txt").read_text().splitlines()
    rows = [i for i, line in enumerate(lines) if not line.startswith("#")]
    stamp, name = lines[rows[4]].split()
    lines[rows[4]] = f"{float(stamp) + 0.015:.6f} {name}"     # within the 0.02 s tolerance
    del lines[rows[3]]                                         # frame 3 has no depth image
    copy = tmp_path / "shifted"
    copy.mkdir()
    for item in ("rgb", "depth", "rgb.txt", "groundtruth.txt", "camera.yaml"):
        (copy / item).symlink_to(folder / item)
    (copy / "depth.txt").write_text("\n".join(lines) + "\n")
    for tolerance in (0.02, 0.04):
        # at 0.04 s frame 3 is near enough to depth 2, but that one is frame 2's (one to one)
        ds = read_tum(copy, max_depth_diff=tolerance)
        assert ds.frames[3].depth_path is None
        assert all(f.depth_path.name == f.image_path.name for f in ds.frames if f.index != 3)
    ds = read_tum(copy, max_depth_diff=0.01)
    assert [f.depth_path is None for f in ds.frames] == [False, False, False, True, True, False]
    ds = read_tum(copy, intrinsics=(100, 101, 80, 60), distortion=(0.1, -0.2, 0.001, 0.002))
    np.testing.assert_array_equal(ds.camera.K, [[100, 0, 80], [0, 101, 60], [0, 0, 1]])
    np.testing.assert_array_equal(ds.camera.D, [0.1, -0.2, 0.001, 0.002, 0.0])
    assert (ds.camera.width, ds.camera.height) == (160, 120)


def test_tum_errors(tmp_path):
    write_png(tmp_path / "rgb" / "1.000000.png")
    (tmp_path / "rgb.txt").write_text("# timestamp filename\n1.0 rgb/1.000000.png\n"
                                      "1.1 rgb/1.100000.png\n")
    with pytest.raises(DatasetError, match=r"1 of 2 files .* missing.*1\.100000\.png"):
        open_dataset(tmp_path, preset="fr3")
    (tmp_path / "rgb.txt").write_text("1.0 rgb/1.000000.png extra\n")
    with pytest.raises(DatasetError, match="line 1"):
        read_tum(tmp_path, preset="fr3")
    (tmp_path / "rgb.txt").write_text("1.0 rgb/1.000000.png\n")
    with pytest.raises(DatasetError, match="unknown intrinsics preset 'fr9'"):
        read_tum(tmp_path, preset="fr9")
    with pytest.raises(DatasetError, match="not both"):
        read_tum(tmp_path, preset="fr3", intrinsics=(500, 500, 16, 12))
    with pytest.raises(DatasetError, match="distortion needs intrinsics"):
        read_tum(tmp_path, distortion=(0.1, 0, 0, 0, 0))
    ds = read_tum(tmp_path, preset="fr3")
    np.testing.assert_array_equal(ds.camera.K[[0, 1, 0, 1], [0, 1, 2, 2]], TUM_PRESETS["fr3"][0])
    assert not ds.camera.is_distorted and ds.groundtruth is None


# --- KITTI ---------------------------------------------------------------------------------

@pytest.fixture
def kitti_folder(tmp_path):
    return make_kitti_folder(tmp_path / "sequences" / "05")


def test_kitti_layout(kitti_folder):
    ds = open_dataset(kitti_folder)
    assert ds.kind == "kitti" and ds.name == "05" and len(ds) == 4
    np.testing.assert_array_equal(ds.camera.K, [[718.856, 0, 607.1928], [0, 718.856, 185.2157],
                                                [0, 0, 1]])
    assert (ds.camera.width, ds.camera.height) == (40, 12) and not ds.camera.is_distorted
    assert [f.stamp_ns for f in ds.frames] == [0, 103_616_200, 207_232_400, 310_848_600]
    assert [f.image_path.name for f in ds.frames] == [f"{i:06d}.png" for i in range(4)]
    assert all(f.image_path.parent.name == "image_0" for f in ds.frames)
    np.testing.assert_allclose(ds.groundtruth.stamps, KITTI_TIMES, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.groundtruth.poses, kitti_poses(), atol=1e-9)


def test_kitti_external_poses_and_errors(kitti_folder, tmp_path):
    external = tmp_path / "poses" / "05.txt"
    external.parent.mkdir()
    (kitti_folder / "poses.txt").rename(external)
    assert read_kitti(kitti_folder).groundtruth is None
    ds = open_dataset(kitti_folder, poses=external)
    np.testing.assert_allclose(ds.groundtruth.poses, kitti_poses(), atol=1e-9)
    with pytest.raises(DatasetError, match="does not take intrinsics"):
        open_dataset(kitti_folder, intrinsics=(1, 1, 1, 1))
    with pytest.raises(DatasetError, match="do not exist"):
        read_kitti(kitti_folder, poses=tmp_path / "nope.txt")
    (kitti_folder / "times.txt").write_text("0.0\n0.1\n")
    with pytest.raises(DatasetError, match="2 stamps for 4 images"):
        read_kitti(kitti_folder)
    (kitti_folder / "calib.txt").unlink()
    (kitti_folder / "times.txt").write_text("".join(f"{t}\n" for t in KITTI_TIMES))
    with pytest.raises(DatasetError, match="calib.txt does not exist"):
        read_kitti(kitti_folder)


# --- EuRoC ---------------------------------------------------------------------------------

@pytest.fixture
def euroc_folder(tmp_path):
    return make_euroc_folder(tmp_path / "MH_01_easy")


def test_euroc_layout_and_camera_pose(euroc_folder):
    ds = open_dataset(euroc_folder)
    assert ds.kind == "euroc" and ds.name == "MH_01_easy" and len(ds) == 3
    assert [f.stamp_ns for f in ds.frames] == EUROC_STAMPS_NS
    assert ds.frames[1].seconds == pytest.approx(1403636579.813555456, abs=1e-6)
    assert ds.frames[0].image_path == euroc_folder / "mav0/cam0/data/1403636579763555584.png"
    cam = ds.camera
    assert (cam.width, cam.height) == (752, 480) and cam.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(cam.K, [[458.654, 0, 367.215], [0, 457.296, 248.375],
                                          [0, 0, 1]])
    np.testing.assert_array_equal(cam.D, [-0.28340811, 0.07395907, 0.00019359, 1.76187114e-05,
                                          0.0])
    gt = ds.groundtruth
    # the ground truth's integer ns, rounded once to float seconds
    assert gt.stamps.tolist() == [(ns + 1_000_000) / 10**9 for ns in EUROC_STAMPS_NS]
    # camera centre = body position + R_world_body @ t_BS = (1, 2, 3) + Rz90 @ (0.1, 0, 0)
    np.testing.assert_allclose(gt.positions[0], [1.0, 2.1, 3.0], atol=1e-12)
    np.testing.assert_allclose(gt.positions[2], [3.0, 2.1, 3.0], atol=1e-12)
    R_expected = (Rotation.from_euler("z", 90, degrees=True)
                  * Rotation.from_euler("x", 90, degrees=True)).as_matrix()
    np.testing.assert_allclose(gt.poses[0, :3, :3], R_expected, atol=1e-12)
    # the cases a wrong convention would give: T_BS @ T_WB, or the quaternion read as x y z w
    assert not np.allclose(gt.positions[0], [1.1, -3.0, 2.0])
    assert not np.allclose(gt.positions[0], [1.1, 2.0, 3.0])


def test_euroc_errors(euroc_folder):
    with pytest.raises(DatasetError, match="does not take preset"):
        open_dataset(euroc_folder, preset="fr1")
    with pytest.raises(DatasetError, match="cam1"):
        read_euroc(euroc_folder, camera="cam1")
    (euroc_folder / "mav0/cam0/data" / f"{EUROC_STAMPS_NS[1]}.png").unlink()
    with pytest.raises(DatasetError, match=f"1 of 3 files .*{EUROC_STAMPS_NS[1]}.png"):
        read_euroc(euroc_folder)


# --- image folders and detection ----------------------------------------------------------

def test_image_folder_order_rate_and_intrinsics(tmp_path):
    for name in ("frame_10.png", "frame_2.png", "frame_1.png"):
        write_png(tmp_path / name, width=48, height=30, channels=3)
    (tmp_path / "notes.txt").write_text("not an image")
    ds = open_dataset(tmp_path, intrinsics=(50, 51, 24, 15), distortion=(0.1, 0.01, 0, 0))
    assert ds.kind == "images" and ds.groundtruth is None and ds.depth_unit is None
    assert [f.image_path.name for f in ds.frames] == ["frame_1.png", "frame_2.png",
                                                      "frame_10.png"]
    assert [f.stamp_ns for f in ds.frames] == [0, 100_000_000, 200_000_000]
    assert (ds.camera.width, ds.camera.height) == (48, 30)
    assert ds.camera.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(ds.camera.D, [0.1, 0.01, 0, 0, 0])
    ds = read_image_folder(tmp_path, intrinsics=(50, 51, 24, 15), rate_hz=25)
    assert [f.stamp_ns for f in ds.frames] == [0, 40_000_000, 80_000_000]
    assert not ds.camera.is_distorted
    with pytest.raises(DatasetError, match="give intrinsics"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="rate_hz must be positive"):
        read_image_folder(tmp_path, intrinsics=(50, 51, 24, 15), rate_hz=0)
    with pytest.raises(DatasetError, match="3 coefficients"):
        read_image_folder(tmp_path, intrinsics=(50, 51, 24, 15), distortion=(0.1, 0.2, 0.3))


def test_image_folder_stamp_names(tmp_path):
    for name in ("9.5", "10.25", "10.125"):
        write_png(tmp_path / f"{name}.png")
    ds = read_image_folder(tmp_path, intrinsics=(30, 30, 16, 12))
    assert [f.stamp_ns for f in ds.frames] == [9_500_000_000, 10_125_000_000, 10_250_000_000]


def test_detection_and_missing_folders(tmp_path, kitti_folder, euroc_folder):
    assert dataset_kind(kitti_folder) == "kitti"
    assert dataset_kind(euroc_folder) == "euroc"
    assert dataset_kind(tmp_path) == "images"
    with pytest.raises(DatasetError, match="does not exist") as info:
        open_dataset(tmp_path / "missing")
    assert isinstance(info.value, LightGlueRosError)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images"):
        open_dataset(empty, intrinsics=(1, 1, 1, 1))
