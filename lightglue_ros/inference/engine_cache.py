"""The TensorRT engine cache: keys, sidecar metadata, and the decision to reuse or rebuild.

An engine is only valid for the ONNX graph it was built from, its precision and optimisation
profile, the TensorRT version that built it and the GPU model it was tuned on. All of these go into
the engine's key (:func:`engine_key`); the engine is stored as ``<engine_dir>/trt/<model>.<graph>-
<precision>-<key>.engine`` with a JSON sidecar holding the same fields in clear. Before an engine is
used, the sidecar is compared with what this machine expects; a difference (an engine copied from
another GPU or TensorRT version), a missing sidecar, an engine file whose sha256 differs from the
one the sidecar recorded at build time (truncated or modified since) and an engine that fails to
deserialize are reported with the reason and rebuilt; all but the last before TensorRT reads a
byte of the plan. When the key changes (new weights, options, profile,
TensorRT, GPU), the old engines of that graph are removed with a log line naming what changed.

Nothing here imports TensorRT: building and deserializing are passed in as callables, so the logic
is tested without a GPU. The cache is generic in the engine type it holds: the TensorRT backend
uses ``EngineCache[tensorrt.ICudaEngine]``, so what it gets back is type-checked as an engine.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

from ..errors import BackendError
from ..files import atomic_write_bytes

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Shape = tuple[int, ...]
Profile = dict[str, tuple[Shape, Shape, Shape]]  # input -> (min, opt, max) shapes
Range = tuple[int, int, int]  # min, opt, max of one dynamic dimension


@dataclass(frozen=True)
class GpuInfo:
    name: str
    capability: tuple[int, int]

    @classmethod
    def of(cls, device: torch.device) -> "GpuInfo":
        import torch

        return cls(torch.cuda.get_device_name(device), torch.cuda.get_device_capability(device))

    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") + \
            f"-sm{self.capability[0]}{self.capability[1]}"


@dataclass(frozen=True)
class EngineRequest:
    """One engine to build or load: which ONNX graph, at which precision, for which shapes."""

    model: str
    graph: str
    onnx_path: Path
    onnx_sha256: str
    precision: str  # "fp16" or "fp32", as the engine is built
    profile: Profile

    @property
    def label(self) -> str:
        return f"{self.model}.{self.graph}"


def profile_shapes(shapes: dict[str, tuple[int | str, ...]], ranges: dict[str, Range]) -> Profile:
    """The optimisation profile of a graph: its input shape templates with every named dimension
    replaced by its (min, opt, max). Raises ValueError for an unknown dimension or a bad range."""
    profile: Profile = {}
    for name, template in shapes.items():
        triple: list[Shape] = []
        for k in range(3):
            dims: list[int] = []
            for d in template:
                if isinstance(d, str):
                    if d not in ranges:
                        raise ValueError(f"no range for dimension '{d}' of input '{name}'")
                    lo, opt, hi = ranges[d]
                    if not 1 <= lo <= opt <= hi:
                        raise ValueError(f"range of '{d}' must satisfy 1 <= min <= opt <= max, "
                                         f"got {ranges[d]}")
                    dims.append((lo, opt, hi)[k])
                else:
                    dims.append(int(d))
            triple.append(tuple(dims))
        profile[name] = (triple[0], triple[1], triple[2])
    return profile


def _profile_json(profile: Profile) -> dict[str, list[list[int]]]:
    return {name: [list(s) for s in shapes] for name, shapes in sorted(profile.items())}


def engine_key(onnx_sha256: str, precision: str, profile: Profile, tensorrt_version: str,
               gpu: GpuInfo) -> str:
    """sha256 (16 hex digits) of everything an engine depends on."""
    payload = {"onnx": onnx_sha256, "precision": precision, "profile": _profile_json(profile),
               "tensorrt": tensorrt_version, "gpu": gpu.name, "capability": list(gpu.capability)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def engine_metadata(request: EngineRequest, tensorrt_version: str, gpu: GpuInfo) -> dict[str, Any]:
    """The sidecar content an engine for ``request`` must have on this machine."""
    return {"key": engine_key(request.onnx_sha256, request.precision, request.profile,
                              tensorrt_version, gpu),
            "model": request.model, "graph": request.graph, "onnx": request.onnx_path.name,
            "onnx_sha256": request.onnx_sha256, "precision": request.precision,
            "profile": _profile_json(request.profile), "tensorrt_version": tensorrt_version,
            "gpu": gpu.name, "compute_capability": list(gpu.capability)}


_COMPARED = ("tensorrt_version", "gpu", "compute_capability", "onnx_sha256", "precision",
             "profile", "key")


def metadata_mismatches(stored: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Human-readable differences between a stored sidecar and the expected one."""
    out = []
    for field in _COMPARED:
        if stored.get(field) != expected.get(field):
            if field == "profile":
                out.append("optimisation profile differs")
            elif field == "onnx_sha256":
                out.append("built from another ONNX graph")
            else:
                out.append(f"{field} {stored.get(field)!r}, here {expected.get(field)!r}")
    return out


Engine = TypeVar("Engine")  # what ``deserialize`` returns: a tensorrt.ICudaEngine


@dataclass
class CachedEngine(Generic[Engine]):
    engine: Engine
    key: str
    path: Path
    built: bool  # True when built (or rebuilt) by this call


Builder = Callable[[EngineRequest, Path], bytes]  # (request, timing cache file) -> plan bytes


