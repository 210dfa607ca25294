r"""The empirical risk of a data set: the exact flow of a two-layer network trained on (X, y) with any loss.

For μ = Σ_j w_j δ_{(a_j, w_j)} (w = b, or (b, c) with biases and inputs x̃ = (x, 1)) and f_j(x) = a_j σ(⟨w_j, x̃⟩),

.. math::

    F_n(μ) = \frac{1}{α^2 n} \sum_i ℓ(α f(μ; x_i), y_i), \qquad
    ψ_μ(w) = \frac{1}{α n} \sum_i ℓ'(α f(μ; x_i), y_i)\, σ(⟨w, x̃_i⟩),

    ∇ψ_μ(w) = \frac{1}{α n} \sum_i ℓ'(α f(μ; x_i), y_i)\, σ'(⟨w, x̃_i⟩)\, x̃_i,

so that F'(μ)(a, w) = a ψ_μ(w) and the particles move by ȧ_j = −ψ_μ(w_j), ẇ_j = −a_j ∇ψ_μ(w_j), as for the
population risk. With a vector output (the cross-entropy loss over K classes) a_j ∈ R^K, ψ_μ ∈ R^K has one row
ℓ'_k per output, F'(μ)(a, w) = ⟨a, ψ_μ(w)⟩ and ẇ_j = −Σ_k a_jk ∇ψ_μ,k(w_j).

Per evaluation: tiles of data columns, each the matrix product Z = W X̃ᵀ, one elementwise pass (σ, σ', the
predictions f = (w ⊙ a)ᵀσ(Z), the loss derivatives r) and the products σ(Z) r and (σ'(Z) ⊙ r) X̃ — O(m n d) work and
O(m · tile) memory, exact for any activation.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_bool, check_positive_int
from .activations import as_activation
from .data import DataSet
from .losses import Loss, as_loss
from .measure import ParticleMeasure
from .network import Network, augmented_inputs
from .penalties import Penalty
from .problem import BoundProblem, Evaluation, Objective

__all__ = ["EmpiricalProblem", "augmented_inputs", "check_tile_memory"]

#: Tiles of the data pass hold the backend's tile_elements / 2^4 entries (2^18 on the CPU): their elementwise pass
#: then runs from cache (benchmarks/empirical.py measured 1.5–2× over 2^22 at m = 4096, n = 10⁴, d = 100).
DATA_TILE_SHIFT = 4


def check_tile_memory(backend, n: int, width: int, m: int, tile_elements: int, what: str = "the data set") -> int:
    """The number of data columns per tile for m particles, after checking that the data (n × width) and three tiles
    of m × columns entries fit in the backend's free memory; a one-line MemoryError otherwise.

    Examples
    --------
    >>> import meanfield as mf
    >>> check_tile_memory(mf.get_backend("numpy"), n=1000, width=10, m=100, tile_elements=1 << 14)
    163
    """
    columns = max(1, min(n, tile_elements // max(1, m)))
    itemsize = backend.itemsize
    needed = itemsize * (n * width + 3 * m * columns + 2 * m * width)
    free = backend.free_memory()
    if free is not None and needed > free:
        raise MemoryError(f"{what} needs {needed / 2**30:.3g} GiB on {backend!r} (the data, n = {n} × {width}, and "
                          f"tiles of {m} × {columns}) but {free / 2**30:.3g} GiB are free: use fewer samples or "
                          "particles, or a smaller tile_elements")
    return columns


class EmpiricalProblem(Objective):
    r"""The empirical risk of a :class:`~meanfield.data.DataSet` under a loss, for a unit with or without biases.

    Parameters
    ----------
    data : DataSet
        Inputs X (n, d), labels y and an optional held-out split.
    loss : {"squared", "logistic", "cross_entropy"} or Loss
        ½(f − y)², log(1 + e^{−yf}) (labels ±1), or the cross-entropy of K classes (labels 0 … K − 1) with a vector
        output layer (particles :class:`~meanfield.measure.MultiOutputMeasure`, e.g.
        ``mf.init.gaussian(m, d, outputs=K)``), :mod:`meanfield.losses`.
    activation : Activation or str
        Any unit of :mod:`meanfield.activations` (no closed form is needed on data), or its name, one of
        {"relu", "leaky_relu", "abs", "relu2", "relu3", "erf", "gelu", "tanh", "sigmoid", "silu", "softplus"}
        (``slope`` for "leaky_relu").
    slope : float
        α for ``activation="leaky_relu"`` (ignored otherwise).
    bias : bool
        Neurons σ(⟨b, x⟩ + c) (particles :class:`~meanfield.measure.BiasedMeasure`).
    penalty : Penalty or (name, λ), optional
        λ ∫ r dμ added to the risk (:mod:`meanfield.penalties`).
    output_scale : float
        α: the predictor α f(μ) and the loss ℓ/α² (:class:`~meanfield.Problem`).
    tile_elements : int, optional
        Particle × sample entries held at once (by default the backend's tile_elements / 16, which keeps the
        elementwise pass in cache).
    output : {"trained", "fixed"}
        "fixed" keeps the output weights at their initial values (:class:`~meanfield.network.Network`).

    Notes
    -----
    The risk the flow reports (and cannot increase) is the objective F_n(μ) + λ∫r dμ of the formula in
    :mod:`meanfield.empirical`; every save records, besides, ``train_loss`` = (1/n) Σ ℓ(α f(μ; x_i), y_i), and
    ``test_loss`` on the held-out split; with the logistic loss also ``train_accuracy``, ``test_accuracy`` and the
    normalised margin ``margin`` = min_i y_i f(μ; x_i) / ∫|a||w| dμ.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.data import DataSet
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((200, 2))
    >>> problem = mf.EmpiricalProblem(DataSet(x, np.sign(x[:, 0])), loss="logistic", bias=True)
    >>> mu0 = mf.init.gaussian(32, 2, seed=0, bias_std=0.5)
    >>> traj = mf.simulate(problem, mu0, t_max=20.0, dt=0.5)
    >>> bool(traj.observables["train_accuracy"][-1] > 0.9)
    True
    """

    def __init__(self, data: DataSet, loss: str | Loss = "squared", activation="relu", slope: float = 0.01,
                 bias: bool = False, penalty: Penalty | tuple | None = None, output_scale: float = 1.0,
                 tile_elements: int | None = None, output: str = "trained"):
        if not isinstance(data, DataSet):
            raise TypeError(f"data must be a meanfield.data.DataSet, got {type(data).__name__}; build one with "
                            "DataSet(x, y)")
        loss = as_loss(loss)
        loss.check_labels(data.y, "y")
        if data.has_test:
            loss.check_labels(data.y_test, "y_test")
        unit = as_activation(activation, slope if activation == "leaky_relu" else None)
        bias = check_bool(bias, "bias")
        outputs = loss.outputs(data.y)  # K for a vector output layer, None for a scalar output
        if outputs is not None and data.has_test and int(data.y_test.max()) >= outputs:
            raise ValueError(f"y_test holds class {int(data.y_test.max())}, which the {outputs} outputs inferred "
                             "from the training labels do not have: give loss=CrossEntropy(classes=K) with K above "
                             "every class")
        super().__init__(Network(unit, data.d, bias, outputs, output, output_scale), penalty)
        self.data, self.loss = data, loss
        self.labels = self.loss.encode(data.y, self.outputs)
        self.tile_elements = None if tile_elements is None else check_positive_int(tile_elements, "tile_elements")
        #: The inputs x̃_i as the flow uses them: (x_i, 1) with biases, x_i otherwise.
        self.features = self.network.features(data.x)

    def spec(self) -> dict:
        return {"data": self.data.spec(), **self.loss.spec(), **self.network.spec(),
                **({"tile_elements": self.tile_elements} if self.tile_elements else {}),  # it orders the sums
                **self.regularisation_spec()}

    def arrays(self) -> dict:
        return self.data.arrays()

    @property
    def risk_scale(self) -> float:
        """The loss of the zero predictor, (1/n) Σ ℓ(0, y_i) / α²."""
        return self.loss.value_at_zero(self.data.y) / self.output_scale**2

    def hidden_subspace(self):
        return None

    # -- the field on a data set -------------------------------------------------------------------------------
    def assemble(self, bound: BoundProblem, state, weights) -> Evaluation:
        x = bound.constant("features", lambda nx: nx.asarray(self.features))
        y = bound.constant("labels", lambda nx: nx.asarray(self.labels))
        a, neurons = self.network.layout.split(state)
        coef = weights * a if a.ndim == 1 else weights[:, None] * a
        columns = self.tile_columns(bound, state.shape[0])
        psi, grad, loss = self.network.data_pass(bound.backend, a, neurons, x, y, self.loss, columns,
                                                 lambda values, slopes, xi: self.network.output_of(values, coef),
                                                 self.output_scale)
        return Evaluation(psi, grad, loss)

    def tile_columns(self, bound: BoundProblem, m: int) -> int:
        """Data columns per tile for m particles on the bound backend (checked against its free memory once)."""
        key = f"columns_{m}"
        return bound.constant(key, lambda nx: check_tile_memory(nx, self.data.n, self.features.shape[1], m,
                                                                self.tile_elements
                                                                or nx.tile_elements >> DATA_TILE_SHIFT))

    # -- what a run records --------------------------------------------------------------------------------------
    def predict(self, mu: ParticleMeasure, x) -> np.ndarray:
        """The predictor α f(μ; x) on an (n, d) array of inputs."""
        return self.output_scale * super().predict(mu, x)

    def losses(self, mu: ParticleMeasure, split: str = "train") -> np.ndarray:
        """ℓ(α f(μ; x_i), y_i) on the training (``"train"``) or held-out (``"test"``) split."""
        x, y = self._split(split)
        from .kernels import get_backend

        return self.loss.value(self.predict(mu, x), self.loss.encode(y, self.outputs), get_backend("numpy"))

    def accuracy(self, mu: ParticleMeasure, split: str = "train") -> float:
        """The fraction of samples classified right: y_i f(μ; x_i) > 0 (labels ±1), or argmax_k f_k(μ; x_i) = y_i
        (classes)."""
        x, y = self._split(split)
        prediction = self.predict(mu, x)
        if self.outputs is not None:
            return float(np.mean(np.argmax(prediction, axis=1) == y))
        return float(np.mean(y * prediction > 0))

    def margin(self, mu: ParticleMeasure) -> float:
        """The normalised margin min_i y_i f(μ; x_i) / ∫ |a| |w| dμ on the training set (w = (b, c) with biases): the
        quantity the logistic flow maximises in the limit (Chizat & Bach 2020, arXiv:2002.04486)."""
        state = mu.state()
        norm = float(mu.weights @ (np.abs(state[:, 0]) * np.linalg.norm(state[:, 1:], axis=1)))
        return float(np.min(self.data.y * self.predict(mu, self.data.x))) / (self.output_scale * norm)

    def _split(self, split: str):
        if split == "train":
            return self.data.x, self.data.y
        if split == "test":
            if not self.data.has_test:
                raise ValueError("this data set has no held-out split: build it with DataSet(x, y, x_test, y_test)")
            return self.data.x_test, self.data.y_test
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")

    def default_observables(self) -> dict:
        out = dict(super().default_observables())
        out.pop("predictor_risk", None)  # train_loss is that risk
        out["train_loss"] = lambda mu: float(np.mean(self.losses(mu)))
        splits = ("train", "test") if self.data.has_test else ("train",)
        if self.data.has_test:
            out["test_loss"] = lambda mu: float(np.mean(self.losses(mu, "test")))
        if self.loss.classification:
            for split in splits:
                out[f"{split}_accuracy"] = lambda mu, split=split: self.accuracy(mu, split)
            if self.outputs is None:
                out["margin"] = self.margin
        return out

    def batch_loss(self, prediction, y, nx):
        """mean ℓ(α f(x_i), y_i) / α² over a batch (the SGD trainer's loss, on its arrays)."""
        alpha = self.output_scale
        return self.loss.value(alpha * prediction, y, nx).mean() * (1.0 / (alpha * alpha))

    def predictor_risk(self, mu: ParticleMeasure, backend="auto") -> float:
        """The training loss (1/n) Σ ℓ(α f(μ; x_i), y_i), without the penalty."""
        return float(np.mean(self.losses(mu)))
