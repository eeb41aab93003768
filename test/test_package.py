"""The installed packages hold every module folder (setup.py uses find_packages, which skips a
folder without __init__.py: it would work from the source tree and be missing once installed)."""
from pathlib import Path

import pytest
from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["lightglue_ros", "lightglue_ros_tools"])
def test_every_module_folder_is_a_package(package):
    folders = {p.parent.relative_to(ROOT).as_posix().replace("/", ".")
               for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts}
    missing = folders - set(find_packages(str(ROOT), include=[package, f"{package}.*"]))
    assert not missing, f"folders without __init__.py: {sorted(missing)}"
