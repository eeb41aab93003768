"""``lightglue-ros bundle``: an offline install folder. Every file is in SHA256SUMS and the
manifest; install.sh refuses a bundle with a changed file; it installs the wheel into a fresh
environment with no package index, and places checkpoints and ONNX graphs where lightglue-ros
finds them, so the export cache serves the graphs without exporting again."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli, run_cli_json
from lightglue_ros.files import sha256_file
from lightglue_ros.weights.registry import WEIGHTS


def _install(bundle: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(bundle / "install.sh"), *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=600)


def test_sums_and_manifest_cover_every_file_and_install_checks_them(tmp_path):
    out = tmp_path / "robot"
    manifest = run_cli_json("bundle", str(out), "--extractor", "xfeat", "--no-wheels",
                            "--no-onnx")
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"SHA256SUMS", "manifest.json"}
    assert {"install.sh", "weights/xfeat.pt", "weights/xfeat-lighterglue.pt"} <= files
    for name in ("xfeat", "xfeat_lighterglue"):  # the pinned checkpoints, byte for byte
        spec = WEIGHTS[name]
        assert manifest["files"][f"weights/{spec.filename}"]["sha256"] == spec.sha256
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert _install(out, "--check").returncode == 0

    with open(out / "weights" / "xfeat.pt", "r+b") as f:  # one byte changed in transit
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 1]))
    check = _install(out, "--check")
    assert check.returncode != 0 and "weights/xfeat.pt: FAILED" in check.stdout + check.stderr

    proc = run_cli("bundle", str(out), "--no-wheels", check=False)  # never over an old one
    assert proc.returncode == 2 and "already exists" in proc.stderr


@pytest.mark.slow
def test_install_needs_no_index_and_the_graphs_need_no_export(tmp_path):
    """The package's wheel (an empty requirements file and an empty wheelhouse: nothing may come
    from an index) into a fresh environment; checkpoints and graphs into the folders named by
    LIGHTGLUE_ROS_WEIGHTS and LIGHTGLUE_ROS_ENGINES."""
    from lightglue_ros.config import Config
    from lightglue_ros.inference.export import export_for_config

    requirements, wheelhouse = tmp_path / "requirements.txt", tmp_path / "wheelhouse"
    requirements.write_text("# only lightglue_ros itself\n")
    wheelhouse.mkdir()
    out = tmp_path / "robot"
    manifest = run_cli_json("bundle", str(out), "--extractor", "xfeat", "--requirements",
                            str(requirements), "--find-links", str(wheelhouse))
    assert any(name.startswith("wheels/lightglue_ros-") for name in manifest["files"])
    assert any(name.startswith("engines/onnx/") for name in manifest["files"])

    env_dir = tmp_path / "env"  # a fresh environment; its own site has no lightglue_ros
    subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", "--system-site-packages",
                    str(env_dir)], check=True, timeout=300)
    weights, engines = tmp_path / "weights", tmp_path / "engines"
    proc = _install(out, env={"PYTHON": str(env_dir / "bin" / "python"), "PIP_NO_INDEX": "1",
                              "LIGHTGLUE_ROS_WEIGHTS": str(weights),
                              "LIGHTGLUE_ROS_ENGINES": str(engines)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = subprocess.run([str(env_dir / "bin" / "python"), "-c",
                                "import importlib.metadata as m; print(m.version('lightglue_ros'))"],
                               capture_output=True, text=True, check=True)
    assert installed.stdout.strip() == "0.1.0"
    for name in ("xfeat", "xfeat_lighterglue"):
        assert sha256_file(weights / WEIGHTS[name].filename) == WEIGHTS[name].sha256
    before = {p: p.stat().st_mtime_ns for p in engines.rglob("*") if p.is_file()}
    exported, matcher, _, _ = export_for_config(Config(extractor="xfeat"), engines)
    after = {p: p.stat().st_mtime_ns for p in engines.rglob("*") if p.is_file()}
    assert after == before  # the bundled graphs are the cache's: nothing exported again
    assert all(p in before for p in exported.files() + matcher.files())
