"""Which CPU runtime runs each graph fastest: PyTorch (the graph modules, eagerly), ONNX Runtime
at each graph optimisation level, and OpenVINO (which reads the same ONNX files), interleaved in
one process on the same inputs.

The inputs are the ones the graphs see in use: a real extraction of a synthetic frame and a real
match of two frames are run through a recording runner, and each graph's recorded inputs are
replayed (the extractor's dense graph at the frame size, LightGlue's layer and assignment graphs
at each keypoint count). Every runtime's outputs are compared with PyTorch's, so a fast runtime
that changes the results shows it. Each repeat runs every case once per runtime in a rotating
order, so a load spike from elsewhere on the machine hits every runtime alike; figures are
medians.

OpenVINO's CPU plugin computes in bfloat16 by default where the CPU has it (``avx512_bf16``,
AMX); ``openvino`` here pins FP32 (the parity bars need it), ``openvino-default`` keeps the
plugin's default for comparison.
"""
from __future__ import annotations

import itertools
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from ..config import Config
from ..images import to_tensor
from ..inference.export import engine_dir_for, export_extractor, export_matcher
from ..inference.graphs import (GraphExtractor, GraphSpec, GraphStages, TorchGraphRunner,
                                extractor_graphs, matcher_graphs)
from ..models.factory import build_extractor, build_matcher
from ..models.lightglue import AdaptiveConf, normalize_keypoints, run_adaptive

ORT_LEVELS = ("disabled", "basic", "extended", "all")
# enough keypoints in a synthetic VGA frame for every budget (as the bench fills them)
FILL_THRESHOLD = {"aliked": 0.01}


@dataclass
class Case:
    """One graph on one recorded input."""

    model: str
    graph: str
    label: str  # what the input is: "640x480", "512 keypoints"
    spec: GraphSpec
    onnx: Path
    inputs: tuple[torch.Tensor, ...]
    reference: tuple[np.ndarray, ...] = ()
    times: dict[str, list[float]] = field(default_factory=dict)
    parity: dict[str, dict[str, float]] = field(default_factory=dict)


class _Recorder(TorchGraphRunner):
    """A torch runner that keeps the inputs of each graph's first call."""

    def __init__(self, specs: list[GraphSpec]) -> None:
        super().__init__(specs, torch.device("cpu"))
        self.seen: dict[str, tuple[torch.Tensor, ...]] = {}

    def run(self, name: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.seen.setdefault(name, tuple(t.clone() for t in inputs))
        return super().run(name, *inputs)


def _frames(width: int, height: int) -> list[np.ndarray]:
    from ..synthetic import make_sequence

    seq = make_sequence(num_frames=2, width=width, height=height)
    return [seq.frame(i).rgb for i in range(2)]


def cases_for(extractor: str, keypoints: Iterable[int], size: tuple[int, int],
              engine_dir: Path | None = None) -> list[Case]:
    """The extractor's graphs on a frame of ``size`` (width, height) and LightGlue's first layer
    and its assignment (all layers cost the same) on two frames' features cut to each keypoint
    count."""
    budgets = sorted(keypoints)
    cfg = Config(extractor=extractor, max_keypoints=budgets[-1],
                 detection_threshold=FILL_THRESHOLD.get(extractor, -1.0))
    folder = engine_dir_for(cfg, engine_dir)
    model, lg = build_extractor(cfg), build_matcher(cfg)
    # the graphs the onnxruntime backend runs (data-dependent shapes allowed)
    exported = export_extractor(model, folder, static=False)
    exported_lg = export_matcher(lg, extractor, folder)
    specs = extractor_graphs(model, static=False)
    recorder = _Recorder(specs)
    images = [to_tensor(frame, model.input_channels)[0] for frame in _frames(*size)]
    features = [GraphExtractor(model, recorder)(img) for img in images]
    cases = [Case(exported.model, name, f"{size[0]}x{size[1]}", recorder.specs[name],
                  exported.path(name), inputs) for name, inputs in recorder.seen.items()]
    size_t = torch.tensor(size, dtype=torch.float32)
    for n in budgets:
        lg_recorder = _Recorder(matcher_graphs(lg))
        kpts = [normalize_keypoints(f["keypoints"][:, :n], size_t) for f in features]
        desc = [f["descriptors"][:, :n] for f in features]
        with torch.inference_mode():
            run_adaptive(GraphStages(lg_recorder, lg.n_layers), AdaptiveConf(-1.0, -1.0),
                         kpts[0], kpts[1], desc[0], desc[1])
        count = min(len(k[0]) for k in kpts)
        cases += [Case(exported_lg.model, name, f"{count} keypoints", lg_recorder.specs[name],
                       exported_lg.path(name), lg_recorder.seen[name])
                  for name in ("layer0", f"assign{lg.n_layers - 1}")]
    return cases


# --- runtimes -------------------------------------------------------------------------------------
Call = Callable[[], tuple[np.ndarray, ...]]


def _torch_call(case: Case, threads: int) -> Call:
    def call() -> tuple[np.ndarray, ...]:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            out = case.spec.module(*case.inputs)
        out = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(t.numpy() for t in out)
    return call


def _feeds(case: Case) -> dict[str, np.ndarray]:
    return {name: t.numpy() for name, t in zip(case.spec.inputs, case.inputs)}


def _ort_call(case: Case, threads: int, level: str, spinning: bool = True) -> Call:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(case.onnx), options, providers=["CPUExecutionProvider"])
    feeds = _feeds(case)
    return lambda: tuple(session.run(None, feeds))


