"""Graceful stop on Ctrl-C / SIGTERM: the first signal asks the loop to stop after the current step.

A second Ctrl-C raises ``KeyboardInterrupt`` at once. Handlers can only be installed from the main
thread; elsewhere the flag stays unset and a ``KeyboardInterrupt`` is handled by the loop itself.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class StopFlag:
    """Set by SIGINT/SIGTERM while :meth:`installed` is active."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in previous:
            signal.signal(s, self._handle)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
