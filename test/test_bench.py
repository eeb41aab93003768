"""The benchmark command keeps working (tiny runs; no timing is asserted)."""
import json

from conftest import run_cli_json

KEYS = ("fps_two_stage", "fps_tracking", "fps_pairwise", "two_stage_speedup",
        "match_ms_adaptive", "match_ms_full", "match_ms_baseline", "mean_layers", "peak_rss_mb")


def test_bench_tiny_run_reports_every_figure_and_plots(tmp_path):
    """The default (xfeat on a CPU): two-stage and sequential tracking, pairwise, and the official
    XFeat pairwise code path, with a stage profile."""
    plot, out = tmp_path / "bench.png", tmp_path / "bench.json"
    figures = run_cli_json("bench", "--keypoints", "128,256", "--frames", "4", "--segment", "2",
                           "--hard-pairs", "1", "--width", "320", "--height", "240", "--plot",
                           str(plot), "--out", str(out))
    assert figures["extractor"] == "xfeat" and "(auto)" in figures["model"]
    for key in KEYS:
        assert figures[key] > 0, key
    assert [b["keypoints"] for b in figures["budgets"]] == [128, 256]
    for budget in figures["budgets"]:
        assert budget["frames"] == 4 and 1 <= budget["mean_layers"] <= 6  # LighterGlue: 6
        assert 0.9 * budget["keypoints"] <= budget["mean_keypoints"] <= budget["keypoints"]
        assert budget["hard_pairs"]["pairs"] == 1
        two = budget["two_stage"]
        assert two["interval"]["samples"] == 2  # 2 segments of 2 frames: 1 interval each
        assert two["latency"]["samples"] == budget["tracking"]["samples"] == 4
        assert two["lost_frames"] == 0
        assert set(two["stages"]) >= {"extract_ms", "match_ms", "pose_ms", "slower_stage"}
        assert budget["official"]["fps"] > 0 and budget["official"]["pairwise"]["samples"] == 4
        assert budget["official"]["extract"]["samples"] == 8  # both images of each pair
        assert budget["two_stage_vs_official"] > 0
    assert figures["machine_before"]["cores"] >= 1
    assert json.loads(out.read_text()) == figures
    assert plot.is_file() and plot.stat().st_size > 10_000


def test_bench_aliked_runs_without_the_official_xfeat_rows():
    figures = run_cli_json("bench", "--extractor", "aliked", "--keypoints", "128", "--frames",
                           "2", "--hard-pairs", "0", "--width", "320", "--height", "240",
                           "--no-depth")
    assert figures["extractor"] == "aliked" and not figures["depth"]
    budget = figures["budgets"][0]
    assert "official" not in budget and budget["fps_two_stage"] > 0
    assert 1 <= budget["mean_layers"] <= 9 and budget["two_stage"]["lost_frames"] == 0
