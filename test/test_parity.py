"""The documented parity command against golden outputs of the official LightGlue (CPU float32)."""
import pytest

from conftest import GOLDEN, needs_shared, run_cli_json


@pytest.fixture(scope="module")
def report():
    return run_cli_json("parity", "--golden", str(GOLDEN))


@needs_shared
@pytest.mark.parametrize("extractor", ["aliked", "disk"])
def test_parity_meets_the_bars(report, extractor):
    entry = report[extractor]
    assert entry["keypoints_within_1px"] >= 0.98
    assert entry["descriptor_cosine"] >= 0.99
    for mode in ("adaptive", "full"):
        m = entry[mode]
        assert m["pairs"] >= 20
        assert m["match_agreement"] >= 0.995
        assert m["stop_agreement"] >= 0.95
        assert m["max_score_diff"] <= 1e-3

