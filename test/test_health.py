"""The node's health bookkeeping and the stamp rule, without ROS: faults logged once, held in the
diagnostics until reported, and the stamp events the node and bag evaluation share."""
import logging

import numpy as np

from lightglue_ros.geometry.pnp import depth_coverage
from lightglue_ros.ros.health import ERROR, OK, WARN, Health
from lightglue_ros.tracking.stamps import NS, StampEvent, StampMonitor


def lines(caplog, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records)


def logger(caplog) -> logging.Logger:
    """A logger of this test's own, writing straight into caplog: not one from the global
    registry, whose class or state another library (e.g. the launch system) may have changed."""
    log = logging.Logger("health", logging.INFO)
    log.addHandler(caplog.handler)
    return log


def test_a_fault_is_logged_once_and_its_recovery_once(caplog):
    health = Health(logger(caplog), hold_s=0.0)
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            health.fault("image", ERROR, "bad encoding")
        level, summary, values = health.snapshot(stale_after_s=1e9)
        assert level == ERROR and summary == "image: bad encoding"
        assert values["fault.image"] == "ERROR x5: bad encoding"
        health.clear("image")
        health.clear("image")
    assert lines(caplog, "image: bad encoding") == 1
    assert lines(caplog, "image: recovered after 5 occurrence(s)") == 1
    assert "fault.image" not in health.snapshot(1e9)[2]


def test_a_fault_cleared_before_any_diagnostics_is_still_reported_once(caplog):
    health = Health(logger(caplog), hold_s=0.0)
    health.arrived()
    with caplog.at_level(logging.INFO):
        health.fault("stamp", WARN, "stamp went back")
        health.clear("stamp")  # the next frame is fine, before /diagnostics went out
        assert lines(caplog, "recovered") == 0
        level, _, values = health.snapshot(1e9)
        assert level == WARN and "fault.stamp" in values  # seen once
        level, _, values = health.snapshot(1e9)
    assert level == OK and "fault.stamp" not in values
    assert lines(caplog, "stamp: recovered after 1 occurrence(s)") == 1


def test_a_fault_that_comes_back_within_the_hold_is_one_fault(caplog):
    health = Health(logger(caplog), hold_s=60.0)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            health.fault("depth", WARN, "no depth")
            health.snapshot(1e9)
            health.clear("depth")  # within hold_s of the last occurrence: kept
    assert lines(caplog, "depth: no depth") == 1 and lines(caplog, "recovered") == 0
    assert health.snapshot(1e9)[2]["fault.depth"] == "WARN x3: no depth"


def test_relog_false_updates_the_text_silently(caplog):
    health = Health(logger(caplog), hold_s=0.0)
    with caplog.at_level(logging.INFO):
        health.fault("tracking", WARN, "lost (only 0 keypoints)", relog=False)
        health.fault("tracking", WARN, "lost (12 inliers)", relog=False)
        health.fault("tracking", ERROR, "lost (12 inliers)", relog=False)  # a new level logs
    assert lines(caplog, "tracking: lost") == 2
    assert health.snapshot(1e9)[2]["fault.tracking"].endswith("lost (12 inliers)")


def test_silence_is_an_input_fault_once(caplog):
    health = Health(logger(caplog), hold_s=0.0)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            level, summary, _ = health.snapshot(stale_after_s=0.0)
        assert level == WARN and summary.startswith("input: no image received for more than")
        health.arrived()
        health.snapshot(stale_after_s=1e9)
        health.snapshot(stale_after_s=1e9)
    assert lines(caplog, "input: no image received") == 1
    assert lines(caplog, "input: recovered") == 1


def test_counters_by_status():
    health = Health(logging.getLogger("t"))
    for status in ("ok", "ok", "weak", "lost"):
        health.processed(10.0, status=status)
    health.count("resets")
    health.count("failed")  # a frame a stage or the publishing raised on
    values = health.snapshot(1e9)[2]
    assert (values["frames_ok"], values["frames_weak"], values["frames_lost"]) == ("2", "1", "1")
    assert (values["frames_processed"], values["frames_failed"]) == ("4", "1")
    assert values["tracking_resets"] == "1" and values["parameters_rejected"] == "0"


def test_stamp_rule():
    rule = StampMonitor(gap_s=1.0, jump_s=10.0)
    t = 1_700_000_000 * NS
    step = NS // 30
    assert rule.check(t, 0).event is StampEvent.FIRST
    assert rule.check(t + step, step).event is StampEvent.NEXT
    dup = rule.check(t + step, 2 * step)
    assert dup.event is StampEvent.DUPLICATE and not dup.accepted
    back = rule.check(t - 20 * NS, 3 * step)
    assert back.event is StampEvent.BACKWARD and back.accepted
    assert abs(back.previous_s - (1_700_000_000 + 1 / 30)) < 1e-6
    jump = rule.check(t + 100 * NS, 4 * step)  # 120 s of stamps in 1/30 s
    assert jump.event is StampEvent.FORWARD_JUMP and abs(jump.step_s - 120.0) < 1e-9
    gap = rule.check(t + 105 * NS, 4 * step + 5 * NS)  # 5 s of stamps in 5 s: frames missing
    assert gap.event is StampEvent.GAP


def test_depth_coverage():
    depth = np.ones((4, 4), np.float32)
    depth[0] = np.nan
    depth[1] = np.inf
    assert depth_coverage(depth) == 0.5
    assert depth_coverage(np.full((4, 4), np.nan, np.float32)) == 0.0
    assert depth_coverage(np.zeros((4, 4), np.uint16)) == 0.0  # 0 = no depth (REP 118)
    assert depth_coverage(np.full((4, 4), 1500, np.uint16)) == 1.0  # 1.5 m in millimetres
