"""The peer's instruments: the ORB vocabulary trainer writes what DBoW2 reads (ORB-SLAM3 runs
themselves are `make figures-peer`: its binding is not a dependency of the package), and the
settings carry the clip's calibration."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import SHARED
from lightglue_ros_tools.peer import orb_vocabulary as voc

HPATCHES = SHARED / "data" / "hpatches_v_churchill"
KITTI06 = SHARED / "data" / "kitti06_stereo_0_50"


def test_hamming_and_majority_are_bitwise():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (7, 32), dtype=np.uint8)
    b = rng.integers(0, 256, (5, 32), dtype=np.uint8)
    bits = lambda x: np.unpackbits(x, axis=1).astype(int)  # noqa: E731
    expected = np.abs(bits(a)[:, None] - bits(b)[None]).sum(-1)
    assert np.array_equal(voc.hamming(a, b), expected)
    # three descriptors: each bit is the one two of them agree on
    three = a[:3]
    assert np.array_equal(bits(voc.majority(three)[None])[0], (bits(three).sum(0) >= 2))


@pytest.mark.skipif(not HPATCHES.is_dir(), reason=f"{HPATCHES} is absent (../shared)")
def test_vocabulary_is_a_dbow2_tree(tmp_path):
    paths = sorted(HPATCHES.glob("*.ppm"))[:3]
    per_image = [voc.orb_descriptors(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), 300)
                 for p in paths]
    nodes = voc.train(per_image)
    path = tmp_path / "voc.txt"
    voc.write(path, nodes)
    lines = path.read_text().split("\n")
    assert lines[0] == "10 6 0 0" and lines[-1]  # no trailing empty line: DBoW2 reads it as a node
    depth = {0: 0}
    leaves = 0
    for node_id, line in enumerate(lines[1:], start=1):
        fields = line.split()
        assert len(fields) == 2 + 32 + 1
        parent, leaf = int(fields[0]), int(fields[1])
        assert parent < node_id and parent in depth  # breadth first: parents come first
        assert parent == 0 or int(lines[parent].split()[1]) == 0  # a leaf has no children
        depth[node_id] = depth[parent] + 1
        assert depth[node_id] <= voc.LEVELS
        assert all(0 <= int(b) <= 255 for b in fields[2:34])
        weight = float(fields[34])
        if leaf:
            leaves += 1
            # TF-IDF: log(images / images with the word), 0 for a word in every image
            assert any(abs(weight - np.log(3 / n)) < 1e-6 for n in (1, 2, 3))
        else:
            assert weight == 0.0
    descriptors = sum(len(d) for d in per_image)
    assert 0 < leaves <= descriptors


@pytest.mark.skipif(not KITTI06.is_dir(), reason=f"{KITTI06} is absent (../shared)")
def test_settings_carry_the_clip_calibration():
    from lightglue_ros.datasets.kitti import read_kitti
    from lightglue_ros_tools.peer.orbslam3_kitti import settings

    dataset = read_kitti(KITTI06)
    values = dict(line.split(": ", 1) for line in settings(dataset).splitlines()[1:])
    P1 = [line for line in (KITTI06 / "calib.txt").read_text().splitlines()
          if line.startswith("P1:")][0].split()[1:]
    # ORB-SLAM3's bf is fx * baseline: minus P1's Tx
    assert float(values["Camera.bf"]) == pytest.approx(-float(P1[3]), rel=1e-12)
    assert float(values["Camera.fx"]) == pytest.approx(float(P1[0]), rel=1e-12)
    assert int(values["Camera.width"]) == dataset.camera.width
    assert 9.0 < float(values["Camera.fps"]) < 11.0  # KITTI's 10 Hz, from times.txt
