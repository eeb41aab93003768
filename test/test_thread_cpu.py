"""The per-thread CPU reading behind ``thread_cpu`` (where the node's CPU goes): a thread named
for the OS is found by its name, with the CPU it spent."""
from __future__ import annotations

import os
import threading
import time

import pytest

from lightglue_ros.threads import name_os_thread
from lightglue_ros_tools.reliability.procstat import thread_cpu
from lightglue_ros_tools.reliability.thread_cpu import frames_tracked

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux /proc")


def test_a_named_busy_thread_is_found_with_its_cpu_time():
    done, read = threading.Event(), threading.Event()

    def spin() -> None:
        name_os_thread("busy-thread-for-a-test")  # longer than the OS keeps: cut to 15
        end = time.thread_time() + 0.3
        while time.thread_time() < end:  # CPU time, not wall time: a loaded machine only slows it
            pass
        done.set()
        read.wait(60)  # alive until its figures are read: an ended thread leaves /proc

    thread = threading.Thread(target=spin)
    thread.start()
    assert done.wait(60)
    seen = thread_cpu(os.getpid())
    read.set()
    assert seen[thread.native_id][0] == "busy-thread-for"
    assert seen[thread.native_id][1] >= 0.25  # clock ticks: at most 1/100 s short each side
    thread.join()


def test_frames_tracked_counts_what_the_node_answered():
    stress = {"baseline": {"frames": 30, "tries": [{"sent": 40, "node_dropped": 12},
                                                   {"sent": 35, "node_dropped": 0}]}}
    assert frames_tracked(stress) == 30 + 28 + 35
