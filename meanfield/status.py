"""The outcome of a run: one enumeration for flows, SGD, MLP training and sweeps, stored by its value."""

from __future__ import annotations

from enum import Enum

__all__ = ["Status"]


class Status(str, Enum):
    """How a run stands or ended. A ``str``: ``Status.COMPLETED == "completed"``, and files, manifests and JSON hold
    the plain value.

    Examples
    --------
    >>> Status("converged").finished, str(Status.INTERRUPTED)
    (True, 'interrupted')
    """

    RUNNING = "running"          #: a writer holds the file
    COMPLETED = "completed"      #: reached t_max
    CONVERGED = "converged"      #: reached stop_risk
    DIVERGED = "diverged"        #: non-finite state, risk blow-up or an unstable step; not resumable
    INTERRUPTED = "interrupted"  #: Ctrl-C, SIGTERM, a stop request or a killed writer; resumable
    FAILED = "failed"            #: an error inside the run; the snapshots saved so far are kept
    PENDING = "pending"          #: a sweep's run that has not started

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        """A run with nothing left to do (completed or converged)."""
        return self in (Status.COMPLETED, Status.CONVERGED)
