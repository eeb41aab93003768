"""``lightglue-ros bench``: this package against the official algorithm, side by side."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import add_arguments, from_args

# ALIKED's own threshold (0.2) finds ~700 points in a VGA frame; like the official benchmark, the
# bench fills each keypoint budget instead (SuperPoint's, DISK's and XFeat's already do).
FILL_BUDGET_THRESHOLD = {"aliked": 0.01}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed: two-stage and sequential tracking, pairwise, "
                                     "early exit, the official code",
                       description="Measure, in one run on the same frames: tracking end to end "
                                   "(extract + match + pose) on the two-stage pipeline and "
                                   "sequentially, pairwise matching, LightGlue with early exit "
                                   "off, kornia's LightGlue (official weights) and, for XFeat, "
                                   "the official pairwise code path; plus a per-stage profile "
                                   "and peak memory. Unless --detection-threshold is given, "
                                   "ALIKED's threshold is 0.01 here so that each keypoint "
                                   "budget is filled.")
    p.add_argument("--keypoints", help="comma-separated keypoint budgets (default: the "
                   "node's, max_keypoints; auto: 768 on a CPU)")
    p.add_argument("--frames", type=int, default=30, help="consecutive frames timed per budget "
                   "(after --warmup more)")
    p.add_argument("--warmup", type=int, default=2, help="frames run untimed first")
    p.add_argument("--segment", type=int, default=5,
                   help="frames each mode runs before the next mode's turn")
    p.add_argument("--hard-pairs", type=int, default=5,
                   help="far-apart pairs per budget (0: none)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--bag", type=Path, help="take frames from this bag instead of the "
                        "synthetic sequence")
    source.add_argument("--dataset", type=Path, help="take frames from a dataset folder (TUM, "
                        "KITTI, EuRoC, images)")
    p.add_argument("--preset", choices=("fr1", "fr2", "fr3"), help="TUM camera intrinsics")
    p.add_argument("--image-topic", default="/camera/image_raw")
    p.add_argument("--camera-info-topic", default="/camera/camera_info")
    p.add_argument("--depth-topic", help="bag: pair this depth topic with the images")
    p.add_argument("--no-depth", action="store_true",
                   help="track without depth (monocular: two-view geometry)")
    p.add_argument("--no-official", action="store_true",
                   help="xfeat: leave out the official pairwise code path")
    p.add_argument("--thread-study", action="store_true",
                   help="also run sequential tracking on all cores and the two stages with "
                        "other (extraction, tracking) thread counts")
    p.add_argument("--projection-study", action="store_true",
                   help="also run both trackers with track_by_projection the other way, "
                        "interleaved with the rest (figures under projection_study)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument("--out", type=Path, help="also write the JSON object to this file")
    p.add_argument("--plot", type=Path, help="write a bar chart of the figures")
    add_arguments(p, ("features", "matcher", "inference", "tracking"))
    p.set_defaults(run=run, detection_threshold=None)


def _frames(args: argparse.Namespace, count: int) -> list:
    """FrameInputs (image, camera, depth unless --no-depth) of the chosen source."""
    use_depth = not args.no_depth
    if args.bag is not None:
        from ..bags.reader import open_bag
        with open_bag(args.bag) as bag:
            frames = bag.camera_frames(args.image_topic, args.camera_info_topic,
                                       args.depth_topic if use_depth else None)
            return [f for _, f in zip(range(count), frames)]
    if args.dataset is not None:
        from ..datasets import open_dataset
        from ..datasets.frames import dataset_frames
        ds = open_dataset(args.dataset, preset=args.preset)
        return [f for _, f in zip(range(count), dataset_frames(ds, use_depth))]
    from ..datasets.frames import synthetic_frames
    from ..synthetic import make_sequence
    seq = make_sequence(num_frames=count, width=args.width, height=args.height)
    return list(synthetic_frames(seq, use_depth))


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..evaluation.bench import bench_keypoints, machine, summary

    before = machine()
    given = from_args(args)
    cfg = given.resolved()
    if args.detection_threshold is None:
        cfg = cfg.replace(detection_threshold=FILL_BUDGET_THRESHOLD.get(cfg.extractor, -1.0))
    budgets = ([int(k) for k in args.keypoints.split(",")] if args.keypoints
               else [cfg.max_keypoints])
    frames = _frames(args, args.warmup + args.frames + 2 * args.hard_pairs)
    consecutive = frames[:args.warmup + args.frames]
    hard = [(frames[i].image, frames[-1 - i].image) for i in range(args.hard_pairs)]
    results = [bench_keypoints(consecutive, hard, cfg, k, args.warmup, args.segment,
                               official=not args.no_official, thread_study=args.thread_study,
                               projection_study=args.projection_study)
               for k in tqdm(budgets, desc="keypoint budgets", disable=args.json)]
    figures = summary(results, given, before)
    figures.update(source=str(args.bag or args.dataset or "synthetic"),
                   depth=not args.no_depth and consecutive[0].depth is not None)
    if args.plot:
        from ..viz.bench import plot_bench
        figures["plot"] = str(plot_bench(figures, args.plot))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1))
    if args.json:
        print(json.dumps(figures))
        return 0
    for line in format_bench(figures):
        print(line)
    return 0


def format_bench(figures: dict) -> list[str]:
    """The figures as a table for the terminal."""
    results = figures["budgets"]
    lines = [f"{figures['model']}; {results[0]['frames']} consecutive frames "
             f"({figures['source']}, {'with' if figures['depth'] else 'without'} depth), "
             f"{figures['machine_before']['cores']} cores, load average "
             f"{figures['machine_before']['load_average'][0]} -> "
             f"{figures['machine_after']['load_average'][0]}",
             f"{'kpts':>5} {'2-stage':>7} {'seq':>6} {'x':>5} {'pair':>6} {'official':>8} "
             f"{'extract':>7} {'match':>6} {'pose':>5} {'LG full':>7} {'kornia':>7} "
             f"{'layers':>6}  (fps; median ms)"]
    for r in results:
        stages = r["two_stage"]["stages"]
        official = r.get("official", {}).get("fps")
        lines.append(
            f"{r['keypoints']:>5} {r['fps_two_stage']:>7.2f} {r['fps_tracking']:>6.2f} "
            f"{r['two_stage_speedup']:>5.2f} {r['fps_pairwise']:>6.2f} "
            f"{'-' if official is None else f'{official:.2f}':>8} "
            f"{stages['extract_ms']:>7.1f} {stages['match_ms']:>6.1f} {stages['pose_ms']:>5.1f} "
            f"{r['match_full']['median_ms']:>7.1f} {r['match_baseline']['median_ms']:>7.1f} "
            f"{r['tracking_layers']:>6.2f}")
        if official is not None:
            extra = r.get("official_all_cores")
            lines.append(f"{'':>5} two-stage / official: {r['two_stage_vs_official']:.2f}x at "
                         f"{r['official']['threads']} thread(s)" + (
                             f", {r['two_stage_vs_best_official']:.2f}x against its best "
                             f"({extra['fps']:.2f} fps at {extra['threads']} threads)"
                             if extra else ""))
        if "vs_official_equal_threads" in r:
            eq = r["official_equal_threads"]
            lines.append(f"{'':>5} two-stage / official at equal total threads ({eq['threads']}): "
                         f"{r['vs_official_equal_threads']:.2f}x ({eq['fps']:.2f} fps); by mean "
                         f"time per frame {r['vs_official_equal_threads_throughput']:.2f}x "
                         f"({r['throughput_two_stage']:.2f} against {eq['throughput']:.2f} fps)")
        lines.append(f"{'':>5} slower stage: {stages['slower_stage']} "
                     f"(overhead {stages['overhead_ms']:.1f} ms)")
        for name, row in r.get("thread_study", {}).items():
            lines.append(f"{'':>5} {name}: {row['fps']:.2f} fps (threads {row['threads']})")
        if r["hard_pairs"]:
            h = r["hard_pairs"]
            lines.append(f"{'':>5} hard pairs: LG adapt {h['match_adaptive']['median_ms']:.1f}, "
                         f"full {h['match_full']['median_ms']:.1f}, kornia "
                         f"{h['match_baseline']['median_ms']:.1f} ms, "
                         f"{h['mean_layers']:.2f} layers")
    lines.append(f"peak RSS {figures['peak_rss_mb']:.0f} MB")
    return lines
