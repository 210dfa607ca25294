r"""Reduced flow for low-dimensional targets f* = g(P_H x) (Hajjar & Chizat 2023, arXiv:2211.08771, §4.2).

With ρ invariant under O(H^⊥) and μ_0 O(H^⊥)-invariant, μ_t stays invariant: each neuron keeps the direction of
its orthogonal part b_⊥, and the flow reduces to (a, u = b_H ∈ R^{d_H}, r = |b_⊥|). A reduced particle stands for a
ring of neurons spread uniformly over the directions of H^⊥, so the pair kernel is the ring average

.. math::  \bar K((u, r), (u', r')) = E_t\, K\big(|b| = \sqrt{|u|^2 + r^2}, |b'|, ⟨b, b'⟩ = ⟨u, u'⟩ + r r' t\big),

t the cosine between two independent uniform directions of H^⊥, density ∝ (1 − t²)^{(d_⊥ − 3)/2}, integrated by
Gauss–Jacobi quadrature (two atoms t = ±1 when d_⊥ = 1). With p = ⟨b, b'⟩, ∂K/∂p = κ(π − θ)/(2π) and
∂K/∂|b| = κ|b'| sin θ/(2π), so

.. math::  ∇_u \bar K = E_t[∂_p K]\, u' + E_t[∂_{|b|} K]\, u/|b|, \qquad
           ∂_r \bar K = E_t[t\, ∂_p K]\, r' + E_t[∂_{|b|} K]\, r/|b|.

The flow is ȧ = −ψ̄, u̇ = −a ∇_u ψ̄, ṙ = −a ∂_r ψ̄ with ψ̄ = Σ_k w_k a_k K̄ − F*, F* evaluated at any b with
P_H b = Q u and |b_⊥| = r. Cost O(m² n_t d_H) per evaluation, independent of d.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import roots_jacobi

from ..measure import ParticleMeasure
from ..problem import BoundProblem, Evaluation, Problem

__all__ = ["LowDimReducedProblem", "ring_quadrature"]


def ring_quadrature(d_perp: int, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) for E[h(t)], t = cosine of two uniform directions in R^{d_perp}."""
    if d_perp < 1:
        raise ValueError(f"the orthogonal complement must have dimension >= 1, got {d_perp}")
    if d_perp == 1:
        return np.array([-1.0, 1.0]), np.array([0.5, 0.5])
    beta = (d_perp - 3) / 2
    t, w = roots_jacobi(n, beta, beta)
    return t, w / w.sum()


class LowDimReducedProblem(Problem):
    """The reduced flow on (a, u, r) for a target depending on x only through Qᵀx.

    The state of a reduced measure is an (m, 1 + d_H + 1) array [a | u | r]; :meth:`reduce` maps a full measure
    to it and :meth:`lift` draws a full measure whose orthogonal directions are uniform (an O(H^⊥)-invariant-in-law
    start). Plugs into :func:`meanfield.simulate` on every backend (numba evaluates this kernel with numpy).

    Parameters
    ----------
    problem : Problem
        The full problem; its target must be a function of Qᵀx (``target.Q``) unless ``Q`` is given.
    Q : array (d, d_H), optional
    n_quadrature : int
        Gauss–Jacobi nodes in t.
    """

    def __init__(self, problem: Problem, Q=None, n_quadrature: int = 24, tile_elements: int = 1 << 21):
        Q = getattr(problem.target, "Q", None) if Q is None else np.asarray(Q, dtype=np.float64)
        if Q is None:
            raise ValueError("the low-dimensional reduction needs the hidden subspace: a target with a basis Q "
                             "(MultiIndexTarget, RadialTarget) or Q=...")
        if Q.shape[0] != problem.d or Q.shape[1] >= problem.d:
            raise ValueError(f"Q must have shape (d, d_H) with d_H < d = {problem.d}, got {Q.shape}")
        self.__dict__.update(problem.__dict__)
        self._bound = {}
        self.base, self.Q = problem, Q
        self.d_hidden = Q.shape[1]
        full, _ = np.linalg.qr(np.concatenate([Q, np.eye(problem.d)], axis=1))
        self.e_perp = full[:, self.d_hidden]  # a unit vector of H^⊥
        self.e_perp -= Q @ (Q.T @ self.e_perp)
        self.e_perp /= np.linalg.norm(self.e_perp)
        self.t_nodes, self.t_weights = ring_quadrature(problem.d - self.d_hidden, n_quadrature)
        self.tile_elements = int(tile_elements)

    def spec(self) -> dict:
        return dict(self.base.spec(), reduction="low_dimensional", d_hidden=self.d_hidden,
                    n_quadrature=len(self.t_nodes))

    particles_are_neurons = False  # (a, u, r): u ∈ H, r = |b_⊥|

    def _check_measure(self, mu):
        if not isinstance(mu, ParticleMeasure):
            raise TypeError(f"expected a ParticleMeasure, got {type(mu).__name__}")
        if mu.d != self.d_hidden + 1:
            raise ValueError(f"a reduced measure has neurons (u, r) of dimension d_H + 1 = {self.d_hidden + 1}, "
                             f"got {mu.d}; use reduce() on a full measure")

    def reduce(self, mu: ParticleMeasure) -> ParticleMeasure:
        """(a, b) ↦ (a, Qᵀb, |b − QQᵀb|)."""
        u = mu.b @ self.Q
        r = np.linalg.norm(mu.b - u @ self.Q.T, axis=1)
        return ParticleMeasure(mu.a, np.concatenate([u, r[:, None]], axis=1), mu.weights)

    def lift(self, nu: ParticleMeasure, seed=None) -> ParticleMeasure:
        """A full measure with the same (a, u, r) and independent uniform directions of b_⊥ in H^⊥."""
        rng = np.random.default_rng(seed)
        g = rng.standard_normal((nu.m, self.d))
        g -= (g @ self.Q) @ self.Q.T
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        u, r = nu.b[:, :-1], nu.b[:, -1]
        return ParticleMeasure(nu.a, u @ self.Q.T + r[:, None] * g, nu.weights)

    def alignment_basis(self) -> np.ndarray:
        """Q in reduced coordinates (u, r): the first d_H axes, for the alignment observables."""
        return np.eye(self.d_hidden + 1)[:, : self.d_hidden]



