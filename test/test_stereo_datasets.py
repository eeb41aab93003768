"""Stereo datasets: KITTI's rectified image_0/image_1 with P1, EuRoC's raw cam0/cam1 rectified
from sensor.yaml, and the FrameInputs they give the tracker."""
from __future__ import annotations

import numpy as np
import pytest
from dataset_fixtures import KITTI_P0, KITTI_P1, make_kitti_folder
from stereo_fixtures import BASELINE_M, PLANE_Z_M, image_shift, make_euroc_stereo_folder

from conftest import SHARED
from lightglue_ros.cli.main import build_parser
from lightglue_ros.datasets import open_dataset, read_euroc, read_kitti
from lightglue_ros.datasets.frames import dataset_frames
from lightglue_ros.errors import DatasetError

KITTI06 = SHARED / "data" / "kitti06_stereo_0_50"
needs_kitti06 = pytest.mark.skipif(not KITTI06.is_dir(),
                                   reason=f"{KITTI06} absent (shared test data)")


@needs_kitti06
def test_kitti06_is_read_as_a_rectified_pair():
    ds = open_dataset(KITTI06)
    assert len(ds) == 51 and ds.stereo is not None and not ds.stereo.resamples
    assert ds.stereo.baseline_m == pytest.approx(3.798145e2 / 7.070912e2, rel=1e-9)
    assert ds.camera is ds.stereo.camera and not ds.camera.is_distorted
    assert all(f.right_path == KITTI06 / "image_1" / f.image_path.name for f in ds.frames)
    frame = next(dataset_frames(ds))
    assert frame.right is not None and frame.right.shape == frame.image.shape == (370, 1226)
    assert frame.baseline_m == ds.stereo.baseline_m
    assert not np.array_equal(frame.image, frame.right)

    mono = open_dataset(KITTI06, stereo=False)
    assert mono.stereo is None and all(f.right_path is None for f in mono.frames)
    frame = next(dataset_frames(mono))
    assert frame.right is None and frame.baseline_m is None


def test_kitti_stereo_calibration_errors(tmp_path):
    root = make_kitti_folder(tmp_path / "05")
    assert read_kitti(root).stereo.baseline_m == pytest.approx(386.1448 / 718.856)
    (root / "calib.txt").write_text(f"P0: {KITTI_P0}\n")
    with pytest.raises(DatasetError, match="no 'P1:' line"):
        read_kitti(root)
    assert read_kitti(root, stereo=False).stereo is None
    swapped = KITTI_P0.split()
    swapped[3] = "3.861448e+02"              # right camera at -x: image_0 and image_1 swapped
    (root / "calib.txt").write_text(f"P0: {KITTI_P0}\nP1: {' '.join(swapped)}\n")
    with pytest.raises(DatasetError, match="swapped"):
        read_kitti(root)
    (root / "calib.txt").write_text(f"P0: {KITTI_P0}\nP1: {KITTI_P0[:-1]}\n")
    with pytest.raises(DatasetError, match="baseline"):
        read_kitti(root)                     # zero baseline: no depth from the pair
    (root / "image_1" / "000002.png").unlink()
    (root / "calib.txt").write_text(f"P0: {KITTI_P0}\nP1: {KITTI_P1}\n")
    with pytest.raises(DatasetError, match="1 of 4 right images are missing.*000002.png"):
        read_kitti(root)


def test_euroc_raw_pair_is_rectified(tmp_path):
    root = make_euroc_stereo_folder(tmp_path / "V1_01_easy")
    ds = read_euroc(root)
    rect = ds.stereo
    assert rect is not None and rect.resamples
    assert rect.baseline_m == pytest.approx(BASELINE_M, rel=0.01)
    assert ds.camera is rect.camera and not ds.camera.is_distorted
    assert [f.right_path is not None for f in ds.frames] == [True, True, False]
    frames = list(dataset_frames(ds))
    first = frames[0]
    assert first.image.shape == first.right.shape == (ds.camera.height, ds.camera.width)
    assert first.baseline_m == rect.baseline_m
    dx, dy = image_shift(first.image, first.right)
    assert abs(dy) < 0.2
    assert dx == pytest.approx(ds.camera.fx * rect.baseline_m / PLANE_Z_M, abs=0.3)
    assert frames[2].right is None and frames[2].baseline_m is None

    mono = read_euroc(root, stereo=False)
    assert mono.stereo is None and mono.camera.is_distorted
    raw_left = next(dataset_frames(mono)).image
    raw_right = next(dataset_frames(read_euroc(root, camera="cam1"))).image
    assert abs(image_shift(raw_left, raw_right)[1]) > 1     # unrectified rows do not line up
    # the same optical centre; the camera frame turned by the rectifying rotation
    rel = np.linalg.inv(mono.groundtruth.poses) @ ds.groundtruth.poses
    np.testing.assert_allclose(rel[:, :3, 3], 0, atol=1e-12)
    np.testing.assert_allclose(rel[:, :3, :3], np.broadcast_to(rect.left_rotation.T, (3, 3, 3)),
                               atol=1e-12)


def test_euroc_swapped_pair_is_an_error(tmp_path):
    root = make_euroc_stereo_folder(tmp_path / "V1_01_easy", swapped=True)
    with pytest.raises(DatasetError, match="swapped"):
        read_euroc(root)
    assert read_euroc(root, stereo=False).stereo is None


@pytest.mark.parametrize("flags,stereo", [([], True), (["--no-stereo"], False)])
def test_track_reads_the_pair_unless_no_stereo(tmp_path, monkeypatch, flags, stereo):
    import lightglue_ros.datasets as datasets

    class Opened(Exception):
        pass

    def opened(path, **options):
        raise Opened(options["stereo"])

    monkeypatch.setattr(datasets, "open_dataset", opened)
    args = build_parser().parse_args(["track", str(tmp_path), "--extractor", "xfeat", *flags])
    with pytest.raises(Opened) as seen:
        args.run(args)
    assert seen.value.args == (stereo,)
