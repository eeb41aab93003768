"""``gpu-check`` without a GPU: the golden views, the time box, the orchestration on CPU (every
part present, those that need CUDA or TensorRT reported skipped, nothing of ROS imported), the
measurements' logic, and the JSON-to-tables step. What the parts measure on a GPU is not checked
here: these tests run on CPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import shutil
import time
from pathlib import Path

import pytest

from conftest import GOLDEN, ROOT, needs_shared, textured_image
from lightglue_ros.evaluation.parity import find_images
from lightglue_ros.gpucheck.golden import golden_view
from lightglue_ros.gpucheck.parts import Part
from lightglue_ros.gpucheck.runner import run_all, run_part
from lightglue_ros.gpucheck.tables import BEGIN, END, render, replace_section

BLOCKED = ("rclpy", "rosbags", "evo", "rcl_interfaces", "std_msgs", "sensor_msgs",
           "geometry_msgs", "nav_msgs", "diagnostic_msgs", "std_srvs", "builtin_interfaces",
           "tf2_ros", "tf2_msgs", "launch", "launch_ros")


def one_pair_golden(dest: Path, extractor: str) -> Path:
    """A golden folder with one freiburg pair of ``extractor``: a whole run on CPU in minutes."""
    source, images = GOLDEN / extractor, find_images(GOLDEN)
    pair = sorted((source / "matches" / "adaptive" / "freiburg").glob("*__*.npz"))[0].stem
    names = pair.split("__")
    (dest / extractor).mkdir(parents=True)
    shutil.copy(GOLDEN / "README.json", dest / "README.json")
    if (source / "README.json").is_file():
        shutil.copy(source / "README.json", dest / extractor / "README.json")
    for name in names:
        for src, dst in ((images / "freiburg" / f"{name}.png", dest / "images" / "freiburg"),
                         (source / "features" / "freiburg" / f"{name}.npz",
                          dest / extractor / "features" / "freiburg")):
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    for mode in (p.name for p in (source / "matches").iterdir()):
        dst = dest / extractor / "matches" / mode / "freiburg"
        dst.mkdir(parents=True)
        shutil.copy(source / "matches" / mode / "freiburg" / f"{pair}.npz", dst)
    return dest


# --- golden views ---------------------------------------------------------------------------------
@needs_shared
def test_a_golden_view_holds_one_extractor_with_its_own_settings(tmp_path):
    from lightglue_ros.evaluation.parity import GoldenSet, find_images

    view = golden_view(GOLDEN, "xfeat", tmp_path / "view")
    readme = json.loads((view / "README.json").read_text())
    assert list(readme["extractor_conf"]) == ["xfeat"]
    assert readme["matcher_conf"]["official"]["width_confidence"] == 0.95  # XFeat's README
    assert sorted(p.name for p in view.iterdir()) == ["README.json", "images", "xfeat"]
    gold = GoldenSet(view, "xfeat", find_images(view))
    assert len(gold.feature_files()) == 33 and gold.modes() == ["adaptive", "full", "official"]


# --- the time box ---------------------------------------------------------------------------------
def test_a_part_that_hangs_is_stopped_with_its_children_and_leaves_its_partial_figures(tmp_path):
    code = ("import json, os, subprocess, time\n"
            "child = subprocess.Popen(['sleep', '60'])\n"
            "open(os.environ['GPU_CHECK_PARTIAL'], 'w').write(json.dumps({'child': child.pid}))\n"
            "time.sleep(60)\n")
    start = time.monotonic()
    entry = run_part(Part("hang", [sys.executable, "-c", code], 60, "hangs"), 3.0,
                     dict(os.environ), tmp_path)
    assert time.monotonic() - start < 30
    assert entry["status"] == "timeout" and entry["limit_s"] == 3.0
    pid = entry["partial"]["child"]
    for _ in range(50):  # the whole process group was killed, the grandchild too
        if not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()\
                .split()[2]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"process {pid} of the stopped part still runs")


def test_failing_parts_are_reported_and_the_run_goes_on(tmp_path):
    parts = [Part("crash", [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); "
                                                  "sys.exit(3)"], 30, "crashes"),
             Part("fine", [sys.executable, "-c", "print('noise'); print('{\"x\": 1}')"], 30,
                  "works"),
             Part("cuda", [sys.executable, "-c", "raise SystemExit(1)"], 30, "needs CUDA",
                  needs_cuda=True),
             Part("hang", [sys.executable, "-c", "import time; time.sleep(60)"], 3, "hangs")]
    out = tmp_path / "report.json"
    report = run_all(parts, budget_s=200, device="cpu", env=dict(os.environ), work=tmp_path,
                     report={"gpu_check": 1}, out=out, min_part_s=2.0)
    p = report["parts"]
    assert p["crash"]["status"] == "error" and p["crash"]["rc"] == 3
    assert "boom" in p["crash"]["stderr_tail"]
    assert p["fine"]["status"] == "ok" and p["fine"]["result"] == {"x": 1}
    assert p["cuda"]["status"] == "skipped" and "needs a CUDA device" in p["cuda"]["reason"]
    assert p["hang"]["status"] == "timeout"
    assert report["summary"]["error"] == ["crash"] and report["summary"]["timeout"] == ["hang"]
    assert json.loads(out.read_text()) == report


def test_each_part_leaves_time_for_the_later_ones(tmp_path):
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    parts = [Part(f"hang{i}", hang, 100, "hangs") for i in range(3)]
    report = run_all(parts, budget_s=7.0, device="cpu", env=dict(os.environ), work=tmp_path,
                     report={}, min_part_s=2.0)
    first = report["parts"]["hang0"]
    assert first["status"] == "timeout" and 2.0 <= first["limit_s"] <= 3.0  # 7 - 2 x 2 later
    assert all(e["status"] in ("timeout", "skipped") for e in report["parts"].values())
    assert report["wall_s"] < 7.0 + 5.0


# --- the measurements' logic (on CPU, with pipelines whose difference is known) -------------------
@pytest.fixture(scope="module")
def xfeat_pipes():
    from lightglue_ros import Pipeline

    ref = Pipeline(extractor="xfeat", max_keypoints=200, detection_threshold=0.0)
    return ref, Pipeline(ref.config)


def test_keypoint_loss_counts_what_the_candidate_misses(xfeat_pipes):
    from lightglue_ros import Pipeline
    from lightglue_ros.gpucheck.measure import keypoint_loss

    ref, twin = xfeat_pipes
    images = [textured_image(240, 320, seed) for seed in (1, 2)]
    same = keypoint_loss(ref, twin, images)
    assert same["ok"] and same["lost"] == 0 and same["reference_keypoints"] == 400
    assert same["descriptor_cosine"] == pytest.approx(1.0, abs=1e-5)
    fewer = keypoint_loss(ref, Pipeline(ref.config.replace(max_keypoints=150)), images)
    assert not fewer["ok"]  # fewer keypoints than the reference: the FP16 rule fails it
    assert fewer["candidate_keypoints"] == 300 and fewer["lost"] == 100  # the top 150 of 200
    assert fewer["lost_fraction"] == pytest.approx(0.25)


def test_compare_modes_times_both_and_measures_agreement(xfeat_pipes):
    from lightglue_ros.gpucheck.measure import compare_modes

    ref, twin = xfeat_pipes
    frames = [textured_image(240, 320, 3)[k:k + 200, k:k + 280] for k in (0, 4, 8)]
    seen = []
    same = compare_modes({"a": ref, "b": twin}, frames, rounds=1, warmup=1, record=seen.append)
    assert same["keypoints_within_1px"] == 1.0 and same["match_agreement"] == 1.0
    assert same["stop_agreement"] == 1.0 and same["pairs"] == 2 and seen == [same]
    assert same["image_size"] == [280, 200] and set(same["times"]) == {"a", "b"}
    twin.set_thresholds(filter_threshold=0.9)
    try:
        other = compare_modes({"a": ref, "b": twin}, frames, rounds=1, warmup=1)
    finally:
        twin.set_thresholds(filter_threshold=ref.config.filter_threshold)
    assert other["match_agreement"] < 1.0  # a stricter filter drops matches the reference keeps


# --- the whole run on CPU, as a GPU machine without ROS runs it (the package from the tree) -----
@pytest.fixture(scope="module")
def cpu_report(tmp_path_factory):
    if not (GOLDEN / "README.json").is_file():
        pytest.skip(f"test data {GOLDEN} is absent")
    tmp = tmp_path_factory.mktemp("gpu-check")
    golden = one_pair_golden(tmp / "golden", "aliked")
    blocker = tmp / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        f"BLOCKED = {BLOCKED!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ModuleNotFoundError(f'{name} is blocked: no ROS here')\n"
        "sys.meta_path.insert(0, Block())\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{ROOT}"}
    probe = subprocess.run([sys.executable, "-c", "import rclpy"], env=env, capture_output=True,
                           text=True)
    assert "blocked: no ROS here" in probe.stderr  # the blocker works
    out = tmp / "gpu-check.json"
    proc = subprocess.run([sys.executable, "-m", "lightglue_ros.cli.main", "gpu-check", "run",
                           "--golden", str(golden), "--extractors", "aliked", "--device", "cpu",
                           "--budgets", "32", "--frames", "2", "--hard-pairs", "0",
                           "--bench-size", "160x120",
                           "--budget-s", "900", "--out", str(out)],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=1200)
    return proc, out


EXPECTED_PARTS = ["environment", "aliked.parity_fp32", "aliked.parity_fp16",
                  "aliked.fp16_keypoints", "aliked.cuda_graphs_parity",
                  "aliked.cuda_graphs_speed", "aliked.bench.32", "aliked.tensorrt_fp32",
                  "aliked.tensorrt_fp16"]


@needs_shared
def test_a_cpu_run_without_ros_reports_every_part(cpu_report):
    proc, out = cpu_report
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1  # one JSON object
    report = json.loads(lines[0])
    assert report == json.loads(out.read_text())
    parts = report["parts"]
    assert list(parts) == EXPECTED_PARTS
    assert "aliked.parity_fp32: ok" in proc.stderr  # progress on stderr
    env = parts["environment"]["result"]
    assert env["cuda_available"] is False and env["tensorrt"]["version"] is None
    parity = parts["aliked.parity_fp32"]
    assert parity["status"] == "ok", parity
    entry = parity["result"]["aliked"]
    assert entry["images"] == 2 and entry["keypoints_within_1px"] >= 0.98
    bench = parts["aliked.bench.32"]
    assert bench["status"] == "ok", bench
    assert bench["result"]["budgets"][0]["keypoints"] == 32
    for name in EXPECTED_PARTS[2:6]:
        assert parts[name]["status"] == "skipped"
        assert parts[name]["reason"] == "needs a CUDA device (this run: --device cpu)"
    for name in EXPECTED_PARTS[7:]:
        assert parts[name]["status"] == "skipped"
        assert parts[name]["reason"].startswith("tensorrt not importable: TensorRT is not "
                                                "installed")
    assert report["summary"]["ok"] == EXPECTED_PARTS[:2] + ["aliked.bench.32"]


@needs_shared
def test_the_tables_show_the_figures_of_a_run(cpu_report, tmp_path):
    _, out = cpu_report
    report = json.loads(out.read_text())
    text = render([(Path("docs/benchmarks/gpu/gpu-check-aliked.json"), report)])
    entry = report["parts"]["aliked.parity_fp32"]["result"]["aliked"]
    b = report["parts"]["aliked.bench.32"]["result"]["budgets"][0]
    assert f"| aliked | torch fp32 | ok | {entry['keypoints_within_1px']:.4f} |" in text
    assert f"| 32 | ok | {b['mean_keypoints']:.0f} | {b['fps_tracking']:.1f} |" in text
    assert "| aliked | torch fp16 | skipped |" in text
    assert "| aliked.tensorrt_fp16 | skipped |" in text and "tensorrt not importable" in text
    assert "docs/benchmarks/gpu/gpu-check-aliked.json" in text and "no GPU" in text
    doc = f"# Benchmarks\n\nintro\n{BEGIN}\nSTALE TABLES\n{END}\ntail\n"
    new = replace_section(doc, text)
    assert new.startswith("# Benchmarks\n\nintro\n") and new.endswith(f"{END}\ntail\n")
    assert "STALE TABLES" not in new and text in new
    with pytest.raises(ValueError, match="markers"):
        replace_section("no markers", text)


def test_the_tables_say_what_a_failed_or_stopped_part_left():
    times = {"median_ms": 2.0, "p90_ms": 2.0, "p99_ms": 2.0, "mean_ms": 2.0}
    partial = {"reference": "eager", "candidate": "cuda_graphs", "image_size": [640, 480],
               "times": {m: {"extract": times, "match": times} for m in ("eager", "cuda_graphs")},
               "extract_speedup": 1.0, "match_speedup": 1.0, "keypoints_within_1px": 1.0,
               "match_agreement": 0.99, "stop_agreement": 1.0}
    report = {"parts": {
        "xfeat.cuda_graphs_speed": {"status": "timeout", "reason": "stopped after 120 s",
                                    "partial": partial, "seconds": 120.1, "limit_s": 120},
        "xfeat.bench.512": {"status": "error", "reason": "exit code 1 without a JSON result",
                            "seconds": 3.0, "limit_s": 90},
        "xfeat.parity_fp32": {"status": "error", "reason": "no | pipes\nhere"}}}
    text = render([(Path("r.json"), report)])
    assert "| xfeat | timeout | 640x480 | 2.00 | 2.00 | 1.00x |" in text
    assert "| 512 | error | — |" in text and "exit code 1 without a JSON result" in text
    assert "| xfeat.parity_fp32 | error | — | — | no / pipes here |" in text
