"""Finite data sets (X, y), with an optional held-out split: what an :class:`~meanfield.empirical.EmpiricalProblem`
trains on. Arrays are checked once here (shapes, lengths, finite values) and identified by a checksum, so a stored run
names the exact data it was trained on."""

from __future__ import annotations

import hashlib

import numpy as np

from ._validation import check_positive_int
from .registry import DATA

__all__ = ["DataSet", "from_sklearn", "load_npz", "digits", "sample", "draw"]


def _features(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must be an (n, d) array of inputs with n, d >= 1, got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"{name} contains NaN or infinite values (first at row {row}, column {col}); drop or impute "
                         "those samples")
    return np.ascontiguousarray(x)


def _labels(y, n: int, name: str, x_name: str) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of labels, got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"{x_name} has {n} samples but {name} has {y.shape[0]} labels; they must have the same length")
    bad = ~np.isfinite(y)
    if bad.any():
        raise ValueError(f"{name} contains NaN or infinite values (first at index {int(np.flatnonzero(bad)[0])})")
    return np.ascontiguousarray(y)


class DataSet:
    """Inputs X (n, d) and labels y (n,), with an optional held-out split (X_test, y_test).

    Parameters
    ----------
    x, y : array-like
        Training inputs (one sample per row) and labels (real numbers; ±1 for the logistic loss).
    x_test, y_test : array-like, optional
        Held-out inputs and labels (both or neither), recorded as ``test_risk`` and ``test_accuracy``.
    name : str
        A label for files and plots.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.data import DataSet
    >>> data = DataSet(np.eye(3), [1.0, -1.0, 1.0], name="toy")
    >>> data.n, data.d, data.has_test, len(data.checksum())
    (3, 3, False, 40)
    """

    def __init__(self, x, y, x_test=None, y_test=None, name: str = "data"):
        self.x = _features(x, "x")
        self.y = _labels(y, self.x.shape[0], "y", "x")
        if (x_test is None) != (y_test is None):
            raise ValueError("give both x_test and y_test (a held-out split) or neither")
        self.x_test = self.y_test = None
        if x_test is not None:
            self.x_test = _features(x_test, "x_test")
            if self.x_test.shape[1] != self.d:
                raise ValueError(f"x_test has {self.x_test.shape[1]} features but x has {self.d}; they must match")
            self.y_test = _labels(y_test, self.x_test.shape[0], "y_test", "x_test")
        self.name = str(name)

    @property
    def n(self) -> int:
        """Number of training samples."""
        return self.x.shape[0]

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.x.shape[1]

    @property
    def has_test(self) -> bool:
        return self.x_test is not None

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by name, as a trajectory file stores them (``/problem/target/x``, ``y``, ``x_test``,
        ``y_test``)."""
        out = {"x": self.x, "y": self.y}
        if self.has_test:
            out.update(x_test=self.x_test, y_test=self.y_test)
        return out

    def checksum(self) -> str:
        """SHA-1 of every array's shape and bytes."""
        h = hashlib.sha1()
        for name, array in self.arrays().items():
            h.update(f"{name}{array.shape}".encode())
            h.update(array.tobytes())
        return h.hexdigest()

    def spec(self) -> dict:
        return {"kind": "data", "name": self.name, "n": self.n, "d": self.d,
                "n_test": 0 if not self.has_test else int(self.x_test.shape[0]), "sha1": self.checksum()}

    def __repr__(self):
        test = f", n_test={self.x_test.shape[0]}" if self.has_test else ""
        return f"DataSet({self.name!r}, n={self.n}, d={self.d}{test})"


