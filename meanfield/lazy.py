r"""The lazy (NTK) regime: the flow linearised around μ0, and the neural tangent kernel of μ0 on a data set.

Scaling the predictor to α f(μ) with the loss ℓ/α² (``output_scale=α`` of a problem) and starting from f(μ0) = 0
(:func:`meanfield.init.doubled`), the tangent coordinates u_j = α(θ_j − θ_j⁰) follow, as α → ∞, the flow of the
linearised predictor (Chizat, Oyallon & Bach 2019, arXiv:1812.07956; Jacot, Gabriel & Hongler 2018,
arXiv:1806.07572)

.. math::

    f_{lin}(u; x) = \sum_j w_j ⟨∇_θ φ(θ_j^0; x), u_j⟩, \qquad φ(θ; x) = a σ(⟨w, x̃⟩),

    \dot u_j = -\frac1n \sum_i ℓ'(f_{lin}(u; x_i), y_i)\, ∇_θ φ(θ_j^0; x_i),

which does not depend on α, and moves the predictor by kernel gradient descent with the tangent kernel
Θ(x, x') = Σ_j w_j ⟨∇_θφ(θ_j⁰; x), ∇_θφ(θ_j⁰; x')⟩ (:func:`ntk_gram`); for Gaussian initial neurons its
infinite-width limit is a closed form (:func:`ntk_limit`).
"""

from __future__ import annotations

import numpy as np

from ._validation import check_nonnegative, check_positive
from .activations import as_activation
from .empirical import EmpiricalProblem
from .measure import ParticleMeasure
from .network import augmented_inputs
from .problem import BoundProblem, Evaluation, ProblemVariant

__all__ = ["LinearizedProblem", "ntk_gram", "ntk_limit"]


class BoundLinearizedProblem(BoundProblem):
    """The bound form of a :class:`LinearizedProblem`: its velocity carries the initial output weights a⁰."""

    def velocity_from(self, state, ev: Evaluation):
        a0 = self.constant("a0", lambda nx: nx.asarray(self.problem.mu0.a[:, None]))
        velocity = self.backend.concat([-ev.psi[:, None], -a0 * ev.grad_psi], axis=1)
        return velocity * self.moving_columns(state) if self.problem.network.fixed_outputs else velocity


