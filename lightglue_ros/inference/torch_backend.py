"""PyTorch backend: eager networks on CPU or CUDA, with FP16 autocast on CUDA."""
from __future__ import annotations

import contextlib

import torch

from ..config import Config
from ..errors import BackendError
from ..models.factory import build_extractor, build_matcher
from .backend import Backend


def torch_device(name: str) -> torch.device:
    """The device named in the config, or a clear error when CUDA is asked for and absent."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device '{name}' requested but CUDA is not available to torch "
                           f"{torch.__version__} here; use device:=cpu")
    return device


class TorchBackend(Backend):
    def __init__(self, cfg: Config, weights: bool = True) -> None:
        super().__init__(cfg)
        self.device = torch_device(cfg.device)
        if cfg.precision == "fp16" and self.device.type != "cuda":
            raise BackendError("precision fp16 needs a CUDA device with the torch backend")
        self.extractor = build_extractor(cfg, weights).to(self.device)
        self.matcher = build_matcher(cfg, weights).to(self.device)
        self.input_channels = self.extractor.input_channels

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.precision == "fp16":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def extract(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        with self._autocast():
            out = self.extractor(image.to(self.device, non_blocking=True))
        return {k: v.float() for k, v in out.items()}

    @torch.inference_mode()
    def match(self, kpts0: torch.Tensor, kpts1: torch.Tensor, desc0: torch.Tensor,
              desc1: torch.Tensor, size0: torch.Tensor, size1: torch.Tensor) -> dict:
        with self._autocast():
            return self.matcher(kpts0, kpts1, desc0, desc1, size0, size1)

    def set_thresholds(self, depth_confidence: float, width_confidence: float,
                       filter_threshold: float) -> None:
        self.matcher.conf.update(depth_confidence=depth_confidence,
                                 width_confidence=width_confidence,
                                 filter_threshold=filter_threshold)
