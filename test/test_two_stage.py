"""The two-stage tracking pipeline: the same records as the sequential tracker, latest frame wins
in live mode, none dropped offline, outputs in order, and reset, parameter changes, shutdown and
failures with frames inside each stage. Stages are held at gates so that the timing is set by the
test, not by the machine."""
from __future__ import annotations

import os
import re
import threading

import numpy as np
import pytest
import torch

from lightglue_ros.config import ConfigError
from lightglue_ros.datasets.frames import synthetic_frames
from lightglue_ros.evaluation.tracking_run import run_tracker
from lightglue_ros.pipeline import Pipeline
from lightglue_ros.synthetic import make_sequence
from lightglue_ros.tracking import Tracker, TrackingStatus, TwoStageTracker

WAIT = 120.0  # s; generous: the machine may be loaded, and no verdict depends on it


@pytest.fixture(scope="module")
def pipe():
    return Pipeline(max_keypoints=512)  # extractor auto: xfeat on this CPU


@pytest.fixture(scope="module")
def frames():
    return list(synthetic_frames(make_sequence(num_frames=12, width=320, height=240)))


class Gated:
    """A Pipeline whose extract and match wait at gates the test opens one call at a time,
    and raise where the test says so."""

    def __init__(self, pipe: Pipeline, gated: bool = True) -> None:
        self.pipe, self.config = pipe, pipe.config
        self.gates = {"extract": threading.Semaphore(0), "match": threading.Semaphore(0)}
        self.entered = {"extract": threading.Semaphore(0), "match": threading.Semaphore(0)}
        self.gated = gated
        self.fail: dict[str, set[int]] = {"extract": set(), "match": set()}
        self.calls = {"extract": 0, "match": 0}

    def _through(self, stage: str):
        call = self.calls[stage]
        self.calls[stage] += 1
        self.entered[stage].release()
        if self.gated:
            assert self.gates[stage].acquire(timeout=WAIT), f"{stage} gate never opened"
        if call in self.fail[stage]:
            raise RuntimeError(f"injected {stage} failure")

    def extract(self, image):
        self._through("extract")
        return self.pipe.extract(image)

    def match(self, f0, f1):
        self._through("match")
        return self.pipe.match(f0, f1)

    def set_thresholds(self, **values):
        self.pipe.set_thresholds(**values)
        self.config = self.pipe.config

    def open(self, stage: str, calls: int = 1) -> None:
        for _ in range(calls):
            self.gates[stage].release()

    def wait_inside(self, stage: str) -> None:
        assert self.entered[stage].acquire(timeout=WAIT), f"no frame reached {stage}"


def hold_a_frame_in_each_stage(stages: TwoStageTracker, gated: Gated, frames) -> None:
    """Frame 0 tracked (the keyframe), then frame 1 held in tracking, frame 2 in extraction."""
    stages.submit(frames[0])
    gated.open("extract")
    assert stages.drain(WAIT)
    stages.submit(frames[1])
    gated.open("extract")
    gated.wait_inside("extract"), gated.wait_inside("extract"), gated.wait_inside("match")
    stages.submit(frames[2])
    gated.wait_inside("extract")


def collect(stages: TwoStageTracker, count: int) -> list:
    outputs = [stages.get(WAIT) for _ in range(count)]
    assert all(o is not None for o in outputs), "an output never came"
    return outputs


def test_offline_gives_every_frame_in_order_with_the_sequential_records(pipe, frames):
    sequential = run_tracker(Tracker(pipe), frames, progress=False, two_stage=False)
    tracker = Tracker(pipe)
    staged = run_tracker(tracker, frames, progress=False)
    assert [r.stamp_ns for r in staged] == [f.stamp_ns for f in frames]
    for a, b in zip(sequential, staged):
        assert (a.status, a.model, a.num_matches, a.num_inliers, a.layers, a.keyframe) == \
            (b.status, b.model, b.num_matches, b.num_inliers, b.layers, b.keyframe)
        # same kernels on the same thread count: the same numbers
        assert np.allclose(a.T_odom_cam, b.T_odom_cam, rtol=0, atol=1e-9)
    assert all(r.status is TrackingStatus.OK for r in staged)
    assert np.array_equal(tracker.pose, staged[-1].T_odom_cam)  # the state is the last frame's


