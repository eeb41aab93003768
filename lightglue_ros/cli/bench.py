"""``lightglue-ros bench``: this package against the official algorithm, side by side."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import Config, add_arguments, from_args

# ALIKED's own threshold (0.2) finds ~700 points in a VGA frame; like the official benchmark, the
# bench fills each keypoint budget instead (SuperPoint's and DISK's thresholds already do).
FILL_BUDGET_THRESHOLD = {"aliked": 0.01}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed: tracking vs pairwise, early exit, kornia baseline",
                       description="Measure per-frame latency, FPS, extraction and matching "
                                   "time, LightGlue layers and peak memory for this package in "
                                   "tracking and pairwise mode, with early exit off, and for "
                                   "kornia's LightGlue (official weights), in one run. Unless "
                                   "--detection-threshold is given, ALIKED's threshold is 0.01 "
                                   "here so that each keypoint budget is filled.")
    p.add_argument("--keypoints", default="512,1024,2048",
                   help="comma-separated keypoint budgets")
    p.add_argument("--frames", type=int, default=30, help="consecutive frames per budget")
    p.add_argument("--hard-pairs", type=int, default=5,
                   help="far-apart synthetic pairs per budget (0: none)")
    p.add_argument("--bag", type=Path, help="take frames from this bag instead of the "
                   "synthetic sequence (its /camera/image_raw)")
    p.add_argument("--image-topic", default="/camera/image_raw")
    p.add_argument("--camera-info-topic", default="/camera/camera_info")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument("--plot", type=Path, help="write a bar chart of the figures")
    add_arguments(p, ("features", "matcher", "inference"))
    p.set_defaults(run=run, detection_threshold=None)


def _frames(args: argparse.Namespace, count: int) -> list:
    if args.bag is not None:
        from ..bags.reader import open_bag
        frames = open_bag(args.bag).camera_frames(args.image_topic, args.camera_info_topic)
        return [f.image for _, f in zip(range(count), frames)]
    from ..synthetic import make_sequence
    return [f.rgb for f in make_sequence(num_frames=count, width=args.width,
                                         height=args.height)]


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..evaluation.bench import bench_keypoints, summary

    if args.detection_threshold is None:
        extractor = args.extractor or Config.extractor
        args.detection_threshold = FILL_BUDGET_THRESHOLD.get(extractor, -1.0)
    cfg = from_args(args)
    budgets = [int(k) for k in args.keypoints.split(",")]
    frames = _frames(args, args.frames + 2 * args.hard_pairs)
    consecutive = frames[:args.frames]
    hard = [(frames[i], frames[-1 - i]) for i in range(args.hard_pairs)]
    results = [bench_keypoints(consecutive, hard, cfg, k)
               for k in tqdm(budgets, desc="keypoint budgets", disable=args.json)]
    figures = summary(results, cfg)
    if args.plot:
        from ..viz.bench import plot_bench
        figures["plot"] = str(plot_bench(figures, args.plot))
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"{cfg.extractor} on {cfg.device} ({cfg.backend}), {torch.get_num_threads()} "
          f"threads, {len(consecutive)} consecutive frames, {len(hard)} hard pairs")
    print(f"{'kpts':>5} {'track fps':>9} {'pair fps':>8} {'extract':>8} {'LG adapt':>8} "
          f"{'LG full':>8} {'kornia':>8} {'layers':>6}  (median ms)")
    for r in results:
        print(f"{r['keypoints']:>5} {r['fps_tracking']:>9.2f} {r['fps_pairwise']:>8.2f} "
              f"{r['extract']['median_ms']:>8.1f} {r['match_adaptive']['median_ms']:>8.1f} "
              f"{r['match_full']['median_ms']:>8.1f} {r['match_baseline']['median_ms']:>8.1f} "
              f"{r['mean_layers']:>6.2f}")
        if r["hard_pairs"]:
            h = r["hard_pairs"]
            print(f"{'':>5} hard pairs: LG adapt {h['match_adaptive']['median_ms']:.1f}, full "
                  f"{h['match_full']['median_ms']:.1f}, kornia "
                  f"{h['match_baseline']['median_ms']:.1f} ms, {h['mean_layers']:.2f} layers")
    print(f"peak RSS {figures['peak_rss_mb']:.0f} MB")
    return 0
