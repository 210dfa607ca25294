r"""Ensembles of stored runs (one HDF5 file per seed) and the weight statistics of
:mod:`meanfield.weights.analysis`, streamed over seeds and computed at every saved time.

An :class:`Ensemble` reads one snapshot of one run at a time, so the memory used is that of a batch of snapshots
(``chunk`` seeds), never the whole ensemble; every statistic below accumulates over seed batches
(:class:`~meanfield.weights.analysis.EnsembleMoments`, :class:`~meanfield.weights.analysis.RowPermutationTest`, the
streaming :meth:`MatrixModel.fit <meanfield.weights.analysis.MatrixModel.fit>`) and shows a progress bar.

Arrays of a run, by name:

* ``"b"`` — first-layer weights (m, d) of flows and SGD runs; ``"a"`` — output weights as (m, 1);
  ``"neurons"`` — the rows [a_i | b_i], (m, 1 + d);
* any saved observable, e.g. ``"W1"`` (the square hidden matrix of an MLP run, :mod:`meanfield.weights.mlp`).

See :class:`Ensemble` for an example over three seeds of a flow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..._validation import check_positive_int
from .equivalent_kernel import empirical_kernel, equivalent_kernel
from .exchangeability import EnsembleMoments, RowPermutationTest

__all__ = ["Ensemble"]


class Ensemble:
    """Runs of one experiment over seeds, read lazily from their HDF5 files.

    Parameters
    ----------
    paths : iterable of path-like
        One trajectory file per seed (flows, SGD runs or MLP runs; :func:`meanfield.load` opens each).
    progress : bool
        Show progress bars over times and seeds.
    chunk : int
        Seeds read per batch (memory: chunk × one snapshot).

    Attributes
    ----------
    times : ndarray (T,)
        The saved times common to all runs (checked to agree; runs still being written contribute their
        completed snapshots, and the ensemble keeps the shortest common prefix).

    Examples
    --------
    >>> import numpy as np, meanfield as mf, tempfile, pathlib
    >>> from meanfield.weights.analysis import Ensemble
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(4)[:2]), mf.Gaussian(4))
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> for s in range(3):
    ...     mf.simulate(problem, mf.init.sign_sphere(16, 4, seed=s), t_max=1.0, dt=0.5, save_every=1,
    ...                 path=tmp / f"seed{s}.h5").close()
    >>> with Ensemble(sorted(tmp.glob("*.h5")), progress=False) as ens:
    ...     stats = ens.statistics("b")
    >>> stats["time"].tolist(), stats["row_scaled"].shape
    ([0.0, 0.5, 1.0], (3,))
    """

    def __init__(self, paths: Iterable, progress: bool = True, chunk: int = 16):
        from ...io import load

        self.paths = [Path(p) for p in paths]
        if len(self.paths) < 2:
            raise ValueError(f"an ensemble needs at least 2 runs, got {len(self.paths)}")
        self.progress, self.chunk = progress, check_positive_int(chunk, "chunk")
        self._runs = []
        try:
            for p in self.paths:
                self._runs.append(load(p))
        except BaseException:
            self.close()
            raise
        n = min(len(r) for r in self._runs)
        self.times = np.asarray(self._runs[0].times[:n])
        for path, run in zip(self.paths, self._runs):
            if not np.allclose(run.times[:n], self.times, rtol=1e-12, atol=1e-12):
                raise ValueError(f"{path} saved at different times from {self.paths[0]}; an ensemble's runs must "
                                 "share their save times")
        self.kind = self._runs[0].kind

    @classmethod
    def from_sweep(cls, directory, progress: bool = True, chunk: int = 16, **where) -> Ensemble:
        """The completed runs of a sweep (:func:`meanfield.sweep.run_sweep`) whose overrides match ``where``
        (e.g. ``width=32`` matches the sweep key ``mlp.width``)."""
        manifest = Path(directory) / "manifest.json"
        if not manifest.exists():
            raise FileNotFoundError(f"{manifest} not found: not a sweep output directory")
        runs = json.loads(manifest.read_text())["runs"]
        paths = []
        for run in runs:
            short = {k.split(".")[-1]: v for k, v in run["overrides"].items()}
            if run["status"] in ("completed", "converged") and all(short.get(k) == v for k, v in where.items()):
                paths.append(run["path"])
        if len(paths) < 2:
            raise ValueError(f"{directory}: fewer than 2 completed runs match {where}")
        return cls(paths, progress=progress, chunk=chunk)

    # -- reading -------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._runs)

    def close(self) -> None:
        for run in self._runs:
            run.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def array(self, name: str, run: int, index: int) -> np.ndarray:
        """One run's array ``name`` at save ``index``."""
        r = self._runs[run]
        if name == "b":
            return np.asarray(self._particles(r, "b")[index])
        if name == "a":
            return np.asarray(self._particles(r, "a")[index])[:, None]
        if name == "neurons":
            return np.concatenate([np.asarray(self._particles(r, "a")[index])[:, None],
                                   np.asarray(self._particles(r, "b")[index])], axis=1)
        if name not in r.observables:
            raise KeyError(f"{self.paths[run]} has no array {name!r} (observables: {sorted(r.observables)}; "
                           "particle runs also have 'a', 'b', 'neurons')")
        return np.asarray(r.observables[name][index])

    def _particles(self, r, which):
        arr = getattr(r, which)
        if arr is None:
            raise ValueError(f"{r.path} kept no particle snapshots (SaveAt(particles=False))")
        return arr

    def chunks(self, name: str, index: int):
        """Yield the array ``name`` at save ``index`` for all runs, ``chunk`` seeds at a time, shape (s, ...)."""
        for i0 in range(0, len(self), self.chunk):
            yield np.stack([self.array(name, k, index) for k in range(i0, min(len(self), i0 + self.chunk))])

    def _indices(self, indices):
        if indices is None:
            return list(range(len(self.times)))
        return [int(i) % len(self.times) for i in np.atleast_1d(indices)]

    def _bar(self, total, desc):
        return tqdm(total=total, desc=desc, disable=not self.progress, unit="snapshot")

    # -- statistics ----------------------------------------------------------------------------------------------
    def moments(self, name: str, index: int) -> EnsembleMoments:
        """Across-seed moments of ``name`` at save ``index``."""
        acc = EnsembleMoments()
        for batch in self.chunks(name, index):
            acc.add(batch)
        return acc

    def statistics(self, name: str = "neurons", indices=None) -> dict:
        """Exchangeability statistics over time (Tsuchida et al. 2019): for each save, ĉ_row, ĉ_col, v̂, the
        width-scaled n ĉ_row / v̂ and m ĉ_col / v̂, and the spread of the entry means across rows. Returns
        name → (T,) arrays, with ``time``."""
        idx = self._indices(indices)
        rows = []
        with self._bar(len(idx) * len(self), f"statistics[{name}]") as bar:
            for i in idx:
                acc = EnsembleMoments()
                for batch in self.chunks(name, i):
                    acc.add(batch)
                    bar.update(len(batch))
                rows.append(acc.statistics())
        out = {k: np.array([r[k] for r in rows]) for k in rows[0]}
        out["time"] = self.times[idx]
        return out

    def permutation_test(self, name: str = "neurons", index: int = -1, n_permutations: int = 199,
                         seed=None) -> tuple[float, float]:
        """Row-exchangeability permutation test at save ``index``, streamed over seeds: (statistic, p-value)."""
        test = RowPermutationTest(n_permutations, seed)
        for batch in self.chunks(name, self._indices(index)[0]):
            test.add(batch)
        return test.result()

    def layer_kernel(self, x, y, indices=None, name: str = "b", activation=0.0) -> dict:
        r"""The empirical layer kernel k̂(x, y) = (1/m) Σ_i σ_α(w_i·x) σ_α(w_i·y) of each run (rows w_i of ``name``)
        on probe pairs, averaged over seeds, at every save, against the arc-cosine (equivalent) kernel with the
        same E|w|² (Tsuchida et al. 2018, 2019).

        Returns a dict of arrays: ``time`` (T,), ``mean`` and ``se`` (T, K) (mean over seeds and its standard
        error), ``mean_xx``, ``mean_yy`` (T, K), ``second_moment`` (T,) = E|w|² over neurons and seeds,
        ``closed_form`` (T, K), and the normalised versions ``cosine`` = mean / √(mean_xx mean_yy) and
        ``cosine_closed_form`` (which depend on the angle only). Under a rotationally invariant law of the neurons
        (e.g. the initialisation) they agree up to Monte-Carlo noise; a kernel that drifts away from them shows
        trained weights that are no longer rotationally invariant.
        """
        x, y = np.atleast_2d(np.asarray(x, float)), np.atleast_2d(np.asarray(y, float))
        idx = self._indices(indices)
        T, K = len(idx), x.shape[0]
        mean, se, mxx, myy, m2 = (np.zeros((T, K)), np.zeros((T, K)), np.zeros((T, K)), np.zeros((T, K)),
                                  np.zeros(T))
        with self._bar(T * len(self), f"layer kernel[{name}]") as bar:
            for t, i in enumerate(idx):
                vals, vxx, vyy, sq = [], [], [], []
                for batch in self.chunks(name, i):
                    for W in batch:
                        vals.append(empirical_kernel(W, x, y, activation))
                        vxx.append(empirical_kernel(W, x, x, activation))
                        vyy.append(empirical_kernel(W, y, y, activation))
                        sq.append(np.mean(np.sum(W**2, axis=1)))
                    bar.update(len(batch))
                vals = np.array(vals)
                mean[t], se[t] = vals.mean(axis=0), vals.std(axis=0, ddof=1) / np.sqrt(len(vals))
                mxx[t], myy[t], m2[t] = np.mean(vxx, axis=0), np.mean(vyy, axis=0), np.mean(sq)
        closed = np.array([equivalent_kernel(x, y, s, activation) for s in m2])
        cxx = np.array([equivalent_kernel(x, x, s, activation) for s in m2])
        cyy = np.array([equivalent_kernel(y, y, s, activation) for s in m2])
        return {"time": self.times[idx], "mean": mean, "se": se, "mean_xx": mxx, "mean_yy": myy,
                "second_moment": m2, "closed_form": closed, "cosine": mean / np.sqrt(mxx * myy),
                "cosine_closed_form": closed / np.sqrt(cxx * cyy)}

    def fit(self, model_cls, name: str, index: int = -1):
        """Fit a permutation-invariant Gaussian matrix model (e.g.
        :class:`~meanfield.weights.analysis.SquareMatrixModel`) to the ensemble of ``name`` at save ``index``,
        streaming over seeds."""
        return model_cls.fit(self.chunks(name, self._indices(index)[0]))

    def fit_over_time(self, model_cls, name: str, indices=None) -> list:
        """One fit per save (with a progress bar)."""
        idx = self._indices(indices)
        return [self.fit(model_cls, name, i) for i in tqdm(idx, desc=f"fit {model_cls.__name__}[{name}]",
                                                           disable=not self.progress)]

    def compare_invariants(self, model, name: str, index: int = -1, **kwargs) -> list[dict]:
        """Higher (cubic, quartic) invariants of the data at save ``index`` against ``model``'s predictions."""
        from .matrix_models import compare_invariants

        return compare_invariants(self.chunks(name, self._indices(index)[0]), model, **kwargs)

    def __repr__(self):
        return f"Ensemble({len(self)} runs of kind {self.kind!r}, {len(self.times)} common saves)"
