"""Graceful interruption: SIGINT or SIGTERM asks the run loop to stop at its next safe point.

The first signal only sets a flag; the loop finishes the iteration in progress, writes a checkpoint, history and
MLflow, and ends with ``RunInterrupted`` (the CLI prints how to resume and exits 128 + signal number). A second
signal gets the default behaviour, so a stuck run can still be killed.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Context manager: while active, SIGINT/SIGTERM set ``signum`` instead of killing the process.

    Signal handlers can only be installed from the main thread; elsewhere (a Tune trial's thread) it does nothing
    and Tune's own handling applies.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in HANDLED_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        signal.signal(signum, signal.SIG_DFL)  # a second signal stops at once

    @property
    def requested(self) -> bool:
        return self.signum is not None
