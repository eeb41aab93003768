"""Where a monocular trajectory's scale drifts: its local scale and turn along the path.

    python -m lightglue_ros_tools.accuracy.scale_profile ../shared/data/kitti07_0_159 \
        xfeat=out/k07_xfeat/trajectory.txt aliked=out/k07_aliked/trajectory.txt \
        [--segment-frames 10] [--out docs/accuracy/kitti07_scale_profile.json] [--plot PNG]

A Sim(3)-aligned ATE says how far a monocular trajectory is from the ground truth, not where its
scale changed. For each trajectory (``lightglue-ros track --out``'s ``trajectory.txt``) this prints,
per segment of ``--segment-frames`` frames, the local scale: the estimate's path length over the
ground truth's in that segment, divided by the same ratio over the whole run (1: the run's own
scale; 1.10: this segment 10% longer than the run's scale makes it). Beside it, the ground truth's
turn rate (deg per frame) and, per turn (a segment turning more than ``--turn-deg-per-frame``),
the estimated turn over the ground truth's (the angle of the rotation between the turn's first
and last frame). A scale that steps in the turns and stays flat on the straights points at
what a turn does to the map, not at random drift.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lightglue_ros.geometry.se3 import rotation_angle_deg
from lightglue_ros.types import Trajectory
from lightglue_ros.types.trajectory import associate
from lightglue_ros_tools.accuracy import write_json


def local_scale(est: np.ndarray, gt: np.ndarray, segment: int) -> np.ndarray:
    """Per segment of ``segment`` steps, the estimate's path length over the ground truth's,
    relative to that ratio over the whole path (``est``, ``gt``: (N, 3) associated positions)."""
    est_steps = np.linalg.norm(np.diff(est, axis=0), axis=1)
    gt_steps = np.linalg.norm(np.diff(gt, axis=0), axis=1)
    whole = est_steps.sum() / gt_steps.sum()
    starts = range(0, len(gt_steps), segment)
    return np.array([est_steps[i:i + segment].sum() / gt_steps[i:i + segment].sum() / whole
                     for i in starts])


def turn_deg(poses: np.ndarray, i: int, j: int) -> float:
    """The angle of the rotation from pose ``i`` to pose ``j``."""
    return rotation_angle_deg(poses[i][:3, :3].T @ poses[j][:3, :3])


def turn_rate_deg(poses: np.ndarray, segment: int) -> np.ndarray:
    """Per segment, the rotation between its first and last pose over its steps (deg/frame)."""
    last = len(poses) - 1
    ends = [(i, min(i + segment, last)) for i in range(0, last, segment)]
    return np.array([turn_deg(poses, i, j) / (j - i) for i, j in ends])


def turns(rate: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Runs of consecutive segments [first, last + 1) turning faster than ``threshold``."""
    fast = np.r_[False, rate > threshold, False].astype(int)
    edges = np.flatnonzero(np.diff(fast))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def profile(est: Trajectory, gt: Trajectory, segment: int, turn_deg_per_frame: float) -> dict:
    """The local scale and turn rate per segment of the frames ``est`` and ``gt`` share, and
    each turn with its estimated-over-true angle and the local scale of the segments either
    side of it (None at an end of the run)."""
    ie, ig = associate(est, gt)
    est, gt = est.subset(ie), gt.subset(ig)
    scale = local_scale(est.positions, gt.positions, segment)
    rate = turn_rate_deg(gt.poses, segment)
    out_turns = []
    for a, b in turns(rate, turn_deg_per_frame):
        i, j = a * segment, min(b * segment, len(gt) - 1)
        true = turn_deg(gt.poses, i, j)
        out_turns.append({"frames": [int(ig[i]), int(ig[j])], "gt_turn_deg": true,
                          "turn_ratio": turn_deg(est.poses, i, j) / true,
                          "scale_before": float(scale[a - 1]) if a > 0 else None,
                          "scale_after": float(scale[b]) if b < len(scale) else None})
    return {"frames": len(gt), "segment_start_frames": ig[:-1:segment].tolist(),
            "local_scale": scale.tolist(),
            "gt_turn_rate_deg_per_frame": rate.tolist(), "turns": out_turns}


def _plot(path: Path, result: dict, segment: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for label, run in result["runs"].items():
        x = np.array(run["segment_start_frames"]) + segment / 2
        ax.step(x, run["local_scale"], where="mid", label=f"{label}: local scale")
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set_xlabel("frame")
    ax.set_ylabel("local scale / the run's scale")
    turn = ax.twinx()
    first = next(iter(result["runs"].values()))
    rate = first["gt_turn_rate_deg_per_frame"]
    turn.fill_between(np.array(first["segment_start_frames"]) + segment / 2, rate, step="mid",
                      alpha=0.15, color="k", label="ground truth turn rate")
    turn.set_ylabel("ground truth turn (deg/frame)")
    ax.legend(loc="upper left")
    turn.legend(loc="lower right")
    ax.set_title(f"{result['dataset']}: where the monocular scale changes")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig).print_png(str(path))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="dataset folder with ground truth")
    parser.add_argument("runs", nargs="+", help="LABEL=TRAJECTORY (TUM format)")
    parser.add_argument("--segment-frames", type=int, default=10)
    parser.add_argument("--turn-deg-per-frame", type=float, default=1.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    from lightglue_ros.datasets import open_dataset

    dataset = open_dataset(args.dataset)
    if dataset.groundtruth is None:
        parser.error(f"{args.dataset} has no ground truth")
    result: dict = {"dataset": dataset.name, "segment_frames": args.segment_frames, "runs": {}}
    for run in args.runs:
        label, sep, path = run.partition("=")
        if not sep:
            parser.error(f"{run!r}: expected LABEL=TRAJECTORY")
        result["runs"][label] = profile(Trajectory.read_tum(path), dataset.groundtruth,
                                        args.segment_frames, args.turn_deg_per_frame)
        r = result["runs"][label]
        print(f"{label}: local scale " + " ".join(f"{s:.3f}" for s in r["local_scale"]))
        for t in r["turns"]:
            around = " -> ".join("-" if v is None else f"{v:.3f}"
                                 for v in (t["scale_before"], t["scale_after"]))
            print(f"  turn frames {t['frames'][0]}-{t['frames'][1]} ({t['gt_turn_deg']:.1f} deg): "
                  f"estimated / true turn {t['turn_ratio']:.4f}, local scale {around}")
    rate = next(iter(result["runs"].values()))["gt_turn_rate_deg_per_frame"]
    print("ground truth turn (deg/frame) " + " ".join(f"{v:.2f}" for v in rate))
    write_json(args.out, result)
    if args.plot:
        _plot(args.plot, result, args.segment_frames)
    return result


if __name__ == "__main__":
    main()
