"""One LightGlue match with the values its decisions were taken on.

Telling a near-tie that rounding may flip from a real disagreement needs more than the outputs:
the final score matrix (mutual check and filter threshold), the token confidences (early exit) and
the matchability (pruning). :class:`TracedStages` wraps the stages a backend hands to
:func:`~lightglue_ros.models.lightglue.run_adaptive` and keeps them, and :func:`traced_match` runs
that same host loop on them, so the traced result is the backend's own (a test checks it bit for
bit against ``Pipeline.match``).

``perturb`` multiplies every stage output by ``1 + perturb * u``, ``u`` uniform in [-1, 1] from a
fixed seed: a simulated machine whose kernels round every stage differently (see
:mod:`lightglue_ros.evaluation.near_ties`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..features import Features, Matches
from ..models.lightglue import AdaptiveConf, Stages, normalize_keypoints, run_adaptive


@dataclass
class LayerTrace:
    """What layer ``i`` decided on, over the points still present at that layer (ascending
    indices): token confidences (early exit on) and matchability (pruning on)."""

    tokens0: np.ndarray | None = None
    tokens1: np.ndarray | None = None
    matchability0: np.ndarray | None = None
    matchability1: np.ndarray | None = None


@dataclass
class MatchTrace:
    layers: dict[int, LayerTrace] = field(default_factory=dict)
    log_scores: np.ndarray | None = None  # (m'+1, n'+1) at the exit layer, remaining points only


class TracedStages:
    """A :class:`~lightglue_ros.models.lightglue.Stages` that records what ``run_adaptive`` reads
    (and optionally perturbs every output at rounding level)."""

    def __init__(self, inner: Stages, perturb: float = 0.0, seed: int = 0) -> None:
        self.inner, self.n_layers = inner, inner.n_layers
        self.trace = MatchTrace()
        self.perturb = perturb
        self.generator = torch.Generator().manual_seed(seed)
        self._last = (None, None)  # the latest layer outputs, to tell the two sides apart

    def _out(self, t: torch.Tensor) -> torch.Tensor:
        if not self.perturb or not t.is_floating_point():
            return t
        u = torch.rand(t.shape, generator=self.generator, dtype=torch.float64) * 2 - 1
        return (t * (1 + self.perturb * u).to(t)).to(t.dtype)

    def _layer(self, i: int) -> LayerTrace:
        return self.trace.layers.setdefault(i, LayerTrace())

    def encode(self, kpts: torch.Tensor, desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        desc, enc = self.inner.encode(kpts, desc)
        return self._out(desc), self._out(enc)

    def layer(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor, enc0: torch.Tensor,
              enc1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out0, out1 = self.inner.layer(i, desc0, desc1, enc0, enc1)
        self._last = (self._out(out0), self._out(out1))
        return self._last

    def confidence(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        token0, token1 = (self._out(t) for t in self.inner.confidence(i, desc0, desc1))
        entry = self._layer(i)
        entry.tokens0, entry.tokens1 = _numpy(token0), _numpy(token1)
        return token0, token1

    def matchability(self, i: int, desc: torch.Tensor) -> torch.Tensor:
        out = self._out(self.inner.matchability(i, desc))
        entry = self._layer(i)
        if desc is self._last[0]:
            entry.matchability0 = _numpy(out)
        else:
            entry.matchability1 = _numpy(out)
        return out

    def assign(self, i: int, desc0: torch.Tensor, desc1: torch.Tensor) -> torch.Tensor:
        scores = self._out(self.inner.assign(i, desc0, desc1))
        self.trace.log_scores = scores[0].float().cpu().numpy()
        return scores


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t[0].float().cpu().numpy()


def matcher_stages(backend: object) -> tuple[Stages, AdaptiveConf] | None:
    """The stages and thresholds the backend's ``match`` hands to ``run_adaptive``: those of a
    graph backend (ONNX Runtime, TensorRT), or the FP32 torch model itself. None where matching
    runs another way (FP16 autocast, CUDA graphs over padded shapes): no trace there."""
    stages = getattr(backend, "stages", None)
    if stages is not None:
        return stages, backend.adaptive
    matcher = getattr(backend, "matcher", None)
    cfg = getattr(backend, "cfg", None)
    if (matcher is not None and getattr(backend, "padded", None) is None and cfg is not None
            and cfg.precision == "fp32"):
        return matcher, matcher.adaptive_conf(backend.device)
    return None


@torch.inference_mode()
def traced_match(stages: Stages, conf: AdaptiveConf, device: torch.device, feats0: Features,
                 feats1: Features, perturb: float = 0.0, seed: int = 0
                 ) -> tuple[Matches, MatchTrace]:
    """Match like the backend's ``match`` (same normalisation, same host loop), with the trace."""
    f0, f1 = feats0.to(device), feats1.to(device)
    size0 = torch.tensor(f0.image_size, dtype=torch.float32, device=device)
    size1 = torch.tensor(f1.image_size, dtype=torch.float32, device=device)
    k0 = normalize_keypoints(f0.keypoints[None].float(), size0)
    k1 = normalize_keypoints(f1.keypoints[None].float(), size1)
    traced = TracedStages(stages, perturb, seed)
    out = run_adaptive(traced, conf, k0, k1, f0.descriptors[None].float(),
                       f1.descriptors[None].float())
    return Matches.from_output(out), traced.trace
