"""Parity with the official code: the near-tie rules on a matcher whose every value is known, the
traced match is the backend's own, golden discovery, and ``lightglue-ros parity`` (torch, CPU
float32) meeting the bars on ../shared/golden."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import GOLDEN, assert_parity_meets_the_bars, needs_shared, run_cli
from lightglue_ros.config import EXTRACTORS, Config
from lightglue_ros.evaluation.match_trace import matcher_stages, traced_match
from lightglue_ros.evaluation.near_ties import SCORE_TOLERANCE, compare_pair
from lightglue_ros.evaluation.parity import GoldenSet, config_for, find_images, run_parity
from lightglue_ros.features import Features
from lightglue_ros.models.lightglue import AdaptiveConf, confidence_threshold

TOL = SCORE_TOLERANCE


# --- a matcher made of tables ---------------------------------------------------------------------
class TableStages:
    """Stages whose outputs are looked up per point: token confidences and matchability per layer
    and point, and one probability matrix P, so that a second table within ``TOL`` of the first is
    exactly 'another machine'. A descriptor carries its point's index and side."""

    n_layers = 9

    def __init__(self, tokens: np.ndarray, matchability: np.ndarray, P: np.ndarray) -> None:
        self.m = P.shape[0]
        self.tokens, self.match = torch.from_numpy(tokens), torch.from_numpy(matchability)
        self.log_p = torch.from_numpy(np.log(P)).float()

    def _index(self, desc: torch.Tensor) -> torch.Tensor:
        return (desc[0, :, 0] + self.m * desc[0, :, 1]).long()  # row in the per-point tables

    def encode(self, kpts, desc):
        return desc, kpts

    def layer(self, i, desc0, desc1, enc0, enc1):
        return desc0.clone(), desc1.clone()

    def confidence(self, i, desc0, desc1):
        return self.tokens[i, self._index(desc0)][None], self.tokens[i, self._index(desc1)][None]

    def matchability(self, i, desc):
        return self.match[i, self._index(desc)][None]

    def assign(self, i, desc0, desc1):
        i0, i1 = desc0[0, :, 0].long(), desc1[0, :, 0].long()
        scores = torch.full((1, len(i0) + 1, len(i1) + 1), -10.0)
        scores[0, :-1, :-1] = self.log_p[i0][:, i1]
        return scores


def tables(rng: np.random.Generator, m: int = 50, n: int = 40):
    """A planted matching with near-ties of every kind: scores at the filter threshold, rows and
    columns with a second candidate within the tolerance, one token at the exit threshold (with
    depth_confidence 0.9 the exit hangs on it), unmatched points with matchability at the pruning
    thresholds (0.01 and 0.05)."""
    P = rng.uniform(1e-4, 0.02, (m, n))
    partner = rng.permutation(n)
    P[np.arange(n), partner] = rng.uniform(0.03, 0.9, n)  # rows >= n have no partner
    P[:8, partner[:8]] = 0.1 + rng.uniform(-TOL / 2, TOL / 2, 8)  # at the filter threshold
    for r in range(8, 16):  # a second candidate in the row or in the column
        c = partner[r]
        if r % 2:
            P[r, (c + 1) % n] = P[r, c] + rng.uniform(-TOL / 2, TOL / 2)
        else:
            P[(r + 20) % m, c] = P[r, c] + rng.uniform(-TOL / 2, TOL / 2)
    layers = TableStages.n_layers - 1
    thresholds = np.array([confidence_threshold(i) for i in range(layers)])[:, None]
    tokens = thresholds + rng.uniform(0.02, 0.1, (layers, m + n))
    tokens[:, -8:] = thresholds - 0.3  # 8 uncertain points of 90: exit at 0.9 needs all others
    tokens[:, :1] = thresholds + rng.uniform(-TOL / 2, TOL / 2, (layers, 1))
    matchability = rng.uniform(0.1, 1, (layers, m + n))
    matchability[:, n:m] = np.repeat([0.01, 0.05], (m - n) // 2) + rng.uniform(
        -TOL / 2, TOL / 2, (layers, m - n))
    return np.minimum(tokens, 1), matchability, np.clip(P, 1e-6, 1.0)


def features(count: int, side: int) -> Features:
    desc = np.stack([np.arange(count), np.full(count, side)], 1)
    return Features.from_numpy(np.random.default_rng(count).uniform(0, 100, (count, 2)),
                               np.ones(count), desc, (100, 100))