def test_offline_never_drops_even_when_the_producer_is_faster(pipe, frames):
    gated = Gated(pipe)
    stages = TwoStageTracker(Tracker(gated), live=False)
    producer = threading.Thread(target=lambda: [stages.submit(f) for f in frames[:5]])
    producer.start()
    gated.wait_inside("extract")
    producer.join(0.5)
    assert producer.is_alive()  # submit blocks while a frame waits for extraction
    gated.open("extract", 5), gated.open("match", 40)
    outputs = collect(stages, 5)
    producer.join(WAIT)
    assert [o.seq for o in outputs] == list(range(5))
    assert stages.counters.dropped == 0 and stages.counters.output == 5
    assert stages.close()


def test_live_latest_frame_wins_and_drops_are_counted(pipe, frames):
    gated = Gated(pipe)
    stages = TwoStageTracker(Tracker(gated), live=True)
    assert stages.submit(frames[0], "a") is False
    gated.wait_inside("extract")  # frame 0 is being extracted
    dropped = [stages.submit(f, c) for f, c in zip(frames[1:4], "bcd")]
    assert dropped == [False, True, True]  # 1 waited, then 2 and 3 replaced the waiting frame
    gated.open("extract", 2), gated.open("match", 40)
    first, second = collect(stages, 2)
    assert (first.context, second.context) == ("a", "d")
    assert second.frame.stamp_ns == frames[3].stamp_ns
    assert second.record.ref_stamp_ns == frames[0].stamp_ns
    c = stages.snapshot()
    assert (c.submitted, c.dropped, c.output) == (4, 2, 2) and stages.in_flight == 0
    assert second.latency_s > 0
    assert stages.close()


def test_each_stage_holds_one_frame(pipe, frames):
    gated = Gated(pipe)
    stages = TwoStageTracker(Tracker(gated), live=True)
    hold_a_frame_in_each_stage(stages, gated, frames)
    stages.submit(frames[3])  # waits
    stages.submit(frames[4])  # replaces 3
    assert stages.in_flight == 3 and stages.counters.dropped == 1
    gated.open("extract", 2), gated.open("match", 40)
    assert [o.frame.stamp_ns for o in collect(stages, 4)] == [f.stamp_ns for f in
                                                              (frames[0], frames[1], frames[2],
                                                               frames[4])]
    assert stages.close()


def test_reset_with_a_frame_in_each_stage_applies_from_the_next_frame(pipe, frames):
    gated = Gated(pipe)
    stages = TwoStageTracker(Tracker(gated), live=True)
    hold_a_frame_in_each_stage(stages, gated, frames)
    stages.reset()  # frame 1 in tracking, frame 2 in extraction
    stages.submit(frames[3])
    gated.open("extract", 2), gated.open("match", 40)
    zero, one, two, three = (o.record for o in collect(stages, 4))
    assert zero.model == "init" and one.model == two.model == "pnp" and not two.reinitialized
    assert two.ref_stamp_ns in (frames[0].stamp_ns, frames[1].stamp_ns)  # the state before reset
    # a new start, where tracking was: odom stays continuous across a reset
    assert three.model == "init" and three.keyframe and np.array_equal(three.T_odom_cam,
                                                                       two.T_odom_cam)
    assert stages.counters.resets == 1
    assert stages.close()


