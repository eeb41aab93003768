"""One extractor's slice of the golden set: a view of it (for the parity command, which runs every
extractor folder it finds), and a subset of whole pairs that fits a byte budget (for a bundle).

A golden folder holds ``<extractor>/features/<set>/<image>.npz``, ``<extractor>/matches/<mode>/
<set>/<image0>__<image1>.npz`` and the configuration of the official run: ``README.json`` beside
the extractor folders, overridden by ``<extractor>/README.json`` where one exists (XFeat's).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
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


@dataclass(frozen=True)
class Pair:
    image_set: str
    name0: str
    name1: str

    @property
    def stem(self) -> str:
        return f"{self.name0}__{self.name1}"


@dataclass
class Subset:
    """Whole pairs of one extractor's golden set: their images, features and matches."""

    golden: Path
    extractor: str
    pairs: list[Pair]

    @property
    def images(self) -> list[tuple[str, str]]:
        """(set, name) of every image the pairs use."""
        return sorted({(p.image_set, n) for p in self.pairs for n in (p.name0, p.name1)})

    def files(self) -> dict[str, Path]:
        """Path in the bundle's golden folder -> source file."""
        root, images = self.golden / self.extractor, find_images(self.golden)
        out: dict[str, Path] = {}
        for image_set, name in self.images:
            out[f"images/{image_set}/{name}.png"] = images / image_set / f"{name}.png"
            out[f"{self.extractor}/features/{image_set}/{name}.npz"] = \
                root / "features" / image_set / f"{name}.npz"
        for mode in modes(self.golden, self.extractor):
            for p in self.pairs:
                out[f"{self.extractor}/matches/{mode}/{p.image_set}/{p.stem}.npz"] = \
                    root / "matches" / mode / p.image_set / f"{p.stem}.npz"
        if (root / "README.json").is_file():
            out[f"{self.extractor}/README.json"] = root / "README.json"
        return out

    def nbytes(self) -> int:
        return sum(_size(path) for path in self.files().values())


@lru_cache(maxsize=None)
def _size(path: Path) -> int:
    return path.stat().st_size


def modes(golden: Path, extractor: str) -> list[str]:
    folder = Path(golden) / extractor / "matches"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def all_pairs(golden: Path, extractor: str) -> list[Pair]:
    """The pairs present in every matcher mode."""
    per_mode = [{Pair(f.parent.name, *f.stem.split("__"))
                 for f in (Path(golden) / extractor / "matches" / mode).glob("*/*__*.npz")}
                for mode in modes(golden, extractor)]
    return sorted(set.intersection(*per_mode), key=lambda p: (p.image_set, p.stem)) \
        if per_mode else []


def subset_within(golden: Path, extractor: str, budget_bytes: int) -> Subset:
    """As many whole pairs as fit in ``budget_bytes`` (images, features, matches, README), taken
    from the image sets in turn (consecutive frames and wide-baseline pairs both), each time the
    set's pair that adds the fewest bytes (its images may already be in)."""
    golden = Path(golden)
    chosen = Subset(golden, extractor, [])
    remaining = all_pairs(golden, extractor)
    sets = sorted({p.image_set for p in remaining})
    turn = 0
    while remaining:
        best = None
        for offset in range(len(sets)):  # this set's turn; the others if it has none that fits
            image_set = sets[(turn + offset) % len(sets)]
            costs = [(Subset(golden, extractor, chosen.pairs + [p]).nbytes(), i)
                     for i, p in enumerate(remaining) if p.image_set == image_set]
            fitting = [c for c in costs if c[0] <= budget_bytes]
            if fitting:
                best = min(fitting)[1]
                break
        if best is None:
            break
        chosen.pairs.append(remaining.pop(best))
        turn += 1
    if not chosen.pairs:
        raise ValueError(f"not one {extractor} golden pair fits in {budget_bytes} bytes")
    return chosen