@DATA.register("sklearn")
def from_sklearn(name: str, classes: tuple[list[float], list[float]] | None = None, n_test: int = 0, seed: int = 0,
                 standardize: bool = True) -> DataSet:
    """A scikit-learn data set by the name of its loader (``"digits"`` → ``sklearn.datasets.load_digits``, also
    ``"iris"``, ``"wine"``, ``"breast_cancer"``, ``"diabetes"``), with a seeded held-out split and the features
    standardised on the training split.

    Parameters
    ----------
    name : str
        The loader's name without ``load_``.
    classes : None or (iterable, iterable)
        None: the labels as given (class indices for the cross-entropy loss, values for regression). A pair of
        label groups: +1 for the first, −1 for the second (for the logistic loss); other samples are dropped.
    n_test : int
        Held-out samples (0: none).
    seed : int
        Seeds the split.
    standardize : bool
        Centre and scale each feature by its training mean and standard deviation (constant features stay 0).

    Examples
    --------
    >>> from meanfield.data import from_sklearn
    >>> data = from_sklearn("iris", classes=((0,), (1, 2)), n_test=30)
    >>> data.n, data.d, sorted(set(data.y.tolist()))
    (120, 4, [-1.0, 1.0])
    """
    try:
        from sklearn import datasets
    except ModuleNotFoundError:
        raise ModuleNotFoundError("scikit-learn's data sets need scikit-learn: pip install scikit-learn") from None
    loader = getattr(datasets, f"load_{name}", None)
    if loader is None:
        raise ValueError(f"name {name!r}: scikit-learn has no data set loader load_{name}; use e.g. 'digits', 'iris', "
                         "'wine', 'breast_cancer' or 'diabetes'")
    x, labels = loader(return_X_y=True)
    x, labels = np.asarray(x, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if classes is None:
        y, label = labels, name
    else:
        positive, negative = (np.asarray(list(group), dtype=np.float64) for group in classes)
        keep = np.isin(labels, positive) | np.isin(labels, negative)
        x, y = x[keep], np.where(np.isin(labels[keep], positive), 1.0, -1.0)
        label = f"{name} {'+'.join(f'{c:g}' for c in positive)} vs {'+'.join(f'{c:g}' for c in negative)}"
    n_test = int(n_test)
    if not 0 <= n_test < len(x):
        raise ValueError(f"n_test = {n_test} must lie in [0, {len(x)}) (the data set has {len(x)} samples)")
    perm = np.random.default_rng(seed).permutation(len(x))
    test, train = perm[:n_test], perm[n_test:]
    if standardize:
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        x = (x - mean) / np.where(std > 1e-12, std, 1.0)  # constant features (blank pixels) stay 0
    split = {"x_test": x[test], "y_test": y[test]} if n_test else {}
    return DataSet(x[train], y[train], name=label, **split)


@DATA.register("npz")
def load_npz(path: str, name: str | None = None) -> DataSet:
    """The data set of an ``.npz`` file (``numpy.savez``) holding arrays ``x`` and ``y``, and optionally ``x_test`` and
    ``y_test``; ``name`` labels it (by default the file's stem).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from meanfield.data import load_npz
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.npz"
    >>> np.savez(path, x=np.eye(3), y=[1.0, -1.0, 1.0])
    >>> load_npz(path)
    DataSet('toy', n=3, d=3)
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            stored = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} cannot be read as an .npz file of arrays ({' '.join(str(err).split())})") from None
    missing = [key for key in ("x", "y") if key not in stored]
    unknown = sorted(set(stored) - {"x", "y", "x_test", "y_test"})
    if missing or unknown:
        raise ValueError(f"{path} holds arrays {sorted(stored)}; a data file holds x and y, and optionally x_test and "
                         "y_test")
    return DataSet(stored["x"], stored["y"], stored.get("x_test"), stored.get("y_test"),
                   name=path.stem if name is None else name)


def digits(classes=None, n_test: int = 360, seed: int = 0) -> DataSet:
    """scikit-learn's 8 × 8 handwritten digits (1797 images, d = 64; :func:`from_sklearn` ``("digits")``).

    Parameters
    ----------
    classes : None or (iterable of int, iterable of int)
        None: the digit as a class index 0–9 (the cross-entropy loss). A pair of digit groups, e.g.
        ``((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))`` or ``((3,), (8,))``: labels +1 for the first group, −1 for the second
        (the logistic loss); other digits are dropped.
    n_test : int
        Held-out samples (a seeded permutation).
    seed : int
        Seeds the split.

    Examples
    --------
    >>> from meanfield.data import digits
    >>> data = digits(classes=((3,), (8,)), n_test=50)
    >>> data.d, data.n + 50, sorted(set(data.y.tolist()))
    (64, 357, [-1.0, 1.0])
    """
    return from_sklearn("digits", classes, check_positive_int(n_test, "n_test"), seed)


def draw(target, inputs, n: int, seed=None, n_test: int = 0) -> DataSet:
    """n inputs drawn from an input law, labelled by a target (any callable of an (n, d) array): a data set on any law,
    also one without a Gaussian reduction, where no population problem exists.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.data import draw
    >>> data = draw(mf.LinearTarget(np.ones(2)), mf.Gaussian(2), 50, seed=0, n_test=10)
    >>> data.n, data.x_test.shape, bool(np.allclose(data.y, data.x.sum(axis=1)))
    (50, (10, 2), True)
    """
    n = check_positive_int(n, "n")
    rng = np.random.default_rng(seed)
    x = inputs.sample(n + int(n_test), rng)
    y = np.asarray(target(x), dtype=np.float64)
    test = {"x_test": x[n:], "y_test": y[n:]} if n_test else {}
    return DataSet(x[:n], y[:n], name=f"{type(target).__name__} sample", **test)


@DATA.register("sample")
def sample(problem, n: int, seed: int | None = None, n_test: int = 0) -> DataSet:
    """n inputs drawn from a population :class:`~meanfield.Problem`'s input law, labelled by its target: the data set
    whose empirical flow approaches the population flow as n grows (:func:`draw` with the problem's law and target).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.data import sample
    >>> problem = mf.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(3))
    >>> data = sample(problem, 100, seed=0, n_test=20)
    >>> bool(np.allclose(data.y, data.x.sum(axis=1))), data.x_test.shape
    (True, (20, 3))
    """
    return draw(problem.target, problem.inputs, n, seed, n_test)