class LinearizedProblem(ProblemVariant):
    r"""The flow of an :class:`~meanfield.EmpiricalProblem` linearised around μ0, in tangent coordinates u = α(θ − θ⁰).

    Its particles are the tangent vectors u_j = (u_a, u_w) (stored like neurons, a :class:`ParticleMeasure` or
    :class:`~meanfield.measure.BiasedMeasure` of the same shape as μ0), starting from zero (:meth:`start`); the
    predictor is f_lin(u; x) = Σ_j w_j [σ(⟨w_j⁰, x̃⟩) u_a,j + a_j⁰ σ'(⟨w_j⁰, x̃⟩) ⟨x̃, u_w,j⟩], and the flow is that of
    :mod:`meanfield.lazy`: the α → ∞ limit of the base problem's flow with ``output_scale=α`` from μ0 with f(μ0) = 0.

    Parameters
    ----------
    base : EmpiricalProblem
        Data, loss and unit (its output scale is irrelevant here; a penalty is refused).
    mu0 : ParticleMeasure
        The linearisation point (with f(μ0) = 0 for the comparison with scaled flows, e.g.
        :func:`~meanfield.init.doubled`).

    Examples
    --------
    For the squared loss the linearised predictor on the training set is (I − e^{−tΘ/n}) y exactly:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.data import DataSet
    >>> from meanfield.lazy import LinearizedProblem, ntk_gram
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.standard_normal((20, 3)), rng.standard_normal(20)
    >>> base = mf.EmpiricalProblem(DataSet(x, y))
    >>> mu0 = mf.init.doubled(mf.init.gaussian(16, 3, seed=0))
    >>> lin = LinearizedProblem(base, mu0)
    >>> traj = mf.simulate(lin, lin.start(), t_max=2.0, dt=0.01, solver="rk4")
    >>> theta = ntk_gram(mu0, x, base.unit)
    >>> vals, vecs = np.linalg.eigh(theta / 20)
    >>> exact = vecs @ ((1 - np.exp(-2.0 * vals)) * (vecs.T @ y))
    >>> bool(np.allclose(lin.predict(traj.final, x), exact, atol=1e-8))
    True
    """

    bias_refusal = None
    objectives = (EmpiricalProblem,)
    bound_type = BoundLinearizedProblem

    def __init__(self, base: EmpiricalProblem, mu0: ParticleMeasure):
        if not isinstance(base, EmpiricalProblem):
            raise TypeError(f"the linearised flow is written for an EmpiricalProblem (a data set), got "
                            f"{type(base).__name__}; sample a data set from a population problem with "
                            "meanfield.data.sample(problem, n)")
        if base.outputs is not None:
            raise ValueError("the linearised flow is written for a scalar output: use the squared or logistic loss")
        if base.penalty is not None:
            raise ValueError("the linearised flow takes no penalty: use the base problem without one")
        super().__init__(_unscaled(base))
        self.base.check_measure(mu0)
        self.mu0 = mu0

    @property
    def particles_are_neurons(self) -> bool:
        return False  # tangent vectors, not neurons

    @property
    def risk_scale(self) -> float:
        return self.base.risk_scale

    def hidden_subspace(self):
        return None

    def variant_spec(self) -> dict:
        return {"linearized_at": self.mu0.checksum()}

    def start(self) -> ParticleMeasure:
        """The zero tangent vector (u = 0 at every particle, the masses of μ0): where the linearised flow starts."""
        return self.mu0.from_state(np.zeros_like(self.mu0.state()), self.mu0.weights)

    def assemble(self, bound: BoundProblem, state, weights) -> Evaluation:
        base = self.base
        x = bound.constant("features", lambda nx: nx.asarray(base.features))
        y = bound.constant("labels", lambda nx: nx.asarray(base.data.y))
        neurons0 = bound.constant("neurons0", lambda nx: nx.asarray(self.mu0.state()[:, 1:]))
        out0 = bound.constant("a0_weighted", lambda nx: nx.asarray(self.mu0.weights * self.mu0.a))
        u_a, u_w = weights * state[:, 0], state[:, 1:]
        columns = base.tile_columns(bound, state.shape[0])
        # the tangent coordinates' first variation: r contracted with 1 (a⁰ enters through the velocity)
        psi, grad, loss = base.network.data_pass(
            bound.backend, 1.0, neurons0, x, y, base.loss, columns,
            lambda values, slopes, xi: _tangent_output(values, slopes, xi, u_a, u_w, out0))
        return Evaluation(psi, grad, loss)

    def predict(self, u: ParticleMeasure, x) -> np.ndarray:
        """f_lin(u; x) on an (n, d) array of inputs."""
        from .kernels import get_backend

        x = augmented_inputs(np.asarray(x, dtype=np.float64), self.bias)
        state0, state = self.mu0.state(), u.state()
        values, slopes = get_backend("numpy").unit_values(self.unit, state0[:, 1:] @ x.T)
        return _tangent_output(values, slopes, x, u.weights * state[:, 0], state[:, 1:],
                               self.mu0.weights * self.mu0.a)

    def default_observables(self) -> dict:
        from .kernels import get_backend

        nx = get_backend("numpy")

        def mean_loss(x, y):
            return lambda u: float(np.mean(self.loss.value(self.predict(u, x), y, nx)))

        out = {"train_loss": mean_loss(self.data.x, self.data.y)}
        if self.data.has_test:
            out["test_loss"] = mean_loss(self.data.x_test, self.data.y_test)
        return out


def _tangent_output(values, slopes, x, u_a, u_w, out0):
    """The linearised predictor f_lin(u; x_i) = Σ_j [σ(z_ji) w_j u_a,j + w_j a_j⁰ σ'(z_ji) ⟨x̃_i, u_w,j⟩] from the
    neurons × samples arrays σ(Z⁰), σ'(Z⁰) at μ0 (u_a carrying the masses, out0 = w ⊙ a⁰)."""
    return u_a @ values + out0 @ (slopes * (u_w @ x.T))


