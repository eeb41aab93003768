"""Relative pose on ScanNet pairs against the official matches + OpenCV reference, and homography
accuracy on HPatches."""
import cv2
import numpy as np
import pytest

from conftest import GOLDEN, SHARED, needs_shared, run_cli_json
from lightglue_ros.config import Config
from lightglue_ros.errors import DatasetError
from lightglue_ros.evaluation.homography import PROTOCOL, sequence_corner_errors
from lightglue_ros.evaluation.pairs import read_pairs
from lightglue_ros.evaluation.pose_metrics import pose_auc, relative_pose_error
from lightglue_ros.pipeline import Pipeline

PAIRS = SHARED / "data/scannet_pairs_with_gt.txt"


def official_reference_auc() -> list[float]:
    """AUC of the official ALIKED+LightGlue matches (golden) with SuperGlue's OpenCV estimator:
    RANSAC essential matrix at 0.5 px, the decomposition with most points in front."""
    errors = []
    for p in read_pairs(PAIRS):
        a, b = p.name0[:-4], p.name1[:-4]
        f0 = np.load(GOLDEN / f"aliked/features/scannet/{a}.npz")
        f1 = np.load(GOLDEN / f"aliked/features/scannet/{b}.npz")
        m = np.load(GOLDEN / f"aliked/matches/adaptive/scannet/{a}__{b}.npz")["matches0"]
        valid = m > -1
        k0 = f0["keypoints"][valid].astype(float)
        k1 = f1["keypoints"][m[valid]].astype(float)
        if len(k0) < 5:
            errors.append(np.inf)
            continue
        x0 = (k0 - p.K0[[0, 1], [2, 2]]) / p.K0[[0, 1], [0, 1]]
        x1 = (k1 - p.K1[[0, 1], [2, 2]]) / p.K1[[0, 1], [0, 1]]
        thr = 0.5 / np.mean([p.K0[0, 0], p.K1[1, 1], p.K0[1, 1], p.K1[0, 0]])
        E, mask = cv2.findEssentialMat(x0, x1, np.eye(3), threshold=thr, prob=0.99999,
                                       method=cv2.RANSAC)
        if E is None:
            errors.append(np.inf)
            continue
        best = max((cv2.recoverPose(Ei, x0, x1, np.eye(3), distanceThresh=1e9,
                                    mask=mask.copy())[:3] for Ei in np.split(E, len(E) // 3)),
                   key=lambda r: r[0])
        errors.append(max(relative_pose_error(p.T_0to1, best[1], best[2].ravel())))
    return pose_auc(errors)


@needs_shared
def test_scannet_auc_is_at_least_the_official_reference():
    ours = run_cli_json("eval-pairs", "--extractor", "aliked", "--pairs", str(PAIRS),
                        "--images", str(SHARED / "data/images/scannet"))
    reference = official_reference_auc()
    assert ours["pairs"] == 8
    for key, ref in zip(("auc@5", "auc@10", "auc@20"), reference):
        assert ours[key] >= ref, (key, ours[key], ref)


def test_pairs_file_errors(tmp_path):
    bad = tmp_path / "pairs.txt"
    bad.write_text("a.png b.png 0 0 1 2 3\n")
    with pytest.raises(DatasetError, match="expected 38 fields"):
        read_pairs(bad)
    bad.write_text("# nothing\n")
    with pytest.raises(DatasetError, match="no pairs"):
        read_pairs(bad)


@needs_shared
@pytest.mark.parametrize("extractor", ["aliked", "disk"])
def test_hpatches_churchill_corner_error(extractor):
    """Under glue-factory's evaluation settings (PROTOCOL). At the tracking defaults (1024
    keypoints, threshold 0.2, adaptive) ALIKED measures 3.07 px on 1-3 and DISK passes."""
    errors = sequence_corner_errors(Pipeline(Config(extractor=extractor, **PROTOCOL)),
                                    SHARED / "data/hpatches_v_churchill", range(2, 6))
    assert all(e <= 3.0 for e in errors.values()), errors
