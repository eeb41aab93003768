"""Side-by-side speed measurements, all on the same frames in one process run.

For each keypoint budget it measures (a) this package in tracking mode (each frame extracted once,
matched against the previous frame's cached features), (b) pairwise mode (both images extracted
for every pair, as a user of the official code does), (c) LightGlue with early exit and pruning
off, and (d) a baseline of the official algorithm, kornia's LightGlue port loaded with the same
official weights and fed the same features. Consecutive frames of the synthetic sequence (or a
bag) show the early-exit gain; hard pairs (far apart) show the worst case.
"""
from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..config import Config
from ..features import Features
from ..pipeline import Pipeline


@dataclass
class Timer:
    """Milliseconds of repeated calls."""

    samples: list[float] = field(default_factory=list)

    def __call__(self, fn: Callable[[], Any]) -> Any:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.samples.append(1e3 * (time.perf_counter() - start))
        return out

    def stats(self) -> dict[str, float]:
        s = np.array(self.samples) if self.samples else np.zeros(1)
        return {"median_ms": float(np.median(s)), "p90_ms": float(np.percentile(s, 90)),
                "p99_ms": float(np.percentile(s, 99)), "mean_ms": float(s.mean())}


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def kornia_baseline(cfg: Config, device: torch.device) -> Callable[[Features, Features], int]:
    """kornia's LightGlue with the official weights this package resolves; returns a function
    matching two feature sets (returns the number of matches)."""
    import kornia.feature as KF

    from ..models.lightglue import LightGlue
    from ..weights.registry import matcher_key
    from ..weights.resolve import load_state_dict, resolve

    model = KF.LightGlue(features=None, input_dim=LightGlue.input_dims[cfg.extractor],
                         depth_confidence=cfg.depth_confidence,
                         width_confidence=cfg.width_confidence,
                         filter_threshold=cfg.filter_threshold)
    state = LightGlue.convert_state_dict(load_state_dict(resolve(matcher_key(cfg.extractor))))
    missing = model.load_state_dict(state, strict=False).missing_keys
    if [k for k in missing if k != "confidence_thresholds"]:
        raise RuntimeError(f"kornia LightGlue did not take the weights: missing {missing}")
    model = model.eval().to(device)

    @torch.inference_mode()
    def match(f0: Features, f1: Features) -> int:
        def side(f: Features) -> dict:
            return {"keypoints": f.keypoints[None].to(device),
                    "descriptors": f.descriptors[None].to(device),
                    "image_size": torch.tensor([f.image_size], device=device, dtype=torch.float32)}
        out = model({"image0": side(f0), "image1": side(f1)})
        return int((out["matches0"] > -1).sum())

    return match


def bench_keypoints(frames: list[np.ndarray], hard_pairs: list[tuple[np.ndarray, np.ndarray]],
                    cfg: Config, keypoints: int, warmup: int = 2) -> dict[str, Any]:
    """All four modes at one keypoint budget."""
    adaptive = Pipeline(cfg.replace(max_keypoints=keypoints))
    full = Pipeline(adaptive.config.replace(depth_confidence=-1.0, width_confidence=-1.0))
    baseline = kornia_baseline(adaptive.config, adaptive.device)
    feats = [adaptive.extract(f) for f in frames[:warmup]]
    for f0, f1 in zip(feats, feats[1:]):  # warm-up: allocator, threads, lazy inits
        adaptive.match(f0, f1), full.match(f0, f1), baseline(f0, f1)

    t_extract, t_adaptive, t_full, t_base = Timer(), Timer(), Timer(), Timer()
    t_track, t_pair = Timer(), Timer()
    layers, n_kpts = [], []
    previous: tuple[np.ndarray, Features] | None = None
    # Every mode runs on each frame before the next frame starts, in a rotating order, so a load
    # spike from elsewhere on the machine hits all modes alike and the ratios stay fair.
    for i, image in enumerate(frames):
        start = time.perf_counter()
        current = t_extract(lambda: adaptive.extract(image))
        n_kpts.append(len(current))
        if previous is None:
            previous = image, current
            continue
        prev_image, prev = previous
        layers.append(t_adaptive(lambda: adaptive.match(prev, current)).layers)
        t_track.samples.append(1e3 * (time.perf_counter() - start))
        others = [lambda: t_pair(lambda: adaptive.match_images(prev_image, image)),  # (b)
                  lambda: t_full(lambda: full.match(prev, current)),  # (c)
                  lambda: t_base(lambda: baseline(prev, current))]  # (d)
        for run in others[i % 3:] + others[:i % 3]:
            run()
        previous = image, current
    hard = _hard_pairs(adaptive, full, baseline, hard_pairs)
    track_ms = t_track.samples
    return {
        "keypoints": keypoints,
        "mean_keypoints": float(np.mean(n_kpts)),
        "frames": len(frames),
        "tracking": Timer(track_ms).stats(),
        "pairwise": t_pair.stats(),
        "extract": t_extract.stats(),
        "match_adaptive": t_adaptive.stats(),
        "match_full": t_full.stats(),
        "match_baseline": t_base.stats(),
        "fps_tracking": 1e3 / statistics.median(track_ms),
        "fps_pairwise": 1e3 / t_pair.stats()["median_ms"],
        "mean_layers": float(np.mean(layers)) if layers else 0.0,
        "hard_pairs": hard,
    }


def _hard_pairs(adaptive: Pipeline, full: Pipeline, baseline, pairs) -> dict[str, Any]:
    if not pairs:
        return {}
    t_a, t_f, t_b, layers = Timer(), Timer(), Timer(), []
    for a, b in pairs:
        f0, f1 = adaptive.extract(a), adaptive.extract(b)
        layers.append(t_a(lambda: adaptive.match(f0, f1)).layers)
        t_f(lambda: full.match(f0, f1))
        t_b(lambda: baseline(f0, f1))
    return {"pairs": len(pairs), "match_adaptive": t_a.stats(), "match_full": t_f.stats(),
            "match_baseline": t_b.stats(), "mean_layers": float(np.mean(layers))}


def summary(results: list[dict[str, Any]], cfg: Config) -> dict[str, Any]:
    """The headline figures (at the middle keypoint budget) plus every budget's table."""
    main = results[len(results) // 2]
    return {
        "extractor": cfg.extractor, "backend": cfg.backend, "device": cfg.device,
        "threads": torch.get_num_threads(),
        "keypoints": main["keypoints"],
        "fps_tracking": main["fps_tracking"],
        "fps_pairwise": main["fps_pairwise"],
        "match_ms_adaptive": main["match_adaptive"]["median_ms"],
        "match_ms_full": main["match_full"]["median_ms"],
        "match_ms_baseline": main["match_baseline"]["median_ms"],
        "mean_layers": main["mean_layers"],
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": (torch.cuda.max_memory_allocated() / 2 ** 20
                        if torch.cuda.is_available() else None),
        "budgets": results,
    }