def _unscaled(problem: EmpiricalProblem) -> EmpiricalProblem:
    """The problem with output scale 1 (the linearised flow in tangent coordinates does not depend on α)."""
    if problem.output_scale == 1.0:
        return problem
    return EmpiricalProblem(problem.data, problem.loss, problem.unit, bias=problem.bias,
                            tile_elements=problem.tile_elements, output=problem.network.output)


def ntk_gram(mu: ParticleMeasure, x, activation="relu") -> np.ndarray:
    r"""The tangent kernel of the particles μ on inputs x (n, d): the (n, n) matrix

    .. math::

        Θ(x_i, x_l) = \sum_j w_j \big[σ(z_{ji}) σ(z_{jl}) + a_j^2 σ'(z_{ji}) σ'(z_{jl}) ⟨x̃_i, x̃_l⟩\big],
        \qquad z_{ji} = ⟨w_j, x̃_i⟩,

    with which the predictor of the flow moves: ∂_t f(x) = −(1/n) Σ_i Θ(x, x_i) ℓ'(f(x_i), y_i) at μ (mean-field time,
    particle masses w_j).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> mu = mf.init.gaussian(8, 2, seed=0)
    >>> gram = ntk_gram(mu, np.eye(2))
    >>> gram.shape, bool(np.allclose(gram, gram.T))
    ((2, 2), True)
    """
    unit = as_activation(activation)
    x = augmented_inputs(np.asarray(x, dtype=np.float64), mu.bias)
    state = mu.state()
    z = state[:, 1:] @ x.T
    values, slopes = unit(z), unit.derivative(z)
    return (values.T * mu.weights) @ values + (x @ x.T) * ((slopes.T * (mu.weights * state[:, 0] ** 2)) @ slopes)


def ntk_limit(x, activation="relu", b_std: float = 1.0, a_second_moment: float = 1.0,
              bias_std: float | None = None) -> np.ndarray:
    r"""The infinite-width tangent kernel Θ_∞ on inputs x (n, d) for neurons b ~ N(0, s² I), c ~ N(0, s_c²) (with
    ``bias_std`` s_c), and output weights with E a² = ``a_second_moment``, independent of b:

    .. math::

        Θ_∞(x, x') = K(p, q, q') + E[a^2]\,(⟨x, x'⟩ + 1_{bias})\, ∂_pK(p, q, q'),

    with p = s²⟨x, x'⟩ + s_c², q = s²|x|² + s_c², and K(p, q, q') = E[σ(u)σ(u')] the unit's Gaussian pair kernel
    (∂_pK = E[σ'(u)σ'(u')] by Price's theorem): the arc-cosine kernels of degrees 1 and 0 for the ReLU (Cho & Saul
    2009). Exact for every unit with a pair kernel or a dual kernel (:mod:`meanfield.activations`).

    Examples
    --------
    Against the tangent kernel of many Gaussian neurons (Monte Carlo):

    >>> import numpy as np, meanfield as mf
    >>> x = np.array([[1.0, 0.0], [0.6, 0.8]])
    >>> mu = mf.init.gaussian(200_000, 2, seed=0, b_std=1.0)
    >>> bool(np.allclose(ntk_gram(mu, x), ntk_limit(x), rtol=0.02))
    True
    """
    unit = as_activation(activation)
    x = np.asarray(x, dtype=np.float64)
    s2 = check_positive(b_std, "b_std") ** 2
    c2 = 0.0 if bias_std is None else check_nonnegative(bias_std, "bias_std") ** 2
    inner = x @ x.T
    p = s2 * inner + c2
    q = np.diag(p)
    from .kernels import get_backend
    from .kernels.routes import pair_route

    k, dk_dp, _ = pair_route(unit).moments(p, q[:, None], q[None, :], get_backend("numpy"))
    return k + check_nonnegative(a_second_moment, "a_second_moment") * (inner + (bias_std is not None)) * dk_dp
