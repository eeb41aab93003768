"""The networks cut into the graphs ONNX Runtime and TensorRT run, and the host code around them.

Extractors. Each extractor's graph holds its dense network (image -> score map, descriptor or
feature maps) with a dynamic image size, followed by the candidate ranking: non-maximum suppression,
border removal and one TopK of ``max_keypoints + 1`` candidates (TensorRT's TopK takes K up to
:data:`MAX_TOPK`, so max_keypoints <= 3838 there). The host then finishes the selection with the
extractors' own functions (``top_k``, ``ALIKED._select``, ``strongest_in_raster_order``, the
sub-pixel refinement and the descriptor sampling), so keypoints come out in the same order and with
the same values as from the PyTorch models (up to exactly tied scores). The one extra candidate
tells the host whether more than ``max_keypoints`` passed the threshold, which decides between
raster order and score order exactly as the models do.
ALIKED's deformable descriptor head is a second graph with a dynamic keypoint count.

ALIKED's deformable convolutions clamp their offsets to a quarter of the larger side of the feature
map (``max(h, w) / 4``); a traced graph keeps the side that was larger when it was traced, so ALIKED
has one dense graph per orientation (``dense_landscape`` for width >= height, ``dense_portrait``).

LightGlue. One graph per stage of :class:`~lightglue_ros.models.lightglue.Stages` (``encode``,
``layer{i}``, ``confidence{i}``, ``matchability{i}``, ``assign{i}``) with dynamic keypoint counts;
:class:`GraphStages` implements the protocol on top of any :class:`GraphRunner`, so the unchanged
:func:`~lightglue_ros.models.lightglue.run_adaptive` makes the early-exit and pruning decisions.

Scopes named ``fp32*`` in the graph modules mark the computations that FP16 engines keep in FP32
(see :mod:`lightglue_ros.inference.precision`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..models.base import Extractor
from ..models.keypoints import simple_nms, top_k
from ..models.lightglue import LightGlue, normalize_keypoints, run_adaptive
from .backend import Backend

MAX_TOPK = 3839  # the largest K TensorRT's TopK accepts ("K must be less than 3840")

Dim = int | str  # a fixed size, or the name of a dynamic dimension


@dataclass
class GraphSpec:
    """One graph: the module that computes it, its named inputs and outputs, the input shapes
    (strings name dynamic dimensions shared across inputs) and example inputs for tracing."""

    name: str
    module: nn.Module
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    shapes: dict[str, tuple[Dim, ...]]
    example: Callable[[], tuple[torch.Tensor, ...]] = field(repr=False)
    fp16: bool = True  # False: FP16 engines build this graph in FP32 all the same

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes = {name: {i: d for i, d in enumerate(self.shapes[name]) if isinstance(d, str)}
                for name in self.inputs}
        return {k: v for k, v in axes.items() if v}


class GraphRunner(Protocol):
    """Runs the graph ``name`` on device tensors and returns its outputs in declared order."""

    device: torch.device

    def run(self, name: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


class TorchGraphRunner:
    """Runs the graph modules eagerly with PyTorch: the reference the exported graphs are compared
    with, and the base of the CUDA-graph path of the torch backend."""

    def __init__(self, specs: list[GraphSpec], device: torch.device) -> None:
        self.specs = {s.name: s for s in specs}
        self.device = device

    @torch.inference_mode()
    def run(self, name: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.specs[name].module(*inputs)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)


# --- candidate ranking (inside the graphs) --------------------------------------------------------
def _top_candidates(flat: torch.Tensor, k: int, fill: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest values of a flat map with their indices, best first (ties: lower index
    first, as ONNX TopK specifies). The map is padded with k ``fill`` values so that TopK is valid
    for any image size; padded entries have indices >= the map size."""
    padded = torch.cat([flat, flat.new_full((k,), fill)])
    values, indices = torch.topk(padded, k, dim=0, largest=True, sorted=True)
    return values, indices


def _candidate_count(model: Extractor) -> int:
    limit = model.conf.get("max_num_keypoints")
    if limit is None or limit < 1:
        raise ValueError(f"{model.name}: exported graphs need a keypoint limit "
                         f"(max_keypoints >= 1), got {limit!r}")
    return int(limit) + 1


