r"""Reduced flow for low-dimensional targets f* = g(P_H x) (Hajjar & Chizat 2023, arXiv:2211.08771, §4.2).

With ρ invariant under O(H^⊥) and μ_0 O(H^⊥)-invariant, μ_t stays invariant: each neuron keeps the direction of
its orthogonal part b_⊥, and the flow reduces to (a, u = b_H ∈ R^{d_H}, r = |b_⊥|). A reduced particle stands for a
ring of neurons spread uniformly over the directions of H^⊥, so the pair kernel is the ring average

.. math::  \bar K((u, r), (u', r')) = E_t\, K\big(|b| = \sqrt{|u|^2 + r^2}, |b'|, ⟨b, b'⟩ = ⟨u, u'⟩ + r r' t\big),

t the cosine between two independent uniform directions of H^⊥, density ∝ (1−t²)^{(d_⊥−3)/2}, integrated by
Gauss–Jacobi quadrature (two atoms t = ±1 when d_⊥ = 1). With p = ⟨b, b'⟩, ∂K/∂p = κ(π − θ)/(2π) and
∂K/∂|b| = κ|b'| sin θ/(2π), so

.. math::  ∇_u \bar K = E_t[∂_p K]\, u' + E_t[∂_{|b|} K]\, u/|b|, \qquad
           ∂_r \bar K = E_t[t\, ∂_p K]\, r' + E_t[∂_{|b|} K]\, r/|b|.

The flow is ȧ = −ψ̄, u̇ = −a ∇_u ψ̄, ṙ = −a ∂_r ψ̄ with ψ̄ = Σ_k w_k a_k K̄ − F*, F* evaluated at any b with
P_H b = Q u and |b_⊥| = r. Cost O(m² n_t d_H) per evaluation, independent of d.
"""

from __future__ import annotations

import numpy as np
from scipy.special import roots_jacobi

from ..measure import ParticleMeasure, RingMeasure
from ..problem import Problem, ProblemVariant

__all__ = ["LowDimReducedProblem", "ring_quadrature"]


