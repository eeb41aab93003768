"""PyTorch backend: eager networks on CPU or CUDA, with FP16 autocast on CUDA and optional CUDA
graphs (``cuda_graphs``; see :mod:`lightglue_ros.inference.cuda_graphs`)."""
from __future__ import annotations

import contextlib
import dataclasses

import torch

from ..config import Config
from ..errors import BackendError
from ..models.factory import build_extractor, build_matcher
from ..models.lightglue import normalize_keypoints, run_adaptive
from .backend import Backend
from .devices import torch_device


class TorchBackend(Backend):
    def __init__(self, cfg: Config, weights: bool = True) -> None:
        super().__init__(cfg)
        self.device = torch_device(cfg.device)
        if cfg.precision == "fp16" and self.device.type != "cuda":
            raise BackendError("precision fp16 needs a CUDA device with the torch backend")
        self.extractor = build_extractor(cfg, weights).to(self.device)
        self.matcher = build_matcher(cfg, weights).to(self.device)
        self.input_channels = self.extractor.input_channels
        self.graph_extractor = None
        self.padded = None
        if cfg.cuda_graphs:
            if self.device.type != "cuda":
                raise BackendError("cuda_graphs needs a CUDA device (device:=cuda)")
            self._enable_cuda_graphs()

    @property
    def reentrant(self) -> bool:
        """Eager PyTorch keeps no state between calls; CUDA graphs' static buffers do."""
        return self.padded is None

    def _enable_cuda_graphs(self, use_graphs: bool = True) -> None:
        """Extraction through the graph modules with the dense part captured per image size, and
        LightGlue on padded static lengths with each layer captured (``use_graphs=False`` runs the
        same code eagerly, which is how it is tested without a GPU)."""
        from .cuda_graphs import CudaGraphRunner, PaddedStages
        from .graphs import GraphExtractor, extractor_graphs

        runner = CudaGraphRunner(extractor_graphs(self.extractor), self.device, self._autocast,
                                 use_graphs=use_graphs)
        self.graph_extractor = GraphExtractor(self.extractor, runner)
        self.padded = PaddedStages(self.matcher, use_graphs=use_graphs, autocast=self._autocast)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.precision == "fp16":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def extract(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        image = image.to(self.device, non_blocking=True)
        if self.graph_extractor is not None:
            out = self.graph_extractor(image)
        else:
            with self._autocast():
                out = self.extractor(image)
        return {k: v.float() for k, v in out.items()}

    @torch.inference_mode()
    def match(self, kpts0: torch.Tensor, kpts1: torch.Tensor, desc0: torch.Tensor,
              desc1: torch.Tensor, size0: torch.Tensor, size1: torch.Tensor) -> dict:
        m, n = kpts0.shape[1], kpts1.shape[1]
        if self.padded is not None and self.padded.fits(m, n) and min(m, n) > 0:
            conf = dataclasses.replace(self.matcher.adaptive_conf(kpts0.device),
                                       width_confidence=-1.0)  # no pruning on static shapes
            self.padded.begin(m, n)
            k0 = normalize_keypoints(kpts0.float(), size0)
            k1 = normalize_keypoints(kpts1.float(), size1)
            return run_adaptive(self.padded, conf, k0, k1, desc0, desc1)
        with self._autocast():
            return self.matcher(kpts0, kpts1, desc0, desc1, size0, size1)

    def set_thresholds(self, depth_confidence: float, width_confidence: float,
                       filter_threshold: float) -> None:
        self.matcher.conf.update(depth_confidence=depth_confidence,
                                 width_confidence=width_confidence,
                                 filter_threshold=filter_threshold)
