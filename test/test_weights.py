"""Weight resolution, verification and loading: every failure names the file and the remedy."""
import shutil
from pathlib import Path

import pytest
import torch

from lightglue_ros.config import Config
from lightglue_ros.errors import WeightsError
from lightglue_ros.models.factory import build_extractor, build_matcher
from lightglue_ros.weights.fetch import fetch, keys_for
from lightglue_ros.weights.registry import WEIGHTS
from lightglue_ros.files import sha256_file
from lightglue_ros.weights.resolve import load_state_dict, package_file, resolve


def test_package_weights_resolve_and_match_their_pins(isolated):
    for key in ("aliked-n16", "aliked_lightglue", "disk-depth", "disk_lightglue"):
        path = resolve(key)
        assert path == package_file(WEIGHTS[key])
        assert sha256_file(path) == WEIGHTS[key].sha256


def test_cache_wins_over_package_and_truncated_cache_file_is_refused(isolated):
    cache = isolated / "cache"
    cache.mkdir()
    src = package_file(WEIGHTS["aliked-n16"])
    shutil.copy(src, cache / "aliked-n16.pth")
    assert resolve("aliked-n16") == cache / "aliked-n16.pth"
    data = (cache / "aliked-n16.pth").read_bytes()
    (cache / "aliked-n16.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"aliked-n16\.pth.*sha256.*Delete it"):
        resolve("aliked-n16")


def test_tampered_file_with_the_right_size_is_refused(isolated):
    cache = isolated / "cache"
    cache.mkdir()
    data = bytearray(package_file(WEIGHTS["disk_lightglue"]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (cache / "disk_lightglue.pth").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="disk_lightglue.pth is not the expected"):
        resolve("disk_lightglue")


def test_torch_hub_cache_names_are_searched(isolated):
    hub = isolated / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(package_file(WEIGHTS["aliked_lightglue"]), hub / "aliked_lightglue_v0-1_arxiv.pth")
    assert resolve("aliked_lightglue") == hub / "aliked_lightglue_v0-1_arxiv.pth"


def test_missing_superpoint_says_how_to_fetch_it(isolated):
    with pytest.raises(WeightsError, match="superpoint_v1.pth.*lightglue-ros weights fetch "
                                           "superpoint"):
        build_extractor(Config(extractor="superpoint"))
    with pytest.raises(WeightsError, match="superpoint_lightglue_v0-1_arxiv.pth"):
        build_matcher(Config(extractor="superpoint"))


def test_missing_and_corrupt_explicit_paths(isolated):
    with pytest.raises(WeightsError, match="nowhere.pth for .aliked-n16. does not exist"):
        build_extractor(Config(extractor="aliked", extractor_weights=str(isolated / "nowhere.pth")))
    bad = isolated / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights file .*bad.pth"):
        build_extractor(Config(extractor="aliked", extractor_weights=str(bad)))


def test_explicit_file_modified_after_saving_is_refused_by_its_checksums(isolated):
    """An explicit path has no pinned sha256 (it may be a fine-tune), but a byte changed inside
    the tensors breaks the archive's own CRC32: refused before torch reads it."""
    data = bytearray(package_file(WEIGHTS["aliked-n16"]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = isolated / "fine_tuned.pth"
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"fine_tuned.pth is corrupt: the checksum of its "
                                           r"entry 'aliked-n16/data/\d+' does not match"):
        build_extractor(Config(extractor="aliked", extractor_weights=str(bad)))
    good = isolated / "copy.pth"
    shutil.copy(package_file(WEIGHTS["aliked-n16"]), good)
    build_extractor(Config(extractor="aliked", extractor_weights=str(good)))  # an intact file still loads


def test_weights_of_another_network_are_refused_with_the_file_name(isolated):
    wrong = str(package_file(WEIGHTS["aliked-n16"]))
    with pytest.raises(WeightsError, match="aliked-n16.pth does not fit LightGlue"):
        build_matcher(Config(extractor="aliked", matcher_weights=wrong))


class _Payload:
    """Unpickling this would create a file; weights_only loading must never do it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_code_is_never_run(isolated):
    marker = isolated / "pwned"
    evil = isolated / "evil.pth"
    torch.save({"conv1a.weight": torch.zeros(1), "x": _Payload(str(marker))}, evil)
    with pytest.raises(WeightsError, match="cannot read weights file"):
        load_state_dict(evil)
    assert not marker.exists()


def test_fetch_keeps_only_verified_downloads(isolated):
    spec = WEIGHTS["aliked-t16"]
    src = package_file(spec)
    dest = isolated / "fetched"
    path = fetch(spec, dest, url=src.as_uri())
    assert path == dest / spec.filename and sha256_file(path) == spec.sha256
    wrong = isolated / "wrong.pth"
    wrong.write_bytes(src.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="not the expected"):
        fetch(WEIGHTS["aliked-n32"], dest, url=wrong.as_uri())
    assert sorted(p.name for p in dest.iterdir()) == [spec.filename]  # no partial file left
    with pytest.raises(WeightsError, match="cannot download"):
        fetch(WEIGHTS["aliked-n32"], dest, url=(isolated / "absent.pth").as_uri())
    assert keys_for("superpoint") == ["superpoint", "superpoint_lightglue"]
