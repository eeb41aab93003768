"""Offline evaluation of a bag: the node's tracker over every frame, figures, pictures and a report.

The frames come from ``Bag.camera_frames`` and go through ``run_tracker`` and ``write_outputs``
exactly as ``lightglue-ros track`` sends a dataset folder's, so a bag made from a folder gives the
same figures as the folder. A header stamp going backwards restarts tracking as in the node; the
run then has several segments, each with its own odom origin: every segment's trajectory is
written, and the accuracy figures are those of the longest segment (the counts are the whole
run's).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..config import Config
from ..errors import BagError
from ..evaluation.tracking_run import (estimated_trajectory, is_metric, run_tracker, summarize,
                                       write_outputs, write_records)
from ..types import Trajectory, TrajectoryError
from .reader import (DEFAULT_CAMERA_INFO_TOPIC, DEFAULT_GAP_S, DEFAULT_IMAGE_TOPIC,
                     DEFAULT_JUMP_S, open_bag)

GT_MAX_DIFF = 0.02   # s, association tolerance of write_outputs (TUM's associate.py default)
ACCURACY_KEYS = ("ate_rmse_m", "ate_mean_m", "ate_max_m", "rpe_trans_m", "rpe_rot_deg",
                 "rel_rot_err_median_deg", "path_length_m", "matched", "scale", "align",
                 "ate_percent_of_path")


def default_groundtruth(bag: str | Path) -> Path:
    """Where ``make-bag`` writes a bag's ground truth: beside it, ``<bag>.gt.txt``."""
    bag = Path(bag)
    return bag.with_name(bag.name + ".gt.txt")


