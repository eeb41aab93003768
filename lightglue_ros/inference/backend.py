"""The interface every inference backend implements (torch, ONNX Runtime, TensorRT)."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from ..config import Config


class Backend(ABC):
    """Runs the extractor network and the LightGlue stages for one configuration.

    ``extract`` takes a preprocessed (1, C, H, W) float32 image and returns keypoints (1,N,2),
    keypoint_scores (1,N), descriptors (1,N,D). ``match`` takes two such sets in pixels with their
    image sizes (w, h) and returns the dict of :func:`lightglue_ros.models.lightglue.run_adaptive`.
    """

    input_channels: int
    device: torch.device

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    @property
    def reentrant(self) -> bool:
        """Whether two threads may run this instance at once: a second user (the SLAM thread's
        verification) then shares it instead of building the networks again."""
        return False

    @abstractmethod
    def extract(self, image: torch.Tensor) -> dict[str, torch.Tensor]: ...

    @abstractmethod
    def match(self, kpts0: torch.Tensor, kpts1: torch.Tensor, desc0: torch.Tensor,
              desc1: torch.Tensor, size0: torch.Tensor, size1: torch.Tensor) -> dict: ...

    @abstractmethod
    def set_thresholds(self, depth_confidence: float, width_confidence: float,
                       filter_threshold: float) -> None:
        """Change the matcher's run-time thresholds without rebuilding anything."""
