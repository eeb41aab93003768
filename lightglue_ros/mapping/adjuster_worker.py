"""The bundle adjustment worker process: pickled ``AdjustmentJob``s on stdin, one
``("ok", AdjustmentResult)`` or ``("error", text)`` back on stdout for each, until stdin closes.
Started by ``adjuster.BackgroundAdjuster``; not a user command."""
from __future__ import annotations

import pickle
import sys


def serve(inp, out) -> None:
    while True:
        try:
            job = pickle.load(inp)
        except EOFError:
            return
        try:
            reply = ("ok", job.run())
        except Exception as exc:  # reported to the tracker, which goes on without this result
            reply = ("error", f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, out, pickle.HIGHEST_PROTOCOL)
        out.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
