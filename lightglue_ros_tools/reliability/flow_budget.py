"""What a frame costs with LightGlue against what it would cost with optical flow: the measurement
behind the design that could hold 20 Hz on two cores (issue: real time at the defaults).

    python -m lightglue_ros_tools.reliability.flow_budget [--dataset ../shared/data/kitti07_0_159] \
        [--pairs 20] [--out docs/benchmarks/flow_budget.json]

On consecutive frame pairs of the synthetic 640x480 sequence (and of a dataset folder when given),
at the node's defaults (``Config()`` resolved: the CPU extractor, backend and keypoint budget; one
thread), it times per pair: ``Pipeline.extract`` of the new frame; ``Pipeline.match`` (LightGlue)
with its transformer layers timed apart; and pyramidal Lucas-Kanade optical flow of the first
frame's keypoints into the second (OpenCV, 21x21 window, 3 levels, grey conversion included)
with a forward-backward check of 1 px; each call builds both images' pyramids (OpenCV's Python
binding takes no prebuilt pyramid), so the figure is an upper bound.
It also says how far the flow lands from LightGlue's match for each matched keypoint (the share
within 1 and 3 px), so that the cost is read with what the flow gives up. Medians; one JSON
object, with the load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lightglue_ros.images import to_gray8
from lightglue_ros.tracking.flow import follow

from .cpu_ab import vga_frames

def measure(images: list[np.ndarray], pairs: int) -> dict[str, Any]:
    from lightglue_ros.config import Config
    from lightglue_ros.inference.devices import set_cpu_threads
    from lightglue_ros.pipeline import Pipeline

    set_cpu_threads(1)
    config = Config(cpu_threads=1)
    pipe = Pipeline(config)
    layer_s = [0.0]
    runner = getattr(pipe.backend, "runner", None)
    if runner is not None:  # the graph backends: time the transformer layers apart
        run = runner.run

        def timed(name: str, *inputs: Any) -> Any:
            start = time.perf_counter()
            out = run(name, *inputs)
            if name.startswith("layer"):
                layer_s[0] += time.perf_counter() - start
            return out

        runner.run = timed
    rows = []
    feats = pipe.extract(images[0])  # warm-up of both networks
    pipe.match(feats, feats)
    gray_prev = to_gray8(images[0])
    for k in range(1, min(pairs, len(images) - 1) + 1):
        start = time.perf_counter()
        new = pipe.extract(images[k])
        extract = time.perf_counter() - start
        layer_s[0] = 0.0
        start = time.perf_counter()
        matches = pipe.match(feats, new)
        match = time.perf_counter() - start
        start = time.perf_counter()
        gray = to_gray8(images[k])
        landed, kept = follow(gray_prev, gray, feats.keypoints.cpu().numpy())
        flow = time.perf_counter() - start
        pairs_ij = matches.pairs
        off = np.linalg.norm(landed[pairs_ij[:, 0]] - new.keypoints.cpu().numpy()[pairs_ij[:, 1]],
                             axis=1)
        both = kept[pairs_ij[:, 0]]
        rows.append({"extract_ms": 1000 * extract, "match_ms": 1000 * match,
                     "layers_ms": 1000 * layer_s[0], "layers": matches.layers,
                     "flow_ms": 1000 * flow, "keypoints": len(feats),
                     "flow_kept": int(kept.sum()), "matches": len(pairs_ij),
                     "matches_flow_within_1px": float(np.mean(off[both] <= 1.0)) if both.any()
                     else None,
                     "matches_flow_within_3px": float(np.mean(off[both] <= 3.0)) if both.any()
                     else None})
        feats, gray_prev = new, gray
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    return {"model": config.model, "pairs": len(rows),
            "median": {k: statistics.median(r[k] for r in rows if r[k] is not None)
                       for k in keys}}


def _dataset(path: Path, count: int) -> list[np.ndarray]:
    from lightglue_ros.datasets import open_dataset
    from lightglue_ros.images import load_image

    return [load_image(f.image_path) for f in open_dataset(path).frames[:count]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, help="a dataset folder as track reads it")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out: dict[str, Any] = {"argv": ["python", "-m", "lightglue_ros_tools.reliability.flow_budget",
                                    *sys.argv[1:]],
                           "load_before": os.getloadavg()}
    out["synthetic_640x480"] = measure([f.image for f in vga_frames(args.pairs + 1)], args.pairs)
    if args.dataset is not None:
        out[args.dataset.name] = measure(_dataset(args.dataset, args.pairs + 1), args.pairs)
    out["load_after"] = os.getloadavg()
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
