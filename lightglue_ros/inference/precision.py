"""FP16 care: which parts of a graph FP16 engines keep in FP32, and a check that FP16 loses no
keypoints.

Keypoint selection compares scores and derives indices, so a score map rounded to FP16 (three
significant digits) creates ties and shifts the non-maximum suppression; coordinates in pixels lose
a fraction of a pixel in FP16 at a few hundred pixels; L2 norms, softmaxes and logarithms lose
precision or overflow. The exported ONNX graphs therefore name their FP32 nodes: node names start
with :data:`FP32_TAG`, and the TensorRT builder sets those layers' precision and output types to
FP32 (with ``OBEY_PRECISION_CONSTRAINTS``) while the convolutions and matrix products run in FP16.
Keypoint normalisation (``normalize_keypoints``), the descriptor sampling and normalisation of
SuperPoint, DISK and XFeat and all index arithmetic outside the graphs run on the host in FP32, and
LightGlue's ``encode`` graph (rotary encoding of the keypoint positions) is built in FP32 entirely.

The rules, applied to each exported graph by :func:`fp32_node_indices`:

1. nodes inside a module scope named ``fp32*`` (the keypoint ranking and coordinate arithmetic of
   :mod:`lightglue_ros.inference.graphs`);
2. the nodes that feed those scopes, back to the nearest convolution or matrix product (included):
   the score heads (sigmoid, softmax, crops) that produce the map the ranking reads;
3. descriptor normalisation: every ``ReduceL2`` up to the ``Div`` that uses it;
4. numerically sensitive operators anywhere: exponentials, logarithms, softmaxes, sigmoids and
   normalisation layers.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterable

FP32_TAG = "fp32:"
FP32_SCOPE = "/fp32"  # node names of modules whose attribute name starts with "fp32"
COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm", "Einsum"})
STOP_OPS = frozenset({"Shape", "Constant", "ConstantOfShape", "Size"})
SENSITIVE_OPS = frozenset({"Exp", "Log", "Softmax", "LogSoftmax", "Sigmoid", "Softplus",
                           "ReduceL2", "LayerNormalization", "InstanceNormalization", "TopK",
                           "GridSample"})


def fp32_node_indices(graph: Any) -> set[int]:
    """Indices into ``graph.node`` (an ``onnx.GraphProto``) of the nodes to keep in FP32."""
    nodes = list(graph.node)
    producer = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            if name:
                consumers.setdefault(name, []).append(i)

    keep = {i for i, n in enumerate(nodes) if FP32_SCOPE in n.name or n.op_type in SENSITIVE_OPS}
    # rule 2: back from the scope's inputs to the nearest compute node
    scoped = {i for i, n in enumerate(nodes) if FP32_SCOPE in n.name}
    queue = deque(producer[name] for i in scoped for name in nodes[i].input
                  if name in producer and producer[name] not in scoped)
    seen: set[int] = set()
    while queue:
        i = queue.popleft()
        if i in seen or nodes[i].op_type in STOP_OPS:
            continue
        seen.add(i)
        keep.add(i)
        if nodes[i].op_type in COMPUTE_OPS:
            continue
        queue.extend(producer[name] for name in nodes[i].input if name in producer)
    # rule 3: ReduceL2 -> ... -> Div
    for start in (i for i, n in enumerate(nodes) if n.op_type == "ReduceL2"):
        frontier = [start]
        for _ in range(4):  # ReduceL2 -> Clip -> Expand -> Div
            frontier = [c for i in frontier for out in nodes[i].output
                        for c in consumers.get(out, [])]
            keep.update(frontier)
            frontier = [i for i in frontier if nodes[i].op_type != "Div"]
            if not frontier:
                break
    return keep


def tag_fp32_nodes(model: Any) -> int:
    """Rename the FP32 nodes of an ``onnx.ModelProto`` with the :data:`FP32_TAG` prefix (in place);
    the number of nodes tagged. TensorRT's ONNX parser names each layer after its node."""
    indices = fp32_node_indices(model.graph)
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
        if i in indices and not node.name.startswith(FP32_TAG):
            node.name = FP32_TAG + node.name
    return len(indices)


def is_fp32_layer(name: str, metadata: str = "") -> bool:
    """Whether a TensorRT layer (by name, or the ONNX node recorded in its metadata) comes from a
    node tagged FP32."""
    return name.startswith(FP32_TAG) or FP32_TAG in (metadata or "")


# --- the keypoint check ---------------------------------------------------------------------------
def compare_keypoints(reference: dict[str, Any], candidate: dict[str, Any],
                      tolerance_px: float = 1.0) -> dict[str, Any]:
    """How a candidate extraction (e.g. an FP16 engine's) compares with a reference (FP32) on the
    same image: counts, reference keypoints with a candidate within ``tolerance_px``, and
    ``lost`` = reference keypoints without one (inputs: extractor outputs)."""
    import torch

    ref = reference["keypoints"][0].float().cpu()
    cand = candidate["keypoints"][0].float().cpu()
    if len(ref) and len(cand):
        found = torch.cdist(ref, cand).min(1).values <= tolerance_px
    else:
        found = torch.zeros(len(ref), dtype=torch.bool)
    return {"reference": len(ref), "candidate": len(cand), "matched": int(found.sum()),
            "lost": int((~found).sum()), "count_difference": len(ref) - len(cand)}


def keypoint_check(extract: Callable[[Any], dict[str, Any]],
                   reference: Callable[[Any], dict[str, Any]], images: Iterable[Any],
                   max_lost_fraction: float = 0.02, tolerance_px: float = 1.0) -> dict[str, Any]:
    """Run two extractors (callables on a preprocessed (1, C, H, W) image) on each image and report
    per image; ``ok`` is False when the candidate returns fewer keypoints than the reference (FP16
    must lose no keypoints) or when more than ``max_lost_fraction`` of the reference keypoints have
    no candidate within ``tolerance_px`` (the parity bar is 0.98 within 1 px). Used after building
    FP16 engines."""
    per_image = [compare_keypoints(reference(img), extract(img), tolerance_px) for img in images]
    ok = all(r["candidate"] >= r["reference"] and r["lost"] <= max_lost_fraction * r["reference"]
             for r in per_image)
    return {"ok": ok, "images": per_image}