def ring_quadrature(d_perp: int, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) for E[h(t)], t = cosine of two uniform directions in R^{d_⊥} (``d_perp`` = d_⊥).

    Examples
    --------
    The cosine t of two uniform directions of R^k has E t² = 1/k:

    >>> import numpy as np
    >>> from meanfield.reduced.lowdim import ring_quadrature
    >>> t, w = ring_quadrature(5)
    >>> bool(np.isclose(w.sum(), 1.0) and np.isclose(w @ t**2, 1 / 5))
    True
    """
    if d_perp < 1:
        raise ValueError(f"the orthogonal complement must have dimension >= 1, got {d_perp}")
    if d_perp == 1:
        return np.array([-1.0, 1.0]), np.array([0.5, 0.5])
    beta = (d_perp - 3) / 2
    t, w = roots_jacobi(n, beta, beta)
    return t, w / w.sum()


class LowDimReducedProblem(ProblemVariant):
    """The reduced flow on (a, u, r) for a target depending on x only through Qᵀx.

    Its flows move a :class:`~meanfield.measure.RingMeasure` (solver state [a | u | r]); :meth:`reduce` maps a full
    measure to it and :meth:`lift` draws a full measure whose orthogonal directions are uniform (an
    O(H^⊥)-invariant-in-law start). Plugs into :func:`meanfield.simulate` on every backend (numba evaluates this
    kernel with numpy).

    Parameters
    ----------
    problem : Problem
        The full problem; its target must be a function of Qᵀx (``target.Q``) unless ``Q`` is given.
    Q : array (d, d_H), optional
    n_quadrature : int
        Gauss–Jacobi nodes in t.
    tile_elements : int
        Pair entries held at once by the ring-averaged kernel (rows per tile = tile_elements // number of sources).

    Examples
    --------
    Rings (a, u, r) stand for the neurons b = Q u + r e, e uniform on H^⊥; the reduced risk is the risk of the lifted
    measure in the limit of many directions e:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.reduced import LowDimReducedProblem
    >>> Q = np.eye(6)[:, :2]
    >>> full = mf.Problem(mf.RadialTarget.norm(Q), mf.Gaussian(6))
    >>> reduced = LowDimReducedProblem(full)
    >>> rings = reduced.reduce(mf.init.sign_sphere(4, 6, seed=0))
    >>> lifted = reduced.lift(rings.repeat(2000), seed=1)    # 2000 random directions per ring
    >>> bool(abs(reduced.risk(rings) - full.risk(lifted)) < 0.02 * full.risk(lifted))
    True
    """

    objectives = (Problem,)  # a target that depends on x through a subspace

    @classmethod
    def accepts(cls, base) -> str | None:
        reason = super().accepts(base)
        if reason is None and base.unit.relu_decomposition is None:
            reason = (f"a problem of {base.unit!r} units: its rings average the dual kernel of the ReLU family, which "
                      "this unit has not; run the full problem")
        return reason

    bias_refusal = ("its rings average over the directions orthogonal to H, which a bias leaves invariant but its "
                    "closed forms are written without biases; run the full problem")

    def __init__(self, problem: Problem, Q=None, n_quadrature: int = 24, tile_elements: int = 1 << 21):
        super().__init__(problem)
        Q = getattr(problem.target, "Q", None) if Q is None else np.asarray(Q, dtype=np.float64)
        if Q is None:
            raise ValueError("the low-dimensional reduction needs the hidden subspace: a target with a basis Q "
                             "(MultiIndexTarget, RadialTarget) or Q=...")
        if Q.shape[0] != problem.d or Q.shape[1] >= problem.d:
            raise ValueError(f"Q must have shape (d, d_H) with d_H < d = {problem.d}, got {Q.shape}")
        self.Q = Q
        self.d_hidden = Q.shape[1]
        full, _ = np.linalg.qr(np.concatenate([Q, np.eye(problem.d)], axis=1))
        self.e_perp = full[:, self.d_hidden]  # a unit vector of H^⊥
        self.e_perp -= Q @ (Q.T @ self.e_perp)
        self.e_perp /= np.linalg.norm(self.e_perp)
        self.t_nodes, self.t_weights = ring_quadrature(problem.d - self.d_hidden, n_quadrature)
        self.tile_elements = int(tile_elements)
        self._ring_energies: dict = {}

    @property
    def d(self) -> int:
        return self.base.d

    def variant_spec(self) -> dict:
        return {"reduction": "low_dimensional", "d_hidden": self.d_hidden, "n_quadrature": len(self.t_nodes)}

    measure_type = RingMeasure  # (a, u, r): u ∈ H, r = |b_⊥|

    def check_measure(self, mu):
        if not isinstance(mu, RingMeasure):
            raise TypeError(f"a low-dimensional reduced flow moves rings (a, u, r), a RingMeasure; got "
                            f"{type(mu).__name__}: use reduce() on a full measure")
        if mu.d_hidden != self.d_hidden:
            raise ValueError(f"the rings have u of dimension {mu.d_hidden} but H has dimension {self.d_hidden}")

    def reduce(self, mu: ParticleMeasure) -> RingMeasure:
        """(a, b) ↦ (a, u = Qᵀb, r = |b − QQᵀb|)."""
        u = mu.b @ self.Q
        return RingMeasure(mu.a, u, np.linalg.norm(mu.b - u @ self.Q.T, axis=1), mu.weights)

    def lift(self, nu: RingMeasure, seed=None) -> ParticleMeasure:
        """Neurons b = Q u + r e with the same (a, u, r) and independent uniform directions e of H^⊥."""
        self.check_measure(nu)
        rng = np.random.default_rng(seed)
        g = rng.standard_normal((nu.m, self.d))
        g -= (g @ self.Q) @ self.Q.T
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        return ParticleMeasure(nu.a, nu.u @ self.Q.T + nu.r[:, None] * g, nu.weights)

    def function_distance(self, mu: ParticleMeasure | RingMeasure, nu: RingMeasure, backend="auto") -> float:
        r"""The L²(ρ) distance ‖f(μ) − f(ν)‖ between neurons μ and the predictor of rings ν, in closed form:

        .. math::

            ‖f_μ − f_ν‖^2 = Σ_{jk} v_j v_k K(b_j, b_k) − 2 Σ_{jk} v_j c_k \bar K(\mathrm{reduce}(b_j), ν_k)
            + Σ_{jk} c_j c_k \bar K(ν_j, ν_k),

        with v = w a for μ, c = w a for ν and the ring-averaged kernel K̄ of :meth:`ring_field`: the cross term
        E_e K(b, Q u + r e) depends on b only through (Qᵀb, |b_⊥|), by the rotation invariance of K in H^⊥. How far a
        finite network is from the mean-field limit that the reduced flow computes (propagation of chaos). ``mu`` may
        be rings too (then every term is ring-averaged).

        Examples
        --------
        >>> import numpy as np, meanfield as mf
        >>> from meanfield.reduced import LowDimReducedProblem
        >>> Q = np.eye(6)[:, :2]
        >>> reduced = LowDimReducedProblem(mf.Problem(mf.RadialTarget.norm(Q), mf.Gaussian(6)))
        >>> rings = reduced.reduce(mf.init.sign_sphere(3, 6, seed=0))
        >>> near = reduced.function_distance(reduced.lift(rings.repeat(1000), seed=1), rings, backend="numpy")
        >>> far = reduced.function_distance(reduced.lift(rings.repeat(10), seed=1), rings, backend="numpy")
        >>> bool(near < far / 4), reduced.function_distance(rings, rings, backend="numpy") < 1e-7
        (True, True)
        """
        self.check_measure(nu)
        bound = self.bind(backend)
        bk = bound.backend
        v, c = bk.asarray(mu.weights * mu.a), bk.asarray(nu.weights * nu.a)
        rings = bk.asarray(nu.state()[:, 1:])
        if isinstance(mu, RingMeasure):
            self.check_measure(mu)
            reduced = bk.asarray(mu.state()[:, 1:])
            neurons = bk.to_numpy(self.ring_field(bound, reduced, reduced, v)[0])
        else:
            self.base.check_measure(mu)
            b = bk.asarray(mu.b)
            reduced = bk.asarray(self.reduce(mu).state()[:, 1:])
            neurons = bk.to_numpy(bk.field(b, b, v, self.scale, self.unit, grad=False)[0])
        cross = bk.to_numpy(self.ring_field(bound, reduced, rings, c)[0])
        key = (nu.checksum(), id(bk))   # ‖f_ν‖² is O(M² n_quadrature): kept for the next distances to the same ν
        if key not in self._ring_energies:
            limit = bk.to_numpy(self.ring_field(bound, rings, rings, c)[0])
            if len(self._ring_energies) >= 8:
                self._ring_energies.pop(next(iter(self._ring_energies)))
            self._ring_energies[key] = float(bk.to_numpy(c) @ limit)
        square = (float(bk.to_numpy(v) @ neurons) - 2.0 * float(bk.to_numpy(v) @ cross)
                  + self._ring_energies[key])
        return float(np.sqrt(max(0.0, square)))

    def ring_field(self, bound, points, sources, coef):
        r"""ψ-part Σ_k c_k K̄ and its (u, r)-gradient at the reduced points (n, d_H + 1).

        With hats for rows divided by their norm |(u, r)| = |b|, the cosine of two ring neurons at ring cosine t is
        c = ⟨û, û'⟩ + t r̂ r̂', and K̄ = κ |b||b'| Σ_q w_q k(c_q) over the Gauss–Jacobi nodes; differentiating
        |b||b'| k(c) in u and r as in :mod:`meanfield.kernels.field` gives
        ∇_u = κ[Σ_q w_q k'(c_q) u' + û |b'| Σ_q w_q (k − c k')(c_q)] and
        ∂_r = κ[Σ_q w_q t_q k'(c_q) r' + r̂ |b'| Σ_q w_q (k − c k')(c_q)].
        """
        bk = bound.backend
        hat_p, n_p = bk.unit_rows(points)
        hat_s, n_s = bk.unit_rows(sources)
        cn = coef * n_s
        weighted_u = coef[:, None] * sources[:, :-1]
        weighted_r = coef * sources[:, -1]
        n = points.shape[0]
        value, g_u, g_r = bk.empty((n,)), bk.empty((n, points.shape[1] - 1)), bk.empty((n,))
        rows = max(1, self.tile_elements // max(1, sources.shape[0]))
        for i0 in range(0, n, rows):
            sl = slice(i0, min(n, i0 + rows))
            base = hat_p[sl, :-1] @ hat_s[:, :-1].T
            rr = hat_p[sl, -1:] * hat_s[:, -1]
            k_bar, dk_bar, dkt_bar, radial_bar = 0.0, 0.0, 0.0, 0.0
            for t, w in zip(self.t_nodes.tolist(), self.t_weights.tolist()):
                k, dk, radial = self.unit.dual(bk.clip(base + t * rr, -1.0, 1.0), bk)
                k_bar, dk_bar = k_bar + w * k, dk_bar + w * dk
                dkt_bar, radial_bar = dkt_bar + (w * t) * dk, radial_bar + w * radial
            value[sl] = n_p[sl] * (k_bar @ cn)
            radial_sum = radial_bar @ cn
            g_u[sl] = dk_bar @ weighted_u + hat_p[sl, :-1] * radial_sum[:, None]
            g_r[sl] = dkt_bar @ weighted_r + hat_p[sl, -1] * radial_sum
        kappa = self.scale
        return kappa * value, kappa * bk.concat([g_u, g_r[:, None]], axis=1)

    def self_field(self, bound, reduced, coef):
        return self.ring_field(bound, reduced, reduced, coef)

    def target_field(self, bound, reduced):
        """F* at any neuron of the ring (b = Q u + r e_⊥) and its gradient in (u, r)."""
        Qt, Q, e = bound.constant("lowdim_basis", lambda bk: (bk.asarray(self.Q.T), bk.asarray(self.Q),
                                                               bk.asarray(self.e_perp)))
        u, r = reduced[:, :-1], reduced[:, -1]
        b = u @ Qt + r[:, None] * e
        f_star, g_full = bound.target_correlation(b)
        g_full = g_full + 0.0 * b  # odd targets return a broadcastable constant gradient
        return f_star, bound.backend.concat([g_full @ Q, (g_full @ e)[:, None]], axis=1)
