"""Download official checkpoints into the weights cache, verified before they are kept."""
from __future__ import annotations

import os
import tempfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import WeightsError
from .registry import MATCHER_WEIGHTS, WEIGHTS, WeightSpec, extractor_key, matcher_key
from .resolve import cache_dir, verify


def keys_for(name: str) -> list[str]:
    """An extractor name stands for its network and its LightGlue; anything else is a weight key."""
    if name in MATCHER_WEIGHTS:
        return [extractor_key(name), matcher_key(name)]
    if name not in WEIGHTS:
        raise WeightsError(f"unknown weights '{name}'; known: {', '.join(MATCHER_WEIGHTS)}, "
                           f"{', '.join(WEIGHTS)}")
    return [name]


def fetch(spec: WeightSpec, dest_dir: Path | None = None, url: str = "",
          timeout: float = 60.0) -> Path:
    """Download ``spec`` (from its official URL unless ``url`` is given) and keep it only when its
    sha256 matches; a partial or wrong download never lands in the cache."""
    dest_dir = Path(dest_dir) if dest_dir else cache_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / spec.filename
    source = url or spec.url
    fd, tmp_name = tempfile.mkstemp(prefix=spec.filename + ".", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(source, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=spec.filename) as bar:
                for block in iter(lambda: resp.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
        verify(spec, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise WeightsError(f"cannot download {source}: {exc}. Without internet, copy the file "
                           f"to {target} by hand.") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return target
