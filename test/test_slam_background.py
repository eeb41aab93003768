"""The SLAM layer on its own thread (lightglue_ros.slam.background), with a stand-in for the
Slam whose processing the test holds and releases: every keyframe is processed in order, a
frame that only asks to be relocalized is replaced by a newer one, a relocalization found on
the worker reaches the tracker on the tracking thread at its next frame, and a save runs
between two frames."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np

from lightglue_ros.slam.background import BackgroundSlam
from lightglue_ros.slam.system import FrameJob


FOUND = SimpleNamespace(keyframe=SimpleNamespace(stamp_ns=5))  # a Relocalization's stand-in


class HeldSlam:
    """Processes a frame only when ``release`` says so; relocalizes on frame ``found_at``."""

    def __init__(self, found_at: int | None = None) -> None:
        self.localized = False
        self.found_at = found_at
        self.processed: list[int] = []
        self.applied: list[tuple[object, str]] = []  # (what, thread name)
        self.releases = threading.Semaphore(0)
        self.T_map_odom = np.eye(4)
        self.relocalizations: list[int] = []
        self.db: list = []
        self.graph = None

    def snapshot(self, extracted, record) -> FrameJob:
        return FrameJob(record, None, None, 0, keyframe=extracted if record.keyframe else None)

    def process(self, job: FrameJob):
        assert self.releases.acquire(timeout=10)
        self.processed.append(job.record.index)
        if job.record.index == self.found_at:
            self.localized = True
            self.relocalizations.append(1)
            return "relocalization", FOUND
        return "", None

    def apply(self, found) -> bool:
        self.applied.append((found, threading.current_thread().name))
        return True


def _frame(index: int, keyframe: bool):
    return SimpleNamespace(index=index), SimpleNamespace(index=index, keyframe=keyframe)


def test_keyframes_all_processed_in_order_queries_latest_wins() -> None:
    slam = HeldSlam()
    worker = BackgroundSlam(slam)  # type: ignore[arg-type]
    try:
        kinds = [True, False, True, False, False, False]  # keyframe or a query only
        worker.after_track(*_frame(0, kinds[0]))
        for index in range(1, 6):  # while frame 0 is held on the worker
            worker.after_track(*_frame(index, kinds[index]))
        for _ in range(6):
            slam.releases.release()
        assert worker.drain(10)
        assert slam.processed == [0, 1, 2, 5]  # 3 and 4 were replaced by 5
        assert worker.coalesced == 2 and worker.queued == 0
    finally:
        worker.close()


def test_a_relocalization_is_applied_on_the_tracking_thread_at_the_next_frame() -> None:
    slam = HeldSlam(found_at=1)
    worker = BackgroundSlam(slam)  # type: ignore[arg-type]
    try:
        assert worker.T_map_odom() is not None  # a new map: identity from the start
        slam.releases.release()
        slam.releases.release()
        worker.after_track(*_frame(0, True))
        worker.after_track(*_frame(1, False))
        assert worker.drain(10) and slam.applied == []  # found, not yet handed over
        done = threading.Event()

        def tracking_thread() -> None:
            worker.after_track(*_frame(2, False))  # localized now: nothing queued
            done.set()

        threading.Thread(target=tracking_thread, name="tracking").start()
        assert done.wait(10)
        assert slam.applied == [(FOUND, "tracking")]
        assert worker.queued == 0 and slam.processed == [0, 1]
    finally:
        worker.close()


def test_a_loaded_map_gives_no_map_pose_before_a_relocalization(tmp_path) -> None:
    slam = HeldSlam(found_at=0)
    slam.db = ["a keyframe of the loaded map"]
    worker = BackgroundSlam(slam)  # type: ignore[arg-type]
    try:
        assert worker.T_map_odom() is None
        slam.releases.release()
        worker.after_track(*_frame(0, False))
        assert worker.drain(10)
        assert worker.T_map_odom() is not None
        order: list[str] = []
        slam.releases.release()
        worker.after_track(*_frame(1, True))
        assert worker.call(lambda: order.append("between frames") or 7, timeout=10) == 7
        assert slam.processed == [0, 1] and order == ["between frames"]  # after the frame
    finally:
        worker.close()


def test_the_slam_thread_shares_pytorch_networks_and_copies_stateful_backends() -> None:
    """PyTorch without CUDA graphs keeps no state between calls: the same networks, with
    timings of their own; any other backend (buffers or contexts per instance) a second one."""
    from lightglue_ros.config import Config
    from lightglue_ros.pipeline import Pipeline
    from lightglue_ros.slam.background import verification_pipeline

    pipe = Pipeline(Config())
    shared = verification_pipeline(pipe)
    assert shared.backend is pipe.backend and shared.timings is not pipe.timings
    stateful = Pipeline(Config(), backend=SimpleNamespace(device="cpu"))  # not PyTorch's
    own = verification_pipeline(stateful)
    assert own.backend is not stateful.backend and own.config == stateful.config
