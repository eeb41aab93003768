"""Reading the plain-text tables and image folders that datasets are made of, with errors that
name the file and line at fault."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from lightglue_ros.errors import DatasetError
from lightglue_ros.types import to_ns

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff"})


def read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of each line that is neither blank nor a # comment.

    Fields are separated by whitespace and/or commas, which covers TUM lists, KITTI files and
    EuRoC CSVs.
    """
    try:
        text = path.read_text()
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err.strerror}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append((number, line.replace(",", " ").split()))
    return rows


def to_floats(fields: Sequence[str], path: Path, number: int, count: int) -> list[float]:
    """The first ``count`` fields as floats; DatasetError naming the line when they are not."""
    try:
        if len(fields) < count:
            raise ValueError(f"expected {count} values, got {len(fields)}")
        return [float(x) for x in fields[:count]]
    except ValueError as err:
        raise DatasetError(f"{path}, line {number}: {err}") from None


def to_stamp_ns(field: str, path: Path, number: int) -> int:
    """A stamp field in seconds as integer nanoseconds, read from the text (a float would lose
    the last digits of an epoch stamp); DatasetError naming the line when it is not a number."""
    try:
        return to_ns(field)
    except ValueError as err:
        raise DatasetError(f"{path}, line {number}: {err}") from None


def require_files(paths: Sequence[Path], listing: Path) -> None:
    """Fail early, naming the first missing file, when files listed in ``listing`` are absent."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} of {len(paths)} files listed in {listing} are missing, "
                           f"the first: {missing[0]}")


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` in natural name order (frame2 before frame10)."""
    if not folder.is_dir():
        raise DatasetError(f"image folder {folder} does not exist")
    images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise DatasetError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return sorted(images, key=_natural_key)


def _natural_key(path: Path) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]
