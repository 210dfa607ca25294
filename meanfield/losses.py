r"""Losses ℓ(f, y) of a prediction f against a label y, on the arrays of any backend (numpy arrays, torch tensors).

A loss gives its value, its derivative ∂ℓ/∂f (what the flow's velocity needs) and the labels it accepts. The
empirical risk of a data set is F_n(μ) = (1/n) Σ_i ℓ(f(μ; x_i), y_i) (:class:`~meanfield.empirical.EmpiricalProblem`).

- :class:`Squared`: ℓ = ½ (f − y)², any real labels.
- :class:`Logistic`: ℓ = log(1 + e^{−y f}), labels ±1 (the loss whose gradient flow tends to a max-margin classifier,
  Chizat & Bach 2020, arXiv:2002.04486).
- :class:`CrossEntropy`: ℓ = log Σ_k e^{f_k} − f_y for a vector output f ∈ R^K and classes y ∈ {0, …, K − 1}.

A loss of a vector output says so with :meth:`Loss.outputs`; its labels are then encoded (one-hot) by
:meth:`Loss.encode` and its predictions are (samples, K) arrays.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_positive_int
from .registry import LOSSES as _LOSSES

__all__ = ["Loss", "Squared", "Logistic", "as_loss", "LOSSES"]


class Loss:
    """A loss ℓ(f, y): :meth:`value` and :meth:`derivative` on backend arrays (``nx`` is the backend, the array
    namespace of :mod:`meanfield.kernels`), :meth:`check_labels` for the labels it accepts.

    Examples
    --------
    A new loss is a subclass; here the absolute loss |f − y| (its subgradient sign(f − y)):

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.losses import Loss
    >>> class Absolute(Loss):
    ...     name = "absolute"
    ...     def value(self, f, y, nx): return nx.abs(f - y)
    ...     def derivative(self, f, y, nx): return nx.where(f > y, 1.0, -1.0)
    >>> nx = mf.get_backend("numpy")
    >>> Absolute().value(np.array([1.0, 3.0]), np.array([2.0, 2.0]), nx).tolist()
    [1.0, 1.0]
    """

    name = "abstract"
    #: Whether the labels are classes ±1 (then accuracy and margins are measured).
    classification = False

    def value(self, f, y, nx):
        """ℓ(f_i, y_i) elementwise."""
        raise NotImplementedError

    def derivative(self, f, y, nx):
        """∂ℓ/∂f (f_i, y_i) elementwise."""
        raise NotImplementedError

    def value_at_zero(self, y: np.ndarray) -> float:
        """The mean loss of the zero predictor, (1/n) Σ ℓ(0, y_i): the scale of this loss's risks."""
        from .kernels import get_backend

        return float(np.mean(self.value(np.zeros_like(y), y, get_backend("numpy"))))

    def check_labels(self, y: np.ndarray, name: str = "y") -> None:
        """Raise a one-line error when ``y`` holds labels this loss does not take."""

    def outputs(self, y: np.ndarray) -> int | None:
        """K for a loss of a vector output (from the labels), None for a scalar output."""
        return None

    def encode(self, y: np.ndarray, outputs: int | None) -> np.ndarray:
        """The labels as the loss takes them (the labels themselves here; one-hot rows for classes)."""
        return y

    def spec(self) -> dict:
        return {"loss": self.name}

    def __eq__(self, other):
        return isinstance(other, Loss) and self.spec() == other.spec()

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"{type(self).__name__}()"


@_LOSSES.register("squared")
class Squared(Loss):
    """ℓ(f, y) = ½ (f − y)², ∂ℓ/∂f = f − y.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.losses import Squared
    >>> Squared().value(np.array([3.0]), np.array([1.0]), mf.get_backend("numpy")).tolist()
    [2.0]
    """

    name = "squared"

    def value(self, f, y, nx):
        r = f - y
        return 0.5 * r * r

    def derivative(self, f, y, nx):
        return f - y