# --- SuperPoint -----------------------------------------------------------------------------------
class _SuperPointRank(nn.Module):
    def __init__(self, radius: int, border: int, k: int) -> None:
        super().__init__()
        self.radius, self.border, self.k = radius, border, k

    def forward(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # (1, H, W) pooled as (1, 1, H, W): the same values, and a valid 2-D ONNX MaxPool
        scores = simple_nms(scores[:, None], self.radius)[:, 0]
        pad = self.border
        if pad:  # as SuperPoint.forward
            scores[:, :pad] = -1
            scores[:, :, :pad] = -1
            scores[:, -pad:] = -1
            scores[:, :, -pad:] = -1
        return _top_candidates(scores.reshape(-1), self.k, -1.0)


class _SuperPointDense(nn.Module):
    def __init__(self, model: Extractor) -> None:
        super().__init__()
        self.net = model
        self.fp32 = _SuperPointRank(model.conf["nms_radius"], model.conf["remove_borders"],
                                    _candidate_count(model))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.net.backbone(image)
        return (self.net.descriptor_map(features),) + self.fp32(self.net.score_map(features))


def _superpoint_extract(model: Extractor, run: GraphRunner, image: torch.Tensor
                        ) -> dict[str, torch.Tensor]:
    from ..models.superpoint import CELL, sample_descriptors

    if image.shape[-1] < CELL or image.shape[-2] < CELL:
        return model(image)  # the model's own error
    desc_map, values, indices = run.run("dense", image)
    h, w = image.shape[-2] // CELL * CELL, image.shape[-1] // CELL * CELL
    values, indices = values.float(), indices.long()
    keep = (indices < h * w) & (values > model.conf["detection_threshold"])
    values, indices = values[keep], indices[keep]
    order = torch.argsort(indices)  # raster order, as torch.nonzero gives them
    values, indices = values[order], indices[order]
    rows_cols = torch.stack([indices // w, indices % w], dim=1)
    kpts, kscores = top_k(rows_cols, values, model.conf["max_num_keypoints"])
    kpts = torch.flip(kpts, [1]).to(image.dtype)
    desc = sample_descriptors(kpts[None], desc_map.float(), CELL)[0]
    return {"keypoints": kpts[None], "keypoint_scores": kscores[None],
            "descriptors": desc.transpose(-1, -2).contiguous()[None]}


# --- ALIKED ---------------------------------------------------------------------------------------
class _AlikedRank(nn.Module):
    def __init__(self, radius: int, k: int) -> None:
        super().__init__()
        self.radius, self.k = radius, k

    def forward(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        radius = self.radius  # as ALIKED._detect
        candidates = simple_nms(scores, radius)[0, 0]
        candidates[:radius], candidates[-radius:] = 0, 0
        candidates[:, :radius], candidates[:, -radius:] = 0, 0
        return _top_candidates(candidates.reshape(-1), self.k, -1.0)


class _AlikedDense(nn.Module):
    def __init__(self, model: Extractor) -> None:
        super().__init__()
        self.net = model
        self.fp32 = _AlikedRank(model.conf["nms_radius"], _candidate_count(model))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features, scores = self.net._dense_maps(image)
        return (features, scores) + self.fp32(scores)


class _Fp32Patches(nn.Module):
    """SDDH._patches with the sizes taken from a tensor, so that the graph stays dynamic."""

    def forward(self, features: torch.Tensor, keypoints: torch.Tensor, wh: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        from ..models.aliked import PATCH_SIZE

        pixels = (keypoints / 2 + 0.5) * wh
        steps = torch.arange(PATCH_SIZE, device=features.device)
        corner = pixels.long() - PATCH_SIZE // 2
        limit = wh.long() - PATCH_SIZE  # side - 1 - P
        zero = torch.zeros_like(limit[0])
        # clamp(min=0, max=limit) as Max then Min: TensorRT's Clip takes no integers
        x0 = torch.minimum(torch.maximum(corner[:, 0], zero), limit[0])
        y0 = torch.minimum(torch.maximum(corner[:, 1], zero), limit[1])
        rows, cols = y0[:, None] + steps, x0[:, None] + steps
        patches = features[0][:, rows[:, :, None], cols[:, None, :]].permute(1, 0, 2, 3)
        return pixels, patches


class _Fp32Positions(nn.Module):
    """Clamped offsets -> bilinear samples of the feature map (SDDH.forward's coordinate part)."""

    def __init__(self, n_pos: int) -> None:
        super().__init__()
        self.n_pos = n_pos

    def forward(self, raw_offsets: torch.Tensor, pixels: torch.Tensor, wh: torch.Tensor,
                features: torch.Tensor) -> torch.Tensor:
        max_offset = (wh.max() + 1) / 4.0  # max(height, width) / 4
        offsets = torch.minimum(torch.maximum(raw_offsets, -max_offset), max_offset)  # clamp
        offsets = offsets.reshape(-1, 2, self.n_pos).transpose(1, 2)
        positions = 2.0 * (pixels[:, None] + offsets) / wh - 1
        return F.grid_sample(features, positions.reshape(1, -1, 1, 2), mode="bilinear",
                             align_corners=True)


class _AlikedDescribe(nn.Module):
    """ALIKED's SDDH descriptor head (``SDDH.forward``) on features (1, dim, H, W) and keypoints
    (N, 2) in [-1, 1], with ``wh`` = (W - 1, H - 1) given as a tensor: the same operations in the
    same order, written so that the traced graph has a dynamic size and keypoint count."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head
        self.fp32_patches = _Fp32Patches()
        self.fp32_positions = _Fp32Positions(head.n_pos)

    def forward(self, features: torch.Tensor, keypoints: torch.Tensor, wh: torch.Tensor
                ) -> torch.Tensor:
        dim = features.shape[1]
        pixels, patches = self.fp32_patches(features, keypoints, wh)
        raw = self.head.offset_conv(patches)
        sampled = self.fp32_positions(raw, pixels, wh, features)  # (1, dim, N * n_pos, 1)
        sampled = sampled.reshape(dim, -1, self.head.n_pos, 1).permute(1, 0, 2, 3)
        # [..., 0] rather than squeeze(-1), which exports as an If that TensorRT rejects
        projected = F.selu(self.head.sf_conv(sampled))[..., 0]  # (N, dim, n_pos)
        return F.normalize(torch.einsum("ncp,pcd->nd", projected, self.head.agg_weights),
                           p=2.0, dim=1)


def _aliked_extract(model: Extractor, run: GraphRunner, image: torch.Tensor
                    ) -> dict[str, torch.Tensor]:
    from ..models.aliked import _sample, _soft_argmax

    if image.ndim != 4 or image.shape[:2] != (1, model.input_channels):
        return model(image)  # the model's own error
    height, width = image.shape[-2:]
    if model._too_small(height, width):
        return model._no_keypoints(image)
    orientation = "landscape" if width >= height else "portrait"
    features, scores, values, indices = run.run(f"dense_{orientation}", image)
    features, scores, values, indices = features.float(), scores.float(), values.float(), \
        indices.long()
    n = height * width
    keep = indices < n
    candidates = scores.new_zeros(n)
    candidates[indices[keep]] = values[keep]
    # as ALIKED._detect, from the candidates the graph ranked
    selected = model._select(candidates, scores.reshape(-1))
    if len(selected) == 0:
        return model._no_keypoints(image)
    radius = model.conf["nms_radius"]
    pixels = torch.stack([selected % width, selected // width], dim=1)
    keypoints = pixels + _soft_argmax(scores[0, 0], pixels, radius)
    keypoints = keypoints / scores.new_tensor([width - 1, height - 1]) * 2 - 1
    wh = image.new_tensor([width - 1, height - 1])
    descriptors = run.run("describe", features, keypoints.contiguous(), wh)[0].float()
    return {"keypoints": (wh * (keypoints + 1) / 2.0)[None],
            "keypoint_scores": _sample(scores, keypoints)[None],
            "descriptors": descriptors[None]}


# --- DISK -----------------------------------------------------------------------------------------
class _DiskRank(nn.Module):
    def __init__(self, window: int, k: int) -> None:
        super().__init__()
        self.window, self.k = window, k

    def forward(self, heatmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from ..models.disk import strict_local_maxima

        maxima = strict_local_maxima(heatmap, self.window)
        candidates = torch.where(maxima, heatmap, heatmap.new_tensor(float("-inf")))
        return _top_candidates(candidates.reshape(-1), self.k, float("-inf"))


class _DiskDense(nn.Module):
    def __init__(self, model: Extractor) -> None:
        super().__init__()
        self.net = model
        self.fp32 = _DiskRank(model.conf["nms_window_size"], _candidate_count(model))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        heatmap, descriptors = self.net._dense_maps(image)
        return (descriptors[None],) + self.fp32(heatmap)


def _disk_extract(model: Extractor, run: GraphRunner, image: torch.Tensor
                  ) -> dict[str, torch.Tensor]:
    from ..models.disk import strongest_in_raster_order

    height, width = model._check_input(image)
    if model._too_small(height, width):
        return model._no_keypoints(image)
    descriptors, values, indices = run.run("dense", image)
    values, indices = values.float(), indices.long()
    keep = (indices < height * width) & (values > model.conf["detection_threshold"])
    values, indices = values[keep], indices[keep]
    order = torch.argsort(indices)  # raster order, as torch.nonzero gives them
    values, indices = values[order], indices[order]
    limit = model.conf["max_num_keypoints"]
    chosen = strongest_in_raster_order(values, None if limit is None or limit < 0 else limit)
    values, indices = values[chosen], indices[chosen]
    x, y = indices % width, indices // width
    sparse = F.normalize(descriptors[0].float()[:, y, x].T, dim=-1)
    return {"keypoints": torch.stack([x, y], dim=-1)[None].to(image.dtype),
            "keypoint_scores": values[None].to(image.dtype),
            "descriptors": sparse[None].to(image.dtype).contiguous()}


# --- extractor graphs -----------------------------------------------------------------------------
TRACE_SIZE = (200, 264)  # height, width of the tracing image: not a multiple of 8, 16 or 32


def extractor_graphs(model: Extractor) -> list[GraphSpec]:
    """The graphs of an extractor (with its weights and keypoint options)."""
    c = model.input_channels
    image_shape: tuple[Dim, ...] = (1, c, "height", "width")
    h, w = TRACE_SIZE
    ranked = ("candidate_scores", "candidate_indices")
    if model.name == "superpoint":
        return [GraphSpec("dense", _SuperPointDense(model).eval(), ("image",),
                          ("descriptor_map",) + ranked, {"image": image_shape},
                          lambda: (torch.rand(1, c, h, w),))]
    if model.name == "disk":
        return [GraphSpec("dense", _DiskDense(model).eval(), ("image",),
                          ("descriptor_map",) + ranked, {"image": image_shape},
                          lambda: (torch.rand(1, c, h, w),))]
    if model.name == "aliked":
        dim = model.descriptor_dim
        dense = _AlikedDense(model).eval()
        outputs = ("features", "scores") + ranked

        def describe_example() -> tuple[torch.Tensor, ...]:
            features = F.normalize(torch.rand(1, dim, h, w), dim=1)
            keypoints = torch.rand(37, 2) * 2 - 1
            return features, keypoints, torch.tensor([w - 1.0, h - 1.0])

        return [
            GraphSpec("dense_landscape", dense, ("image",), outputs, {"image": image_shape},
                      lambda: (torch.rand(1, c, h, w),)),
            GraphSpec("dense_portrait", dense, ("image",), outputs, {"image": image_shape},
                      lambda: (torch.rand(1, c, w, h),)),
            GraphSpec("describe", _AlikedDescribe(model.desc_head).eval(),
                      ("features", "keypoints", "wh"), ("descriptors",),
                      {"features": (1, dim, "height", "width"), "keypoints": ("n", 2),
                       "wh": (2,)}, describe_example),
        ]
    raise ValueError(f"no graphs for extractor '{model.name}'")


_EXTRACT = {"superpoint": _superpoint_extract, "aliked": _aliked_extract, "disk": _disk_extract}


class GraphExtractor:
    """Keypoints, scores and descriptors of one image from the extractor graphs run by ``runner``
    plus the host-side selection; the same output as ``model(image)``. ``model`` provides the
    options and the host functions only (its weights are not used)."""

    def __init__(self, model: Extractor, runner: GraphRunner) -> None:
        self.model, self.runner = model, runner
        self._extract = _EXTRACT[model.name]

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._extract(self.model, self.runner, image)


# --- LightGlue graphs -----------------------------------------------------------------------------
class _Encode(nn.Module):
    def __init__(self, lg: LightGlue) -> None:
        super().__init__()
        self.lg = lg

    def forward(self, kpts: torch.Tensor, desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lg.encode(kpts, desc)


class _Stage(nn.Module):
    def __init__(self, lg: LightGlue, stage: str, i: int) -> None:
        super().__init__()
        self.lg, self.stage, self.i = lg, stage, i

    def forward(self, *args: torch.Tensor):  # noqa: ANN201
        return getattr(self.lg, self.stage)(self.i, *args)


def matcher_graphs(lg: LightGlue) -> list[GraphSpec]:
    """One graph per stage of LightGlue (see :class:`~lightglue_ros.models.lightglue.Stages`)."""
    d_in = lg.conf["input_dim"]
    d = lg.conf["descriptor_dim"]
    head = d // lg.conf["num_heads"]
    m, n = 37, 53  # tracing sizes

    def pair() -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(1, m, d), torch.randn(1, n, d)

    def layer_example() -> tuple[torch.Tensor, ...]:
        enc0 = lg.encode(torch.rand(1, m, 2) * 2 - 1, torch.randn(1, m, d_in))[1]
        enc1 = lg.encode(torch.rand(1, n, 2) * 2 - 1, torch.randn(1, n, d_in))[1]
        return (*pair(), enc0.detach(), enc1.detach())

    desc_pair = {"desc0": (1, "n0", d), "desc1": (1, "n1", d)}
    specs = [GraphSpec("encode", _Encode(lg).eval(), ("kpts", "desc"), ("desc_out", "encoding"),
                       {"kpts": (1, "n", 2), "desc": (1, "n", d_in)},
                       lambda: (torch.rand(1, m, 2) * 2 - 1, torch.randn(1, m, d_in)),
                       fp16=False)]
    for i in range(lg.n_layers):
        specs.append(GraphSpec(
            f"layer{i}", _Stage(lg, "layer", i).eval(), ("desc0", "desc1", "enc0", "enc1"),
            ("desc0_out", "desc1_out"),
            {**desc_pair, "enc0": (2, 1, 1, "n0", head), "enc1": (2, 1, 1, "n1", head)},
            layer_example))
        if i < lg.n_layers - 1:
            specs.append(GraphSpec(f"confidence{i}", _Stage(lg, "confidence", i).eval(),
                                   ("desc0", "desc1"), ("token0", "token1"), desc_pair, pair))
            specs.append(GraphSpec(f"matchability{i}", _Stage(lg, "matchability", i).eval(),
                                   ("desc",), ("matchability",), {"desc": (1, "n", d)},
                                   lambda: (torch.randn(1, m, d),)))
        specs.append(GraphSpec(f"assign{i}", _Stage(lg, "assign", i).eval(), ("desc0", "desc1"),
                               ("scores",), desc_pair, pair))
    return specs


class GraphStages:
    """The :class:`~lightglue_ros.models.lightglue.Stages` protocol over LightGlue's graphs."""

    def __init__(self, runner: GraphRunner, n_layers: int) -> None:
        self.runner, self.n_layers = runner, n_layers

    def encode(self, kpts: torch.Tensor, desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        desc, enc = self.runner.run("encode", kpts, desc)
        return desc, enc

    def layer(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor, enc0: torch.Tensor,
              enc1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        desc0, desc1 = self.runner.run(f"layer{i}", desc0, desc1, enc0, enc1)
        return desc0, desc1

    def confidence(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        token0, token1 = self.runner.run(f"confidence{i}", desc0, desc1)
        return token0, token1

    def matchability(self, i: int, desc: torch.Tensor) -> torch.Tensor:
        return self.runner.run(f"matchability{i}", desc)[0]

    def assign(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
        return self.runner.run(f"assign{i}", desc0, desc1)[0]


# --- a backend over graphs ------------------------------------------------------------------------
class GraphBackend(Backend):
    """The part every graph runtime (ONNX Runtime, TensorRT) shares: extraction with the host-side
    selection, and matching with the unchanged adaptive host loop over :class:`GraphStages`.
    Subclasses set ``device`` and call :meth:`_setup` with their runner."""

    def _setup(self, runner: GraphRunner, extractor: Extractor, matcher: LightGlue) -> None:
        self.runner = runner
        self.extractor = GraphExtractor(extractor, runner)
        self.stages = GraphStages(runner, matcher.n_layers)
        self.adaptive = matcher.adaptive_conf(self.device)
        self.input_channels = extractor.input_channels

    @torch.inference_mode()
    def extract(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.extractor(image.to(self.device, non_blocking=True).float())
        return {k: v.float() for k, v in out.items()}

    @torch.inference_mode()
    def match(self, kpts0: torch.Tensor, kpts1: torch.Tensor, desc0: torch.Tensor,
              desc1: torch.Tensor, size0: torch.Tensor, size1: torch.Tensor) -> dict:
        k0 = normalize_keypoints(kpts0.float(), size0)  # as LightGlue.forward, in FP32
        k1 = normalize_keypoints(kpts1.float(), size1)
        return run_adaptive(self.stages, self.adaptive, k0, k1, desc0.float(), desc1.float())

    def set_thresholds(self, depth_confidence: float, width_confidence: float,
                       filter_threshold: float) -> None:
        self.adaptive = dataclasses.replace(self.adaptive, depth_confidence=depth_confidence,
                                            width_confidence=width_confidence,
                                            filter_threshold=filter_threshold)
