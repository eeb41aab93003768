"""OS-level names for the node's threads, so that ``top -H``, ``ps -L`` and /proc show which
thread spends the CPU (Python's thread names stay inside the interpreter)."""
from __future__ import annotations

import threading


def name_os_thread(name: str) -> None:
    """Name the calling thread for the OS (Linux: its ``comm``, 15 bytes at most); a no-op
    where /proc is not there."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as f:
            f.write(name[:15])
    except OSError:
        pass
