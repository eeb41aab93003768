"""lightglue_ros: real-time camera tracking with learned local features (SuperPoint, ALIKED, DISK)
and LightGlue, as a pure core with a thin ROS 2 node around it."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = ["Config", "Features", "Matches", "Pipeline", "__version__", "load_image"]

if TYPE_CHECKING:
    from .config import Config
    from .features import Features, Matches
    from .images import load_image
    from .pipeline import Pipeline

_LAZY = {"Config": "config", "Features": "features", "Matches": "features",
         "Pipeline": "pipeline", "load_image": "images"}


def __getattr__(name: str) -> Any:
    """Import on first use so that ``import lightglue_ros`` stays cheap (no torch)."""
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)