class EngineCache(Generic[Engine]):
    """Engines of one GPU and TensorRT version under ``<folder>/trt``."""

    def __init__(self, folder: Path, tensorrt_version: str, gpu: GpuInfo, build: Builder,
                 deserialize: Callable[[bytes], Engine | None]) -> None:
        self.folder = Path(folder) / "trt"
        self.tensorrt_version = tensorrt_version
        self.gpu = gpu
        self._build = build
        self._deserialize = deserialize

    @property
    def timing_cache(self) -> Path:
        """One timing cache per GPU model and TensorRT version, shared by all builds."""
        return self.folder / f"timing-{self.gpu.slug()}-trt{self.tensorrt_version}.cache"

    def paths(self, request: EngineRequest) -> tuple[str, Path, Path]:
        key = engine_metadata(request, self.tensorrt_version, self.gpu)["key"]
        stem = f"{request.label}-{request.precision}-{key}"
        return key, self.folder / f"{stem}.engine", self.folder / f"{stem}.json"

    def check(self, request: EngineRequest) -> tuple[str, Path, str | None]:
        """(key, engine path, problem): problem is None when a usable-looking engine is stored,
        else why it must be (re)built."""
        key, engine, problem, _ = self._verify(request)
        return key, engine, problem

    def _verify(self, request: EngineRequest) -> tuple[str, Path, str | None, bytes | None]:
        """As :meth:`check`, plus the plan bytes that were verified (read once, so what is
        deserialized is exactly what was hashed)."""
        key, engine, sidecar = self.paths(request)
        if not engine.is_file():
            return key, engine, "not built yet", None
        if not sidecar.is_file():
            return key, engine, f"{engine.name} has no metadata sidecar {sidecar.name}", None
        try:
            stored = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            return key, engine, f"unreadable metadata {sidecar.name}: {exc}", None
        problems = metadata_mismatches(stored, engine_metadata(request, self.tensorrt_version,
                                                               self.gpu))
        if problems:
            return key, engine, (f"{engine.name} was built for another setup: "
                                 f"{'; '.join(problems)}"), None
        if not stored.get("engine_sha256"):
            return key, engine, f"{sidecar.name} records no engine sha256 (an older build)", None
        plan = engine.read_bytes()
        actual = hashlib.sha256(plan).hexdigest()
        if actual != stored["engine_sha256"]:
            return key, engine, (f"{engine.name} has sha256 {actual[:16]}... but was built as "
                                 f"{stored['engine_sha256'][:16]}... (truncated or modified "
                                 "since)"), None
        return key, engine, None, plan

    def get(self, request: EngineRequest, build: bool = True) -> CachedEngine[Engine]:
        """The engine for ``request``: loaded when a valid one is stored, else built (with a log
        line saying why) unless ``build`` is False, which raises BackendError instead."""
        key, engine_path, problem, stored_plan = self._verify(request)
        if problem is None and stored_plan is not None:
            engine = self._load(engine_path, stored_plan)
            if engine is not None:
                return CachedEngine(engine, key, engine_path, built=False)
            problem = (f"{engine_path.name} failed to deserialize with TensorRT "
                       f"{self.tensorrt_version} on {self.gpu.name}")
        if not build:
            raise BackendError(f"no usable TensorRT engine for {request.label} "
                               f"({request.precision}): {problem}; run `lightglue-ros "
                               f"build-engines` with the same parameters")
        if problem != "not built yet":
            log.warning("TensorRT engine %s: %s; rebuilding", request.label, problem)
        self._remove_stale(request, key)
        log.info("building TensorRT %s engine %s (key %s); this takes a while", request.precision,
                 request.label, key)
        start = time.perf_counter()
        plan = self._build(request, self.timing_cache)
        if not plan:
            raise BackendError(f"TensorRT could not build an engine for {request.label} from "
                               f"{request.onnx_path}")
        atomic_write_bytes(engine_path, bytes(plan))
        meta = engine_metadata(request, self.tensorrt_version, self.gpu)
        meta["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        meta["build_seconds"] = round(time.perf_counter() - start, 1)
        meta["engine_sha256"] = hashlib.sha256(bytes(plan)).hexdigest()
        atomic_write_bytes(engine_path.with_suffix(".json"), json.dumps(meta, indent=1).encode())
        engine = self._deserialize(bytes(plan))
        if engine is None:
            raise BackendError(f"TensorRT built {engine_path.name} but cannot deserialize it")
        return CachedEngine(engine, key, engine_path, built=True)

    def _load(self, path: Path, plan: bytes) -> Engine | None:
        try:
            return self._deserialize(plan)
        except Exception as exc:  # noqa: BLE001 - TensorRT raises several types
            log.warning("TensorRT engine %s: %s", path.name, exc)
            return None

    def _remove_stale(self, request: EngineRequest, key: str) -> None:
        """Remove this graph's engines with another key, saying what changed."""
        expected = engine_metadata(request, self.tensorrt_version, self.gpu)
        for old in self.folder.glob(f"{request.label}-{request.precision}-*.engine"):
            if old.stem.endswith(key):
                continue
            sidecar = old.with_suffix(".json")
            try:
                changes = metadata_mismatches(json.loads(sidecar.read_text()), expected)
            except (OSError, ValueError):
                changes = ["no readable metadata"]
            log.info("replacing stale engine %s (%s)", old.name,
                     "; ".join(c for c in changes if not c.startswith("key")) or "key changed")
            for path in (old, sidecar):
                with contextlib.suppress(OSError):
                    path.unlink()
