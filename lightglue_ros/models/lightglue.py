"""LightGlue: local feature matching at light speed (Lindenberger, Sarlin, Pollefeys, ICCV 2023).

The network is split into stages (encode, one transformer layer, token confidence, matchability,
assignment) and the adaptive control flow lives in :func:`run_adaptive`, which only sees the stages.
The PyTorch model and the exported ONNX / TensorRT graphs are driven by that same host loop, so early
exit (adaptive depth) and point pruning (adaptive width) make the same decisions in every backend.
Loads the official checkpoints (both the ``self_attn.N`` and ``transformers.N.self_attn`` layouts),
and XFeat's LighterGlue (6 layers, 96-d, 1 head; :meth:`LightGlue.for_extractor` with ``"xfeat"``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config

N_LAYERS = 9

# A set is pruned only while it holds more keypoints than this: the official table (pruning costs
# more than it saves on a GPU for small sets, and fused "flash" attention makes them cheaper still).
PRUNING_MIN_KEYPOINTS = {"cpu": -1, "mps": -1, "cuda": 1024, "flash": 1536}


def pruning_min_keypoints(device: torch.device, flash: bool = True) -> int:
    """The official choice of :data:`PRUNING_MIN_KEYPOINTS`: cvg/LightGlue and kornia take
    "flash" on CUDA when their ``flash`` option is on, which it is by default; the self-attention
    here always runs fused (``scaled_dot_product_attention``), so the default is ``flash=True``."""
    if flash and device.type == "cuda":
        return PRUNING_MIN_KEYPOINTS["flash"]
    return PRUNING_MIN_KEYPOINTS.get(device.type, -1)


def normalize_keypoints(kpts: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates -> roughly [-1, 1], centred, scaled by the longer image side."""
    size = size.to(kpts)
    return (kpts - size / 2) / (size.max(-1).values / 2)[..., None, None]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x0, x1 = x.unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack((-x1, x0), dim=-1).flatten(start_dim=-2)


