"""The SLAM layer on its own thread (lightglue_ros.slam.background), with a stand-in for the
Slam whose processing the test holds and releases: every keyframe is processed in order, a
frame that only asks to be relocalized is replaced by a newer one, a relocalization found on
the worker reaches the tracker on the tracking thread at its next frame, and a save runs
between two frames."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

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

    pipe = Pipeline(Config(backend="torch"))
    shared = verification_pipeline(pipe)
    assert shared.backend is pipe.backend and shared.timings is not pipe.timings
    not_pytorch = SimpleNamespace(device="cpu", reentrant=False)
    stateful = Pipeline(Config(backend="torch"), backend=not_pytorch)
    own = verification_pipeline(stateful)
    assert own.backend is not stateful.backend and own.config == stateful.config


def test_close_fails_a_queued_call_at_once_and_queues_nothing_after() -> None:
    """A shutdown must not leave a ~/save_map caller waiting out its timeout on a worker that
    is gone, nor queue frames that no one will process."""
    slam = HeldSlam()
    worker = BackgroundSlam(slam)  # type: ignore[arg-type]
    worker.after_track(*_frame(0, True))  # held on the worker
    outcome: list[object] = []

    def caller() -> None:
        try:
            worker.call(lambda: "ran", timeout=30)
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    while worker.queued < 1 or not worker._working:
        threading.Event().wait(0.01)
    assert not worker.close(timeout=0.1)  # frame 0 is still held: the worker is running
    thread.join(10)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeError)
    worker.after_track(*_frame(1, True))
    assert worker.queued == 0
    slam.releases.release()
    assert worker.close(timeout=10) and slam.processed == [0]


def test_a_new_start_is_queued_while_the_worker_still_thinks_the_segment_placed() -> None:
    """The first frame of a restart reaches the worker even when it is not a keyframe and the
    worker has not yet seen the restart (``localized`` is still the old segment's)."""
    slam = HeldSlam()
    slam.localized = True
    restarts = iter([0, 1])
    slam.snapshot = lambda extracted, record: FrameJob(  # type: ignore[method-assign]
        record, None, None, next(restarts))
    worker = BackgroundSlam(slam)  # type: ignore[arg-type]
    try:
        worker.after_track(*_frame(0, False))  # a plain frame of the placed segment
        assert worker.queued == 0
        worker.after_track(*_frame(1, False))  # restarted here
        slam.releases.release()
        assert worker.drain(10) and slam.processed == [1]
    finally:
        worker.close()


def test_a_failing_frame_is_reported_and_the_worker_goes_on() -> None:
    slam = HeldSlam()
    process = slam.process

    def fails_on_0(job: FrameJob):
        if job.record.index == 0:
            raise ValueError("descriptor size 64, map 128")
        return process(job)

    slam.process = fails_on_0  # type: ignore[method-assign]
    errors: list[str] = []
    worker = BackgroundSlam(slam, on_error=errors.append)  # type: ignore[arg-type]
    try:
        worker.after_track(*_frame(0, True))
        worker.after_track(*_frame(1, True))
        slam.releases.release()
        assert worker.drain(10) and slam.processed == [1]
        assert worker.failures == 1 and errors == [
            "a frame failed: ValueError: descriptor size 64, map 128"]
    finally:
        worker.close()


def test_save_map_with_an_empty_map_path_answers_false_with_the_reason() -> None:
    """~/save_map without a map_path: success false and why, nothing raised, no worker call."""
    pytest.importorskip("rclpy")
    from std_srvs.srv import Trigger

    from lightglue_ros.ros.slam_outputs import SlamOutputs

    outputs = SimpleNamespace(map_path="", worker=None)  # a call on the worker would raise
    response = SlamOutputs._on_save(outputs, Trigger.Request(),  # type: ignore[arg-type]
                                    Trigger.Response())
    assert response.success is False and "map_path is empty" in response.message