def evaluate_bag(bag_path: str | Path, groundtruth: Trajectory | str | Path | None,
                 config: Config | None = None, *, out_dir: str | Path = "out/eval",
                 image_topic: str = DEFAULT_IMAGE_TOPIC,
                 camera_info_topic: str = DEFAULT_CAMERA_INFO_TOPIC,
                 depth_topic: str | None = None, gap_s: float = DEFAULT_GAP_S,
                 jump_s: float = DEFAULT_JUMP_S, progress: bool = True,
                 stereo_topics: tuple[str, str] | None = None) -> dict[str, Any]:
    """Track every frame of the bag and write trajectory.txt, frames.csv, figures.json, pictures
    and report.md to ``out_dir``; returns the figures (those of ``track`` plus the bag's
    problems). ``stereo_topics``: the right eye's image and camera_info topics, paired with the
    image as the node pairs them (config.stereo_sync_s, config.image_rectification). Raises BagError
    for bag problems and TrajectoryError for ground truth that cannot be read or does not
    overlap the bag in time; both before any frame is tracked."""
    from ..evaluation.slam_run import run_slam, slam_figures
    from ..pipeline import Pipeline
    from ..slam.map_file import open_slam, save_slam
    from ..tracking import Tracker

    config = (config or Config()).resolved()
    out = Path(out_dir)
    gt = Trajectory.read_tum(groundtruth) if isinstance(groundtruth, (str, Path)) \
        else groundtruth
    with open_bag(bag_path) as bag:
        frames = bag.camera_frames(image_topic, camera_info_topic, depth_topic,
                                   config.depth_sync_s, gap_s, jump_s,
                                   depth_range_m=(config.depth_min_m, config.depth_max_m),
                                   stereo_topics=stereo_topics,
                                   stereo_sync_s=config.stereo_sync_s,
                                   image_rectification=config.image_rectification)
        if gt is not None:
            _check_overlap(frames.stamps, gt, bag_path, groundtruth)
        tracker = Tracker(Pipeline(config))     # after the checks: loading weights takes time
        refined: dict = {}
        tracker.on_refined = refined.update

        def restart_on_stamps_going_back(reset: Callable[[], None]) -> None:
            frames.on_restart = reset           # as in the node

        slam, loaded = open_slam(tracker, config.map_path) if config.slam else (None, False)
        if slam is not None:
            frames.on_restart = slam.reset  # relocalized in the map, not a new origin
            results = run_slam(slam, frames, frames.total, progress=progress)
            records = [r.record for r in results]
            if config.map_path and not loaded:  # as track: a map read is left as it was
                save_slam(config.map_path, slam)
        else:
            records = run_tracker(tracker, frames, frames.total, progress=progress,
                                  bind_reset=restart_on_stamps_going_back)
        report, storage, topics = frames.report, bag.storage, bag.topics
    if not records:
        raise BagError(f"no frame of {bag_path} could be tracked: "
                       + ("; ".join(report.problems()) or "no images"))
    title = f"{Path(bag_path).name}: {config.extractor}"
    bounds = [0, *report.restarts, len(records)]
    segments = [records[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    if len(segments) == 1:
        figures = write_outputs(records, out, gt, title, refined)
        evaluated = 0
    else:   # restarts: accuracy of the longest segment, counts of the whole run
        evaluated = max(range(len(segments)), key=lambda k: len(segments[k]))
        figures = write_outputs(segments[evaluated], out, gt,
                                f"{title} (segment {evaluated + 1} of {len(segments)})", refined)
        write_records(records, out / "frames.csv")
        figures.update(summarize(records))
        for k, segment in enumerate(segments):
            estimated_trajectory(segment).write_tum(
                out / f"trajectory_segment{k + 1}.txt",
                header=f"lightglue_ros estimate, T_odom_cam, segment {k + 1} of {len(segments)}")
    for key in ACCURACY_KEYS:
        figures.setdefault(key, None)
    if slam is not None:  # the whole run, in the map: restarts are what SLAM joins up
        figures.update(slam_figures(slam, results, gt, is_metric(records)))
    figures.update(report.summary())
    figures.update({
        "evaluated_segment": evaluated + 1,
        "segment_frames": [len(s) for s in segments],
        "bag": str(bag_path), "storage": storage, "image_topic": image_topic,
        "camera_info_topic": camera_info_topic, "depth_topic": depth_topic,
        "right_image_topic": stereo_topics[0] if stereo_topics else None,
        "right_camera_info_topic": stereo_topics[1] if stereo_topics else None,
        "groundtruth": str(groundtruth) if isinstance(groundtruth, (str, Path)) else None,
        "problems": report.problems(),
    })
    (out / "figures.json").write_text(json.dumps(figures, indent=2))
    figures["report"] = str(write_report(figures, out / "report.md", topics, config))
    return figures


def _check_overlap(stamps, gt: Trajectory, bag_path, gt_source) -> None:
    """The error ``evaluate`` would give after tracking, given before it."""
    if len(gt) == 0:
        raise TrajectoryError(f"ground truth {gt_source} holds no poses")
    first, last = float(min(stamps)), float(max(stamps))
    if last < gt.stamps[0] - GT_MAX_DIFF or first > gt.stamps[-1] + GT_MAX_DIFF:
        raise TrajectoryError(
            f"the bag's images ({first:.6f} to {last:.6f} s, header stamps) and the ground "
            f"truth {gt_source or ''} ({gt.stamps[0]:.6f} to {gt.stamps[-1]:.6f} s) do not "
            f"overlap in time; are they stamped by the same clock?")


def _fmt(value: Any, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def figure_lines(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows for the report and the terminal."""
    f = figures
    rows = [("frames", f"{f['frames']} (tracked {f['tracked_frames']}, weak {f['weak_frames']}, "
                       f"lost {f['lost_frames']}, keyframes {f['keyframes']}), "
                       f"{'metric' if f['metric'] else 'up to scale'}")]
    if f.get("ate_rmse_m") is not None:
        rows += [("ATE RMSE", f"{f['ate_rmse_m']:.4f} m ({f['ate_percent_of_path']:.2f}% of "
                              f"{f['path_length_m']:.2f} m, {f['align']} aligned, "
                              f"{f['matched']} poses)"),
                 ("RPE", f"{f['rpe_trans_m']:.4f} m, {f['rpe_rot_deg']:.3f} deg"),
                 ("median relative rotation error", f"{f['rel_rot_err_median_deg']:.3f} deg")]
    else:
        rows.append(("accuracy", "no ground truth"))
    rows += [("mean LightGlue layers", f"{f['mean_layers']:.2f}"),
             ("mean latency", _fmt(f["mean_latency_ms"], ".0f", " ms/frame")),
             ("matches / inliers", f"{f['mean_matches']:.0f} / {f['mean_inliers']:.0f}")]
    if len(f["segment_frames"]) > 1:
        accuracy = (f"; accuracy of segment {f['evaluated_segment']}"
                    if f.get("ate_rmse_m") is not None else "")
        rows.append(("segments", f"{len(f['segment_frames'])} ({f['segment_frames']} frames"
                                 f"{accuracy})"))
    return rows


def write_report(figures: dict[str, Any], path: Path, topics: dict, config: Config) -> Path:
    """A short markdown report: the bag, the figures as a table, the problems, the pictures."""
    used = [figures[k] for k in ("image_topic", "camera_info_topic", "depth_topic",
                                 "right_image_topic", "right_camera_info_topic") if figures[k]]
    lines = [f"# Bag evaluation: {Path(figures['bag']).name}", "",
             f"- bag: `{figures['bag']}` ({figures['storage']})",
             "- topics: " + ", ".join(f"`{t}` ({topics[t].msgtype}, {topics[t].count})"
                                      for t in used if t in topics),
             f"- ground truth: `{figures['groundtruth'] or 'none'}`",
             f"- extractor {config.extractor}, {config.max_keypoints} keypoints, depth "
             f"confidence {config.depth_confidence}, width confidence {config.width_confidence}",
             "", "| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in figure_lines(figures)]
    lines += ["", "## Bag problems", ""]
    lines += [f"- {p}" for p in figures["problems"]] or ["none"]
    lines += ["", "## Pictures", ""]
    lines += [f"![{Path(p).stem}]({Path(p).name})" for p in figures["pictures"]]
    path.write_text("\n".join(lines) + "\n")
    return path


__all__ = ["ACCURACY_KEYS", "default_groundtruth", "evaluate_bag", "figure_lines",
           "write_report"]
