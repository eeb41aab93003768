"""The benchmark command keeps working (a tiny run; no timing is asserted)."""
from conftest import run_cli_json

KEYS = ("fps_tracking", "fps_pairwise", "match_ms_adaptive", "match_ms_full",
        "match_ms_baseline", "mean_layers", "peak_rss_mb")


def test_bench_tiny_run_reports_every_figure_and_plots(tmp_path):
    plot = tmp_path / "bench.png"
    figures = run_cli_json("bench", "--keypoints", "128,256", "--frames", "3", "--hard-pairs",
                           "1", "--width", "320", "--height", "240", "--plot", str(plot))
    for key in KEYS:
        assert figures[key] > 0, key
    assert [b["keypoints"] for b in figures["budgets"]] == [128, 256]
    for budget in figures["budgets"]:
        assert budget["frames"] == 3 and 1 <= budget["mean_layers"] <= 9
        assert 0.9 * budget["keypoints"] <= budget["mean_keypoints"] <= budget["keypoints"]
        assert budget["hard_pairs"]["pairs"] == 1
    assert plot.is_file() and plot.stat().st_size > 10_000
