"""The plan of ``gpu-check``: which command checks which GPU claim, in what order, with what time
box. Each part is one process running a public entry point: the ``parity`` and ``bench``
commands, or :mod:`lightglue_ros.gpucheck.measure`. Most important first, so that a run short of
time loses the least: parity, FP16, CUDA graphs, the bench, TensorRT."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

CLI = ["-m", "lightglue_ros.cli.main"]
MEASURE = ["-m", "lightglue_ros.gpucheck.measure"]
BUDGETS = (512, 1024, 2048, 4096)
PRECISIONS = ("fp32", "fp16")


@dataclass
class Part:
    name: str
    argv: list[str]
    limit_s: float
    claim: str  # what it checks, in words
    needs_cuda: bool = False
    needs_tensorrt: bool = False
    engine_dir: Path | None = None  # TensorRT parts: where the engines (and their sidecars) go


@dataclass
class Settings:
    extractors: list[str]
    device: str = "cuda"
    budgets: tuple[int, ...] = BUDGETS
    frames: int = 30
    hard_pairs: int = 5
    graph_rounds: int = 5
    bench_size: tuple[int, int] = (640, 480)  # the bench's synthetic frames, width x height
    python: str = field(default_factory=lambda: sys.executable)


def plan(goldens: dict[str, Path], s: Settings, work: Path) -> list[Part]:
    """Every part, in running order; ``goldens`` maps each extractor to its golden view."""
    py, dev = s.python, s.device

    def parity(e: str, *flags: str) -> list[str]:
        return [py, *CLI, "parity", "--golden", str(goldens[e]), "--json", "--device", dev,
                *flags]

    parts = [Part("environment", [py, *MEASURE, "environment"], 60,
                  "the machine, library versions, whether TensorRT imports")]
    for e in s.extractors:
        parts.append(Part(f"{e}.parity_fp32", parity(e), 150,
                          f"torch fp32 on {dev} against the official golden outputs"))
    for e in s.extractors:
        parts += [Part(f"{e}.parity_fp16", parity(e, "--precision", "fp16"), 150,
                       "torch fp16 autocast against the official golden outputs",
                       needs_cuda=True),
                  Part(f"{e}.fp16_keypoints",
                       [py, *MEASURE, "fp16-keypoints", "--golden", str(goldens[e]),
                        "--extractor", e, "--device", dev], 90,
                       "torch fp16 extractor against fp32: keypoints lost", needs_cuda=True)]
    for e in s.extractors:
        parts += [Part(f"{e}.cuda_graphs_parity", parity(e, "--cuda-graphs"), 150,
                       "torch with CUDA graphs against the official golden outputs",
                       needs_cuda=True),
                  Part(f"{e}.cuda_graphs_speed",
                       [py, *MEASURE, "graphs-speed", "--golden", str(goldens[e]),
                        "--extractor", e, "--device", dev, "--rounds", str(s.graph_rounds)],
                       120, "CUDA graphs against eager: times and agreement",
                       needs_cuda=True)]
    for e in s.extractors:
        for k in s.budgets:
            parts.append(Part(f"{e}.bench.{k}",
                              [py, *CLI, "bench", "--json", "--device", dev, "--extractor", e,
                               "--keypoints", str(k), "--frames", str(s.frames),
                               "--hard-pairs", str(s.hard_pairs), "--width",
                               str(s.bench_size[0]), "--height", str(s.bench_size[1])],
                              150 if k >= 4096 else 90,
                              f"bench at {k} keypoints: tracking, pairwise, early exit, "
                              f"baseline"))
    for e in s.extractors:
        for p in PRECISIONS:
            engines = work / "engines" / f"{e}-{p}"
            parts.append(Part(f"{e}.tensorrt_{p}",
                              parity(e, "--backend", "tensorrt", "--precision", p,
                                     "--engine-dir", str(engines)), 300,
                              f"TensorRT {p} engines: build, run, parity with the official "
                              f"outputs", needs_cuda=True, needs_tensorrt=True,
                              engine_dir=engines))
    return parts
