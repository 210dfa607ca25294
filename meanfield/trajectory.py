"""Solutions: the :class:`Trajectory` object returned by :func:`meanfield.simulate`."""

from __future__ import annotations

import numpy as np

from .measure import ParticleMeasure, measure_type
from .status import Status

__all__ = ["Trajectory"]


class Trajectory:
    """Saved states of a run.

    Attributes
    ----------
    times : array (T,)
    risk : array (T,)
    a : array (T, m)
    b : array (T, m, d)
    weights : array (m,)
    observables : dict of name -> array (T, ...)
    final : ParticleMeasure or None
        The state at the end of the run (also when particle snapshots were not saved); None for runs that are not
        particle systems (kind "mlp": their weights are observables ``W0``, ``W1``, ...).
    status : str
        A :class:`~meanfield.status.Status` value: "completed", "converged", "diverged", "interrupted", "failed".
    info : dict
        Solver, step size, backend, number of steps and evaluations, wall time.
    problem_spec : dict
        Description of the problem the run solved.
    target_arrays : dict
        The arrays that define its target (teacher ``c`` and ``U``, subspace basis ``Q``, ...).
    config : dict
        The run's configuration (solver, step, save policy, ...; ``config["user"]`` is the caller's own).
    kind : str
        "particle_flow", "sgd", "mlp", ...

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(8, 2, seed=0), t_max=1.0, dt=0.1, save_every=5)
    >>> traj.times.tolist(), traj.b.shape, traj.final.m, traj.status
    ([0.0, 0.5, 1.0], (3, 8, 2), 8, 'completed')
    >>> traj.measure(1).a.shape
    (8,)
    """

    def __init__(self, times, risk, a, b, weights, observables, final, status="completed", info=None,
                 problem_spec=None, config=None, kind="particle_flow", target_arrays=None):
        self.times, self.risk, self.a, self.b = times, risk, a, b
        self.weights, self.observables, self.final = weights, observables, final
        self.status, self.info, self.problem_spec = status, dict(info or {}), dict(problem_spec or {})
        self.config, self.kind = dict(config or {}), kind
        self.target_arrays = dict(target_arrays or {})
        self.file_attributes: dict = {}  # format, format_version, package_version, created (file-backed only)

    @property
    def path(self):
        """The HDF5 file backing this trajectory (None in memory; see :class:`meanfield.io.FileTrajectory`)."""
        return None

    def hidden_subspace(self):
        """Orthonormal basis (d, d_H) of the target's hidden subspace H (span of the teacher neurons, the subspace
        of a multi-index target, β of a linear one), or None when the target does not name one.

        Examples
        --------
        >>> import numpy as np, meanfield as mf
        >>> problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(4)[:2]), mf.Gaussian(d=4))
        >>> traj = mf.simulate(problem, mf.init.sign_sphere(8, 4, seed=0), t_max=0.2, dt=0.1)
        >>> traj.hidden_subspace().shape
        (4, 2)
        """
        from .targets import subspace_from_arrays

        return subspace_from_arrays(self.target_arrays)

    def refresh(self) -> Trajectory:
        """Re-read a file-backed trajectory (new snapshots of a running writer); no-op in memory."""
        return self

    def close(self) -> None:
        """Close the backing file (file-backed trajectories; nothing in memory); lazy arrays are unusable after."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self) -> int:
        return len(self.times)

    def measure(self, i: int) -> ParticleMeasure:
        """The particle measure of snapshot ``i`` (a :class:`~meanfield.measure.RingMeasure` for a low-dimensional
        reduced flow, whose ``b`` rows hold [u | r])."""
        if self.a is None:
            raise ValueError("this trajectory kept no particle snapshots (SaveAt(particles=False))")
        a = np.asarray(self.a[i])
        state = np.column_stack([a if a.ndim == 2 else a[:, None], np.asarray(self.b[i])])
        return measure_type(self.problem_spec or {}).from_state(state, self.weights)

    def __repr__(self):
        if self.times is None or not len(self.times):
            return "Trajectory(empty)"
        if self.final is None:
            return (f"Trajectory(kind={self.kind!r}, T={len(self)}, t=[{self.times[0]:.3g}, {self.times[-1]:.3g}], "
                    f"observables={sorted(self.observables)}, status={self.status!r})")
        m, d = self.final.m, self.final.d
        return (f"Trajectory(T={len(self)}, m={m}, d={d}, t=[{self.times[0]:.3g}, {self.times[-1]:.3g}], "
                f"risk {self.risk[0]:.3g} -> {self.risk[-1]:.3g}, status={self.status!r})")


class MemoryRecorder:
    """Collects snapshots in memory and assembles the :class:`Trajectory` (the file counterpart is
    :class:`meanfield.io.FileRecorder`; the run loop talks to either through save / trajectory / abort)."""

    def __init__(self, weights, kind: str = "particle_flow", spec: dict | None = None,
                 target_arrays: dict | None = None):
        self.kind, self.spec, self.target_arrays = kind, spec or {}, target_arrays or {}
        self.weights = np.asarray(weights, dtype=np.float64)
        self.times, self.risk, self.a, self.b = [], [], [], []
        self.observables: dict[str, list] = {}
        self.final: ParticleMeasure | None = None

    path = None  # nothing on disk

    def save(self, t, risk, measure, observables, checkpoint=None, particles: bool = True):
        """Keep one snapshot (the checkpoint is only kept by file recorders: in memory there is nothing to resume)."""
        self.times.append(float(t))
        self.risk.append(float(risk))
        if particles:
            self.a.append(measure.a.copy())
            self.b.append(measure.coordinates())
        for name, value in observables.items():
            self.observables.setdefault(name, []).append(value)
        self.final = measure

    def abort(self, status: str, info=None) -> None:
        """Nothing to close in memory."""

    def trajectory(self, status=Status.COMPLETED, info=None) -> Trajectory:
        a = np.array(self.a) if self.a else None
        b = np.array(self.b) if self.b else None
        obs = {k: np.array(v) for k, v in self.observables.items()}
        return Trajectory(np.array(self.times), np.array(self.risk), a, b, self.weights, obs, self.final,
                          str(status), info, self.spec, kind=self.kind, target_arrays=self.target_arrays)
