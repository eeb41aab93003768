"""Fault injection into the live tracker node with real rclpy, across processes.

One node process (160x120 frames, 128 keypoints, RGB-D, reliable input) is fed by the synthetic
camera on a thread of this process; each case of ``lightglue_ros_tools.reliability.faults.cases``
makes its fault happen while frames flow (bad messages, depth, camera_info, stamps, a camera
process that is killed and restarted, resets under load, invalid parameters) and the test asserts
what the node did: still alive, the fault in /diagnostics at the right level, one log line when it
appeared and one when it cleared (not one per frame), and tracked odometry once good frames came
back. The cases run in the order written: the first needs a node that never had a camera_info.

The node also refuses to start on a truncated or tampered weights file, with one line and exit
status 2.
"""
from __future__ import annotations

import pytest

from ros_harness import ros_available, ros_session

pytestmark = pytest.mark.skipif(not ros_available(), reason="rclpy is not installed")
_ = ros_session  # the module-scoped fixture (rclpy context, probe, node processes)

from lightglue_ros_tools.reliability.faults import (FaultBench, cases, run_startup,  # noqa: E402
                                                    startup_cases)
from lightglue_ros.ros.health import LEVEL_NAMES  # noqa: E402

WIDTH, HEIGHT, RATE_HZ = 160, 120, 4.0
CASES = cases(WIDTH, HEIGHT)


@pytest.fixture(scope="module")
def bench(ros_session, tmp_path_factory):
    bench = FaultBench(ros_session, WIDTH, HEIGHT, RATE_HZ, {"max_keypoints": 128},
                       work_dir=tmp_path_factory.mktemp("faults"))
    yield bench
    bench.close()
    assert bench.node.returncode == 0, bench.node.log()[-3000:]  # SIGINT: a clean exit
    assert "Traceback" not in bench.node.log()


def test_every_fault_of_the_issue_has_a_case():
    names = " / ".join(c.name for c in CASES)
    for words in ("unknown encoding", "mismatched encoding", "step mismatch", "size mismatch",
                  "empty data", "truncated data", "NaN depth", "Inf depth", "black frames",
                  "saturated frames", "camera_info missing, then arriving late",
                  "camera_info of another size", "stamps going backwards", "sim time reset",
                  "stamps jumping forward", "duplicate stamps", "publisher dies",
                  "reset service called under load", "invalid values at run time"):
        assert words in names, words


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_while_frames_flow(bench, case):
    result = bench.run(case)
    report = f"{result.as_dict()}\n--- node log tail ---\n{bench.node.log()[-2500:]}"
    assert result.alive, report
    assert result.tracks_again, report  # a frame after the fault was tracked (relative pose)
    if case.key is None:
        assert result.seen_level is None, report  # /diagnostics stayed OK
        assert result.fault_lines == case.lines, report
    else:
        assert result.seen_level == LEVEL_NAMES[case.level], report
        assert result.fault_lines == 1, report  # once, not once per frame
        assert result.cleared, report
        assert result.recovery_lines == (1 if case.recovers else 0), report
    assert result.problems == [], report


@pytest.mark.parametrize("case", startup_cases(), ids=lambda c: c.name)
def test_bad_weights_stop_the_node_before_use(ros_session, tmp_path, case):
    result = run_startup(ros_session, case, tmp_path)
    assert result.returncode == 2, result
    assert result.lines == 1, result
    assert result.problems == [], result