def run_tables(stages: TableStages, conf: AdaptiveConf):
    m, n = stages.log_p.shape
    return traced_match(stages, conf, torch.device("cpu"), features(m, 0), features(n, 1))


def as_reference(matches) -> dict:
    return {"matches0": matches.matches0, "matching_scores0": matches.scores0,
            "matches1": matches.matches1, "stop": np.int32(matches.layers)}


MODES = [AdaptiveConf(-1, -1, 0.1), AdaptiveConf(0.95, 0.99, 0.1), AdaptiveConf(-1, 0.95, 0.1),
         AdaptiveConf(0.9, -1, 0.1), AdaptiveConf(0.9, 0.99, 0.1)]


@pytest.mark.parametrize("conf", MODES, ids=lambda c: f"depth{c.depth_confidence}"
                                                      f"-width{c.width_confidence}")
def test_every_reference_within_the_tolerance_is_explained(conf):
    """A reference computed from values each within 0.9 tol of ours differs from ours only by
    near-tie flips: no disagreement, and its scores differ by at most tol where no decision
    flipped. Over the seeds the flips do happen (the cases are near-ties by construction)."""
    flips = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        tokens, matchability, P = tables(rng)
        ours, trace = run_tables(TableStages(tokens, matchability, P), conf)
        shift = lambda a: np.clip(a + rng.uniform(-0.9 * TOL, 0.9 * TOL, a.shape), 1e-6, 1)
        ref, _ = run_tables(TableStages(shift(tokens), shift(matchability), shift(P)), conf)
        result = compare_pair(ours, trace, as_reference(ref), conf, TableStages.n_layers)
        assert result.disagreements == 0, (seed, result)
        assert result.stop_same or result.exit_flip, (seed, result)
        assert result.max_score_diff <= TOL, (seed, result)
        flips += result.flips + result.exit_flip
    assert flips > 0


def test_the_same_outputs_are_bit_identical_and_real_differences_disagree():
    conf = AdaptiveConf(-1, -1, 0.1)
    tokens, matchability, P = tables(np.random.default_rng(0))
    ours, trace = run_tables(TableStages(tokens, matchability, P), conf)
    same = compare_pair(ours, trace, as_reference(ours), conf, 9)
    assert same.identical and same.same == same.points and same.max_score_diff == 0
    moved = P.copy()
    clear = np.flatnonzero(ours.scores0 > 0.3)
    clear = clear[clear >= 16][:3]  # planted matches without a near-tie
    moved[clear, ours.matches0[clear]] = 0.01  # three clear matches lost
    far = np.flatnonzero((ours.matches0 >= 0) & (ours.scores0 > 0.2)
                         & (ours.scores0 < 0.8))[-1]
    moved[far, ours.matches0[far]] += 0.05  # a score off by 50 tolerances
    ref, _ = run_tables(TableStages(tokens, matchability, moved), conf)
    result = compare_pair(ours, trace, as_reference(ref), conf, 9)
    assert not result.identical
    assert result.disagreements == 3 and result.flips == 0  # the moved score: in max diff
    assert result.max_score_diff == pytest.approx(0.05, abs=1e-6)


def test_an_exit_far_from_the_threshold_is_a_disagreement():
    conf = AdaptiveConf(0.95, -1, 0.1)
    tokens, matchability, P = tables(np.random.default_rng(1))
    tokens[:] = 0.99  # everything settled: exit after the first layer
    ours, trace = run_tables(TableStages(tokens, matchability, P), conf)
    assert ours.layers == 1
    late = tokens.copy()
    late[0] = 0.5
    ref, _ = run_tables(TableStages(late, matchability, P), conf)
    result = compare_pair(ours, trace, as_reference(ref), conf, 9)
    assert not result.stop_same and not result.exit_flip


# --- golden discovery and configuration -----------------------------------------------------------
def test_an_extractor_this_build_lacks_is_skipped_with_the_reason(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "nosuch" / "features").mkdir(parents=True)
    (tmp_path / "nosuch" / "README.json").write_text(json.dumps(
        {"extractor_conf": {"nosuch": {"top_k": 10}}, "matcher_conf": {}}))
    report = run_parity(tmp_path)
    assert "not in this build" in report["nosuch"]["skipped"]


