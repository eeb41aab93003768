"""Export the extractor and LightGlue graphs to ONNX, cached under a key of what they depend on.

Files go to ``<engine_dir>/onnx/``: ``<model>.<graph>-<key>.onnx`` per graph and a manifest
``<model>-<key>.json`` written last, so a manifest means a complete export. The key hashes the
model name, the weights (sha256 of the state dict), the graph-relevant options (keypoint limit,
suppression radius, ...), the opset, the exporter format, the torch version and the package
version: new weights or options give a new key and a new export, never a stale graph.

Graphs are traced with the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``), which
needs no extra package. Two operators get their own ONNX translation while exporting:
``log_sigmoid`` (the default, ``Log(Sigmoid(x))``, is -inf for x < -88 and loses precision well
before; LightGlue's assignment uses it) and the in-place boolean ``&=`` of DISK's suppression.
After tracing, :func:`tensorrt_compatible` rewrites the nodes TensorRT's parser rejects (integer
or dynamic ``Clip``, boolean ``ScatterND``) into equivalent ones, and ``tag_fp32_nodes``
(:mod:`lightglue_ros.inference.precision`) names the nodes FP16 engines keep in FP32.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from ..config import Config
from ..errors import BackendError
from ..files import atomic_write_bytes, sha256_file
from ..models.base import Extractor
from ..models.lightglue import LightGlue
from ..version import __version__
from .graphs import GraphSpec, data_dependent, extractor_graphs, matcher_graphs
from .precision import tag_fp32_nodes

log = logging.getLogger(__name__)

OPSET = 17
EXPORT_FORMAT = 4  # bump when the graphs change meaning, to invalidate every cached export
ENV_ENGINE_DIR = "LIGHTGLUE_ROS_ENGINES"


# --- where ----------------------------------------------------------------------------------------
def default_engine_dir() -> Path:
    """The package's ``engines/`` folder when it is writable (a source checkout), else
    ``$LIGHTGLUE_ROS_ENGINES`` or ``~/.cache/lightglue_ros/engines``."""
    if os.environ.get(ENV_ENGINE_DIR):
        return Path(os.environ[ENV_ENGINE_DIR]).expanduser()
    package_engines = Path(__file__).resolve().parents[2] / "engines"
    if package_engines.is_dir() and os.access(package_engines, os.W_OK):
        return package_engines
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "lightglue_ros" / "engines"


def engine_dir_for(cfg: Config | None = None, engine_dir: str | Path | None = None) -> Path:
    chosen = engine_dir or (cfg.engine_dir if cfg is not None else "")
    return Path(chosen).expanduser() if chosen else default_engine_dir()


# --- keys -----------------------------------------------------------------------------------------
def state_dict_sha256(module: nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a module's parameters and buffers."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()



def export_key(model_name: str, weights_sha256: str, options: dict[str, Any]) -> str:
    payload = {"model": model_name, "weights": weights_sha256, "options": options, "opset": OPSET,
               "format": EXPORT_FORMAT, "torch": torch.__version__.split("+")[0],
               "package": __version__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# --- the exported set -----------------------------------------------------------------------------
@dataclass
class ExportedGraph:
    name: str
    path: Path
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    shapes: dict[str, tuple[int | str, ...]]
    fp16: bool
    sha256: str
    fp32_nodes: int


@dataclass
class ExportedModel:
    """One model's graphs on disk, as listed in its manifest."""

    model: str
    key: str
    manifest: Path
    graphs: dict[str, ExportedGraph]
    options: dict[str, Any]

    def path(self, graph: str) -> Path:
        return self.graphs[graph].path

    def files(self) -> list[Path]:
        return [g.path for g in self.graphs.values()]

    @classmethod
    def load(cls, manifest: Path) -> "ExportedModel":
        data = json.loads(manifest.read_text())
        folder = manifest.parent
        graphs = {name: ExportedGraph(name, folder / g["file"], tuple(g["inputs"]),
                                      tuple(g["outputs"]),
                                      {k: tuple(v) for k, v in g["shapes"].items()}, g["fp16"],
                                      g["sha256"], g["fp32_nodes"])
                  for name, g in data["graphs"].items()}
        return cls(data["model"], data["key"], manifest, graphs, data.get("options", {}))


