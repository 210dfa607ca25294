r"""The torch side of SGD: the finite network of a particle measure (:class:`TwoLayerNetwork`), its data and its
stepping rule (:class:`SGDStep`); :func:`meanfield.sgd.train` runs it (and imports torch only then).

Finite-width two-layer networks in torch, trained by SGD, from the same description as the mean-field flow.

The network of a particle measure μ = Σ_j w_j δ_{(a_j, b_j)} is f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩) (1/m output scaling for
uniform weights; σ(⟨b_j, x⟩ + c_j) for neurons with biases). Training minimises ½ mean_batch (f(x) − f*(x))² and
moves each neuron by η / w_j times its own gradient (lr = m · η for uniform weights), so that t = steps · η is
mean-field time and, as the batch grows and η shrinks, the network follows the Euler scheme of the flow (Mei,
Montanari & Nguyen 2018, arXiv:1804.06561; Chizat & Bach 2018, arXiv:1805.09545). The population risk of every
saved state is the exact closed form of the flow's :class:`~meanfield.Problem`, so SGD runs and flows are compared on
the same footing (and stored in the same format).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .activations import as_activation
from .controllers import Diverged
from .empirical import EmpiricalProblem
from .kernels import get_backend
from .kernels.torch_backend import torch_device
from .loop import Snapshot
from .measure import ParticleMeasure
from .network import Network
from .penalties import WeightDecay
from .problem import Problem

__all__ = ["TwoLayerNetwork", "SGDStep", "training_data", "minibatch_indices"]

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


class TwoLayerNetwork(torch.nn.Module):
    """Two-layer network f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩ + c_j), the finite counterpart of a
    :class:`~meanfield.ParticleMeasure` (c = None: no biases) or a :class:`~meanfield.measure.BiasedMeasure`: the
    torch module of a :class:`~meanfield.network.Network`, whose forward pass it runs.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> mu = mf.init.sign_sphere(4, 3, seed=0)
    >>> net = TwoLayerNetwork.from_measure(mu)
    >>> x = np.ones((2, 3))
    >>> bool(np.allclose(net(torch.tensor(x)).detach().numpy(), mu.predict(x)))
    True
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor, activation=0.0,
                 c: torch.Tensor | None = None, network: Network | None = None):
        super().__init__()
        if network is None:
            network = Network(as_activation(activation), b.shape[1], c is not None, a.shape[1] if a.ndim == 2 else None)
        self.network = network
        self.a = torch.nn.Parameter(a, requires_grad=not network.fixed_outputs)
        self.b = torch.nn.Parameter(b)
        self.c = None if c is None else torch.nn.Parameter(c)
        self.register_buffer("weights", weights)
        self.unit = network.unit
        self.nx = get_backend("torch")  # the namespace of the forward pass (its functions follow their arguments)

    @property
    def measure_kind(self) -> type:
        """The particle type of the network's measures."""
        return self.network.measure_type

    def neuron_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The per-neuron parameters by their names in a measure: a, b and, with biases, c."""
        return {name: getattr(self, name) for name in ("a", "b", "c") if getattr(self, name) is not None}

    def trained_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The parameters SGD moves: all of :meth:`neuron_parameters`, or all but a for fixed output weights."""
        return {name: p for name, p in self.neuron_parameters().items()
                if not (name == "a" and self.network.fixed_outputs)}

    @classmethod
    def from_measure(cls, mu: ParticleMeasure, device="cpu", dtype: str = "float64", activation="relu",
                     network: Network | None = None):
        """The network of ``mu`` with ``activation`` (an :class:`~meanfield.activations.Activation`, its registered
        name, or a leaky slope: 0 is the ReLU), or of the given ``network`` description (its unit, output layer)."""
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        opts = {"device": torch_device(device), "dtype": _DTYPES[dtype]}
        c = torch.tensor(mu.c, **opts) if getattr(mu, "c", None) is not None else None
        return cls(torch.tensor(mu.a, **opts), torch.tensor(mu.b, **opts), torch.tensor(mu.weights, **opts),
                   activation, c, network)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.forward(self.a, self.b, self.c, self.weights, x, self.nx)

    def predict_features(self, features: torch.Tensor) -> torch.Tensor:
        """f on inputs already augmented with a column of ones when the neurons have biases (x̃ = (x, 1))."""
        return self(features if self.c is None else features[:, :-1])

    def to_measure(self) -> ParticleMeasure:
        """The measure of the current parameters: a copy (on a CPU fp64 network ``numpy()`` would share the
        parameters' memory, and the next in-place step would rewrite every snapshot taken so far)."""
        with torch.no_grad():
            def copy(t):
                return t.detach().cpu().double().numpy().copy()

            arrays = {name: copy(parameter) for name, parameter in self.neuron_parameters().items()}
            return self.measure_kind.from_arrays(arrays, copy(self.weights))


