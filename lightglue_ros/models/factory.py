"""Build the networks a Config asks for, with their verified official weights."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import Config
from ..errors import WeightsError
from ..weights.registry import extractor_key, matcher_key
from ..weights.resolve import load_state_dict, resolve
from .base import Extractor
from .lightglue import LightGlue

# Official defaults that a -1 in the Config stands for.
DEFAULT_THRESHOLD = {"aliked": 0.2, "superpoint": 0.0005, "disk": 0.0, "xfeat": 0.05}
DEFAULT_NMS_RADIUS = {"aliked": 2, "superpoint": 4, "disk": 2, "xfeat": 2}


def extractor_class(name: str) -> type[Extractor]:
    """Import lazily so that one extractor's code is never needed to run another."""
    if name == "superpoint":
        from .superpoint import SuperPoint
        return SuperPoint
    if name == "aliked":
        from .aliked import ALIKED
        return ALIKED
    if name == "disk":
        from .disk import DISK
        return DISK
    if name == "xfeat":
        from .xfeat import XFeat
        return XFeat
    raise ValueError(f"unknown extractor '{name}'")


def extractor_conf(cfg: Config) -> dict[str, Any]:
    """The network options of cfg's extractor, with -1 replaced by the official defaults (and
    ``max_keypoints: 0`` by the device's budget)."""
    cfg = cfg.resolved()
    name = cfg.extractor
    threshold = (DEFAULT_THRESHOLD[name] if cfg.detection_threshold < 0
                 else cfg.detection_threshold)
    radius = DEFAULT_NMS_RADIUS[name] if cfg.nms_radius < 0 else cfg.nms_radius
    if name == "xfeat":
        return {"top_k": cfg.max_keypoints, "detection_threshold": threshold,
                "nms_kernel_size": 2 * radius + 1}
    conf: dict[str, Any] = {"max_num_keypoints": cfg.max_keypoints,
                            "detection_threshold": threshold}
    if name == "aliked":
        conf.update(model_name=cfg.aliked_model, nms_radius=radius)
    elif name == "superpoint":
        conf.update(nms_radius=radius)
    else:
        conf.update(nms_window_size=2 * radius + 1)
    return conf


def matcher_conf(cfg: Config) -> dict[str, Any]:
    return {"depth_confidence": cfg.depth_confidence, "width_confidence": cfg.width_confidence,
            "filter_threshold": cfg.filter_threshold}


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Strict loading, with a message that names the file when the layout does not fit."""
    convert = getattr(model, "convert_state_dict", None)
    if convert is not None:
        state_dict = convert(state_dict)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise WeightsError(f"{source} does not fit {model.__class__.__name__}: "
                           f"{' '.join(first[1:3]) if len(first) > 1 else first[0]}") from exc


def build_extractor(cfg: Config, weights: bool = True) -> Extractor:
    """The extractor in eval mode on CPU; weights=False leaves it randomly initialised (tests)."""
    cfg = cfg.resolved()
    model = extractor_class(cfg.extractor)(extractor_conf(cfg))
    if weights:
        path = resolve(extractor_key(cfg.extractor, cfg.aliked_model), cfg.extractor_weights,
                       cfg.weights_dir)
        load_weights(model, load_state_dict(path), str(path))
    return model.eval()


def build_matcher(cfg: Config, weights: bool = True) -> LightGlue:
    cfg = cfg.resolved()
    model = LightGlue.for_extractor(cfg.extractor, **matcher_conf(cfg))
    if weights:
        path = resolve(matcher_key(cfg.extractor), cfg.matcher_weights, cfg.weights_dir)
        load_weights(model, load_state_dict(path), str(path))
    return model.eval()