@contextlib.contextmanager
def _export_symbolics() -> Iterator[None]:
    """ONNX translations the default exporter gets wrong or lacks (see the module docstring)."""
    from torch.onnx import register_custom_op_symbolic, unregister_custom_op_symbolic

    def log_sigmoid(g: Any, x: Any) -> Any:  # min(x, 0) - log(1 + exp(-|x|)), finite everywhere
        zero = g.op("Constant", value_t=torch.tensor(0.0))
        one = g.op("Constant", value_t=torch.tensor(1.0))
        tail = g.op("Log", g.op("Add", one, g.op("Exp", g.op("Neg", g.op("Abs", x)))))
        return g.op("Sub", g.op("Min", x, zero), tail)

    def iand(g: Any, a: Any, b: Any) -> Any:
        return g.op("And", a, b)

    table = {"aten::log_sigmoid": log_sigmoid, "aten::__iand_": iand}
    for name, fn in table.items():
        register_custom_op_symbolic(name, fn, OPSET)
    try:
        yield
    finally:
        for name in table:
            unregister_custom_op_symbolic(name, OPSET)


_INTEGER_TYPES = (6, 7)  # onnx.TensorProto.INT32, INT64
_BOOL = 9  # onnx.TensorProto.BOOL


def _element_types(model: Any) -> dict[str, int]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type
             for v in list(graph.value_info) + list(graph.input) + list(graph.output)}
    types.update({i.name: i.data_type for i in graph.initializer})
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    return types


def tensorrt_compatible(model: Any) -> int:
    """Rewrite, in place and with the same results, the few nodes TensorRT's ONNX parser rejects:
    ``Clip`` on integers or with computed bounds (ALIKED's index and offset clamping) becomes
    ``Max``/``Min``, and ``ScatterND`` on booleans (DISK's suppression mask) runs on INT32 between
    two casts. Returns the count."""
    from onnx import helper

    types = _element_types(model)
    constants = {i.name for i in model.graph.initializer} | {
        out for n in model.graph.node if n.op_type == "Constant" for out in n.output}
    nodes, changed = [], 0
    for node in model.graph.node:
        kind = types.get(node.input[0]) if node.input else None
        dynamic_bounds = any(b and b not in constants for b in node.input[1:])
        if node.op_type == "Clip" and (kind in _INTEGER_TYPES or dynamic_bounds):
            current, bounds = node.input[0], list(node.input[1:]) + ["", ""]
            steps = [(op, b) for op, b in (("Max", bounds[0]), ("Min", bounds[1])) if b]
            if not steps:
                steps = [("Identity", "")]
            for k, (op, bound) in enumerate(steps):
                out = node.output[0] if k == len(steps) - 1 else f"{node.output[0]}_{op.lower()}"
                nodes.append(helper.make_node(op, [current] + ([bound] if bound else []), [out],
                                              name=f"{node.name}_{op.lower()}"))
                current = out
            changed += 1
        elif node.op_type == "ScatterND" and kind == _BOOL:
            data, indices, updates = node.input
            nodes.append(helper.make_node("Cast", [data], [f"{node.name}_data_i32"], to=6,
                                          name=f"{node.name}_cast_data"))
            nodes.append(helper.make_node("Cast", [updates], [f"{node.name}_updates_i32"], to=6,
                                          name=f"{node.name}_cast_updates"))
            nodes.append(helper.make_node("ScatterND", [f"{node.name}_data_i32", indices,
                                                        f"{node.name}_updates_i32"],
                                          [f"{node.name}_i32"], name=node.name))
            nodes.append(helper.make_node("Cast", [f"{node.name}_i32"], [node.output[0]],
                                          to=_BOOL, name=f"{node.name}_cast_back"))
            changed += 1
        else:
            nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return changed


