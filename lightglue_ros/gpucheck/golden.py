"""One extractor's slice of the golden set: a view of it for the parity command, which runs every
extractor folder it finds.

A golden folder holds ``<extractor>/features/<set>/<image>.npz``, ``<extractor>/matches/<mode>/
<set>/<image0>__<image1>.npz`` and the configuration of the official run: ``README.json`` beside
the extractor folders, overridden by ``<extractor>/README.json`` where one exists (XFeat's).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..evaluation.parity import find_images


def extractor_readme(golden: Path, extractor: str) -> dict[str, Any]:
    """The configuration of one extractor's golden run: the shared README.json with the
    extractor's own README.json (if any) replacing its extractor and matcher settings."""
    readme = json.loads((golden / "README.json").read_text())
    own = golden / extractor / "README.json"
    if own.is_file():
        readme = {**readme, **json.loads(own.read_text())}
    confs = readme.get("extractor_conf", {})
    if extractor not in confs:
        raise FileNotFoundError(f"no extractor_conf.{extractor} in {golden / 'README.json'} or "
                                f"{own}")
    readme["extractor_conf"] = {extractor: confs[extractor]}
    return readme


def golden_view(golden: Path, extractor: str, dest: Path) -> Path:
    """``dest`` made a golden folder holding only ``extractor`` (links, no copies) and its
    configuration."""
    golden, dest = Path(golden).resolve(), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "README.json").write_text(json.dumps(extractor_readme(golden, extractor), indent=1))
    for name, target in ((extractor, golden / extractor), ("images", find_images(golden))):
        link = dest / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    return dest


def modes(golden: Path, extractor: str) -> list[str]:
    folder = Path(golden) / extractor / "matches"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