def training_data(problem: Problem, n_data: int, seed: int, dtype=torch.float64, device="cpu"):
    """The fixed data set (x, f*(x)) of ``mode="minibatch"`` and ``"full"`` runs seeded by ``seed``: n_data inputs
    from the problem's law (a CPU generator seeded with seed + 7919, so that it differs from the online stream).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.LinearTarget(np.ones(3)), mf.Sphere(3))
    >>> x, y = training_data(problem, 5, seed=0)
    >>> tuple(x.shape), tuple(y.shape)
    ((5, 3), (5,))
    """
    xs = problem.inputs.sample_torch(n_data, torch.Generator().manual_seed(int(seed) + 7919), dtype)
    xs = xs.to(torch_device(device))
    return xs, problem.target.torch(xs)


def minibatch_indices(n_data: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """The data indices of mini-batch ``step`` (1, 2, ...): each epoch of ⌊n_data / batch_size⌋ steps draws a
    permutation seeded by (seed, epoch) and takes consecutive slices of it, so the batches of an epoch are disjoint
    (the remainder n_data mod batch_size is left out of that epoch).

    Examples
    --------
    >>> sorted(torch.cat([minibatch_indices(6, 2, 0, s) for s in (1, 2, 3)]).tolist())
    [0, 1, 2, 3, 4, 5]
    """
    per_epoch = n_data // batch_size
    epoch, pos = divmod(step - 1, per_epoch)
    perm = torch.randperm(n_data, generator=torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch))
    return perm[pos * batch_size:(pos + 1) * batch_size]


class SGDState:
    """The network being trained (its parameters change in place), the sample generator, and the last batch loss."""

    def __init__(self, net: TwoLayerNetwork, generator: torch.Generator, step: int):
        self.net, self.generator, self.step, self.loss = net, generator, step, None
        self.inverse_weights = 1.0 / net.weights