def export_graph(spec: GraphSpec, path: Path) -> int:
    """Trace one graph to ``path`` (atomically); the number of nodes tagged FP32."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "graph.onnx"
        with warnings.catch_warnings(), _export_symbolics(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation warnings, all expected
            torch.onnx.export(spec.module, spec.example(), str(raw), dynamo=False,
                              input_names=list(spec.inputs), output_names=list(spec.outputs),
                              dynamic_axes=spec.dynamic_axes(), opset_version=OPSET,
                              do_constant_folding=True)
        model = onnx.load(str(raw))
    tensorrt_compatible(model)
    n_fp32 = tag_fp32_nodes(model)
    meta = {"lightglue_ros": __version__, "graph": spec.name, "fp16": str(spec.fp16)}
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    atomic_write_bytes(path, model.SerializeToString())
    return n_fp32


def export_model(model_name: str, specs: list[GraphSpec], weights_sha256: str,
                 options: dict[str, Any], engine_dir: Path, force: bool = False) -> ExportedModel:
    """Export ``specs`` unless a complete export under the same key exists."""
    key = export_key(model_name, weights_sha256, options)
    folder = Path(engine_dir) / "onnx"
    manifest = folder / f"{model_name}-{key}.json"
    if manifest.is_file() and not force:
        exported = ExportedModel.load(manifest)
        if all(p.is_file() for p in exported.files()) and set(exported.graphs) == {
                s.name for s in specs}:
            return exported
        log.warning("incomplete ONNX export %s: exporting again", manifest)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackendError(f"cannot write ONNX graphs to {folder}: {exc}; set engine_dir to a "
                           f"writable directory") from exc
    start = time.perf_counter()
    entries = {}
    for spec in specs:
        path = folder / f"{model_name}.{spec.name}-{key}.onnx"
        n_fp32 = export_graph(spec, path)
        entries[spec.name] = {"file": path.name, "inputs": list(spec.inputs),
                              "outputs": list(spec.outputs),
                              "shapes": {k: list(v) for k, v in spec.shapes.items()},
                              "fp16": spec.fp16, "sha256": sha256_file(path),
                              "fp32_nodes": n_fp32}
    data = {"model": model_name, "key": key, "weights_sha256": weights_sha256,
            "options": options, "opset": OPSET, "format": EXPORT_FORMAT,
            "torch": torch.__version__, "package": __version__, "graphs": entries}
    atomic_write_bytes(manifest, json.dumps(data, indent=1).encode())
    log.info("exported %d ONNX graph(s) of %s to %s in %.1f s", len(specs), model_name, folder,
             time.perf_counter() - start)
    return ExportedModel.load(manifest)


# --- per model ------------------------------------------------------------------------------------
def extractor_model_name(model: Extractor) -> str:
    return model.conf.get("model_name", model.name) if model.name == "aliked" else model.name


def export_extractor(model: Extractor, engine_dir: Path, force: bool = False,
                     static: bool = True) -> ExportedModel:
    """``static``: see :func:`~lightglue_ros.inference.graphs.extractor_graphs`."""
    # the detection threshold is applied on the host: it does not change the graphs
    options = {k: v for k, v in sorted(model.conf.items()) if k != "detection_threshold"}
    if data_dependent(model, static):
        options["static"] = False  # a separate export: TensorRT needs the static graphs
    return export_model(extractor_model_name(model), extractor_graphs(model, static),
                        state_dict_sha256(model), options, engine_dir, force)


def matcher_model_name(extractor: str) -> str:
    return f"lightglue-{extractor}"


def export_matcher(model: LightGlue, extractor: str, engine_dir: Path, force: bool = False
                   ) -> ExportedModel:
    # thresholds are host-side (run_adaptive): they do not change the graphs
    options = {k: model.conf[k] for k in ("input_dim", "descriptor_dim", "n_layers", "num_heads")}
    return export_model(matcher_model_name(extractor), matcher_graphs(model),
                        state_dict_sha256(model), options, engine_dir, force)


def export_for_config(cfg: Config, engine_dir: str | Path | None = None, weights: bool = True,
                      force: bool = False) -> tuple[ExportedModel, ExportedModel, Extractor,
                                                    LightGlue]:
    """Build cfg's networks (CPU, with their verified weights) and export both (or reuse the
    cached export); returns the two exports and the two torch models."""
    from ..models.factory import build_extractor, build_matcher

    cfg = cfg.resolved()  # the graphs of the backend that runs them (``backend: auto``)
    folder = engine_dir_for(cfg, engine_dir)
    extractor = build_extractor(cfg, weights)
    matcher = build_matcher(cfg, weights)
    static = cfg.backend != "onnxruntime"  # ONNX Runtime runs data-dependent shapes faster
    return (export_extractor(extractor, folder, force, static),
            export_matcher(matcher, cfg.extractor, folder, force), extractor, matcher)