@_LOSSES.register("logistic")
class Logistic(Loss):
    """ℓ(f, y) = log(1 + e^{−y f}) for labels y = ±1, ∂ℓ/∂f = −y / (1 + e^{y f}), both computed without overflow
    (log(1 + e^{−u}) = max(−u, 0) + log(1 + e^{−|u|})).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.losses import Logistic
    >>> nx = mf.get_backend("numpy")
    >>> loss = Logistic().value(np.array([0.0, 800.0, -800.0]), np.array([1.0, 1.0, 1.0]), nx)
    >>> bool(np.isclose(loss[0], np.log(2))), float(loss[1]), float(loss[2])
    (True, 0.0, 800.0)
    """

    name = "logistic"
    classification = True

    def value(self, f, y, nx):
        u = y * f
        return nx.maximum(-u, 0.0) + nx.log1p(nx.exp(-nx.abs(u)))

    def derivative(self, f, y, nx):
        u = y * f
        e = nx.exp(-nx.abs(u))   # 1/(1 + e^u) = e^{−u}/(1 + e^{−u}) for u ≥ 0, 1/(1 + e^u) for u < 0
        return -y * nx.where(u >= 0, e / (1.0 + e), 1.0 / (1.0 + e))

    def check_labels(self, y: np.ndarray, name: str = "y") -> None:
        bad = ~np.isin(y, (-1.0, 1.0))
        if bad.any():
            found = np.unique(y[bad])[:5].tolist()
            raise ValueError(f"{name}: the logistic loss takes labels ±1, found {found} (at index "
                             f"{int(np.flatnonzero(bad)[0])}); map classes to ±1, e.g. y = 2 * (labels == k) - 1")


@_LOSSES.register("cross_entropy")
class CrossEntropy(Loss):
    """ℓ(f, y) = log Σ_k e^{f_k} − f_y for a vector output f ∈ R^K and a class y ∈ {0, …, K − 1} (labels given as
    integers, encoded one-hot), ∂ℓ/∂f = softmax(f) − e_y; computed with the maximum subtracted (no overflow).

    Parameters
    ----------
    classes : int, optional
        K; by default 1 + the largest label of the training set.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.losses import CrossEntropy
    >>> loss, nx = CrossEntropy(), mf.get_backend("numpy")
    >>> y = loss.encode(np.array([0.0, 2.0]), 3)
    >>> f = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1000.0]])
    >>> bool(np.allclose(loss.value(f, y, nx), [np.log(3), 0.0]))
    True
    """

    name = "cross_entropy"
    classification = True

    def __init__(self, classes: int | None = None):
        self.classes = None if classes is None else check_positive_int(classes, "CrossEntropy classes")
        if self.classes == 1:
            raise ValueError("CrossEntropy classes must be >= 2 (one class has nothing to tell apart), got 1")

    def value(self, f, y, nx):
        top = nx.amax(f, axis=1)
        shifted = f - top[:, None]
        return nx.log(nx.exp(shifted).sum(axis=1)) - (shifted * y).sum(axis=1)

    def derivative(self, f, y, nx):
        e = nx.exp(f - nx.amax(f, axis=1)[:, None])
        return e / e.sum(axis=1)[:, None] - y

    def check_labels(self, y: np.ndarray, name: str = "y") -> None:
        bad = (y < 0) | (y != np.round(y)) | ((y >= self.classes) if self.classes else False)
        if bad.any():
            what = f"0 … {self.classes - 1}" if self.classes else "0, 1, 2, …"
            raise ValueError(f"{name}: the cross-entropy loss takes class indices {what}, found {float(y[bad][0])} (at "
                             f"index {int(np.flatnonzero(bad)[0])})")

    def outputs(self, y: np.ndarray) -> int:
        if self.classes is None and np.unique(y).size < 2:
            raise ValueError(f"y: the training labels hold one class only ({float(y.flat[0]):g}); the cross-entropy "
                             "loss needs two classes or more (or CrossEntropy(classes=K))")
        return self.classes or int(y.max()) + 1

    def encode(self, y: np.ndarray, outputs: int | None) -> np.ndarray:
        return np.eye(outputs)[y.astype(int)]

    def value_at_zero(self, y: np.ndarray) -> float:
        return float(np.log(self.outputs(y)))

    def spec(self) -> dict:
        return {"loss": self.name, **({"classes": self.classes} if self.classes else {})}


#: Losses by name: the registry :data:`meanfield.registry.LOSSES`.
LOSSES = _LOSSES


def as_loss(loss) -> Loss:
    """A loss from its name ("squared", "logistic") or a :class:`Loss` (passed through).

    Examples
    --------
    >>> as_loss("logistic")
    Logistic()
    """
    if isinstance(loss, Loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; use one of {', '.join(map(repr, LOSSES))} or a meanfield.losses.Loss")
    return LOSSES.create(loss)
