"""Deferring Ctrl-C over a few lines that must not be cut in half (writing a checkpoint)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block with SIGINT held back; a SIGINT that arrived meanwhile is delivered when the block ends.

    Only the main thread can install signal handlers; elsewhere (Dask workers, threads), or where the handler was
    installed outside Python, the block runs as is.

    Examples
    --------
    >>> with deferred_interrupts():
    ...     x = 1 + 1
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        if callable(previous):
            previous(*received[0])
        elif previous == signal.SIG_DFL:
            signal.default_int_handler(*received[0])
