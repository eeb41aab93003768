"""``lightglue-ros bundle OUT``: one folder that installs the tracker on a robot without internet.

OUT holds the wheels (this package's, built from the source tree, and those of a requirements
file, from ``--find-links`` wheelhouses or the package index), the verified checkpoints of the
chosen extractors and their LightGlue, the networks' ONNX graphs (the export cache's layout, so
``build-engines`` on the robot starts from them), ``SHA256SUMS`` and ``manifest.json`` (every
file with its size and sha256), and ``install.sh``: on the robot, ``sh OUT/install.sh`` checks
every file and installs from OUT alone (``sh OUT/install.sh --check`` only checks).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from ..config import EXTRACTORS, add_arguments, from_args
from ..errors import LightGlueRosError
from ..files import sha256_file
from ..version import __version__

SOURCE = Path(__file__).resolve().parents[2]  # the source tree, when run from one
SUMS = "SHA256SUMS"

INSTALL_SH = """\
#!/bin/sh
# Install lightglue_ros from this folder alone (no network). Every file is checked against
# SHA256SUMS first; --check stops there. PYTHON chooses the interpreter (default python3).
set -eu
cd "$(dirname "$0")"
sha256sum --check --quiet SHA256SUMS
echo "all files match SHA256SUMS"
if [ "${1:-}" = "--check" ]; then exit 0; fi
PYTHON="${PYTHON:-python3}"
if [ -d wheels ]; then
    "$PYTHON" -m pip install --no-index --find-links wheels -r requirements.txt lightglue_ros
fi
# where lightglue-ros looks (weights.resolve.cache_dir, inference.export.default_engine_dir)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/lightglue_ros"
WEIGHTS="${LIGHTGLUE_ROS_WEIGHTS:-$CACHE/weights}"
mkdir -p "$WEIGHTS" && cp weights/* "$WEIGHTS"/
echo "checkpoints in $WEIGHTS"
if [ -d engines ]; then
    ENGINES="${LIGHTGLUE_ROS_ENGINES:-$CACHE/engines}"
    mkdir -p "$ENGINES" && cp -r engines/. "$ENGINES"/
    echo "ONNX graphs in $ENGINES (lightglue-ros build-engines makes TensorRT engines of them)"
fi
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bundle", conflict_handler="resolve",
                       help="an offline install folder for a robot without internet",
                       description="Write OUT: wheels, checkpoints, ONNX graphs, SHA256SUMS, "
                                   "manifest.json and install.sh; on the robot `sh "
                                   "OUT/install.sh` checks every file and installs from OUT "
                                   "alone.")
    p.add_argument("out", type=Path, help="folder to create (it must not exist)")
    add_arguments(p, ("features", "inference"))  # our --extractor replaces its own
    p.add_argument("--extractor", dest="extractors", action="append", choices=EXTRACTORS,
                   help="extractor to bundle (repeatable; default: the configured one)")
    p.add_argument("--requirements", type=Path, default=SOURCE / "requirements.txt",
                   help="the Python packages to bundle as wheels (default: the source tree's "
                        "requirements.txt; on a robot with ROS 2, leave out the ros-* wheels)")
    p.add_argument("--find-links", action="append", default=[], type=Path, metavar="DIR",
                   help="take every wheel from DIR (repeatable): a wheelhouse, no package index")
    p.add_argument("--no-wheels", action="store_true",
                   help="no wheels (the robot already has the Python packages)")
    p.add_argument("--no-onnx", action="store_true",
                   help="no ONNX graphs (the robot runs the PyTorch backend)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists():
        raise LightGlueRosError(f"{out} already exists: bundle into a new folder")
    base = from_args(args).resolved()
    out.mkdir(parents=True)
    try:
        for extractor in args.extractors or [base.extractor]:
            _add_networks(base.replace(extractor=extractor), out, onnx=not args.no_onnx)
        if not args.no_wheels:
            _add_wheels(out, args.requirements, args.find_links)
        (out / "install.sh").write_text(INSTALL_SH)
        manifest = _write_sums(out)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half-made bundle left behind
        raise
    if args.json:
        print(json.dumps(manifest))
    else:
        total = sum(f["bytes"] for f in manifest["files"].values()) / 1e6
        print(f"{out}: {len(manifest['files'])} files, {total:.1f} MB; on the robot: "
              f"sh {out.name}/install.sh")
    return 0


def _add_networks(cfg, out: Path, onnx: bool) -> None:
    """The extractor's and its LightGlue's checkpoints (verified against their pinned sha256),
    and with ``onnx`` the graphs of both as the export cache lays them out."""
    from ..weights.registry import WEIGHTS, extractor_key, matcher_key
    from ..weights.resolve import resolve

    (out / "weights").mkdir(exist_ok=True)
    for key in (extractor_key(cfg.extractor, cfg.aliked_model), matcher_key(cfg.extractor)):
        shutil.copyfile(resolve(key, weights_dir=cfg.weights_dir),
                        out / "weights" / WEIGHTS[key].filename)
    if onnx:
        from ..inference.export import export_for_config

        export_for_config(cfg, out / "engines")


def _add_wheels(out: Path, requirements: Path, find_links: list[Path]) -> None:
    """This package's wheel and those of ``requirements`` (and their dependencies) in
    out/wheels, with a copy of the requirements for install.sh."""
    if not (SOURCE / "setup.py").is_file():
        raise LightGlueRosError(f"no source tree at {SOURCE}: bundle the wheels from a checkout "
                                "of lightglue_ros (or pass --no-wheels)")
    if not requirements.is_file():
        raise LightGlueRosError(f"requirements file {requirements} does not exist")
    index = ["--no-index", *(f"--find-links={d}" for d in find_links)] if find_links else []
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--quiet",
           "--wheel-dir", str(out / "wheels"), *index]
    for what in (["-r", str(requirements)], ["--no-deps", "--no-build-isolation", str(SOURCE)]):
        proc = subprocess.run([*pip, *what], capture_output=True, text=True)
        if proc.returncode != 0:
            raise LightGlueRosError(f"pip wheel {' '.join(what)} failed (offline? give a "
                                    f"wheelhouse with --find-links):\n{proc.stderr.strip()}")
    shutil.copyfile(requirements, out / "requirements.txt")


def _write_sums(out: Path) -> dict:
    """SHA256SUMS (what install.sh checks, in ``sha256sum`` format) and manifest.json."""
    files = {str(p.relative_to(out)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
             for p in sorted(out.rglob("*")) if p.is_file()}
    (out / SUMS).write_text("".join(f"{f['sha256']}  {name}\n" for name, f in files.items()))
    manifest = {"lightglue_ros": __version__, "install": "sh install.sh", "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