def test_parameter_change_with_a_frame_in_each_stage(pipe, frames):
    pipe = Pipeline(pipe.config)  # its own matcher: the thresholds change
    gated = Gated(pipe)
    tracker = Tracker(gated)
    stages = TwoStageTracker(tracker, live=True)
    with pytest.raises(ConfigError, match="max_keypoints"):
        stages.update_config(tracker.config.replace(max_keypoints=100))  # not at run time
    hold_a_frame_in_each_stage(stages, gated, frames)
    # no match can pass a filter threshold of 1; good_inliers moves the ok/weak line
    stages.update_config(tracker.config.replace(filter_threshold=1.0, good_inliers=10000))
    stages.submit(frames[3])
    gated.open("extract", 2), gated.open("match", 40)
    _, one, two, three = (o.record for o in collect(stages, 4))
    assert one.status is two.status is TrackingStatus.OK and two.num_matches > 100
    assert three.status is TrackingStatus.LOST and three.num_matches == 0
    assert pipe.config.filter_threshold == 1.0 and tracker.config.good_inliers == 10000
    stages.update_config(tracker.config.replace(filter_threshold=0.1, good_inliers=60))
    stages.submit(frames[4])
    gated.open("extract")
    assert collect(stages, 1)[0].record.status is not TrackingStatus.LOST
    assert stages.counters.config_changes == 2
    assert stages.close()


def test_a_failing_stage_gives_that_frame_an_error_and_the_next_goes_on(pipe, frames):
    gated = Gated(pipe, gated=False)
    gated.fail["extract"] = {1}
    gated.fail["match"] = {1}  # the match of frame 3 (frame 2's was match 0)
    delivered = []

    def on_result(out):
        delivered.append(out)
        if out.seq == 4:
            raise ValueError("a publisher that raises")

    def prepare(item):
        if item == "skip":
            return None
        if item == "boom":
            raise KeyError("bad message")
        return item

    tracker = Tracker(gated)
    stages = TwoStageTracker(tracker, live=False, on_result=on_result, prepare=prepare)
    for item in [frames[0], frames[1], frames[2], frames[3], "boom", "skip", frames[4],
                 frames[5]]:
        stages.submit(item)
    assert stages.drain(WAIT)
    assert [o.seq for o in delivered] == list(range(8))
    ok, bad_extract, ok2, bad_match, boom, skip, after, last = delivered
    assert bad_extract.record.status is TrackingStatus.LOST
    assert "extraction failed: RuntimeError: injected extract failure" in bad_extract.error
    assert "tracking failed: RuntimeError: injected match failure" in bad_match.error
    assert bad_match.record.status is TrackingStatus.LOST
    assert "KeyError" in boom.error and boom.record is None and boom.frame is None
    # where: the innermost frame, and the innermost of the package's (what called the raiser)
    assert re.search(r"\(at test_two_stage\.py:\d+, from estimation\.py:\d+\)$", bad_match.error)
    assert re.search(r"\(at test_two_stage\.py:\d+, from two_stage\.py:\d+\)$", boom.error)
    assert skip.record is None and not skip.error
    assert ok2.record.status is after.record.status is last.record.status is TrackingStatus.OK
    # the failed frame left no trace
    assert after.record.ref_stamp_ns in (frames[0].stamp_ns, frames[2].stamp_ns)
    c = stages.counters
    assert (c.errors, c.skipped, c.output) == (3, 1, 8)
    assert stages.close() and not stages._extractor.is_alive()


def test_a_frame_that_fails_half_way_leaves_the_state_as_before(pipe, frames, monkeypatch):
    tracker = Tracker(pipe)
    tracker.process(frames[0].image, frames[0].stamp_ns, frames[0].camera, frames[0].depth)
    tracker.process(frames[1].image, frames[1].stamp_ns, frames[1].camera, frames[1].depth)
    before = {name: getattr(tracker, name) for name in Tracker.STATE}

    def broken(*args, **kwargs):
        tracker.previous = tracker.keyframe = None  # half an update, then a failure
        raise RuntimeError("half way")

    monkeypatch.setattr(tracker, "_advance", broken)
    with pytest.raises(RuntimeError):
        tracker.process(frames[2].image, frames[2].stamp_ns, frames[2].camera, frames[2].depth)
    assert all(getattr(tracker, name) is value for name, value in before.items())


