"""Relative pose on ScanNet pairs against the official matches + OpenCV reference, and homography
accuracy on HPatches."""
import pytest

from conftest import GOLDEN, SHARED, needs_shared, run_cli_json
from lightglue_ros.errors import DatasetError
from lightglue_ros.evaluation.pairs import read_pairs

PAIRS = SHARED / "data/scannet_pairs_with_gt.txt"


@pytest.mark.slow
@needs_shared
def test_scannet_auc_is_at_least_the_official_reference():
    ours = run_cli_json("eval-pairs", "--extractor", "aliked", "--pairs", str(PAIRS),
                        "--images", str(SHARED / "data/images/scannet"),
                        "--reference", str(GOLDEN / "aliked"))
    assert ours["pairs"] == ours["reference"]["pairs"] == 8
    for key in ("auc@5", "auc@10", "auc@20"):
        assert ours[key] >= ours["reference"][key], (key, ours[key], ours["reference"][key])


def test_pairs_file_errors(tmp_path):
    bad = tmp_path / "pairs.txt"
    bad.write_text("a.png b.png 0 0 1 2 3\n")
    with pytest.raises(DatasetError, match="expected 38 fields"):
        read_pairs(bad)
    bad.write_text("# nothing\n")
    with pytest.raises(DatasetError, match="no pairs"):
        read_pairs(bad)


@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize("extractor", ["aliked", "disk"])
def test_hpatches_churchill_corner_error(extractor):
    """Under glue-factory's evaluation settings (PROTOCOL), the command the README quotes."""
    result = run_cli_json("eval-homography", str(SHARED / "data/hpatches_v_churchill"),
                          "--extractor", extractor)
    errors = result["corner_error_px"]
    assert [k for k in errors] == ["1-2", "1-3", "1-4", "1-5", "1-6"]
    assert all(errors[k] <= 3.0 for k in ("1-2", "1-3", "1-4", "1-5")), errors
