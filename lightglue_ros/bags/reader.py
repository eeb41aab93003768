"""Read camera frames from a ROS 2 bag (sqlite3 or MCAP) with rosbags: no ROS install needed.

``open_bag`` opens a bag folder (``metadata.yaml`` + storage files), a bare ``.db3`` or ``.mcap``
file, or a folder holding one such file without metadata. ``Bag.camera_frames`` turns an image
topic (sensor_msgs/Image or CompressedImage, told apart by the topic's type), its camera_info
topic and an optional depth topic into the ``FrameInput`` records the tracker takes, the way the
live node sees them:

- messages in bag order (receive time); at equal receive times camera_info comes before depth and
  depth before images, as a driver publishes the calibration with (not after) the image;
- each image uses the latest camera_info received before it; images before the first one are
  skipped and counted (a bag with no camera_info at all is an error);
- a frame's stamp is its header stamp, never the receive time;
- depth is paired by nearest header stamp within ``depth_sync_s`` (the node's parameter), and a
  depth image the node would not use (undecodable, of another size, no pixel in range) is counted
  and its frame tracked without depth: ``messages.assembly``, the node's own code;
- with a right image topic (a stereo pair), the right image is paired the same way within
  ``stereo_sync_s`` and the pair rectified with the latest camera_infos of both eyes
  (``messages.stereo``, as the node does); a frame without its right image is tracked without
  it and counted, a pair that cannot be metric (swapped, eyes of other sizes) is rejected;
- images the node would reject (undecodable, size differing from camera_info, invalid
  calibration) and duplicate stamps are skipped and counted; a stamp going backwards restarts
  tracking (``on_restart``, the node calls ``Tracker.reset()``) and is counted; gaps (no image
  for more than ``gap_s``) and forward clock jumps (the header clock advancing more than
  ``jump_s`` further than the receive clock) are counted and the run goes on.

A missing, corrupt or truncated bag, a missing topic (the error lists the bag's topics), a topic of
the wrong type and a bag without camera_info raise ``BagError`` saying which.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from rosbags.highlevel import AnyReader

from ..config import Config
from ..errors import BagError, LightGlueRosError
from ..messages import assembly, decode, stereo
from ..tracking.stamps import DEFAULT_GAP_S, DEFAULT_JUMP_S, StampEvent, StampMonitor
from ..types import FrameInput, seconds
from .messages import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, IMAGE_TYPES, TYPESTORE, header_stamp_ns

STORAGE_SUFFIXES = {".db3": "sqlite3", ".mcap": "mcap"}
DEFAULT_IMAGE_TOPIC = "/camera/image_raw"
DEFAULT_CAMERA_INFO_TOPIC = "/camera/camera_info"


@dataclass(frozen=True)
class TopicInfo:
    name: str
    msgtype: str | None     # None: several types were recorded on the topic
    count: int


@dataclass
class BagReport:
    """What reading the frames found: counts of skipped frames and the stamp problems."""

    images: int = 0                       # image messages on the image topic
    frames: int = 0                       # frames handed on (tracked)
    skipped_before_camera_info: int = 0
    rejected_images: int = 0              # undecodable, size mismatch, unusable camera_info
    rejected_reasons: list[str] = field(default_factory=list)   # first few, distinct
    duplicate_stamps: int = 0             # the node ignores a frame stamped as the one before
    depth_topic: bool = False
    frames_with_depth: int = 0
    depth_errors: int = 0                 # paired depth images not used (bad, size, range)
    depth_reasons: list[str] = field(default_factory=list)      # first few, distinct
    stereo_topic: bool = False
    frames_without_right: int = 0         # stereo frames tracked without their right image
    gaps: list[tuple[float, float]] = field(default_factory=list)   # (stamp before, length s)
    stamp_jumps_back: list[tuple[float, float]] = field(default_factory=list)     # (from, to)
    stamp_jumps_forward: list[tuple[float, float]] = field(default_factory=list)  # (from, to)
    restarts: list[int] = field(default_factory=list)   # frame indices tracking restarted at

    def reject(self, reason: str) -> None:
        self.rejected_images += 1
        _note(self.rejected_reasons, reason)

    def depth_error(self, reason: str) -> None:
        self.depth_errors += 1
        _note(self.depth_reasons, reason)

    def summary(self) -> dict[str, Any]:
        """Counts for JSON output."""
        return {
            "bag_images": self.images,
            "skipped_before_camera_info": self.skipped_before_camera_info,
            "rejected_images": self.rejected_images,
            "duplicate_stamps": self.duplicate_stamps,
            "frames_with_depth": self.frames_with_depth,
            "frames_without_depth": (self.frames - self.frames_with_depth
                                     if self.depth_topic else None),
            "depth_errors": self.depth_errors,
            "frames_without_right": self.frames_without_right if self.stereo_topic else None,
            "gaps": len(self.gaps),
            "max_gap_s": max((g for _, g in self.gaps), default=0.0),
            "stamp_jumps_back": len(self.stamp_jumps_back),
            "stamp_jumps_forward": len(self.stamp_jumps_forward),
            "segments": len(self.restarts) + 1,
        }

    def problems(self) -> list[str]:
        """One line per kind of problem found; empty for a clean bag."""
        lines = []
        if self.skipped_before_camera_info:
            lines.append(f"{self.skipped_before_camera_info} images before the first camera_info "
                         "were skipped")
        if self.rejected_images:
            lines.append(f"{self.rejected_images} images rejected as the node would: "
                         + "; ".join(self.rejected_reasons))
        if self.duplicate_stamps:
            lines.append(f"{self.duplicate_stamps} images with the stamp of the image before were "
                         "ignored")
        unpaired = self.frames - self.frames_with_depth - self.depth_errors
        if self.depth_topic and unpaired:
            lines.append(f"{unpaired} of {self.frames} frames had no depth image within the sync "
                         "tolerance (tracked without depth)")
        if self.frames_without_right:
            lines.append(f"{self.frames_without_right} of {self.frames} frames had no right image "
                         "within the stereo sync tolerance (tracked without it)")
        if self.depth_errors:
            lines.append(f"{self.depth_errors} depth images not used, as the node would not "
                         "(tracked without depth): " + "; ".join(self.depth_reasons))
        if self.gaps:
            longest = max(self.gaps, key=lambda g: g[1])
            count = f"{len(self.gaps)} gap{'s' if len(self.gaps) > 1 else ''}"
            lines.append(f"{count} without images, the longest {longest[1]:.3f} s after stamp "
                         f"{longest[0]:.3f}")
        for before, after in self.stamp_jumps_back:
            lines.append(f"header stamp went back from {before:.3f} to {after:.3f}: tracking "
                         "restarted, as the node does")
        for before, after in self.stamp_jumps_forward:
            lines.append(f"header clock jumped forward from {before:.3f} to {after:.3f} "
                         f"({after - before:.3f} s) while the bag's receive time did not")
        return lines


def _note(reasons: list[str], reason: str) -> None:
    """Keep the first few distinct reasons."""
    if reason not in reasons and len(reasons) < 5:
        reasons.append(reason)


class Bag:
    """An open ROS 2 bag; use as a context manager or call ``close``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        target = _storage_target(self.path)
        self.files = _storage_files(target)
        self.storage = next((STORAGE_SUFFIXES[f.suffix] for f in self.files
                             if f.suffix in STORAGE_SUFFIXES), "unknown")
        try:
            self.reader = AnyReader([target], default_typestore=TYPESTORE)
            self.reader.open()
        except Exception as err:  # rosbags raises many kinds for broken files
            raise BagError(self._broken(err)) from None
        topics: dict[str, list] = {}
        for conn in self.reader.connections:
            topics.setdefault(conn.topic, []).append(conn)
        self._connections = topics
        self.topics = {name: TopicInfo(name, conns[0].msgtype
                                       if len({c.msgtype for c in conns}) == 1 else None,
                                       sum(c.msgcount for c in conns))
                       for name, conns in sorted(topics.items())}

    def __enter__(self) -> "Bag":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.reader.stack is not None:   # open
            self.reader.close()

    def describe_topics(self) -> str:
        return ", ".join(f"{t.name} ({t.msgtype or 'mixed types'}, {t.count})"
                         for t in self.topics.values()) or "none"

    def topic(self, name: str, types: tuple[str, ...], role: str) -> TopicInfo:
        """The topic ``name`` checked to hold one of ``types``; BagError otherwise."""
        info = self.topics.get(name)
        if info is None:
            raise BagError(f"{role} topic {name} is not in bag {self.path}; its topics: "
                           f"{self.describe_topics()}")
        if info.msgtype not in types:
            raise BagError(f"{role} topic {name} in {self.path} holds "
                           f"{info.msgtype or 'several message types'}, expected "
                           f"{' or '.join(types)}")
        return info

    def camera_frames(self, image_topic: str = DEFAULT_IMAGE_TOPIC,
                      camera_info_topic: str = DEFAULT_CAMERA_INFO_TOPIC,
                      depth_topic: str | None = None,
                      depth_sync_s: float = Config.depth_sync_s,
                      gap_s: float = DEFAULT_GAP_S, jump_s: float = DEFAULT_JUMP_S,
                      on_restart: Callable[[], None] | None = None,
                      depth_range_m: tuple[float, float] = (Config.depth_min_m,
                                                            Config.depth_max_m),
                      stereo_topics: tuple[str, str] | None = None,
                      stereo_sync_s: float = Config.stereo_sync_s,
                      image_rectification: str = Config.image_rectification) -> "CameraFrames":
        """The frames of an image topic; see the module docstring. Topics are checked here.
        ``stereo_topics``: the right eye's image and camera_info topics; ``image_rectification``
        as the node's parameter."""
        return CameraFrames(self, image_topic, camera_info_topic, depth_topic, depth_sync_s,
                            gap_s, jump_s, on_restart, depth_range_m,
                            _StereoInput(stereo_topics, stereo_sync_s, image_rectification))

    def messages(self, topics: list[str]) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, msgtype, receive time ns, raw CDR) of the topics, in bag order; a broken file
        met while reading raises BagError naming it."""
        conns = [c for t in topics for c in self._connections.get(t, [])]
        if not conns:
            return
        try:
            for conn, t, raw in self.reader.messages(connections=conns):
                yield conn.topic, conn.msgtype, t, raw
        except LightGlueRosError:
            raise
        except Exception as err:
            raise BagError(self._broken(err)) from None

    def deserialize(self, raw: bytes, msgtype: str, topic: str):
        try:
            return self.reader.deserialize(raw, msgtype)
        except Exception as err:
            raise BagError(f"a {msgtype} message on {topic} in {self.path} cannot be "
                           f"deserialized ({type(err).__name__}: {err}): the bag is corrupt or "
                           "was written with another message definition") from None

    def _broken(self, err: Exception) -> str:
        names = ", ".join(str(f) for f in self.files) or str(self.path)
        return (f"cannot read bag {self.path}: {names} is corrupt, truncated or not a ROS 2 bag "
                f"({type(err).__name__}: {err})")


def open_bag(path: str | Path) -> Bag:
    """Open a ROS 2 bag folder or a ``.db3`` / ``.mcap`` file; BagError when it is missing or
    unreadable."""
    return Bag(path)


def _storage_target(path: Path) -> Path:
    """What rosbags should open: the folder when it has metadata.yaml, the one storage file of a
    folder without it, or the file itself."""
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    if path.is_file():
        if path.suffix not in STORAGE_SUFFIXES:
            raise BagError(f"{path} is not a ROS 2 bag file (.db3 or .mcap)")
        return path
    if (path / "metadata.yaml").is_file():
        return path
    files = sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
    if len(files) == 1:
        return files[0]
    raise BagError(f"{path} is not a ROS 2 bag: no metadata.yaml and "
                   f"{len(files) or 'no'} .db3/.mcap files")


def _storage_files(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    return sorted(p for p in target.iterdir() if p.suffix in STORAGE_SUFFIXES) or \
        [target / "metadata.yaml"]


@dataclass(frozen=True)
class _StereoInput:
    topics: tuple[str, str] | None   # right image, right camera_info; None: one camera
    sync_s: float
    rectified: str                   # the image_rectification parameter


@dataclass
class _Pending:
    index: int                    # image number in bag order
    stamp_ns: int
    receive_ns: int
    msgtype: str
    raw: bytes
    camera_msg: Any
    depth: int | None             # the depth message (bag-order number) paired with it
    right_camera_msg: Any = None
    right: int | None = None      # the right image (bag-order number) paired with it


class CameraFrames:
    """Iterable of ``FrameInput``; ``report`` fills in while iterating, ``total`` is the number of
    images, ``stamps`` their header stamps (s) in bag order. Iterate once."""

    def __init__(self, bag: Bag, image_topic: str, camera_info_topic: str,
                 depth_topic: str | None, depth_sync_s: float, gap_s: float, jump_s: float,
                 on_restart: Callable[[], None] | None, depth_range_m: tuple[float, float],
                 stereo_input: _StereoInput):
        self.bag = bag
        self.image_topic = bag.topic(image_topic, IMAGE_TYPES, "image").name
        self.image_type = bag.topics[image_topic].msgtype
        info = bag.topic(camera_info_topic, (CAMERA_INFO,), "camera_info")
        if info.count == 0:
            raise BagError(f"camera_info topic {camera_info_topic} in {bag.path} has no "
                           "messages: the camera calibration is needed to track")
        self.camera_info_topic = camera_info_topic
        self.depth_topic = bag.topic(depth_topic, (IMAGE,), "depth").name if depth_topic else None
        self.right_topic = self.right_camera_info_topic = None
        if stereo_input.topics is not None:
            right, right_info = stereo_input.topics
            self.right_topic = bag.topic(right, IMAGE_TYPES, "right image").name
            if bag.topic(right_info, (CAMERA_INFO,), "right camera_info").count == 0:
                raise BagError(f"right camera_info topic {right_info} in {bag.path} has no "
                               "messages: the stereo calibration is needed to track")
            self.right_camera_info_topic = right_info
        self.right_type = bag.topics[self.right_topic].msgtype if self.right_topic else None
        rectified = decode.rectified_topic(stereo_input.rectified, self.image_topic)
        self._rectified = rectified
        self._stereo = stereo.StereoRectifier(rectified) if self.right_topic else None
        self.stereo_sync_s = stereo_input.sync_s
        if not depth_sync_s >= 0 or not self.stereo_sync_s >= 0 or not gap_s > 0 or \
                not jump_s > 0:
            raise ValueError("depth_sync_s and stereo_sync_s must be >= 0, gap_s and jump_s "
                             "positive")
        self.depth_sync_s, self.gap_s, self.jump_s = depth_sync_s, gap_s, jump_s
        self.depth_range_m = depth_range_m
        self.on_restart = on_restart
        self.report = BagReport(depth_topic=self.depth_topic is not None,
                                stereo_topic=self.right_topic is not None)
        self._image_ns, self._depth_of, self._right_of = self._first_pass()
        self.total = len(self._image_ns)
        self.stamps = np.array([seconds(ns) for ns in self._image_ns])
        self._used = False

    def _first_pass(self) -> tuple[list[int], list[int | None], list[int | None]]:
        """Header stamps of the images, depth and right images (read from the bytes), and the
        depth and right image paired with each image."""
        found: dict[str | None, list[int]] = {self.image_topic: [], self.depth_topic: [],
                                              self.right_topic: []}
        topics = [t for t in (self.image_topic, self.depth_topic, self.right_topic) if t]
        for topic, msgtype, _, raw in self.bag.messages(topics):
            ns = header_stamp_ns(raw)
            if ns is None:
                ns = decode.stamp_ns(self.bag.deserialize(raw, msgtype, topic).header.stamp)
            found[topic].append(ns)
        image_ns = found[self.image_topic]
        if not image_ns:
            raise BagError(f"image topic {self.image_topic} in {self.bag.path} has no messages")
        return (image_ns, _pair(image_ns, found[self.depth_topic], self.depth_sync_s),
                _pair(image_ns, found[self.right_topic], self.stereo_sync_s))

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[FrameInput]:
        if self._used:
            raise RuntimeError("CameraFrames can be iterated once")
        self._used = True
        return self._frames()

    def _frames(self) -> Iterator[FrameInput]:
        report = self.report
        topics = [t for t in (self.camera_info_topic, self.right_camera_info_topic,
                              self.depth_topic, self.right_topic, self.image_topic) if t]
        rank = {self.camera_info_topic: 0, self.right_camera_info_topic: 0, self.depth_topic: 1,
                self.right_topic: 1, self.image_topic: 2}
        wanted = _wanted(self._depth_of)   # depth number -> images still waiting for it
        self._wanted_right = _wanted(self._right_of)
        depths: dict[int, tuple[str, bytes]] = {}
        self._rights: dict[int, tuple[str, bytes]] = {}
        pending: deque[_Pending] = deque()
        self._camera_msg = self._right_camera_msg = None
        self._right_count = 0
        self._image_count = self._depth_count = 0
        self._stamps = StampMonitor(self.gap_s, self.jump_s)
        self._cameras: dict[tuple, Any] = {}
        batch: list[tuple[str, str, int, bytes]] = []
        for message in self.bag.messages(topics):
            if batch and message[2] != batch[0][2]:
                yield from self._handle(batch, rank, wanted, depths, pending)
                batch = []
            batch.append(message)
        yield from self._handle(batch, rank, wanted, depths, pending)
        while pending:   # every paired depth exists, so this only runs on a broken pairing
            yield from self._emit(pending.popleft(), depths, wanted)
        if report.frames == 0 and report.skipped_before_camera_info == report.images:
            raise BagError(f"none of the {report.images} images on {self.image_topic} in "
                           f"{self.bag.path} came after a camera_info on "
                           f"{self.camera_info_topic}: nothing could be tracked")

    def _handle(self, batch, rank, wanted, depths, pending) -> Iterator[FrameInput]:
        """Messages of one receive time: camera_info first, then depth, then images."""
        for topic, msgtype, receive_ns, raw in sorted(batch, key=lambda m: rank[m[0]]):
            if topic == self.camera_info_topic:
                self._camera_msg = self.bag.deserialize(raw, msgtype, topic)
            elif topic == self.right_camera_info_topic:
                self._right_camera_msg = self.bag.deserialize(raw, msgtype, topic)
            elif topic == self.right_topic:
                j, self._right_count = self._right_count, self._right_count + 1
                if j in self._wanted_right:
                    self._rights[j] = (msgtype, raw)
            elif topic == self.depth_topic:
                j, self._depth_count = self._depth_count, self._depth_count + 1
                if j in wanted:
                    depths[j] = (msgtype, raw)
            else:
                i, self._image_count = self._image_count, self._image_count + 1
                self.report.images += 1
                if self._camera_msg is None:
                    self.report.skipped_before_camera_info += 1
                    continue
                pending.append(_Pending(i, self._image_ns[i], receive_ns, msgtype, raw,
                                        self._camera_msg, self._depth_of[i],
                                        self._right_camera_msg, self._right_of[i]))
            while pending and (pending[0].depth is None or pending[0].depth in depths) and \
                    (pending[0].right is None or pending[0].right in self._rights):
                yield from self._emit(pending.popleft(), depths, wanted)

    def _emit(self, item: _Pending, depths, wanted) -> Iterator[FrameInput]:
        frame = self._frame(item, _take(item.depth, depths, wanted),
                            _take(item.right, self._rights, self._wanted_right))
        if frame is not None:
            yield frame

    def _frame(self, item: _Pending, depth_msg, right_msg) -> FrameInput | None:
        """Decode one image as the node does; None for a frame the node would not track."""
        report = self.report
        msg = self.bag.deserialize(item.raw, item.msgtype, self.image_topic)
        try:
            image, camera = assembly.image_and_camera(
                msg, item.camera_msg, item.msgtype == COMPRESSED_IMAGE, self._camera)
        except assembly.FrameError as err:
            report.reject(f"{err.source}: {err}")
            return None
        if not self._check_stamp(item.stamp_ns, item.receive_ns):
            return None
        right = baseline = None
        if self._stereo is not None:
            try:
                image, camera, right, baseline = self._pair(item, image, right_msg)
            except assembly.FrameError as err:
                report.reject(f"{err.source}: {err}")
                return None
        depth = unit = None
        if depth_msg is not None:
            try:
                depth, unit = assembly.checked_depth(
                    self.bag.deserialize(depth_msg[1], depth_msg[0], self.depth_topic),
                    image.shape[:2], *self.depth_range_m)
                report.frames_with_depth += 1
            except assembly.FrameError as err:
                report.depth_error(str(err))
        report.frames += 1
        return FrameInput(item.stamp_ns, image, camera, depth, unit, right, baseline)

    def _pair(self, item: _Pending, image: np.ndarray, right_msg):
        """The rectified pair of a frame as the node makes it (the right image None when it had
        none within stereo_sync_s); FrameError for a pair that cannot be metric."""
        if item.right_camera_msg is None:
            raise assembly.FrameError("stereo", stereo.NO_RIGHT_CAMERA_INFO)
        assert self._stereo is not None and self.right_topic is not None
        rectification = self._stereo.rectification(item.camera_msg, item.right_camera_msg)
        if right_msg is None:
            self.report.frames_without_right += 1
            return (*stereo.rectified_left(image, rectification), None, None)
        msg = self.bag.deserialize(right_msg[1], right_msg[0], self.right_topic)
        return stereo.stereo_frame(image, msg, right_msg[0] == COMPRESSED_IMAGE, rectification)

    def _camera(self, msg):
        """The CameraModel of a camera_info; the same object while the calibration is unchanged,
        as a dataset's frames share one."""
        roi = msg.roi
        key = (int(msg.width), int(msg.height), msg.distortion_model,
               tuple(np.asarray(msg.k, np.float64)), tuple(np.asarray(msg.d, np.float64)),
               tuple(np.asarray(msg.p, np.float64)), int(msg.binning_x), int(msg.binning_y),
               int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))
        if key not in self._cameras:
            self._cameras[key] = decode.camera_model(msg, self._rectified)
        return self._cameras[key]

    def _check_stamp(self, ns: int, receive_ns: int) -> bool:
        """The node's stamp rule (``StampMonitor``: duplicates ignored, backwards restarts
        tracking) plus the gap and clock-jump counts; False for a frame to skip."""
        report = self.report
        check, stamp = self._stamps.check(ns, receive_ns), seconds(ns)
        if check.event is StampEvent.DUPLICATE:
            report.duplicate_stamps += 1
        elif check.event is StampEvent.BACKWARD:
            report.stamp_jumps_back.append((check.previous_s, stamp))
            report.restarts.append(report.frames)
            if self.on_restart is not None:
                self.on_restart()
        elif check.event is StampEvent.FORWARD_JUMP:
            report.stamp_jumps_forward.append((check.previous_s, stamp))
        elif check.event is StampEvent.GAP:
            report.gaps.append((check.previous_s, check.step_s))
        return check.accepted


