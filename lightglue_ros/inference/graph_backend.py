"""The part every graph runtime (ONNX Runtime, TensorRT) shares: extraction through the
extractor graphs with the host-side selection, and matching with the unchanged adaptive host loop
over LightGlue's stage graphs."""
from __future__ import annotations

import dataclasses

import torch

from ..models.base import Extractor
from ..models.lightglue import LightGlue, normalize_keypoints, run_adaptive
from .backend import Backend
from .graphs import GraphExtractor, GraphRunner, GraphStages


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