def apply_rotary(freqs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return t * freqs[0] + rotate_half(t) * freqs[1]


class FourierPositionalEncoding(nn.Module):
    """Learned Fourier features of the keypoint position, used as a rotary encoding."""

    def __init__(self, dims_in: int, head_dim: int) -> None:
        super().__init__()
        self.Wr = nn.Linear(dims_in, head_dim // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = self.Wr(x)
        emb = torch.stack([torch.cos(projected), torch.sin(projected)], 0).unsqueeze(-3)
        return emb.repeat_interleave(2, dim=-1)


def _ffn(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2 * dim, 2 * dim), nn.LayerNorm(2 * dim), nn.GELU(),
                         nn.Linear(2 * dim, dim))


class SelfBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.Wqkv = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.ffn = _ffn(dim)

    def forward(self, x: torch.Tensor, encoding: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` (B, 1, N, N), True where attention is allowed, only for padded sets."""
        qkv = self.Wqkv(x).unflatten(-1, (self.heads, -1, 3)).transpose(1, 2)
        q, k, v = qkv.unbind(-1)
        q, k = apply_rotary(encoding, q), apply_rotary(encoding, k)
        if mask is None:
            context = F.scaled_dot_product_attention(q.contiguous(), k.contiguous(),
                                                     v.contiguous())
        else:  # padded queries attend to nothing: NaN rows, zeroed as in the official code
            context = F.scaled_dot_product_attention(q.contiguous(), k.contiguous(),
                                                     v.contiguous(), attn_mask=mask).nan_to_num()
        message = self.out_proj(context.transpose(1, 2).flatten(start_dim=-2))
        return x + self.ffn(torch.cat([x, message], -1))


class CrossBlock(nn.Module):
    """Bidirectional cross-attention: one similarity matrix serves both directions."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.to_qk = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)
        self.ffn = _ffn(dim)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``mask`` (B, 1, M, N), True between two real points, only for padded sets."""
        qk0, qk1 = self._heads(self.to_qk(x0)), self._heads(self.to_qk(x1))
        v0, v1 = self._heads(self.to_v(x0)), self._heads(self.to_v(x1))
        qk0, qk1 = qk0 * self.scale ** 0.5, qk1 * self.scale ** 0.5
        # products as matmul, strided views as unbind: the same values as einsum and indexing,
        # which ONNX Runtime runs as explicit transposes and gathers (a fifth of a layer there)
        sim = qk0 @ qk1.transpose(-2, -1)
        if mask is not None:
            sim = sim.masked_fill(~mask, -float("inf"))
        attn01 = F.softmax(sim, dim=-1)
        attn10 = F.softmax(sim.transpose(-2, -1).contiguous(), dim=-1)
        m0, m1 = attn01 @ v1, attn10 @ v0
        if mask is not None:  # rows of padded points are all -inf: NaN, zeroed (official)
            m0, m1 = m0.nan_to_num(), m1.nan_to_num()
        m0 = self.to_out(m0.transpose(1, 2).flatten(start_dim=-2))
        m1 = self.to_out(m1.transpose(1, 2).flatten(start_dim=-2))
        return x0 + self.ffn(torch.cat([x0, m0], -1)), x1 + self.ffn(torch.cat([x1, m1], -1))


class TransformerLayer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = SelfBlock(dim, heads)
        self.cross_attn = CrossBlock(dim, heads)

    def forward(self, desc0: torch.Tensor, desc1: torch.Tensor, enc0: torch.Tensor,
                enc1: torch.Tensor, mask0: torch.Tensor | None = None,
                mask1: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``mask0`` (B, M, 1) and ``mask1`` (B, N, 1) mark the real points of sets padded to a
        static length (:func:`pad_to_length`); without masks, the unpadded computation."""
        if mask0 is None and mask1 is None:
            return self.cross_attn(self.self_attn(desc0, enc0), self.self_attn(desc1, enc1))
        if mask0 is None or mask1 is None:
            raise ValueError("TransformerLayer: give both masks or neither")
        self0 = (mask0 & mask0.transpose(-1, -2))[:, None]
        self1 = (mask1 & mask1.transpose(-1, -2))[:, None]
        cross = (mask0 & mask1.transpose(-1, -2))[:, None]
        return self.cross_attn(self.self_attn(desc0, enc0, self0),
                               self.self_attn(desc1, enc1, self1), cross)


def pad_to_length(x: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad (B, N, D) with ones to (B, length, D) and return it with the mask (B, length, 1) of the
    real rows, as the official static-lengths path does."""
    if length <= x.shape[-2]:
        return x, torch.ones_like(x[..., :1], dtype=torch.bool)
    pad = torch.ones(*x.shape[:-2], length - x.shape[-2], x.shape[-1], device=x.device,
                     dtype=x.dtype)
    mask = torch.zeros(*x.shape[:-2], length, 1, dtype=torch.bool, device=x.device)
    mask[..., :x.shape[-2], :] = True
    return torch.cat([x, pad], dim=-2), mask


def sigmoid_log_double_softmax(sim: torch.Tensor, z0: torch.Tensor, z1: torch.Tensor
                               ) -> torch.Tensor:
    """Log assignment matrix (B, M+1, N+1): dual softmax plus matchability, with a dustbin row and
    column holding the log-probability of each point being unmatched."""
    certainties = F.logsigmoid(z0) + F.logsigmoid(z1).transpose(1, 2)
    scores0 = F.log_softmax(sim, 2)
    scores1 = F.log_softmax(sim.transpose(-1, -2).contiguous(), 2).transpose(-1, -2)
    # assembled by concatenation, not slice assignment into a new matrix: the same values, but
    # exported graphs get two Concats instead of three ScatterNDs over index tensors of the
    # matrix's size (a third of the assignment graph's time on ONNX Runtime)
    dustbin0 = F.logsigmoid(-z0)  # (B, M, 1)
    dustbin1 = torch.cat([F.logsigmoid(-z1).transpose(1, 2), sim.new_zeros(sim.shape[0], 1, 1)],
                         2)  # (B, 1, N + 1), the corner 0
    return torch.cat([torch.cat([scores0 + scores1 + certainties, dustbin0], 2), dustbin1], 1)


class MatchAssignment(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.matchability = nn.Linear(dim, 1)
        self.final_proj = nn.Linear(dim, dim)

    def forward(self, desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
        mdesc0, mdesc1 = self.final_proj(desc0), self.final_proj(desc1)
        d = mdesc0.shape[-1]
        sim = (mdesc0 / d ** 0.25) @ (mdesc1 / d ** 0.25).transpose(-2, -1)
        return sigmoid_log_double_softmax(sim, self.matchability(desc0), self.matchability(desc1))

    def get_matchability(self, desc: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.matchability(desc)).squeeze(-1)


class TokenConfidence(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())

    def forward(self, desc0: torch.Tensor, desc1: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.token(desc0).squeeze(-1), self.token(desc1).squeeze(-1)


def filter_matches(scores: torch.Tensor, threshold: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mutual nearest neighbours of the log assignment matrix whose probability exceeds threshold."""
    max0, max1 = scores[:, :-1, :-1].max(2), scores[:, :-1, :-1].max(1)
    m0, m1 = max0.indices, max1.indices
    idx0 = torch.arange(m0.shape[1], device=m0.device)[None]
    idx1 = torch.arange(m1.shape[1], device=m1.device)[None]
    mutual0 = idx0 == m1.gather(1, m0)
    mutual1 = idx1 == m0.gather(1, m1)
    zero = scores.new_tensor(0)
    mscores0 = torch.where(mutual0, max0.values.exp(), zero)
    mscores1 = torch.where(mutual1, mscores0.gather(1, m1), zero)
    valid0 = mutual0 & (mscores0 > threshold)
    valid1 = mutual1 & valid0.gather(1, m1)
    return (torch.where(valid0, m0, -1), torch.where(valid1, m1, -1), mscores0, mscores1)


def confidence_threshold(layer: int, n_layers: int = N_LAYERS) -> float:
    """Token confidence a point needs at a layer to count as settled (looser in later layers)."""
    return min(max(0.8 + 0.1 * math.exp(-4.0 * layer / n_layers), 0.0), 1.0)


class Stages(Protocol):
    """The network pieces the adaptive host loop calls; implemented by every backend."""

    n_layers: int

    def encode(self, kpts: torch.Tensor, desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised keypoints (1,N,2), descriptors (1,N,D_in) -> (descriptors, rotary encoding)."""

    def layer(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor, enc0: torch.Tensor,
              enc1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def confidence(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def matchability(self, i: int, desc: torch.Tensor) -> torch.Tensor: ...

    def assign(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor: ...


@dataclass
class AdaptiveConf:
    """The matcher's thresholds, by default the Config's (which are the official LightGlue's)."""

    depth_confidence: float = Config.depth_confidence  # -1 disables early exit
    width_confidence: float = Config.width_confidence  # -1 disables pruning
    filter_threshold: float = Config.filter_threshold
    pruning_min_keypoints: int = -1  # a set is pruned only while larger than this


def run_adaptive(stages: Stages, conf: AdaptiveConf, kpts0: torch.Tensor, kpts1: torch.Tensor,
                 desc0: torch.Tensor, desc1: torch.Tensor) -> dict[str, torch.Tensor | int]:
    """Match one pair (batch of 1) layer by layer, exiting early and pruning points like the
    official implementation. Keypoints must already be normalised.

    Returns matches0 (M,), matches1 (N,), matching_scores0/1, stop (layers run), prune0/1 (the
    layer at which each point was pruned, n_layers when kept).
    """
    m, n = kpts0.shape[1], kpts1.shape[1]
    n_layers = stages.n_layers
    early_stop = conf.depth_confidence > 0
    pruning = conf.width_confidence > 0
    device = kpts0.device
    ind0 = torch.arange(m, device=device)
    ind1 = torch.arange(n, device=device)
    prune0 = torch.ones(m, dtype=torch.long, device=device)
    prune1 = torch.ones(n, dtype=torch.long, device=device)
    if m == 0 or n == 0:
        return _empty_result(m, n, device, kpts0.dtype)
    desc0, enc0 = stages.encode(kpts0, desc0)
    desc1, enc1 = stages.encode(kpts1, desc1)
    token0 = token1 = None
    for i in range(n_layers):
        if desc0.shape[1] == 0 or desc1.shape[1] == 0:
            break
        desc0, desc1 = stages.layer(i, desc0, desc1, enc0, enc1)
        if i == n_layers - 1:
            continue
        threshold = confidence_threshold(i, n_layers)
        if early_stop:
            token0, token1 = stages.confidence(i, desc0, desc1)
            uncertain = (torch.cat([token0, token1], -1).float() < threshold).float().sum()
            if bool(1.0 - uncertain / (m + n) > conf.depth_confidence):  # float32, as official
                break
        if pruning and desc0.shape[1] > conf.pruning_min_keypoints:
            keep0 = _keep(stages.matchability(i, desc0), token0, threshold, conf.width_confidence)
            ind0, desc0, enc0 = ind0[keep0], desc0[:, keep0], enc0[..., keep0, :]
            prune0[ind0] += 1
        if pruning and desc1.shape[1] > conf.pruning_min_keypoints:
            keep1 = _keep(stages.matchability(i, desc1), token1, threshold, conf.width_confidence)
            ind1, desc1, enc1 = ind1[keep1], desc1[:, keep1], enc1[..., keep1, :]
            prune1[ind1] += 1
    stop = i + 1
    if desc0.shape[1] == 0 or desc1.shape[1] == 0:
        out = _empty_result(m, n, device, kpts0.dtype)
        out.update(stop=stop, prune0=prune0, prune1=prune1)
        return out
    scores = stages.assign(i, desc0, desc1).float()
    m0, m1, ms0, ms1 = filter_matches(scores, conf.filter_threshold)
    m0, m1, ms0, ms1 = m0[0], m1[0], ms0[0], ms1[0]
    matches0 = torch.full((m,), -1, dtype=torch.long, device=device)
    matches1 = torch.full((n,), -1, dtype=torch.long, device=device)
    matches0[ind0] = torch.where(m0 == -1, -1, ind1[m0.clamp(min=0)])
    matches1[ind1] = torch.where(m1 == -1, -1, ind0[m1.clamp(min=0)])
    scores0 = torch.zeros(m, dtype=ms0.dtype, device=device)
    scores1 = torch.zeros(n, dtype=ms1.dtype, device=device)
    scores0[ind0], scores1[ind1] = ms0, ms1
    if not pruning:
        prune0 = torch.full((m,), n_layers, dtype=torch.long, device=device)
        prune1 = torch.full((n,), n_layers, dtype=torch.long, device=device)
    return {"matches0": matches0, "matches1": matches1, "matching_scores0": scores0,
            "matching_scores1": scores1, "stop": stop, "prune0": prune0, "prune1": prune1}


def _keep(matchability: torch.Tensor, token: torch.Tensor | None, threshold: float,
          width_confidence: float) -> torch.Tensor:
    """Indices of the points to keep: likely matchable ones, and never those still uncertain."""
    keep = matchability[0] > (1 - width_confidence)
    if token is not None:
        keep |= token[0] <= threshold
    return torch.where(keep)[0]


def _empty_result(m: int, n: int, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    return {"matches0": torch.full((m,), -1, dtype=torch.long, device=device),
            "matches1": torch.full((n,), -1, dtype=torch.long, device=device),
            "matching_scores0": torch.zeros(m, dtype=dtype, device=device),
            "matching_scores1": torch.zeros(n, dtype=dtype, device=device),
            "stop": 0, "prune0": torch.zeros(m, dtype=torch.long, device=device),
            "prune1": torch.zeros(n, dtype=torch.long, device=device)}


class LightGlue(nn.Module):
    """The LightGlue network; ``forward`` matches one pair with the adaptive host loop."""

    default_conf = {
        "input_dim": 256,  # descriptor size of the extractor (see ``features``)
        "descriptor_dim": 256,
        "n_layers": N_LAYERS,
        "num_heads": 4,
        "depth_confidence": AdaptiveConf.depth_confidence,
        "width_confidence": AdaptiveConf.width_confidence,
        "filter_threshold": AdaptiveConf.filter_threshold,
        "pruning_min_keypoints": None,  # None: the official value for the device
    }
    # Per extractor, what differs from default_conf: the descriptor size, and for XFeat the shape
    # of LighterGlue (trained with glue-factory). The thresholds are the Config's for every
    # extractor (LighterGlue's official ones are a parity mode of the golden set, not a default).
    features: dict[str, dict[str, Any]] = {
        "superpoint": {"input_dim": 256},
        "aliked": {"input_dim": 128},
        "disk": {"input_dim": 128},
        "xfeat": {"input_dim": 64, "descriptor_dim": 96, "n_layers": 6, "num_heads": 1},
    }
    input_dims = {name: conf["input_dim"] for name, conf in features.items()}

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        unknown = set(conf or {}) - set(self.default_conf)
        if unknown:
            raise ValueError(f"LightGlue: unknown option(s) {sorted(unknown)}")
        self.conf = c = {**self.default_conf, **(conf or {})}
        d, h = c["descriptor_dim"], c["num_heads"]
        self.n_layers = c["n_layers"]
        self.input_proj = (nn.Linear(c["input_dim"], d) if c["input_dim"] != d else nn.Identity())
        self.posenc = FourierPositionalEncoding(2, d // h)
        self.transformers = nn.ModuleList([TransformerLayer(d, h) for _ in range(self.n_layers)])
        self.log_assignment = nn.ModuleList([MatchAssignment(d) for _ in range(self.n_layers)])
        self.token_confidence = nn.ModuleList([TokenConfidence(d)
                                               for _ in range(self.n_layers - 1)])

    @classmethod
    def for_extractor(cls, extractor: str, **conf: Any) -> "LightGlue":
        """The matcher of an extractor's features; ``conf`` overrides its defaults."""
        if extractor not in cls.features:
            raise ValueError(f"no LightGlue for extractor '{extractor}'; known: "
                             f"{', '.join(cls.features)}")
        return cls({**cls.features[extractor], **conf})

    @staticmethod
    def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename the first release's ``self_attn.N.*`` keys to ``transformers.N.self_attn.*``,
        drop the unused ``log_assignment.N.r`` buffers some checkpoints carry, and take only the
        ``matcher.*`` part of a glue-factory checkpoint. LighterGlue's also holds the XFeat it was
        trained with (``extractor.*``, BatchNorm statistics drifted in training); the official
        code reads XFeat from ``xfeat.pt`` instead, and so does this package."""
        out = {}
        for key, value in state_dict.items():
            if key.startswith("extractor."):
                continue
            key = key.removeprefix("matcher.")
            if key.startswith("log_assignment.") and key.endswith(".r"):
                continue
            for kind in ("self_attn", "cross_attn"):
                if key.startswith(kind + "."):
                    layer, rest = key[len(kind) + 1:].split(".", 1)
                    key = f"transformers.{layer}.{kind}.{rest}"
            out[key] = value
        return out

    # --- stages -------------------------------------------------------------------------------
    def encode(self, kpts: torch.Tensor, desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.input_proj(desc), self.posenc(kpts)

    def layer(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor, enc0: torch.Tensor,
              enc1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transformers[i](desc0, desc1, enc0, enc1)

    def confidence(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.token_confidence[i](desc0, desc1)

    def matchability(self, i: int, desc: torch.Tensor) -> torch.Tensor:
        return self.log_assignment[i].get_matchability(desc)

    def assign(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
        return self.log_assignment[i](desc0, desc1)

    # --- matching -----------------------------------------------------------------------------
    def adaptive_conf(self, device: torch.device) -> AdaptiveConf:
        c = self.conf
        min_kpts = c["pruning_min_keypoints"]
        if min_kpts is None:
            min_kpts = pruning_min_keypoints(device)
        return AdaptiveConf(c["depth_confidence"], c["width_confidence"], c["filter_threshold"],
                            min_kpts)

    @torch.inference_mode()
    def forward(self, kpts0: torch.Tensor, kpts1: torch.Tensor, desc0: torch.Tensor,
                desc1: torch.Tensor, size0: torch.Tensor, size1: torch.Tensor
                ) -> dict[str, torch.Tensor | int]:
        """Match keypoints (1,M,2)/(1,N,2) in pixels with descriptors (1,M,D)/(1,N,D); sizes are
        the image (width, height) each set was detected in."""
        k0 = normalize_keypoints(kpts0.float(), size0)
        k1 = normalize_keypoints(kpts1.float(), size1)
        return run_adaptive(self, self.adaptive_conf(kpts0.device), k0, k1, desc0, desc1)