def _pair(image_ns: list[int], other_ns: list[int], sync_s: float) -> list[int | None]:
    """For each image, the number (bag order) of the message of ``other_ns`` paired with it:
    the nearest header stamp within ``sync_s`` (``assembly.nearest_depth``), or None."""
    paired: list[int | None] = [None] * len(image_ns)
    if other_ns:
        order = sorted(range(len(other_ns)), key=other_ns.__getitem__)
        stamps = [other_ns[j] for j in order]
        for i, ns in enumerate(image_ns):
            best = assembly.nearest_depth(stamps, ns, sync_s)
            if best is not None:
                paired[i] = order[best]
    return paired


def _wanted(paired: list[int | None]) -> dict[int, int]:
    """Message number -> how many images still wait for it."""
    wanted: dict[int, int] = {}
    for j in paired:
        if j is not None:
            wanted[j] = wanted.get(j, 0) + 1
    return wanted


def _take(j: int | None, kept: dict[int, tuple[str, bytes]], wanted: dict[int, int]
          ) -> tuple[str, bytes] | None:
    """The kept message ``j`` for one image, dropped once no other image waits for it."""
    if j is None or j not in kept:
        return None
    message = kept[j]
    wanted[j] -= 1
    if wanted[j] == 0:
        del kept[j]
    return message


__all__ = ["Bag", "BagReport", "CameraFrames", "DEFAULT_CAMERA_INFO_TOPIC", "DEFAULT_GAP_S",
           "DEFAULT_IMAGE_TOPIC", "DEFAULT_JUMP_S", "TopicInfo", "open_bag"]