class SGDStep:
    """The stepping rule of SGD on the finite network of a particle measure: one step moves every neuron by
    η / w_j times its gradient of ½ mean_batch (f(x) − f*(x))² (mean-field time advances by η).

    With ``temperature`` τ > 0 and ``weight_decay`` λ it is *noisy* SGD, the finite-network counterpart of
    mean-field Langevin dynamics (:class:`meanfield.dynamics.Langevin`): θ_j ← (1 − ηλ)(θ_j − η∇_j/w_j) + √(2τη) ξ_j
    (the decay applied after the gradient step, which differs from θ_j − η(∇_j/w_j + λθ_j) by O(η²)), the noise
    drawn from the run's generator. The decay is the gradient λθ of the penalty
    :class:`~meanfield.penalties.WeightDecay` (λ/2)|θ|², as in Langevin dynamics. With fixed output weights
    (``Problem(..., output="fixed")``) only b (and c) move.

    A non-finite batch loss, or a population risk (exact, at each save) above ``max_risk_factor`` · max(F(μ0),
    ½ E f*²), stops the run as diverged. The checkpoint holds a, b, the generator's bytes and the risk bound, so a
    resumed run is bit-identical.

    Examples
    --------
    The rule :func:`train` builds, here driven for one step:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.sgd import SGDStep
    >>> problem = mf.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(3))
    >>> rule = SGDStep(problem, mf.init.sign_sphere(8, 3, seed=0), mode="online", batch_size=16, n_data=None, seed=0,
    ...                device="cpu", dtype="float64", risk_backend="numpy", max_risk_factor=1e6)
    >>> state = rule.init(None)
    >>> candidate, error = rule.step(state, 0.01)
    >>> error is None
    True
    """

    kind = "sgd"

    def __init__(self, problem: Problem, mu0: ParticleMeasure, mode: str, batch_size: int, n_data: int | None,
                 seed: int, device, dtype: str, risk_backend, max_risk_factor: float, temperature: float = 0.0,
                 weight_decay: float = 0.0):
        self.problem, self.mu0, self.mode, self.batch_size = problem, mu0, mode, batch_size
        #: Weight decay λ of noisy SGD: the penalty (λ/2)|θ|² (:class:`~meanfield.penalties.WeightDecay`).
        self.temperature, self.weight_decay = temperature, WeightDecay(weight_decay) if weight_decay else None
        self.n_data, self.seed, self.device, self.dtype = n_data, int(seed), device, dtype
        self.risk_backend, self.max_risk_factor = risk_backend, max_risk_factor
        self.label = f"sgd[{mode}]"
        self.max_risk = math.inf
        self.data = self.nx = None
        self.empirical = isinstance(problem, EmpiricalProblem)

    def init(self, start) -> SGDState:
        net = self.problem.network.module(self.mu0, self.device, self.dtype)
        state = SGDState(net, torch.Generator().manual_seed(self.seed), 0)
        self.nx = get_backend("torch", device=net.a.device, dtype=self.dtype)
        if self.empirical:
            self.data = tuple(self.nx.asarray(array) for array in (self.problem.features, self.problem.labels))
        elif self.mode != "online":
            self.data = training_data(self.problem, self.n_data, self.seed, net.a.dtype, net.a.device)
        if start is None:
            risk0 = self.problem.risk(net.to_measure(), backend=self.risk_backend)
            self.max_risk = self.max_risk_factor * max(risk0, self.problem.risk_scale)
            return state
        with torch.no_grad():
            for name, parameter in net.neuron_parameters().items():
                parameter.copy_(torch.as_tensor(start.arrays[name]))
        state.generator.set_state(torch.as_tensor(np.asarray(start.arrays["rng"], dtype=np.uint8).copy()))
        state.step, self.max_risk = start.step, float(start.arrays["max_risk"])
        return state

    def _batch(self, state: SGDState):
        net = state.net
        if self.mode == "online" and self.empirical:  # samples drawn with replacement from the data set
            idx = torch.randint(self.n_data, (self.batch_size,), generator=state.generator).to(net.a.device)
            return self.data[0][idx], self.data[1][idx]
        if self.mode == "online":
            x = self.problem.inputs.sample_torch(self.batch_size, state.generator, net.a.dtype).to(net.a.device)
            return x, self.problem.target.torch(x)
        if self.mode == "minibatch":
            idx = minibatch_indices(self.n_data, self.batch_size, self.seed, state.step).to(net.a.device)
            return self.data[0][idx], self.data[1][idx]
        return self.data

    def step(self, state: SGDState, h: float):
        state.step += 1
        x, y = self._batch(state)
        net = state.net
        net.zero_grad(set_to_none=True)
        loss = self.problem.batch_loss(net.predict_features(x) if self.empirical else net(x), y, self.nx)
        loss.backward()
        with torch.no_grad():
            inv_w = state.inverse_weights
            parameters = net.neuron_parameters()
            penalty, k = self.problem.penalty, self.problem.output_columns
            # λ∇r(θ_j), as in the flow, at the parameters before the step, split back into a, b (and c)
            penalty_steps = {} if penalty is None else self._split_state(
                penalty.gradient(self._state(parameters), self.nx, k), parameters)
            for name, parameter in net.trained_parameters().items():
                parameter -= h * (inv_w if parameter.ndim == 1 else inv_w[:, None]) * parameter.grad
                if name in penalty_steps:
                    parameter -= h * penalty_steps[name]
                if self.weight_decay is not None:  # the decay of Langevin dynamics, after the gradient step
                    parameter -= h * self.weight_decay.gradient(parameter, self.nx, k)
                if self.temperature:
                    noise = torch.randn(parameter.shape, generator=state.generator, dtype=parameter.dtype)
                    parameter += math.sqrt(2.0 * self.temperature * h) * noise.to(parameter.device)
        state.loss = loss.detach()
        return state, None

    @staticmethod
    def _state(parameters: dict) -> torch.Tensor:
        """The neurons as the flow's state [a | b (| c)]."""
        return torch.cat([p[:, None] if p.ndim == 1 else p for p in parameters.values()], dim=1)

    @staticmethod
    def _split_state(state: torch.Tensor, parameters: dict) -> dict[str, torch.Tensor]:
        """A state-shaped array cut into the shapes of ``parameters``, by name."""
        widths = [1 if p.ndim == 1 else p.shape[1] for p in parameters.values()]
        pieces = torch.split(state, widths, dim=1)
        return {name: piece[:, 0] if p.ndim == 1 else piece
                for piece, (name, p) in zip(pieces, parameters.items())}

    def accept(self, state: SGDState, clock):
        if state.loss is not None and not torch.isfinite(state.loss):
            raise Diverged(f"SGD diverged at step {clock.step}: non-finite loss; reduce eta")
        return state, False

    def observe(self, state: SGDState, clock) -> Snapshot:
        mu = state.net.to_measure()
        risk = self.problem.risk(mu, backend=self.risk_backend)
        diverged = None
        if not math.isfinite(risk) or risk > self.max_risk:
            diverged = f"SGD diverged at t = {clock.t:.6g}: the risk blew up to {risk:.3g}; reduce eta"
        return Snapshot(risk, mu, divergence=diverged)

    def checkpoint(self, state: SGDState, snapshot: Snapshot) -> dict:
        rng = state.generator.get_state().numpy().copy()
        return dict(snapshot.measure.arrays(), rng=rng, max_risk=self.max_risk)

    def where(self, clock) -> str:
        return f"training at step {clock.step}"

    def info(self, state: SGDState) -> dict:
        return {"device": str(state.net.a.device)}
