r"""The network a mean-field flow trains: the unit, the input dimension, biases, the output layer and its scale.

One :class:`Network` describes the two-layer network f(θ; x) = Σ_j w_j a_j σ(⟨b_j, x⟩ + c_j) of particles
θ_j = (a_j, b_j, c_j) with masses w_j: its output layer (a scalar, K outputs, output weights trained or *fixed* as in
a soft committee machine), whether the neurons have biases c_j, and the output scale α of the predictor α f. It owns

- the particle layout (:class:`Layout`): which columns of the solvers' state [a | b | c] are the output weights a,
  the input weights b and the biases c, and the particle type of its measures (:func:`particle_type`, the one place
  that decides it);
- the forward pass f(θ; x), written once against the array namespace of a backend (numpy arrays, torch tensors):
  :meth:`Network.forward`, which the measures' ``predict``, the teacher networks and the torch module of SGD
  (:class:`~meanfield.torch_sgd.TwoLayerNetwork`) run, and its tiled form over a data set,
  :meth:`Network.data_pass`, which the empirical and linearised flows run;
- the features x̃ = (x, 1) of neurons with biases (so that ⟨(b, c), x̃⟩ = ⟨b, x⟩ + c), and the description files store
  (:meth:`Network.spec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_bool, check_positive_int, check_scale
from .activations import Activation, as_activation
from .measure import BiasedMeasure, MultiOutputMeasure, ParticleMeasure, RingMeasure, multi_output_type

__all__ = ["Network", "Layout", "particle_type", "spec_particle_type", "augmented_inputs", "OUTPUT_LAYERS"]

#: How the output weights a_j behave: moved by the dynamics like the rest of θ_j, or kept at their initial values
#: (the soft committee machines of Saad & Solla 1995 and the teacher–student landscape of Safran & Shamir 2018).
OUTPUT_LAYERS = ("trained", "fixed")


def particle_type(outputs: int | None = None, bias: bool = False) -> type:
    """The particle type of neurons with ``outputs`` output weights (None: one scalar output weight) and biases.

    Examples
    --------
    >>> from meanfield.network import particle_type
    >>> particle_type().__name__, particle_type(bias=True).__name__, particle_type(3, bias=True).__name__
    ('ParticleMeasure', 'BiasedMeasure', 'MultiOutputMeasureBiased3')
    """
    if outputs is not None:
        return multi_output_type(outputs, bias)
    return BiasedMeasure if bias else ParticleMeasure


def augmented_inputs(x: np.ndarray, bias: bool) -> np.ndarray:
    """x̃ = (x, 1) with biases (so that ⟨(b, c), x̃⟩ = ⟨b, x⟩ + c), x otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> augmented_inputs(np.zeros((2, 3)), bias=True).tolist()
    [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]]
    """
    return np.column_stack([x, np.ones(x.shape[0])]) if bias else x


@dataclass(frozen=True)
class Layout:
    """The columns of a particle state [a | b (| c)]: K output weights a (one for a scalar output), the d input
    weights b and, with biases, the bias c in the last column. The coordinates w = (b, c) of a neuron are the columns
    after a; files store them as the rows of ``particles/b``.

    Parameters
    ----------
    outputs : int, optional
        K for a vector output layer (a_j ∈ R^K, state columns 0 … K − 1); None for a scalar output (column 0).
    bias : bool
        Whether the last column is a bias.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.network import Layout
    >>> layout = Layout(outputs=2, bias=True)
    >>> state = np.arange(10.0).reshape(2, 5)            # [a_1 a_2 | b_1 b_2 | c]
    >>> layout.output_weights(state).tolist(), layout.neurons(state).shape, layout.measure_type.__name__
    ([[0.0, 1.0], [5.0, 6.0]], (2, 3), 'MultiOutputMeasureBiased2')
    """

    outputs: int | None = None
    bias: bool = False

    @property
    def output_columns(self) -> int:
        """The number of state columns of the output weights: K, or 1 for a scalar output."""
        return self.outputs or 1

    @property
    def measure_type(self) -> type:
        """The particle type of measures of this layout (:func:`particle_type`)."""
        return particle_type(self.outputs, self.bias)

    def output_weights(self, state):
        """The output weights of a state (any backend's array): (m,) for a scalar output, (m, K) otherwise."""
        return state[:, 0] if self.outputs is None else state[:, :self.outputs]

    def neurons(self, state):
        """The coordinates w = (b, c) of a state (any backend's array): (m, d + bias)."""
        return state[:, self.output_columns:]

    def split(self, state):
        """(output weights, coordinates w) of a state."""
        return self.output_weights(state), self.neurons(state)

    def spec(self) -> dict:
        """The layout as a problem description records it (nothing for the scalar layout without biases, so that
        files written before layouts were recorded read the same)."""
        return {**({"bias": True} if self.bias else {}), **({"outputs": self.outputs} if self.outputs else {})}

    @classmethod
    def from_spec(cls, spec: dict) -> Layout:
        """The layout a problem description records (``bias``, ``outputs``; both absent: scalar, no biases)."""
        return cls(spec.get("outputs") or None, bool(spec.get("bias")))


def spec_particle_type(spec: dict) -> type:
    """The particle type of a run from its problem description: rings for a low-dimensional reduction, else the
    neurons of the layout the description records (:meth:`Layout.from_spec`).

    Examples
    --------
    >>> from meanfield.network import spec_particle_type
    >>> spec_particle_type({"bias": True}).__name__, spec_particle_type({"reduction": "low_dimensional"}).__name__
    ('BiasedMeasure', 'RingMeasure')
    """
    if spec.get("reduction") == "low_dimensional":
        return RingMeasure
    return Layout.from_spec(spec).measure_type


@dataclass(frozen=True)
class Network:
    r"""A two-layer network f(θ; x) = Σ_j w_j a_j σ(⟨b_j, x⟩ + c_j): the unit σ, the input dimension d, biases, the
    output layer and the output scale α of the predictor α f.

    Parameters
    ----------
    unit : Activation or str
        σ (:mod:`meanfield.activations`), or its name.
    d : int
        Input dimension.
    bias : bool
        Neurons with biases c_j.
    outputs : int, optional
        K for a vector output layer a_j ∈ R^K (a K-class classifier); None for a scalar output.
    output : {"trained", "fixed"}
        Whether the dynamics move the output weights or keep them at their initial values (a soft committee machine:
        the state keeps its a column(s), the velocity's a-part is zero).
    output_scale : float
        α of the predictor α f(μ) (:class:`~meanfield.Problem`).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.network import Network
    >>> net = Network("erf", d=2, output="fixed")
    >>> mu = mf.ParticleMeasure([1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]])
    >>> x = np.array([[0.5, -0.5]])
    >>> bool(np.allclose(net.predict(mu, x), 0.5 * (mf.activations.as_activation("erf")(x) @ [1.0, 1.0])))
    True
    >>> net.layout, net.measure_type.__name__, net.moving_columns(mu.state().shape[1]).tolist()
    (Layout(outputs=None, bias=False), 'ParticleMeasure', [0.0, 1.0, 1.0])
    """

    unit: Activation
    d: int
    bias: bool = False
    outputs: int | None = None
    output: str = "trained"
    output_scale: float = 1.0
    layout: Layout = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "unit", as_activation(self.unit))
        set_(self, "d", check_positive_int(self.d, "d"))
        set_(self, "bias", check_bool(self.bias, "bias"))
        if self.outputs is not None:
            set_(self, "outputs", check_positive_int(self.outputs, "outputs"))
        if self.output not in OUTPUT_LAYERS:
            raise ValueError(f"output must be one of {', '.join(map(repr, OUTPUT_LAYERS))}, got {self.output!r}")
        set_(self, "output_scale", check_scale(self.output_scale, "output_scale"))
        set_(self, "layout", Layout(self.outputs, self.bias))

    # -- the layout ------------------------------------------------------------------------------------------------
    @property
    def measure_type(self) -> type:
        """The particle type of this network's measures."""
        return self.layout.measure_type

    @property
    def output_columns(self) -> int:
        """Output weights per neuron: 1, or K for a vector output layer."""
        return self.layout.output_columns

    @property
    def fixed_outputs(self) -> bool:
        """Whether the output weights stay at their initial values."""
        return self.output == "fixed"

    def moving_columns(self, width: int) -> np.ndarray:
        """A (width,) mask of the state columns the dynamics move: all of them, or all but the output weights'
        when they are fixed."""
        mask = np.ones(width)
        if self.fixed_outputs:
            mask[:self.output_columns] = 0.0
        return mask

    def check_measure(self, mu) -> None:
        """Raise a one-line error unless ``mu`` holds neurons of this network (its dimension, outputs and biases)."""
        if not isinstance(mu, ParticleMeasure):
            raise TypeError(f"expected a ParticleMeasure, got {type(mu).__name__}")
        if self.outputs is not None:
            if not isinstance(mu, MultiOutputMeasure) or mu.outputs != self.outputs or mu.bias != self.bias:
                raise ValueError(f"the problem has {self.outputs} outputs{' and biases' if self.bias else ''}: give "
                                 f"neurons with {self.outputs} output weights, e.g. mf.init.gaussian(m, d, "
                                 f"outputs={self.outputs}{', bias_std=…' if self.bias else ''}), got {mu!r}")
            if mu.d != self.d:
                raise ValueError(f"the measure's neurons have dimension {mu.d} but the problem has d = {self.d}")
            return
        if mu.d != self.d:
            raise ValueError(f"the measure's neurons have dimension {mu.d} but the problem has d = {self.d}")
        if mu.output_columns != 1:
            raise ValueError(f"the problem has a scalar output but the neurons have {mu.output_columns} output "
                             "weights: give neurons with one output weight")
        biased = isinstance(mu, BiasedMeasure)
        if biased != self.bias:
            fix = ("give the neurons biases (mf.BiasedMeasure.with_biases(mu, 0.0), or an init with bias_std)"
                   if self.bias else "use Problem(..., bias=True) or a measure without biases")
            raise ValueError(f"the problem {'has' if self.bias else 'has no'} biases but the measure "
                             f"{'has' if biased else 'has no'} biases: {fix}")

    # -- the forward pass ------------------------------------------------------------------------------------------
    def features(self, x) -> np.ndarray:
        """x̃ = (x, 1) for neurons with biases, x otherwise (numpy, (n, d + bias))."""
        return augmented_inputs(np.asarray(x, dtype=np.float64), self.bias)

    def forward(self, a, b, c, weights, x, nx=None):
        r"""f(θ; x) = Σ_j w_j a_j σ(⟨b_j, x⟩ + c_j) on an (n, d) batch of inputs: (n,) for a scalar output, (n, K)
        otherwise, on any backend's arrays (``nx`` the backend, numpy by default).

        Parameters
        ----------
        a : array (m,) or (m, K)
            Output weights.
        b : array (m, d)
            Input weights.
        c : array (m,) or None
            Biases (None: neurons without biases).
        weights : array (m,) or None
            Particle masses w_j (None: the output weights are the network's own, as for a teacher network).
        x : array (n, d)
        nx : Backend, optional

        Examples
        --------
        >>> import numpy as np
        >>> from meanfield.network import Network
        >>> net = Network("relu", d=2, bias=True)
        >>> net.forward(np.array([2.0]), np.array([[1.0, 0.0]]), np.array([0.5]), np.array([1.0]),
        ...             np.array([[1.0, 3.0], [-1.0, 0.0]])).tolist()
        [3.0, 0.0]
        """
        if nx is None:
            from .kernels.base import get_backend

            nx = get_backend("numpy")
        z = x @ b.T
        if c is not None:
            z = z + c
        if weights is not None:
            a = weights * a if a.ndim == 1 else weights[:, None] * a
        return nx.unit_value(self.unit, z) @ a

    def predict(self, mu, x) -> np.ndarray:
        """f(μ; x) on an (n, d) array of inputs (numpy): the forward pass of the particles of ``mu``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != mu.d:
            raise ValueError(f"predict needs inputs of shape (n, {mu.d}) for neurons of dimension {mu.d}, "
                             f"got shape {x.shape}")
        return self.forward(mu.a, mu.b, getattr(mu, "c", None), mu.weights, x)

    def output_of(self, values, coef):
        """The forward pass's last step on a neurons × samples array ``values`` of σ(⟨w_j, x̃_i⟩): Σ_j coef_j
        values_ji, (n,) or (n, K) for coef = (w_j a_j) of shape (m,) or (m, K)."""
        return coef @ values if coef.ndim == 1 else values.T @ coef

    def data_pass(self, nx, a, neurons, x, y, loss, columns: int, output, alpha: float = 1.0):
        r"""The forward pass over a data set in tiles of ``columns`` samples, with the first variation it drives:

        .. math::

            f_i = α\, \mathrm{output}(σ(W x̃_i)), \quad r_i = ℓ'(f_i, y_i) / (α n), \quad
            ψ_j = Σ_i σ(⟨w_j, x̃_i⟩) r_i, \quad G_j = Σ_i σ'(⟨w_j, x̃_i⟩)\, ⟨a_j, r_i⟩\, x̃_i,

        and the loss Σ_i ℓ(f_i, y_i) / (n α²). Each tile is the matrix product Z = W X̃ᵀ, one elementwise pass
        (σ, σ' and the predictions) and the products σ(Z) r and (σ'(Z) ⊙ r) X̃: O(m n d) work, O(m · columns) memory.

        Parameters
        ----------
        nx : Backend
        a : array (m,) or (m, K)
            What the loss derivatives are contracted with in G (the output weights; 1 for the tangent coordinates
            of a linearised flow).
        neurons : array (m, d + bias)
            The coordinates w_j = (b_j, c_j) at which σ is evaluated.
        x, y : arrays (n, d + bias), (n,) or (n, K)
            Features x̃_i (:meth:`features`) and labels as the loss takes them.
        loss : Loss
        columns : int
            Samples per tile.
        output : callable(values, slopes, x_tile) -> f
            The predictions of a tile from σ(Z) and σ'(Z): the network's own, :meth:`output_of` with the coefficients
            w_j a_j, or the tangent predictor of a linearised flow.
        alpha : float
            The output scale α.

        Returns
        -------
        (ψ, G, loss)

        Examples
        --------
        The squared loss of one ReLU neuron on two samples, against the formula:

        >>> import numpy as np, meanfield as mf
        >>> from meanfield.network import Network
        >>> net, nx = Network("relu", d=1), mf.get_backend("numpy")
        >>> a, w, x, y = np.array([2.0]), np.array([[1.0]]), np.array([[1.0], [3.0]]), np.array([1.0, 0.0])
        >>> psi, grad, loss = net.data_pass(nx, a, w, x, y, mf.losses.as_loss("squared"), 2,
        ...                                 output=lambda v, s, xi: net.output_of(v, a))
        >>> f = 2.0 * np.maximum(x[:, 0], 0)
        >>> bool(np.isclose(loss, np.mean(0.5 * (f - y) ** 2))), bool(np.isclose(psi[0], np.mean((f - y) * x[:, 0])))
        (True, True)
        """
        m, n = neurons.shape[0], x.shape[0]
        vector = getattr(a, "ndim", 0) == 2
        psi, grad = nx.zeros((m, a.shape[1]) if vector else (m,)), nx.zeros(tuple(neurons.shape))
        total = 0.0
        for i0 in range(0, n, columns):
            xi, yi = x[i0:i0 + columns], y[i0:i0 + columns]
            values, slopes = nx.unit_values(self.unit, neurons @ xi.T)
            f = alpha * output(values, slopes, xi)
            total += float(loss.value(f, yi, nx).sum())
            r = loss.derivative(f, yi, nx) * (1.0 / (alpha * n))
            psi += values @ r
            slopes *= a @ r.T if vector else r  # vector outputs: ∇ contracted with a_j here
            grad += slopes @ xi
        return psi, grad, total / (n * alpha * alpha)

    # -- description and the finite network -----------------------------------------------------------------------
    def spec(self) -> dict:
        """The network as a problem description records it: the unit, the layout, and ``output = "fixed"`` for fixed
        output weights (the output scale is recorded with the regularisation, as before)."""
        return {**self.unit.spec(), **self.layout.spec(), **({"output": "fixed"} if self.fixed_outputs else {})}

    def module(self, mu, device="cpu", dtype: str = "float64"):
        """The torch module of the finite network of ``mu`` (:class:`~meanfield.torch_sgd.TwoLayerNetwork`), running
        :meth:`forward`.

        Examples
        --------
        >>> import numpy as np, torch, meanfield as mf
        >>> from meanfield.network import Network
        >>> mu = mf.init.gaussian(3, 2, seed=0)
        >>> module = Network("tanh", d=2).module(mu)
        >>> x = np.ones((4, 2))
        >>> bool(np.allclose(module(torch.tensor(x)).detach().numpy(), mu.predict(x, "tanh")))
        True
        """
        from .torch_sgd import TwoLayerNetwork

        self.check_measure(mu)
        return TwoLayerNetwork.from_measure(mu, device, dtype, self.unit, network=self)
