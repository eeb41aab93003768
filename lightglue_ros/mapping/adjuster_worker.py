"""The bundle adjustment worker process: pickled ``AdjustmentJob``s on stdin, one
pickled ``AdjustmentResult`` or None back on stdout for each (None: the solve failed, logged
here on stderr), until stdin closes. Started by ``adjuster.BackgroundAdjuster``; not a user
command."""
from __future__ import annotations

import pickle
import sys


def serve(inp, out) -> None:
    """Until the tracker closes the pipe, or exits without waiting for the last result."""
    try:
        while True:
            try:
                job = pickle.load(inp)
            except EOFError:
                return
            pickle.dump(job.run_safely(), out, pickle.HIGHEST_PROTOCOL)
            out.flush()
    except BrokenPipeError:
        return


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)  # in a session of its own: Ctrl-C never reaches it
