"""Signals during a run: SIGTERM handled as Ctrl-C, and both held back over writes that must not be cut in half."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

#: The signals that stop a run cleanly: Ctrl-C, and what cluster schedulers send before SIGKILL.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM was received: raised in the main thread so that a run stops exactly as on Ctrl-C."""


class StopRequested(KeyboardInterrupt):
    """:func:`request_stop` was called (a sweep stopping its workers): a run in any thread stops as on Ctrl-C."""


_STOP = threading.Event()


def request_stop() -> None:
    """Ask every run of this process to stop at its next step (runs in worker threads receive no signals)."""
    _STOP.set()


def clear_stop() -> None:
    """Withdraw :func:`request_stop` (runs started afterwards go on)."""
    _STOP.clear()


def check_stop() -> None:
    """Raise :class:`StopRequested` if a stop was requested."""
    if _STOP.is_set():
        raise StopRequested("stop requested")


def _raise_terminated(signum, frame):
    raise Terminated(f"received signal {signal.Signals(signum).name}")


def _can_install(signum) -> bool:
    """Handlers can only be installed from the main thread, and not over one installed outside Python."""
    return threading.current_thread() is threading.main_thread() and signal.getsignal(signum) is not None


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) instead of killing the process.

    Outside the main thread (Dask workers, threads) the block runs as is.

    Examples
    --------
    >>> with terminate_as_interrupt():
    ...     x = 1 + 1
    """
    if not _can_install(signal.SIGTERM):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM held back; one that arrived meanwhile is delivered when the block ends.

    Only the main thread can install signal handlers; elsewhere (Dask workers, threads), or where a handler was
    installed outside Python, the block runs as is.

    Examples
    --------
    >>> with deferred_interrupts():
    ...     x = 1 + 1
    """
    signums = [s for s in STOP_SIGNALS if _can_install(s)]
    if not signums:
        yield
        return
    received = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append((signum, frame))) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        signum, frame = received[0]
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            if signum == signal.SIGINT:
                signal.default_int_handler(signum, frame)
            else:
                signal.raise_signal(signum)