def test_shutdown_with_frames_in_flight(pipe, frames):
    gated = Gated(pipe)
    delivered = []
    stages = TwoStageTracker(Tracker(gated), live=True, on_result=delivered.append)
    hold_a_frame_in_each_stage(stages, gated, frames)
    stages.submit(frames[3])  # 1 in tracking, 2 in extraction, 3 waiting
    closing = threading.Thread(target=lambda: delivered.append(stages.close(timeout=WAIT)))
    closing.start()
    closing.join(0.2)
    gated.open("extract", 5), gated.open("match", 40)
    closing.join(WAIT)
    assert delivered[-1] is True  # close returned, both threads ended
    assert [o.seq for o in delivered[:-1]] == [0]  # nothing output once close began
    c = stages.counters
    assert c.discarded == 3 and c.submitted == c.output + c.discarded + c.dropped
    with pytest.raises(RuntimeError, match="closed"):
        stages.submit(frames[4])


def test_offline_close_drains_the_frames_in_flight(pipe, frames):
    stages = TwoStageTracker(Tracker(pipe), live=False)
    for frame in frames[:4]:
        stages.submit(frame)
    assert stages.close(timeout=WAIT)
    assert [o.seq for o in stages.poll()] == [0, 1, 2, 3]


def os_thread_name() -> str:
    """The calling thread's name as the OS has it (what top -H shows); '' without /proc."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def test_each_stage_runs_on_its_own_thread_count(pipe, frames):
    seen = {}
    os_names = {}

    def prepare(frame):
        seen["extract"] = (threading.current_thread().name, torch.get_num_threads())
        os_names["extract"] = os_thread_name()
        return frame

    def on_result(out):
        seen["track"] = (threading.current_thread().name, torch.get_num_threads())
        os_names["track"] = os_thread_name()

    main = torch.get_num_threads()
    stages = TwoStageTracker(Tracker(pipe), live=False, prepare=prepare, on_result=on_result,
                             threads=2, name="t")
    stages.submit(frames[0])
    assert stages.close(timeout=WAIT)
    assert seen == {"extract": ("t-extract", 2), "track": ("t-track", 2)}
    assert pipe.config.cpu_threads >= 1 and torch.get_num_threads() == main
    if os.path.isdir("/proc/self/task"):  # Linux: per-thread CPU tools see the stages by name
        assert os_names == {"extract": "t-extract", "track": "t-track"}


class FakeTracker:
    """A tracker without networks for the hand-off tests: ``extract`` and ``track`` wait at gates
    the test opens, and each records which frame (its stamp) it was called with."""

    class _Config:
        cpu_threads = 1

    def __init__(self) -> None:
        self.pipeline = type("P", (), {"config": self._Config()})()
        self.gates = {"extract": threading.Semaphore(0), "track": threading.Semaphore(0)}
        self.entered = {"extract": threading.Semaphore(0), "track": threading.Semaphore(0)}
        self.seen: dict[str, list[float]] = {"extract": [], "track": []}

    def _through(self, stage: str, stamp: float) -> None:
        self.seen[stage].append(stamp)
        self.entered[stage].release()
        assert self.gates[stage].acquire(timeout=WAIT), f"{stage} gate never opened"

    def wants_features(self, ahead: int = 0) -> bool:
        return True

    def extract(self, frame, features: bool = True):
        self._through("extract", frame.stamp)
        return type("Extracted", (), {"stamp": frame.stamp, "frame": frame, "deferred": False})()

    def track(self, extracted):
        self._through("track", extracted.stamp)
        return extracted.stamp

    def open(self, stage: str, calls: int = 1) -> None:
        for _ in range(calls):
            self.gates[stage].release()

    def wait_inside(self, stage: str) -> None:
        assert self.entered[stage].acquire(timeout=WAIT), f"no frame reached {stage}"


def stamped(n: int) -> list:
    return [type("Frame", (), {"stamp": float(i)})() for i in range(n)]


@pytest.mark.parametrize("pace", [True, False])
def test_live_the_latest_frame_wins_at_the_tracking_hand_off(pace):
    """Tracking is the slower stage: frame 1 is tracked, frame 2 is extracted and waits for
    tracking; frames 3 and 4 come meanwhile. Extraction takes no frame while one extracted frame
    waits for tracking, so 3 is replaced by 4 at the input and never extracted, and 4 is the next
    frame tracked after 2: no frame waits behind a stale one."""
    tracker = FakeTracker()
    stages = TwoStageTracker(tracker, live=True, pace=pace)
    frames = stamped(5)
    stages.submit(frames[0])
    tracker.wait_inside("extract"), tracker.open("extract")
    tracker.wait_inside("track")  # 0 tracked (held)
    stages.submit(frames[1])
    tracker.wait_inside("extract"), tracker.open("extract")
    tracker.open("track"), tracker.wait_inside("track")  # 0 out; 1 tracked (held)
    stages.submit(frames[2])
    tracker.wait_inside("extract"), tracker.open("extract")  # 2 extracted: waits for tracking
    assert stages.submit(frames[3]) is False  # waits for extraction: 2 holds the hand-off
    assert stages.submit(frames[4]) is True  # replaces 3
    assert tracker.seen["extract"] == [0.0, 1.0, 2.0]  # 3 was never extracted
    tracker.open("track"), tracker.wait_inside("track")  # 1 out; 2 tracked (held)
    tracker.wait_inside("extract"), tracker.open("extract")  # 4 extracted
    tracker.open("track"), tracker.wait_inside("track"), tracker.open("track")  # 2 out; 4
    outputs = collect(stages, 4)
    assert [o.record for o in outputs] == [0.0, 1.0, 2.0, 4.0]
    assert tracker.seen == {"extract": [0.0, 1.0, 2.0, 4.0], "track": [0.0, 1.0, 2.0, 4.0]}
    c = stages.snapshot()
    assert (c.submitted, c.dropped, c.output) == (5, 1, 4)
    assert stages.close()


def test_live_below_the_pipeline_rate_no_frame_waits_in_a_full_slot():
    """A camera slower than the pipeline: each frame is extracted as it comes and tracked as soon
    as it is extracted (the hand-off is empty each time), none dropped."""
    tracker = FakeTracker()
    stages = TwoStageTracker(tracker, live=True)
    for i, frame in enumerate(stamped(4)):
        assert stages.submit(frame) is False
        tracker.wait_inside("extract"), tracker.open("extract")
        tracker.wait_inside("track"), tracker.open("track")
        assert stages.get(WAIT).record == float(i)
        assert stages.in_flight == 0
    assert stages.snapshot().dropped == 0
    assert stages.close()


def test_offline_extracts_ahead_and_tracks_every_frame():
    """Offline mode is not paced and drops nothing: the next frame is extracted while one waits
    for tracking."""
    tracker = FakeTracker()
    stages = TwoStageTracker(tracker, live=False)
    frames = stamped(4)
    stages.submit(frames[0])
    tracker.wait_inside("extract"), tracker.open("extract")
    tracker.wait_inside("track")  # 0 tracked (held)
    stages.submit(frames[1])
    tracker.wait_inside("extract"), tracker.open("extract")  # 1 extracted: waits for tracking
    stages.submit(frames[2])
    tracker.wait_inside("extract")  # 2 extracted ahead while 1 waits
    assert tracker.seen == {"extract": [0.0, 1.0, 2.0], "track": [0.0]}
    tracker.open("extract", 2), tracker.open("track", 4)
    stages.submit(frames[3])
    assert [o.record for o in collect(stages, 4)] == [0.0, 1.0, 2.0, 3.0]
    assert stages.close()
