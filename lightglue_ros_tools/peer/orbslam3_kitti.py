"""The peer on the same frames: ORB-SLAM3 (PyPI ``orbslam3-python``) on a KITTI-layout clip,
scored by this project's own trajectory metrics.

ORB-SLAM3 runs with the official KITTI settings (2000 ORB features, 1.2 scale factor, 8 levels,
FAST 20/7; stereo: ThDepth 40) and the clip's intrinsics (and baseline), mapping on, frames fed
at the clip's own rate, each run in a process of its own (the system cannot start twice in one).
Monocular runs are aligned in Sim(3), stereo runs in SE(3); the figures are those of the run
with the median ATE of ``--runs`` (ORB-SLAM3's threads make each run differ).

    python -m lightglue_ros_tools.peer.orbslam3_kitti CLIP --vocabulary ORBvoc.txt
        [--mono] [--runs 3] [--json] [--out DIR]

The binding's wheel ships no vocabulary: ``lightglue_ros_tools.peer.orb_vocabulary`` trains one.
ORB-SLAM3 and its binding are GPLv3: they are a measuring instrument here, not part of the
package.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lightglue_ros.datasets.kitti import read_kitti
from lightglue_ros.datasets.record import Dataset
from lightglue_ros.evaluation.tracking_run import accuracy_figures
from lightglue_ros.evaluation.trajectory import evaluate
from lightglue_ros.types import Trajectory

SETTINGS = """%YAML:1.0
Camera.type: "PinHole"
Camera.fx: {fx}
Camera.fy: {fy}
Camera.cx: {cx}
Camera.cy: {cy}
Camera.k1: 0.0
Camera.k2: 0.0
Camera.p1: 0.0
Camera.p2: 0.0
Camera.width: {width}
Camera.height: {height}
Camera.fps: {fps}
Camera.RGB: 1
Camera.bf: {bf}
ThDepth: 40.0
ORBextractor.nFeatures: 2000
ORBextractor.scaleFactor: 1.2
ORBextractor.nLevels: 8
ORBextractor.iniThFAST: 20
ORBextractor.minThFAST: 7
Viewer.KeyFrameSize: 0.1
Viewer.KeyFrameLineWidth: 1.0
Viewer.GraphLineWidth: 1.0
Viewer.PointSize: 2.0
Viewer.CameraSize: 0.15
Viewer.CameraLineWidth: 2.0
Viewer.ViewpointX: 0.0
Viewer.ViewpointY: -10.0
Viewer.ViewpointZ: -0.1
Viewer.ViewpointF: 2000.0
"""


def settings(dataset: Dataset) -> str:
    """ORB-SLAM3's KITTI settings file for ``dataset``'s (rectified left) camera."""
    K = dataset.camera.K
    stamps = np.array([f.seconds for f in dataset.frames])
    baseline = dataset.stereo.baseline_m if dataset.stereo is not None else 0.0
    return SETTINGS.format(fx=K[0, 0], fy=K[1, 1], cx=K[0, 2], cy=K[1, 2],
                           width=dataset.camera.width, height=dataset.camera.height,
                           fps=round(1.0 / float(np.median(np.diff(stamps))), 3),
                           bf=K[0, 0] * baseline)


def run_once(clip: Path, vocabulary: Path, mono: bool, out: Path) -> None:
    """One ORB-SLAM3 run in this process: the trajectory of the frames it tracked (TUM,
    camera-to-world) into ``out``."""
    import cv2
    import orbslam3

    dataset = read_kitti(clip, stereo=not mono)
    settings_path = out.with_suffix(".yaml")
    settings_path.write_text(settings(dataset))
    sensor = orbslam3.Sensor.MONOCULAR if mono else orbslam3.Sensor.STEREO
    system = orbslam3.System(str(vocabulary), str(settings_path), sensor)
    system.set_use_viewer(False)
    system.initialize()
    start, first = time.monotonic(), dataset.frames[0].seconds
    for frame in dataset.frames:
        delay = frame.seconds - first - (time.monotonic() - start)
        if delay > 0:  # the clip's own rate: local mapping gets the time it has live
            time.sleep(delay)
        left = cv2.imread(str(frame.image_path), cv2.IMREAD_GRAYSCALE)
        if mono:
            system.process_image_mono(left, frame.seconds)
        else:
            right = cv2.imread(str(frame.right_path), cv2.IMREAD_GRAYSCALE)
            system.process_image_stereo(left, right, frame.seconds)
    points = system.get_trajectory_points()  # (stamp, T_cam_world) of each tracked frame
    system.shutdown()
    stamps = np.array([t for t, _ in points])
    poses = np.array([np.linalg.inv(np.asarray(T, np.float64)) for _, T in points])
    Trajectory(stamps, poses.reshape(-1, 4, 4)).write_tum(out)


def score(dataset: Dataset, trajectory: Path, mono: bool) -> dict[str, Any]:
    est = Trajectory.read_tum(trajectory)
    metrics = evaluate(est, dataset.groundtruth, align="sim3" if mono else "se3")
    return {"frames": len(dataset), "tracked_frames": len(est), **accuracy_figures(metrics)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path, help="a KITTI odometry folder (image_0/, calib.txt, "
                        "times.txt, poses.txt; image_1/ for stereo)")
    parser.add_argument("--vocabulary", type=Path, required=True, help="DBoW2 ORB vocabulary")
    parser.add_argument("--mono", action="store_true", help="the left camera alone")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("out/orbslam3"))
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a run's trajectory file
    args = parser.parse_args(argv)
    if args.one is not None:
        run_once(args.clip, args.vocabulary, args.mono, args.one)
        return 0
    dataset = read_kitti(args.clip, stereo=not args.mono)
    mono = args.mono or dataset.stereo is None
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for i in range(args.runs):
        path = args.out / f"{dataset.name}_{'mono' if mono else 'stereo'}_run{i}.txt"
        proc = subprocess.run([sys.executable, "-m", __spec__.name, str(args.clip),
                               "--vocabulary", str(args.vocabulary), "--one", str(path)]
                              + (["--mono"] if mono else []), capture_output=True, text=True)
        if proc.returncode != 0 or not path.is_file():
            raise SystemExit(f"ORB-SLAM3 run {i} failed:\n{proc.stdout[-2000:]}"
                             f"{proc.stderr[-2000:]}")
        runs.append(score(dataset, path, mono))
    ates = [r["ate_rmse_m"] for r in runs]
    median = runs[int(np.argsort(ates)[len(ates) // 2])]
    result = {"clip": dataset.name, "mode": "monocular" if mono else "stereo",
              "vocabulary": str(args.vocabulary), "runs": runs, "median_run": median,
              "argv": sys.argv[1:]}
    (args.out / f"{dataset.name}_{result['mode']}.json").write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{dataset.name} {result['mode']}: ATE {median['ate_rmse_m']:.3f} m, median "
              f"relative rotation error {median['rel_rot_err_median_deg']:.3f} deg, "
              f"{median['tracked_frames']} of {median['frames']} frames tracked "
              f"(median of {len(runs)} runs; ATEs {', '.join(f'{a:.3f}' for a in ates)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