@needs_shared
def test_golden_configs_follow_each_extractors_readme():
    images = find_images(GOLDEN)
    aliked = GoldenSet(GOLDEN, "aliked", images)
    cfg = config_for(aliked.readme(), "aliked", "full", Config())
    assert (cfg.aliked_model, cfg.max_keypoints, cfg.detection_threshold, cfg.nms_radius) == \
        ("aliked-n16", 1024, 0.2, 2)
    assert (cfg.depth_confidence, cfg.width_confidence) == (-1, -1)
    xfeat = GoldenSet(GOLDEN, "xfeat", images)
    readme = xfeat.readme()
    assert xfeat.modes() == ["adaptive", "full", "official"]
    if "xfeat" in EXTRACTORS:
        cfg = config_for(readme, "xfeat", "official", Config())
        assert (cfg.max_keypoints, cfg.detection_threshold) == (1024, 0.05)
        assert (cfg.depth_confidence, cfg.width_confidence) == (-1, 0.95)
    else:
        assert readme["extractor_conf"]["xfeat"]["top_k"] == 1024


@needs_shared
def test_the_traced_match_is_the_pipelines_match():
    """parity judges the decisions of a traced run; it must be the backend's run, bit for bit."""
    from lightglue_ros.pipeline import Pipeline

    gold = GoldenSet(GOLDEN, "aliked", find_images(GOLDEN))
    pipe = Pipeline(Config(extractor="aliked", backend="torch"))
    stages, conf = matcher_stages(pipe.backend)
    path = gold.pair_files("adaptive")[3]
    f0, f1 = (gold.features(path.parent.name, name) for name in path.stem.split("__"))
    traced, trace = traced_match(stages, conf, pipe.device, f0, f1)
    plain = pipe.match(f0, f1)
    for key in ("matches0", "matches1", "scores0", "scores1", "pruned0", "pruned1"):
        assert np.array_equal(getattr(traced, key), getattr(plain, key)), key
    assert traced.layers == plain.layers
    assert trace.log_scores is not None and trace.layers[0].tokens0 is not None


# --- the command ----------------------------------------------------------------------------------
@needs_shared
def test_parity_meets_the_bars(parity_runs):
    """``lightglue-ros parity --golden ../shared/golden`` (torch, CPU float32)."""
    assert_parity_meets_the_bars(parity_runs.report("torch"))


@pytest.fixture
def small_golden(tmp_path):
    """Two ALIKED images and their pair in one mode, and an XFeat folder, from ../shared/golden."""
    root = tmp_path / "golden"
    pair = sorted((GOLDEN / "aliked" / "matches" / "full" / "freiburg").glob("*.npz"))[0]
    names = pair.stem.split("__")
    (root / "images" / "freiburg").mkdir(parents=True)
    for sub in ("aliked/features/freiburg", "aliked/matches/full/freiburg", "xfeat/features"):
        (root / sub).mkdir(parents=True)
    for name in names:
        (root / "images" / "freiburg" / f"{name}.png").symlink_to(
            find_images(GOLDEN) / "freiburg" / f"{name}.png")
        shutil.copy(GOLDEN / "aliked" / "features" / "freiburg" / f"{name}.npz",
                    root / "aliked" / "features" / "freiburg")
    shutil.copy(pair, root / "aliked" / "matches" / "full" / "freiburg")
    shutil.copy(GOLDEN / "README.json", root)
    shutil.copy(GOLDEN / "xfeat" / "README.json", root / "xfeat")
    return root


@pytest.mark.slow
@needs_shared
def test_parity_text_names_flips_bit_identity_bars_and_skips(small_golden):
    proc = run_cli("parity", "--golden", str(small_golden), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("aliked: keypoints within 1 px") and "bit-identical" in lines[0]
    assert "(2 images)" in lines[0]
    full = next(line for line in lines if line.strip().startswith("full"))
    for words in ("match agreement", "near-tie flips", "disagreements", "stop agreement",
                  "max score diff", "bit-identical", "(1 pairs)"):
        assert words in full, (words, full)
    assert "  bars: all met" in lines
    # the XFeat folder holds only its README.json: nothing to judge, said so
    assert any(line.startswith("xfeat: skipped: no golden features or matches") for line in lines)


def test_parity_without_images_is_a_clear_error(tmp_path):
    proc = run_cli("parity", "--golden", str(tmp_path), check=False)
    assert proc.returncode == 2 and "no input images" in proc.stderr
