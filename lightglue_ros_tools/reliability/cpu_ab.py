"""A/B comparisons of CPU settings, each side by side in one process, alternating in a rotating
order so that load from elsewhere on the machine hits both sides alike (the way the CPU
defaults were decided):

    python -m lightglue_ros_tools.reliability.cpu_ab backend [--keypoints 512] [--reps 3]
    python -m lightglue_ros_tools.reliability.cpu_ab opencv-threads [--reps 8]
    python -m lightglue_ros_tools.reliability.cpu_ab concurrent [--keypoints 768] [--reps 3]

- ``backend``: torch against ONNX Runtime through ``Pipeline.extract`` and ``Pipeline.match``
  (what the tracker calls), one thread each, on consecutive synthetic 640x480 frames; median ms.
- ``concurrent``: ``Pipeline.match`` of each backend alone and while another thread runs
  ``Pipeline.extract`` of each backend, as the two-stage tracker runs them (one thread each);
  median ms per match over 8 s, every combination once per repetition.
- ``opencv-threads``: the two-stage tracker (offline, every frame) on the synthetic 640x480
  sequence with OpenCV's thread pool at its default against one thread per process; frames per
  second of each run, paired by repetition.

Prints one JSON object (with the load average before and after).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Any


def vga_frames(count: int) -> list:
    """The first ``count`` frames of the synthetic sequence at 640x480."""
    from lightglue_ros.datasets.frames import synthetic_frames
    from lightglue_ros.synthetic import make_sequence

    return list(synthetic_frames(make_sequence(num_frames=count, width=640, height=480)))


def _pipelines(keypoints: int, engines: str) -> dict:
    """torch's and ONNX Runtime's pipelines, one thread each, exports in ``engines``."""
    from lightglue_ros.config import Config
    from lightglue_ros.pipeline import Pipeline

    return {name: Pipeline(Config(max_keypoints=keypoints, cpu_threads=1, backend=name,
                                  engine_dir=engines))
            for name in ("torch", "onnxruntime")}


def backend(keypoints: int, reps: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    images = [f.image for f in vga_frames(12)]
    with tempfile.TemporaryDirectory() as engines:
        pipes = _pipelines(keypoints, engines)
        ms: dict[str, dict[str, list[float]]] = {n: {"extract": [], "match": []} for n in pipes}
        for rep in range(reps):
            for i in range(1, len(images)):
                names = list(pipes) if (i + rep) % 2 else list(pipes)[::-1]
                for name in names:
                    pipe = pipes[name]
                    f0, f1 = pipe.extract(images[i - 1]), pipe.extract(images[i])
                    ms[name]["extract"].append(1e3 * pipe.timings["extract"])
                    pipe.match(f0, f1)
                    ms[name]["match"].append(1e3 * pipe.timings["match"])
    return {"keypoints": keypoints, "threads": 1,
            "median_ms": {n: {k: round(statistics.median(v), 1) for k, v in d.items()}
                          for n, d in ms.items()}}


def concurrent(keypoints: int, reps: int, seconds: float = 8.0) -> dict[str, Any]:
    import itertools
    import threading

    from lightglue_ros.inference.devices import set_cpu_threads

    images = [f.image for f in vga_frames(8)]
    with tempfile.TemporaryDirectory() as engines:
        pipes = _pipelines(keypoints, engines)
        feats = {name: [pipe.extract(image) for image in images] for name, pipe in pipes.items()}

        def match_ms(matcher: str, extractor: str | None) -> float:
            stop = threading.Event()

            def extract(pipe) -> None:
                set_cpu_threads(1)
                for i in itertools.count():
                    if stop.is_set():
                        return
                    pipe.extract(images[i % len(images)])

            thread = (threading.Thread(target=extract, args=(pipes[extractor],)) if extractor
                      else None)
            if thread:
                thread.start()
            set_cpu_threads(1)
            times, start, i = [], time.perf_counter(), 0
            while time.perf_counter() - start < seconds:
                i = i % (len(images) - 1) + 1
                pipes[matcher].match(feats[matcher][i - 1], feats[matcher][i])
                times.append(1e3 * pipes[matcher].timings["match"])
            stop.set()
            if thread:
                thread.join()
            return round(statistics.median(times), 1)

        combos = {f"match {m}, extract {e or 'idle'}": (m, e)
                  for m in pipes for e in (None, *pipes)}
        ms: dict[str, list[float]] = {label: [] for label in combos}
        for rep in range(reps):
            for label in (list(combos) if rep % 2 == 0 else list(combos)[::-1]):
                ms[label].append(match_ms(*combos[label]))
    return {"keypoints": keypoints, "threads": 1, "seconds_per_run": seconds,
            "median_ms_per_match": ms}


def opencv_threads(reps: int) -> dict[str, Any]:
    import dataclasses

    import cv2
    import torch

    import lightglue_ros.tracking.two_stage as two_stage
    from lightglue_ros.config import Config
    from lightglue_ros.evaluation.tracking_run import run_tracker
    from lightglue_ros.pipeline import Pipeline
    from lightglue_ros.tracking import Tracker

    # the stages set torch's threads only: OpenCV's pool is what this compares
    two_stage.set_cpu_threads = lambda n: torch.set_num_threads(n) if n else None
    default = cv2.getNumThreads()
    frames = [dataclasses.replace(f, depth=None) for f in vga_frames(16)]  # monocular
    pipe = Pipeline(Config())
    fps: dict[int, list[float]] = {default: [], 1: []}
    for rep in range(reps):
        for threads in ([default, 1] if rep % 2 else [1, default]):
            cv2.setNumThreads(threads)
            start = time.perf_counter()
            run_tracker(Tracker(pipe), frames, progress=False)
            fps[threads].append(round(len(frames) / (time.perf_counter() - start), 2))
    cv2.setNumThreads(default)
    return {"keypoints": pipe.config.max_keypoints, "frames": len(frames),
            "fps": {f"opencv_{n}_threads": {"median": statistics.median(v), "runs": v}
                    for n, v in fps.items()},
            "pairs_faster_with_default": sum(a > b for a, b in zip(fps[default], fps[1]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("backend", "concurrent", "opencv-threads"))
    parser.add_argument("--keypoints", type=int, default=512)
    parser.add_argument("--reps", type=int, default=0, help="repetitions (default 3; 8)")
    args = parser.parse_args()
    before = os.getloadavg()
    if args.what == "backend":
        result = backend(args.keypoints, args.reps or 3)
    elif args.what == "concurrent":
        result = concurrent(args.keypoints, args.reps or 3)
    else:
        result = opencv_threads(args.reps or 8)
    print(json.dumps({"ab": args.what, **result, "cores": os.cpu_count(),
                      "load_average_before": before, "load_average_after": os.getloadavg()}))


if __name__ == "__main__":
    main()
