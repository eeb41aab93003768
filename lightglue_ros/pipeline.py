"""The public matching API: extract features from an image, match two feature sets, match images.

    from lightglue_ros import Pipeline
    pipe = Pipeline()                   # extractor auto: xfeat on a CPU, aliked on CUDA
    f0, f1 = pipe.extract(img0), pipe.extract(img1)
    matches = pipe.match(f0, f1)        # matches.pairs, matches.layers
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from .config import Config, ConfigError
from .features import Features, Matches
from .images import to_tensor
from .inference import Backend, make_backend


class Pipeline:
    """An extractor and LightGlue behind one backend, configured by one Config (resolved here:
    ``self.config.extractor`` is the network that runs, never 'auto')."""

    def __init__(self, config: Config | None = None, backend: Backend | None = None,
                 **overrides: Any) -> None:
        self.config = (config or Config()).replace(**overrides).resolved()
        self.backend = backend or make_backend(self.config)
        self.timings: dict[str, float] = {}  # seconds of the last extract / match call

    @property
    def device(self) -> torch.device:
        return self.backend.device

    def extract(self, image: np.ndarray) -> Features:
        """Features of an HxW or HxWxC image (uint8, uint16 or float in [0, 1], RGB order)."""
        tensor, scale = to_tensor(image, self.backend.input_channels, self.config.resize)
        start = time.perf_counter()
        out = self.backend.extract(tensor)
        kpts = out["keypoints"][0]
        if scale != 1.0:  # back to original pixels, pixel centres aligned
            kpts = (kpts + 0.5) / scale - 0.5
        self.timings["extract"] = time.perf_counter() - start
        h, w = image.shape[:2]
        return Features(kpts, out["keypoint_scores"][0], out["descriptors"][0], (w, h))

    def match(self, feats0: Features, feats1: Features) -> Matches:
        """LightGlue on two feature sets (from this pipeline or given, e.g. reference features)."""
        dev = self.device
        f0, f1 = feats0.to(dev), feats1.to(dev)
        start = time.perf_counter()
        out = self.backend.match(f0.keypoints[None], f1.keypoints[None], f0.descriptors[None],
                                 f1.descriptors[None],
                                 torch.tensor(f0.image_size, dtype=torch.float32, device=dev),
                                 torch.tensor(f1.image_size, dtype=torch.float32, device=dev))
        result = Matches.from_output(out)
        self.timings["match"] = time.perf_counter() - start
        return result

    def match_images(self, image0: np.ndarray, image1: np.ndarray
                     ) -> tuple[Features, Features, Matches]:
        f0, f1 = self.extract(image0), self.extract(image1)
        return f0, f1, self.match(f0, f1)

    def set_thresholds(self, **values: float) -> None:
        """Change depth_confidence, width_confidence or filter_threshold while running."""
        fixed = [k for k in values if not Config.param(k).metadata["runtime"]]
        if fixed:
            raise ConfigError(f"parameter(s) {', '.join(fixed)} cannot change at run time")
        self.config = self.config.replace(**values)
        c = self.config
        self.backend.set_thresholds(c.depth_confidence, c.width_confidence, c.filter_threshold)