class _Ops:
    """The few array functions the ring kernel needs, for numpy or torch arrays."""

    def __init__(self, backend):
        if backend.name == "torch":
            import torch

            self.acos, self.sqrt, self.where = torch.acos, torch.sqrt, torch.where
            self.clip = torch.clamp
            self.zeros = lambda shape, like: torch.zeros(shape, dtype=like.dtype, device=like.device)
        else:
            self.acos, self.sqrt, self.where, self.clip = np.arccos, np.sqrt, np.where, np.clip
            self.zeros = lambda shape, like: np.zeros(shape, dtype=like.dtype)


class _BoundLowDim(BoundProblem):
    def __init__(self, problem: LowDimReducedProblem, backend):
        super().__init__(problem, backend)
        self.ops = _Ops(backend)
        self._Qt = backend.asarray(problem.Q.T)
        self._Q = backend.asarray(problem.Q)
        self._e = backend.asarray(problem.e_perp)
        self._t = [float(t) for t in problem.t_nodes]
        self._w = [float(w) for w in problem.t_weights]

    def ring_field(self, points, sources, coef):
        """ψ-part Σ_k c_k K̄ and its (u, r)-gradient at the reduced points (n, d_H + 1)."""
        ops, p = self.ops, self.problem
        u, r = points[:, :-1], points[:, -1]
        us, rs = sources[:, :-1], sources[:, -1]
        n1 = ops.sqrt((u * u).sum(1) + r * r)
        n2 = ops.sqrt((us * us).sum(1) + rs * rs)
        inv1 = self.ops.where(n1 > 0, 1.0 / self.ops.where(n1 > 0, n1, 1.0), 0.0 * n1)
        rows = max(1, p.tile_elements // max(1, sources.shape[0]))
        value = ops.zeros((points.shape[0],), points)
        g_u = ops.zeros(tuple(u.shape), points)
        g_r = ops.zeros((points.shape[0],), points)
        for i0 in range(0, points.shape[0], rows):
            sl = slice(i0, min(points.shape[0], i0 + rows))
            base = u[sl] @ us.T
            rr = r[sl][:, None] * rs[None, :]
            nn = n1[sl][:, None] * n2[None, :]
            inv_nn = ops.where(nn > 0, 1.0 / ops.where(nn > 0, nn, 1.0), 0.0 * nn)
            k_bar, dp_bar, dpt_bar, dn_bar = 0.0, 0.0, 0.0, 0.0
            for t, w in zip(self._t, self._w):
                c = ops.clip((base + t * rr) * inv_nn, -1.0, 1.0)
                pt = math.pi - ops.acos(c)
                sin = ops.sqrt((1.0 - c) * (1.0 + c))
                k_bar = k_bar + w * nn * (sin + pt * c)
                dp_bar = dp_bar + w * pt
                dpt_bar = dpt_bar + (w * t) * pt
                dn_bar = dn_bar + w * (sin * n2[None, :])
            value[sl] = k_bar @ coef
            dn = dn_bar @ coef
            g_u[sl] = dp_bar @ (coef[:, None] * us) + (u[sl] * inv1[sl][:, None]) * dn[:, None]
            g_r[sl] = dpt_bar @ (coef * rs) + r[sl] * inv1[sl] * dn
        factor = p.scale / (2 * math.pi) * (1 - p.slope) ** 2
        value, g_u, g_r = factor * value, factor * g_u, factor * g_r
        if p.slope:  # leaky part α κ ⟨b, b'⟩ averages to α κ ⟨u, u'⟩ (E t = 0)
            mean_u = p.slope * p.scale * (coef @ us)
            value = value + u @ mean_u
            g_u = g_u + mean_u
        return value, self.backend.concat([g_u, g_r[:, None]], axis=1)

    def evaluate(self, state, weights) -> Evaluation:
        p = self.problem
        reduced = state[:, 1:]
        coef = weights * state[:, 0]
        field, grad_field = self.ring_field(reduced, reduced, coef)
        u, r = reduced[:, :-1], reduced[:, -1]
        b = u @ self._Qt + r[:, None] * self._e
        f_star, g_full = self.target_correlation(b)
        g_full = g_full + 0.0 * b  # odd targets return a broadcastable constant gradient
        grad_f_star = self.backend.concat([g_full @ self._Q, (g_full @ self._e)[:, None]], axis=1)
        psi = field - f_star
        risk = 0.5 * (float(coef @ psi) + (p.target_energy - float(coef @ f_star)))
        return Evaluation(psi, grad_field - grad_f_star, risk)


LowDimReducedProblem._bound_class = _BoundLowDim
