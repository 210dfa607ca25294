"""The thread policy of runs: BLAS threads limited to the cores that are idle when a run starts.

Multi-threaded BLAS (OpenBLAS, MKL) busy-waits for its partner threads; on a machine where another process keeps a
core busy, a two-thread GEMM waits for a descheduled partner at every call, and small products (the tiles of a
flow at moderate m) become several times slower (measured on 2 cores: a numba flow at m = 512, d = 20, 0.19 s →
0.45 s beside one busy process, and 0.19 s again with one BLAS thread; ``benchmarks/contention.py``). numba's and
torch's own pools wait passively and are not affected. The policy, applied around every run loop:

- ``"auto"`` (default): BLAS gets as many threads as there are idle cores when the run starts (:func:`idle_cores`),
  at least 1 — all of them on an idle machine, so nothing is lost there;
- ``"all"``: BLAS as configured (the behaviour before this policy);
- an integer: that many BLAS threads.

Set it with :func:`set_policy` or the environment variable ``MEANFIELD_BLAS_THREADS`` (``auto``, ``all`` or a
number).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

__all__ = ["set_policy", "get_policy", "idle_cores", "blas_threads"]

_policy: str | int | None = None


def _check(policy) -> str | int:
    if policy in ("auto", "all"):
        return policy
    try:
        n = int(policy)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or isinstance(policy, bool):
        raise ValueError(f"thread policy must be 'auto', 'all' or a number of threads >= 1, got {policy!r}")
    return n


def set_policy(policy: str | int) -> None:
    """Set the BLAS thread policy of runs: "auto", "all" or a number of threads.

    Examples
    --------
    >>> set_policy("all"); get_policy()
    'all'
    >>> set_policy("auto")
    """
    global _policy
    _policy = _check(policy)


def get_policy() -> str | int:
    """The policy in force: the one set, else ``MEANFIELD_BLAS_THREADS``, else "auto".

    Examples
    --------
    >>> from meanfield.threads import get_policy, set_policy
    >>> set_policy(1)
    >>> get_policy()
    1
    >>> set_policy("auto")
    """
    if _policy is not None:
        return _policy
    value = os.environ.get("MEANFIELD_BLAS_THREADS", "auto")
    try:
        return _check(value)
    except ValueError as err:
        raise ValueError(f"MEANFIELD_BLAS_THREADS: {err}") from None


def _other_running_tasks() -> int | None:
    """Tasks of other processes runnable right now (Linux: all runnable tasks, the 4th field of /proc/loadavg, less
    the running threads of this process, whose BLAS threads may still be spinning), or None."""
    try:
        with open("/proc/loadavg") as handle:
            total = int(handle.read().split()[3].split("/")[0])
        own = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as handle:
                    own += handle.read().rsplit(")", 1)[1].split()[0] == "R"
            except OSError:  # the thread ended meanwhile
                continue
        return max(0, total - max(own, 1))
    except (OSError, IndexError, ValueError):
        return None


def idle_cores() -> int:
    """Cores not used by other processes (at least 1): on Linux the median of five instantaneous counts of other
    processes' runnable tasks over ~2 ms (free, unlike a CPU-use measurement), elsewhere the CPU use over 50 ms
    (psutil, which then counts this process too).

    Examples
    --------
    >>> idle_cores() >= 1
    True
    """
    n = os.cpu_count() or 1
    counts = []
    for _ in range(5):
        count = _other_running_tasks()
        if count is None:
            break
        counts.append(count)
        time.sleep(0.0005)
    if len(counts) == 5:
        busy = sorted(counts)[2]
    else:
        import psutil

        busy = int(round(psutil.cpu_percent(interval=0.05) / 100.0 * n))
    return max(1, n - busy)


@contextlib.contextmanager
def blas_threads(policy: str | int | None = None) -> Iterator[int | None]:
    """Limit BLAS threads for the block according to ``policy`` (default :func:`get_policy`); yields the limit
    (None for "all").

    Examples
    --------
    >>> with blas_threads(1) as n:
    ...     n
    1
    """
    policy = _check(policy) if policy is not None else get_policy()
    if policy == "all":
        yield None
        return
    from threadpoolctl import threadpool_limits

    limit = idle_cores() if policy == "auto" else policy
    with threadpool_limits(limits=limit, user_api="blas"):
        yield limit
