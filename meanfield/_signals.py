"""Signals during a run: SIGINT and SIGTERM noted when they arrive and acted upon at points the run loop chooses.

A Python signal handler runs between two bytecodes of the main thread, wherever that is: an exception raised
there can land inside a weakref callback or a ``__del__``, where Python prints "Exception ignored in ..." and
drops it (the run then went on to the end), or in the middle of a write. So within :func:`stop_signals` the
handlers only note the signal, and the loop calls :func:`check_stop` after each step, which raises
:class:`Terminated` (SIGTERM) or ``KeyboardInterrupt`` (SIGINT) there. A second Ctrl-C while one is pending
raises at once (a step that takes too long can still be cut short by hand).
"""

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
#: Signals received within :func:`stop_signals` and not yet raised by :func:`check_stop` (main thread only).
_PENDING: list[int] = []
#: How many :func:`stop_signals` blocks the main thread is in (the outermost installs and restores the handlers).
_DEPTH = [0]


def request_stop() -> None:
    """Ask every run of this process to stop at its next step (runs in worker threads receive no signals)."""
    _STOP.set()


def clear_stop() -> None:
    """Withdraw :func:`request_stop` (runs started afterwards go on)."""
    _STOP.clear()


def _exception_for(signum: int) -> KeyboardInterrupt:
    name = signal.Signals(signum).name
    return Terminated(f"received signal {name}") if signum == signal.SIGTERM else KeyboardInterrupt(
        f"received signal {name}")


def check_stop() -> None:
    """Raise for a signal received within :func:`stop_signals` (:class:`Terminated` for SIGTERM,
    ``KeyboardInterrupt`` for SIGINT; the signal is then handled) or :class:`StopRequested` if a stop was
    requested."""
    if _PENDING:
        signum = _PENDING[0]
        _PENDING.clear()
        raise _exception_for(signum)
    if _STOP.is_set():
        raise StopRequested("stop requested")


def _note(signum, frame) -> None:
    if signum == signal.SIGINT and signal.SIGINT in _PENDING:  # Ctrl-C twice: do not wait for the step to end
        _PENDING.clear()
        raise KeyboardInterrupt("received signal SIGINT twice")
    _PENDING.append(signum)


def _can_install(signum) -> bool:
    """Handlers can only be installed from the main thread, and not over one installed outside Python."""
    return threading.current_thread() is threading.main_thread() and signal.getsignal(signum) is not None


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM are only noted; :func:`check_stop` raises them where the caller chooses.

    Blocks nest (the outermost one installs the handlers). A signal still pending when the outermost block ends is
    delivered then to the handler it replaced (Python's: ``KeyboardInterrupt`` for SIGINT; the end of the process
    for SIGTERM). Outside the main thread (Dask workers, threads), or where a handler was installed outside
    Python, the block runs as is.

    Examples
    --------
    >>> import os, signal
    >>> with stop_signals():
    ...     os.kill(os.getpid(), signal.SIGTERM)   # noted, not raised here
    ...     try:
    ...         check_stop()
    ...     except Terminated as err:
    ...         print(err)
    received signal SIGTERM
    """
    if not all(_can_install(s) for s in STOP_SIGNALS):
        yield
        return
    if _DEPTH[0]:
        _DEPTH[0] += 1
        try:
            yield
        finally:
            _DEPTH[0] -= 1
        return
    previous = {s: signal.signal(s, _note) for s in STOP_SIGNALS}
    _DEPTH[0] = 1
    try:
        yield
    finally:
        _DEPTH[0] = 0
        for s, handler in previous.items():
            signal.signal(s, handler)
        signum = take_pending_signal()
        if signum is not None:
            _deliver(previous[signum], signum, None)


def take_pending_signal() -> int | None:
    """The signal received within :func:`stop_signals` that no :func:`check_stop` has raised yet, if any; it is
    then handled (the caller reports it)."""
    signum = _PENDING[0] if _PENDING else None
    _PENDING.clear()
    return signum


def _deliver(handler, signum: int, frame) -> None:
    """What the process would have done on ``signum`` with ``handler`` installed."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        if signum == signal.SIGINT:
            signal.default_int_handler(signum, frame)
        else:
            signal.raise_signal(signum)


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
        _deliver(previous[signum], signum, frame)
