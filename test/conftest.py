"""Shared test helpers: the ../shared test data, the CLI, generated images, pose errors, and which
tests are slow (``make test-fast`` leaves them out)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GOLDEN = SHARED / "golden"

needs_shared = pytest.mark.skipif(
    not (GOLDEN / "README.json").is_file(),
    reason=f"test data {SHARED} is absent (it sits beside the clone in CI; see shared/README.md)")
TUM_FR2 = SHARED / "data" / "tum_fr2_desk"
needs_tum_fr2 = pytest.mark.skipif(
    not (TUM_FR2 / "rgb.txt").is_file(),
    reason=f"test data {TUM_FR2} is absent (../shared sits beside the clone in CI; "
           "see shared/README.md)")


# A test that uses one of these is slow whatever it asserts: node processes (weights, DDS
# discovery), a colcon build, the whole golden set (one parity process per run), the gpu-check run.
# A test module adds its own expensive fixtures in a SLOW_FIXTURES of its own.
SLOW_FIXTURES = {"ros_session", "colcon_install", "parity_runs", "cpu_report", "track_fr2"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        slow = SLOW_FIXTURES | getattr(item.module, "SLOW_FIXTURES", set())
        if slow & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def track_fr2(tmp_path_factory) -> tuple[dict, Path]:
    """``lightglue-ros track`` on the 20 fr2/desk frames with the CPU default (XFeat): its
    figures and output folder, run once for the tests that judge it or compare a run with it."""
    out = tmp_path_factory.mktemp("track_fr2")
    return run_cli_json("track", str(TUM_FR2), "--preset", "fr2", "--extractor", "xfeat",
                        "--out", str(out)), out


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Empty weights cache and torch hub cache, so only the package data can resolve."""
    monkeypatch.setenv("LIGHTGLUE_ROS_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def run_cli(*args: str, check: bool = True, timeout: float = 1800, env: dict | None = None
            ) -> subprocess.CompletedProcess:
    """Run ``lightglue-ros`` in a fresh interpreter, exactly as a user would."""
    proc = subprocess.run([sys.executable, "-m", "lightglue_ros.cli.main", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"lightglue-ros {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def run_cli_json(*args: str) -> dict:
    proc = run_cli(*args, "--json")
    return json.loads(proc.stdout)


PARITY_RUNS = {  # the parity runs of the suite: name -> the test that reads it
    "torch": "test_parity_meets_the_bars",
    "onnxruntime-1": "test_parity_cli_with_onnxruntime_meets_the_bars[1]",
    "onnxruntime-2": "test_parity_cli_with_onnxruntime_meets_the_bars[2]",
}
PAIRS_PER_SET = 3  # of each extractor, mode and image set, in the ONNX Runtime runs


def golden_subset(dest: Path, pairs_per_set: int = PAIRS_PER_SET) -> Path:
    """A golden folder of links into ../shared/golden: for every extractor, mode and image set,
    its first ``pairs_per_set`` pairs and the features of their images. Every extractor, mode
    and set is judged, on a fraction of the pairs (the whole set: ``make parity``)."""
    from lightglue_ros.evaluation.parity import find_images

    def link(path: Path) -> None:
        target = dest / path.relative_to(GOLDEN)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)

    dest.mkdir(parents=True)
    (dest / "images").symlink_to(find_images(GOLDEN))
    for readme in GOLDEN.glob("**/README.json"):  # the set's and each extractor's conventions
        link(readme)
    for extractor in sorted(p for p in GOLDEN.iterdir() if (p / "features").is_dir()):
        images = set()
        for image_set in sorted(extractor.glob("matches/*/*")):
            for pair in sorted(image_set.glob("*__*.npz"))[:pairs_per_set]:
                link(pair)
                images |= {(image_set.name, name) for name in pair.stem.split("__")}
        for image_set, name in sorted(images):
            link(extractor / "features" / image_set / f"{name}.npz")
    return dest


class ParityRuns:
    """``lightglue-ros parity --json`` once per backend and thread count: PyTorch on the whole
    golden set, ONNX Runtime on ``golden_subset`` (every extractor and mode; on the whole set
    they made the suite's slowest test, 10 minutes). The runs the session's tests read start
    at once, in two chains of processes: PyTorch beside the ONNX Runtime runs, which share one
    engine folder and run one after the other, so that only the first exports the graphs. A run
    exits 1 when a bar is missed; its report still comes."""

    def __init__(self, folder: Path, wanted: set[str]) -> None:
        self.golden = {name: GOLDEN for name in wanted}
        ort = sorted(name for name in wanted if name.startswith("onnxruntime"))
        if ort:
            subset = golden_subset(folder / "golden")
            self.golden.update({name: subset for name in ort})
        self.done: dict[str, subprocess.CompletedProcess] = {}
        self._ready = {name: threading.Event() for name in wanted}
        chains = [[name] for name in sorted(wanted) if name not in ort] + ([ort] if ort else [])
        for chain in chains:
            threading.Thread(target=self._run, args=(chain, folder / "engines"),
                             daemon=True).start()

    def _run(self, chain: list[str], engines: Path) -> None:
        for name in chain:
            args = ["parity", "--golden", str(self.golden[name]), "--json", "--backend",
                    name.split("-", 1)[0]]
            if name.startswith("onnxruntime"):
                args += ["--engine-dir", str(engines),
                         "--cpu-threads", name.rsplit("-", 1)[1]]
            try:
                self.done[name] = subprocess.run(
                    [sys.executable, "-m", "lightglue_ros.cli.main", *args], cwd=ROOT,
                    capture_output=True, text=True, timeout=1800)
            finally:
                self._ready[name].set()

    def report(self, name: str) -> dict:
        assert self._ready[name].wait(timeout=3600), f"parity {name} did not finish"
        proc = self.done.get(name)
        assert proc is not None, f"parity {name} did not run (timed out)"
        assert proc.returncode in (0, 1), \
            f"parity {name} failed ({proc.returncode}):\n{proc.stderr}"
        return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def parity_runs(request, tmp_path_factory) -> ParityRuns:
    selected = {item.name for item in request.session.items}
    return ParityRuns(tmp_path_factory.mktemp("parity"),
                      {run for run, test in PARITY_RUNS.items() if test in selected})


def assert_parity_meets_the_bars(report: dict, golden: Path = GOLDEN) -> None:
    """Every extractor folder under ``golden``: its bars met in every mode, over all its images
    and pairs, or skipped because this build lacks the extractor."""
    from dataclasses import asdict

    from lightglue_ros.config import EXTRACTORS
    from lightglue_ros.evaluation.parity import BARS, GoldenSet, find_images

    assert {"aliked", "disk"} <= set(report)
    for extractor, entry in report.items():
        if "skipped" in entry:
            assert extractor not in EXTRACTORS and "not in this build" in entry["skipped"]
            continue
        assert entry["failures"] == [], (extractor, entry)
        assert entry["bars"] == asdict(BARS[extractor]), extractor
        gold = GoldenSet(golden, extractor, find_images(golden))
        assert entry["images"] == len(gold.feature_files())
        assert set(entry["modes"]) == set(gold.modes())
        for mode, m in entry["modes"].items():
            assert m["pairs"] == len(gold.pair_files(mode)) and m["near_tie_analysis"]


def textured_image(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A deterministic RGB uint8 image with blobs and edges at several scales."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for scale in (4, 16, 48):
        noise = rng.random((h // scale + 2, w // scale + 2, 3)).astype(np.float32)
        img += cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)[:h, :w]
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).astype(np.uint8)


def textured_tensor(h: int = 240, w: int = 320, seed: int = 0, channels: int = 3):
    """``textured_image`` as a (1, C, H, W) float tensor in [0, 1]; one channel is the mean."""
    import torch

    img = torch.from_numpy(textured_image(h, w, seed)).permute(2, 0, 1)[None].float() / 255
    return img.mean(1, keepdim=True) if channels == 1 else img


def pose_error(T: np.ndarray, T_gt: np.ndarray) -> tuple[float, float]:
    """(translation error m, rotation error deg) of a 4x4 pose against its ground truth."""
    from lightglue_ros.geometry.se3 import invert_transform, rotation_angle_deg

    D = invert_transform(T_gt) @ T
    return float(np.linalg.norm(D[:3, 3])), rotation_angle_deg(D[:3, :3])


def tensorrt_parser_problems(path: Path) -> list[str]:
    """What in an exported ONNX graph TensorRT's parser rejects: If, Loop or NonZero, an integer
    or dynamic Clip, a boolean ScatterND, a TopK whose K is not a constant <= MAX_TOPK."""
    import onnx

    from lightglue_ros.inference.export import _element_types
    from lightglue_ros.inference.graphs import MAX_TOPK

    model = onnx.load(str(path))
    types = _element_types(model)
    consts = {i.name: i for i in model.graph.initializer}
    consts.update({n.output[0]: n.attribute[0].t for n in model.graph.node
                   if n.op_type == "Constant"})
    problems = []
    for node in model.graph.node:
        where = f"{path.name}: {node.op_type} {node.name}"
        if node.op_type in ("If", "Loop", "NonZero"):
            problems.append(where)
        if node.op_type == "Clip" and (types[node.input[0]] != onnx.TensorProto.FLOAT or any(
                b and b not in consts for b in node.input[1:])):
            problems.append(f"{where}: integer or dynamic bounds")
        if node.op_type == "ScatterND" and types[node.input[0]] == onnx.TensorProto.BOOL:
            problems.append(f"{where}: boolean")
        if node.op_type == "TopK":
            if node.input[1] not in consts:
                problems.append(f"{where}: K not constant")
            elif int(onnx.numpy_helper.to_array(consts[node.input[1]]).reshape(-1)[0]) > MAX_TOPK:
                problems.append(f"{where}: K > {MAX_TOPK}")
    return problems