def _openvino_call(case: Case, threads: int, fp32: bool = True) -> Call:
    import openvino as ov

    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                              "PERFORMANCE_HINT": "LATENCY"}
    if fp32:
        config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = ov.Core().compile_model(str(case.onnx), "CPU", config)
    request = compiled.create_infer_request()
    feeds = _feeds(case)

    def call() -> tuple[np.ndarray, ...]:
        request.infer(feeds)
        return tuple(request.get_output_tensor(i).data.copy()
                     for i in range(len(compiled.outputs)))
    return call


def available_runtimes() -> tuple[list[str], dict[str, str]]:
    """The runtime names that can run here, and why the others cannot."""
    import importlib.util

    names, missing = ["torch"], {}
    if importlib.util.find_spec("onnxruntime") is None:
        missing["onnxruntime"] = "ONNX Runtime is not installed (pip install onnxruntime)"
    else:
        names += [f"onnxruntime:{level}" for level in ORT_LEVELS]
    if importlib.util.find_spec("openvino") is None:
        missing["openvino"] = ("OpenVINO is not installed (pip install openvino==2026.4.1); "
                               "its rows are skipped")
    else:
        names += ["openvino", "openvino-default"]
    return names, missing


def make_call(runtime: str, case: Case, threads: int) -> Call:
    kind, _, variant = runtime.partition(":")
    if kind == "torch":
        return _torch_call(case, threads)
    if kind == "onnxruntime":
        level, _, spin = variant.partition(",")
        return _ort_call(case, threads, level, spinning=spin != "nospin")
    if kind in ("openvino", "openvino-default"):
        return _openvino_call(case, threads, fp32=kind == "openvino")
    raise ValueError(f"unknown runtime {runtime!r}")


def compare(reference: tuple[np.ndarray, ...], outputs: tuple[np.ndarray, ...]
            ) -> dict[str, float]:
    """How far a runtime's outputs are from PyTorch's: the largest difference of the float
    outputs relative to their largest magnitude, and the share of equal integer outputs (the
    ranked candidate indices)."""
    rel, equal = 0.0, 1.0
    for ref, out in zip(reference, outputs):
        out = np.asarray(out).reshape(ref.shape)
        if np.issubdtype(ref.dtype, np.floating):
            scale = float(np.abs(ref).max()) or 1.0
            rel = max(rel, float(np.abs(out.astype(np.float64) - ref).max()) / scale)
        else:
            equal = min(equal, float((out == ref).mean()))
    return {"max_relative_difference": rel, "integer_agreement": equal}


def run_comparison(cases: list[Case], runtimes: list[str], threads: list[int], repeats: int,
                   warmup: int = 2, progress: Callable[[Iterable], Iterable] = lambda x: x
                   ) -> list[dict[str, Any]]:
    """Time every (case, runtime, thread count) ``repeats`` times, interleaved; one row each."""
    slots = []  # (case, runtime label, threads, call)
    for case in cases:
        case.reference = _torch_call(case, 1)()
        for t, runtime in itertools.product(threads, runtimes):
            variants = [runtime]
            if runtime == "onnxruntime:all" and t > 1:
                variants.append("onnxruntime:all,nospin")
            for name in variants:
                call = make_call(name, case, t)
                for _ in range(warmup):
                    out = call()
                case.parity[f"{name}@{t}"] = compare(case.reference, out)
                slots.append((case, name, t, call))
    for r in progress(range(repeats)):
        for case in cases:
            mine = [s for s in slots if s[0] is case]
            k = r % len(mine)
            for _, name, t, call in mine[k:] + mine[:k]:  # a rotating order
                start = time.perf_counter()
                call()
                case.times.setdefault(f"{name}@{t}", []).append(
                    1e3 * (time.perf_counter() - start))
    rows = []
    for case in cases:
        for key, samples in case.times.items():
            name, t = key.rsplit("@", 1)
            rows.append({"model": case.model, "graph": case.graph, "input": case.label,
                         "runtime": name, "threads": int(t),
                         "median_ms": statistics.median(samples),
                         "p10_ms": float(np.percentile(samples, 10)),
                         "p90_ms": float(np.percentile(samples, 90)),
                         "samples": len(samples), **case.parity[key]})
    return rows


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import importlib.metadata

    versions = {}
    for dist in ("torch", "onnxruntime", "openvino"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "versions": versions,
            "load_average": list(os.getloadavg())}
