"""The benchmark command keeps working (tiny runs; no timing is asserted)."""
import json

import pytest

from conftest import run_cli_json

pytestmark = pytest.mark.slow  # each run loads the networks and times several modes

# headline figure -> where it comes from in the middle budget's table
HEADLINE = {"fps_two_stage": "fps_two_stage", "fps_tracking": "fps_tracking",
            "fps_pairwise": "fps_pairwise", "two_stage_speedup": "two_stage_speedup",
            "mean_layers": "mean_layers", "match_ms_adaptive": ("match_adaptive", "median_ms"),
            "match_ms_full": ("match_full", "median_ms"),
            "match_ms_baseline": ("match_baseline", "median_ms"),
            "throughput_two_stage": "throughput_two_stage"}


def assert_figures_come_from_their_samples(budget: dict) -> None:
    """Each rate is the inverse of its median time, the speedup the ratio of the two rates."""
    for fps, stats in (("fps_two_stage", budget["two_stage"]["interval"]),
                       ("fps_tracking", budget["tracking"]), ("fps_pairwise", budget["pairwise"])):
        assert budget[fps] == pytest.approx(1e3 / stats["median_ms"]), fps
        assert stats["samples"] > 0 and 0 < stats["median_ms"] <= stats["p99_ms"], fps
    for rate, stats in (("throughput_two_stage", budget["two_stage"]["interval"]),
                        ("throughput_tracking", budget["tracking"])):
        assert budget[rate] == pytest.approx(1e3 / stats["mean_ms"]), rate
    assert budget["two_stage_speedup"] == pytest.approx(
        budget["fps_two_stage"] / budget["fps_tracking"])


def test_bench_tiny_run_reports_every_figure_and_plots(tmp_path):
    """The default (xfeat on a CPU): two-stage and sequential tracking, pairwise, and the official
    XFeat pairwise code path, with a stage profile."""
    plot, out = tmp_path / "bench.png", tmp_path / "bench.json"
    figures = run_cli_json("bench", "--keypoints", "128,256", "--frames", "4", "--segment", "2",
                           "--hard-pairs", "1", "--width", "320", "--height", "240", "--plot",
                           str(plot), "--out", str(out), "--projection-study")
    assert figures["extractor"] == "xfeat" and "(auto)" in figures["model"]
    assert [b["keypoints"] for b in figures["budgets"]] == [128, 256]
    middle = figures["budgets"][1]  # the headline figures are the middle budget's
    for key, source in HEADLINE.items():
        value = middle[source] if isinstance(source, str) else middle[source[0]][source[1]]
        assert figures[key] == value, key
    assert 100 < figures["peak_rss_mb"] < 100_000  # torch is loaded; megabytes, not bytes
    for budget in figures["budgets"]:
        assert_figures_come_from_their_samples(budget)
        assert budget["frames"] == 4 and 1 <= budget["mean_layers"] <= 6  # LighterGlue: 6
        assert 0.9 * budget["keypoints"] <= budget["mean_keypoints"] <= budget["keypoints"]
        assert budget["hard_pairs"]["pairs"] == 1
        two = budget["two_stage"]
        assert two["interval"]["samples"] == 2  # 2 segments of 2 frames: 1 interval each
        assert two["latency"]["samples"] == budget["tracking"]["samples"] == 4
        assert two["lost_frames"] == 0
        assert set(two["stages"]) >= {"extract_ms", "match_ms", "pose_ms", "slower_stage"}
        official = budget["official"]
        assert official["pairwise"]["samples"] == 4
        assert official["fps"] == pytest.approx(1e3 / official["pairwise"]["median_ms"])
        assert official["extract"]["samples"] == 8  # both images of each pair
        assert budget["two_stage_vs_official"] == pytest.approx(
            budget["fps_two_stage"] / official["fps"])
        study = budget["projection_study"]  # both trackers with track_by_projection off, on
        assert set(study) == {"False", "True"}
        for setting in study.values():
            assert setting["fps_two_stage"] == pytest.approx(
                1e3 / setting["two_stage"]["interval"]["median_ms"])
            assert setting["tracking"]["samples"] == 4 and setting["lost_frames"] == 0
            assert 0 <= setting["matched_share"] <= 1
        assert study["False"]["matched_share"] == 1
        equal = budget["official_equal_threads"]  # both stages' threads against as many
        assert equal["threads"] == 2 * figures["threads_per_stage"]
        assert budget["vs_official_equal_threads"] == pytest.approx(
            budget["fps_two_stage"] / equal["fps"])
        assert budget["vs_official_equal_threads_throughput"] == pytest.approx(
            budget["throughput_two_stage"] / equal["throughput"])
    assert figures["vs_official_equal_threads"] == middle["vs_official_equal_threads"]
    assert figures["vs_official_equal_threads_throughput"] == \
        middle["vs_official_equal_threads_throughput"]
    assert figures["machine_before"]["cores"] >= 1
    assert json.loads(out.read_text()) == figures
    assert plot.is_file() and plot.stat().st_size > 10_000


def test_bench_aliked_runs_without_the_official_xfeat_rows():
    figures = run_cli_json("bench", "--extractor", "aliked", "--keypoints", "128", "--frames",
                           "2", "--hard-pairs", "0", "--width", "320", "--height", "240",
                           "--no-depth")
    assert figures["extractor"] == "aliked" and not figures["depth"]
    budget = figures["budgets"][0]
    assert "official" not in budget
    assert_figures_come_from_their_samples(budget)
    assert 1 <= budget["mean_layers"] <= 9 and budget["two_stage"]["lost_frames"] == 0


def test_bench_takes_the_tracking_parameters():
    """The tracker's flags reach both trackers and the JSON says what was set: with keyframes
    matched in the background most frames are placed by flow (matched_share below 1)."""
    figures = run_cli_json("bench", "--keypoints", "256", "--frames", "8", "--segment", "4",
                           "--hard-pairs", "0", "--width", "320", "--height", "240",
                           "--no-depth", "--no-official", "--track-by-flow",
                           "--keyframe-lag-frames", "2")
    assert figures["parameters"] == {"track_by_flow": True, "keyframe_lag_frames": 2}
    budget = figures["budgets"][0]
    assert_figures_come_from_their_samples(budget)
    assert budget["two_stage"]["lost_frames"] == 0
    assert 0 < budget["matched_share"] < 1


def test_bench_runs_the_node_budget_by_default():
    """Without --keypoints: one budget, the configuration's (max_keypoints auto: 768 on a CPU),
    and the headline is its."""
    figures = run_cli_json("bench", "--frames", "2", "--segment", "2", "--hard-pairs", "0",
                           "--width", "320", "--height", "240", "--no-depth")
    assert [b["keypoints"] for b in figures["budgets"]] == [768] == [figures["keypoints"]]
    assert "768 keypoints (auto)" in figures["model"]
    assert figures["vs_official_equal_threads"] == pytest.approx(
        figures["fps_two_stage"] / figures["budgets"][0]["official_equal_threads"]["fps"])
