"""Particle measures: μ = Σ_j w_j δ_{(a_j, b_j)} over neurons (a, b) ∈ R × R^d (:class:`ParticleMeasure`), and the
reduced coordinates of a low-dimensional flow, rings of neurons (a, u, r) (:class:`RingMeasure`)."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np

from ._validation import as_float_array

__all__ = ["ParticleMeasure", "BiasedMeasure", "RingMeasure", "MultiOutputMeasure", "multi_output_type"]


def _masses(weights, m: int) -> np.ndarray:
    """Positive particle masses summing to 1 (uniform by default; others are normalised, with a warning)."""
    if weights is None:
        return np.full(m, 1.0 / m)
    weights = as_float_array(weights, "weights", shape=(m,))
    if np.any(weights <= 0):
        raise ValueError("weights must all be > 0")
    total = weights.sum()
    if abs(total - 1.0) > 1e-12 * weights.size:  # far above the round-off of a normalised sum
        warnings.warn(f"particle weights sum to {total:.6g}, not 1: they were divided by their sum (pass "
                      "weights / weights.sum() to silence this)", stacklevel=3)
    return weights / total


def _check_rows(a: np.ndarray, coordinates: np.ndarray, name: str) -> None:
    if a.shape[0] != coordinates.shape[0]:
        raise ValueError(f"a has {a.shape[0]} particles but {name} has {coordinates.shape[0]} rows; they must match")
    if a.shape[0] < 1:
        raise ValueError("a particle measure needs at least one particle (m >= 1)")
    for what, array in (("a (output weights)", a), (name, coordinates)):
        if array.ndim == 2 and array.shape[1] < 1:
            raise ValueError(f"{what} has shape {array.shape}: a particle needs at least one column there "
                             "(input dimension d >= 1, outputs K >= 1)")


class _Particles:
    """What every particle type shares: output weights ``a``, masses ``weights``, and the (m, 1 + k) state
    [a | coordinates] that the solvers integrate."""

    __slots__ = ()
    #: Columns of the output weights in the state (K for a vector output layer).
    output_columns = 1

    @property
    def m(self) -> int:
        """Number of particles."""
        return self.a.shape[0]

    @property
    def uniform(self) -> bool:
        return bool(np.all(self.weights == self.weights[0]))

    @property
    def width(self) -> int:
        """Columns of the coordinates in the state [a | coordinates] (the rows of ``particles/b`` in files)."""
        return sum(1 if getattr(self, name).ndim == 1 else getattr(self, name).shape[1]
                   for name in self.coordinate_names)

    def arrays(self) -> dict:
        """The particles by name (``a`` and the coordinates), as a checkpoint stores them."""
        return {name: getattr(self, name) for name in ("a",) + self.coordinate_names}

    def replaced(self, **arrays):
        """The same kind of measure with some of its arrays replaced (e.g. ``mu.replaced(b=mu.b @ T.T)``); the others,
        biases included, are kept."""
        unknown = sorted(set(arrays) - {"a", *self.coordinate_names})
        if unknown:
            names = ", ".join(("a",) + self.coordinate_names)
            raise ValueError(f"{type(self).__name__} has no arrays {unknown}; it has {names}")
        return type(self).from_arrays({**self.arrays(), **arrays}, self.weights)

    @classmethod
    def from_arrays(cls, arrays: dict, weights=None):
        return cls(*(np.asarray(arrays[name], dtype=np.float64) for name in ("a",) + cls.coordinate_names),
                   weights=weights)

    def state(self) -> np.ndarray:
        """The particles as one (m, 1 + k) array [a | coordinates], the state the solvers integrate."""
        columns = [getattr(self, name) for name in self.coordinate_names]
        return np.column_stack([self.a] + columns)

    def coordinates(self) -> np.ndarray:
        """The state without its output-weight columns (what files store as ``particles/b``)."""
        return self.state()[:, self.output_columns:]

    def checksum(self) -> str:
        """SHA-1 of the state (how a resumed run checks that it continues from the same initialisation)."""
        return hashlib.sha1(np.ascontiguousarray(self.state()).tobytes()).hexdigest()

    def copy(self):
        return type(self).from_state(self.state(), self.weights.copy())

    def __repr__(self):
        return f"{type(self).__name__}(m={self.m}, d={self.d})"


class ParticleMeasure(_Particles):
    r"""A weighted particle measure over neurons θ = (a, b): the predictor is f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩),

    .. math::

        \mu = \sum_j w_j\, \delta_{(a_j, b_j)}, \qquad
        f(\mu; x) = \int a\, \sigma(\langle b, x\rangle)\, d\mu(a, b) = \sum_j w_j a_j\, \sigma(\langle b_j, x\rangle).

    Parameters
    ----------
    a : array (m,)
        Output weights.
    b : array (m, d)
        Input weights, one neuron per row.
    weights : array (m,), optional
        Positive particle masses summing to 1 (masses that do not are normalised, with a warning). Uniform (1/m)
        by default.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> mu = mf.ParticleMeasure(np.array([1.0, -1.0]), np.eye(2))
    >>> mu.m, mu.d, mu.weights.tolist()
    (2, 2, [0.5, 0.5])
    """

    __slots__ = ("a", "b", "weights")
    coordinate_names = ("b",)
    #: Whether the neurons have biases (the last state column); K output weights (None: a scalar output).
    bias = False
    outputs = None

    def __init__(self, a, b, weights=None):
        a = as_float_array(a, "a (output weights)", ndim=1)
        b = as_float_array(b, "b (input weights)", ndim=2)
        _check_rows(a, b, "b")
        self.a, self.b, self.weights = a, b, _masses(weights, a.shape[0])

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.b.shape[1]

    @property
    def layout(self):
        """Which columns of :meth:`state` are a, b and c (:class:`~meanfield.network.Layout`)."""
        from .network import Layout

        return Layout(self.outputs, self.bias)

    def predict(self, x, activation=0.0) -> np.ndarray:
        """f(μ; x) = Σ_j w_j a_j σ(⟨b_j, x⟩ + c_j) on an (n, d) array of inputs (the forward pass
        :meth:`meanfield.network.Network.forward`); ``activation`` an :class:`~meanfield.activations.Activation` or a
        leaky slope (0, the default, is the ReLU). The problem's :meth:`~meanfield.Problem.predict` takes its own
        activation. An (n,) array, or (n, K) for K output weights."""
        from .activations import as_activation
        from .network import Network

        return Network(as_activation(activation), self.d, self.bias, self.outputs).predict(self, x)

    @classmethod
    def from_state(cls, state, weights=None) -> ParticleMeasure:
        """The measure of a solver state [a | b]."""
        state = np.asarray(state, dtype=np.float64)
        return cls(state[:, 0].copy(), state[:, 1:].copy(), weights)


class BiasedMeasure(ParticleMeasure):
    """Neurons with biases θ = (a, b, c): the predictor is f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩ + c_j). The solvers' state is
    [a | b | c]; trajectory files store [b | c] as the rows of ``particles/b``.

    Parameters
    ----------
    a : array (m,)
        Output weights.
    b : array (m, d)
        Input weights.
    c : array (m,)
        Biases.
    weights : array (m,), optional
        Particle masses, as for :class:`ParticleMeasure`.

    Examples
    --------
    >>> import numpy as np
    >>> mu = BiasedMeasure(np.ones(2), np.eye(2), np.array([0.5, -1.0]))
    >>> mu.d, mu.state().shape, mu.predict(np.zeros((1, 2))).tolist()
    (2, (2, 4), [0.25])
    """

    __slots__ = ("c",)
    coordinate_names = ("b", "c")
    bias = True

    def __init__(self, a, b, c, weights=None):
        super().__init__(a, b, weights)
        c = as_float_array(c, "c (biases)", ndim=1)
        _check_rows(self.a, c[:, None], "c")
        self.c = c

    @classmethod
    def from_state(cls, state, weights=None) -> BiasedMeasure:
        """The measure of a solver state [a | b | c]."""
        state = np.asarray(state, dtype=np.float64)
        return cls(state[:, 0].copy(), state[:, 1:-1].copy(), state[:, -1].copy(), weights)

    @classmethod
    def with_biases(cls, mu: ParticleMeasure, c) -> BiasedMeasure:
        """The neurons of ``mu`` given biases ``c`` (an (m,) array or a scalar)."""
        return cls(mu.a, mu.b, np.broadcast_to(np.asarray(c, dtype=np.float64), (mu.m,)).copy(), mu.weights)


class RingMeasure(_Particles):
    r"""Reduced particles of a flow whose target depends on x only through Qᵀx: particle j stands for the ring of
    neurons (a_j, Q u_j + r_j e), e uniform over the unit sphere of H^⊥ = span(Q)^⊥ (Hajjar & Chizat 2023,
    arXiv:2211.08771, §4.2). These are not neurons; :meth:`~meanfield.reduced.LowDimReducedProblem.lift` draws
    neurons from them and :meth:`~meanfield.reduced.LowDimReducedProblem.reduce` maps neurons to them.

    Parameters
    ----------
    a : array (m,)
        Output weights.
    u : array (m, d_H)
        The component of the input weights in H (coordinates in the basis Q).
    r : array (m,)
        The norm |b_⊥| ≥ 0 of the component orthogonal to H.
    weights : array (m,), optional
        Particle masses, as for :class:`ParticleMeasure`.

    Examples
    --------
    >>> import numpy as np
    >>> nu = RingMeasure(np.ones(3), np.zeros((3, 2)), np.ones(3))
    >>> nu.m, nu.d_hidden, nu.state().shape
    (3, 2, (3, 4))
    """

    __slots__ = ("a", "u", "r", "weights")
    coordinate_names = ("u", "r")

    def __init__(self, a, u, r, weights=None):
        a = as_float_array(a, "a (output weights)", ndim=1)
        u = as_float_array(u, "u (coordinates in H)", ndim=2)
        r = as_float_array(r, "r (norms in the orthogonal complement of H)", ndim=1)
        _check_rows(a, u, "u")
        _check_rows(a, r[:, None], "r")
        if np.any(r < 0):
            raise ValueError("r is a norm |b_⊥| and must be >= 0")
        self.a, self.u, self.r, self.weights = a, u, r, _masses(weights, a.shape[0])

    @property
    def d_hidden(self) -> int:
        """Dimension of H."""
        return self.u.shape[1]

    @property
    def d(self) -> int:
        """Reduced coordinates per particle: d_H + 1."""
        return self.u.shape[1] + 1

    @classmethod
    def from_state(cls, state, weights=None) -> RingMeasure:
        """The measure of a solver state [a | u | r]."""
        state = np.asarray(state, dtype=np.float64)
        return cls(state[:, 0].copy(), state[:, 1:-1].copy(), state[:, -1].copy(), weights)

    def repeat(self, n: int) -> RingMeasure:
        """Each particle n times (masses divided by n)."""
        return RingMeasure(np.repeat(self.a, n), np.repeat(self.u, n, axis=0), np.repeat(self.r, n),
                           np.repeat(self.weights, n) / n)


class MultiOutputMeasure(ParticleMeasure):
    r"""Neurons with a vector of K output weights, θ = (a, b) with a ∈ R^K (and a bias c with :func:`multi_output_type`
    ``(K, bias=True)``): the predictor is the vector f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩ + c_j) ∈ R^K, the network of a
    K-class classifier. The state is [a_1 … a_K | b (| c)]; a run's particle type carries K
    (:func:`multi_output_type`), so that a state can be split again.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.measure import MultiOutputMeasure
    >>> mu = MultiOutputMeasure(np.ones((2, 3)), np.eye(2))
    >>> mu.outputs, mu.state().shape, mu.predict(np.ones((1, 2))).tolist()
    (3, (2, 5), [[1.0, 1.0, 1.0]])
    """

    __slots__ = ("c",)
    coordinate_names = ("b",)
    bias = False

    def __init__(self, a, b, c=None, weights=None):
        a = as_float_array(a, "a (output weights)", ndim=2)
        b = as_float_array(b, "b (input weights)", ndim=2)
        _check_rows(a, b, "b")
        self.a, self.b, self.weights = a, b, _masses(weights, a.shape[0])
        self.c = None
        if self.bias:
            c = as_float_array(c, "c (biases)", ndim=1)
            _check_rows(a, c[:, None], "c")
            self.c = c
        elif c is not None:
            raise ValueError("these neurons have no biases: use multi_output_type(K, bias=True) for biased ones")

    @property
    def outputs(self) -> int:
        """K, the number of outputs."""
        return self.a.shape[1]

    @property
    def output_columns(self) -> int:
        return self.a.shape[1]

    @classmethod
    def from_arrays(cls, arrays: dict, weights=None):
        c = np.asarray(arrays["c"], dtype=np.float64) if cls.bias else None
        kind = multi_output_type(np.asarray(arrays["a"]).shape[1], cls.bias)
        return kind(np.asarray(arrays["a"], dtype=np.float64), np.asarray(arrays["b"], dtype=np.float64), c, weights)

    def state(self) -> np.ndarray:
        return np.column_stack([self.a, self.b] + ([self.c] if self.bias else []))

    @classmethod
    def from_state(cls, state, weights=None):
        if not hasattr(cls, "n_outputs"):
            raise TypeError("a state [a_1 … a_K | b] does not say K: use multi_output_type(K, bias).from_state")
        state = np.asarray(state, dtype=np.float64)
        k = cls.n_outputs
        end = state.shape[1] - 1 if cls.bias else state.shape[1]
        return cls(state[:, :k].copy(), state[:, k:end].copy(), state[:, -1].copy() if cls.bias else None, weights)

    def __repr__(self):
        return f"{type(self).__name__}(m={self.m}, d={self.d}, outputs={self.outputs})"


_MULTI_OUTPUT_TYPES: dict = {}


def multi_output_type(outputs: int, bias: bool = False) -> type:
    """The particle type of neurons with ``outputs`` output weights (and biases): a subclass of
    :class:`MultiOutputMeasure` that knows K, so that its ``from_state`` splits [a_1 … a_K | b (| c)].

    Examples
    --------
    >>> import numpy as np
    >>> kind = multi_output_type(3, bias=True)
    >>> mu = kind.from_state(np.arange(12.0).reshape(2, 6))
    >>> mu.a.shape, mu.b.shape, mu.c.tolist()
    ((2, 3), (2, 2), [5.0, 11.0])
    """
    key = (int(outputs), bool(bias))
    if key not in _MULTI_OUTPUT_TYPES:
        name = f"MultiOutputMeasure{'Biased' if bias else ''}{key[0]}"
        _MULTI_OUTPUT_TYPES[key] = type(name, (MultiOutputMeasure,), {
            "__slots__": (), "n_outputs": key[0], "bias": key[1],
            "coordinate_names": ("b", "c") if bias else ("b",), "__module__": __name__})
    return _MULTI_OUTPUT_TYPES[key]


def measure_type(spec: dict) -> type:
    """The particle type of a run from its problem description (:func:`meanfield.network.spec_particle_type`)."""
    from .network import spec_particle_type

    return spec_particle_type(spec)
