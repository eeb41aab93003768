"""Accuracy diagnoses outside the product: where a figure of ``lightglue-ros track`` comes from,
frame by frame."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """``result`` as indented JSON at ``path`` (its folder made), when a path is given."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
