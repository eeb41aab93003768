"""Datasets as ROS 2 bags: a TUM RGB-D, KITTI odometry or EuRoC folder, or the synthetic sequence.

The frames are those ``lightglue-ros track`` reads from the same source (same pixels, stamps and
calibration), written by ``BagWriter``; the ground truth goes beside the bag as ``<bag>.gt.txt``
(TUM format, camera-to-world, on the clock of the header stamps). A TUM folder's groundtruth.txt is
copied as it is; the other ground truths are written by ``Trajectory.write_tum``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import BagError
from ..types import Trajectory
from .evaluate import default_groundtruth
from .writer import DEFAULT_FRAME_ID, DEFAULT_NAMESPACE, topic_names, write_bag


@dataclass(frozen=True)
class MadeBag:
    path: Path
    groundtruth: Path | None
    name: str
    kind: str
    frames: int
    counts: dict[str, int]      # messages per topic
    topics: dict[str, str]      # image, camera_info, depth -> topic name


def make_bag(source: str | Path, out: str | Path, storage: str = "sqlite3", *,
             preset: str | None = None, intrinsics: Sequence[float] | None = None,
             distortion: Sequence[float] | None = None, rate_hz: float | None = None,
             frames: int | None = None, use_depth: bool = True, use_stereo: bool = True,
             namespace: str = DEFAULT_NAMESPACE, frame_id: str = DEFAULT_FRAME_ID,
             progress: bool = True) -> MadeBag:
    """Write ``source`` (a dataset folder, or "synthetic") as a bag at ``out`` and its ground
    truth as ``<out>.gt.txt``. ``frames``: the first N frames (synthetic: the sequence length,
    default 90). Camera options are those of ``open_dataset``; a stereo dataset (KITTI, EuRoC
    with their right camera) gives the rectified pair unless ``use_stereo`` is False."""
    from ..datasets import open_dataset
    from ..datasets.frames import dataset_frames, synthetic_frames
    from ..synthetic import make_sequence

    if frames is not None and frames < 1:
        raise BagError(f"frames must be at least 1, got {frames}")
    out = Path(out)
    if out.exists():
        raise BagError(f"{out} already exists; remove it or choose another output")
    gt_path = default_groundtruth(out)
    gt_text = None
    if str(source) == "synthetic":
        if any(x is not None for x in (preset, intrinsics, distortion, rate_hz)):
            raise BagError("the synthetic sequence has its own camera and rate")
        seq = make_sequence(num_frames=frames or 90)
        stream, total = synthetic_frames(seq, use_depth), len(seq)
        gt, name, kind = Trajectory(seq.stamps, seq.poses), "synthetic", "synthetic"
    else:
        ds = open_dataset(source, intrinsics=intrinsics, distortion=distortion, preset=preset,
                          rate_hz=rate_hz, stereo=use_stereo)
        total = min(frames, len(ds)) if frames else len(ds)
        stream = itertools.islice(dataset_frames(ds, use_depth), total)
        gt, name, kind = ds.groundtruth, ds.name, ds.kind
        if kind == "tum" and gt is not None:
            gt_text = (ds.root / "groundtruth.txt").read_text()
    counts = write_bag(out, stream, storage, namespace, frame_id, total, progress)
    if gt is None:
        gt_path = None
    elif gt_text is not None:
        gt_path.write_text(gt_text)
    else:
        gt.write_tum(gt_path, header=f"ground truth of {name} ({kind}), T_world_cam, "
                                     "stamps on the bag's header clock")
    return MadeBag(out, gt_path, name, kind, total, counts, topic_names(namespace))


__all__ = ["MadeBag", "make_bag"]
