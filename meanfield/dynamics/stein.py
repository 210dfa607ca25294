"""The kernel Stein discrepancy between particles and a law known by its score: Langevin's convergence diagnostic."""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_stein_discrepancy", "proximal_gibbs_score"]


def kernel_stein_discrepancy(points, score, weights=None, c: float = 1.0, beta: float = -0.5,
                             max_points: int | None = None, seed: int = 0) -> tuple[float, float]:
    r"""KSD²(μ, p) between particles μ = Σ_i w_i δ_{x_i} and a law p known only by its score s = ∇ log p at the
    particles, with the inverse multiquadric kernel k(x, y) = (c² + |x − y|²)^β (Gorham & Mackey 2017), and its
    standard error.

    .. math::

        \mathrm{KSD}^2 = \sum_{i \ne j} \tilde w_i \tilde w_j\, k_p(x_i, x_j), \qquad
        k_p(x, y) = s(x)\cdot s(y)\, k + s(x)\cdot\nabla_y k + s(y)\cdot\nabla_x k + \nabla_x\cdot\nabla_y k,

    the U-statistic over distinct pairs (w̃ the masses renormalised without the diagonal), zero in expectation when
    the particles are drawn from p and positive otherwise. Standard error: 2 sd(h̄_i)/√n with h̄_i the row means
    of k_p (the U-statistic's leading term). For the proximal Gibbs measure of a mean-field Langevin state the score
    is −∇(F'(μ) + λ|θ|²/2)/τ (:func:`proximal_gibbs_score`), and KSD² = 0 characterises the stationary point.

    Parameters
    ----------
    points : array (n, D)
    score : array (n, D)
        ∇ log p at the points.
    weights : array (n,), optional
        Masses (uniform by default).
    c, beta : float
        The kernel's parameters (β ∈ (−1, 0)).
    max_points : int, optional
        Evaluate on a seeded subsample of this many points (the cost is O(n² D)).
    seed : int
        Seed of that subsample.

    Examples
    --------
    Standard normal points against N(0, I) (score −x), and against N(1, I) (score 1 − x):

    >>> import numpy as np
    >>> from meanfield.dynamics import kernel_stein_discrepancy
    >>> x = np.random.default_rng(0).standard_normal((2000, 2))
    >>> ksd2, se = kernel_stein_discrepancy(x, -x)
    >>> bool(abs(ksd2) < 3 * se)
    True
    >>> ksd2, se = kernel_stein_discrepancy(x, 1.0 - x)
    >>> bool(ksd2 > 10 * se)
    True
    """
    x = np.asarray(points, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    if x.ndim != 2 or s.shape != x.shape:
        raise ValueError(f"points and score must be (n, D) arrays of one shape, got {x.shape} and {s.shape}")
    n, dim = x.shape
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    if max_points is not None and n > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))
        x, s, w, n = x[keep], s[keep], w[keep], max_points
    if n < 2:
        raise ValueError("the Stein discrepancy needs at least 2 points")
    w = w / w.sum()
    diff = x[:, None, :] - x[None, :, :]
    r2 = (diff**2).sum(axis=2)
    q = c * c + r2
    k = q**beta
    grad_x = 2.0 * beta * q[..., None] ** (beta - 1) * diff          # ∇_x k; ∇_y k = −∇_x k
    trace = -2.0 * beta * (2.0 * (beta - 1) * q ** (beta - 2) * r2 + dim * q ** (beta - 1))
    kp = (s @ s.T) * k - np.einsum("id,ijd->ij", s, grad_x) + np.einsum("jd,ijd->ij", s, grad_x) + trace
    np.fill_diagonal(kp, 0.0)
    pair = np.outer(w, w)
    np.fill_diagonal(pair, 0.0)
    ksd2 = float((pair * kp).sum() / pair.sum())
    rows = kp.sum(axis=1) / (n - 1)
    return ksd2, float(2.0 * rows.std(ddof=1) / np.sqrt(n))


def proximal_gibbs_score(problem, mu, temperature: float, weight_decay: float = 0.0, backend="numpy"):
    r"""∇ log p_μ at the particles of μ for the proximal Gibbs measure p_μ ∝ exp(−(F'(μ) + λ|θ|²/2)/τ):
    (v(θ) − λθ)/τ with v the flow's velocity −∇F'(μ)(θ), exact (closed-form kernel).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.dynamics import proximal_gibbs_score
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0]]), mf.Gaussian(2))
    >>> mu = mf.init.sign_sphere(5, 2, seed=0)
    >>> proximal_gibbs_score(problem, mu, temperature=0.1, weight_decay=0.01).shape
    (5, 3)
    """
    if not temperature > 0:
        raise ValueError(f"the proximal Gibbs measure needs a temperature > 0, got {temperature!r}")
    da, db = problem.velocity(mu, backend)
    state = mu.state()
    velocity = np.column_stack([da, db.reshape(mu.m, -1)])
    return (velocity - weight_decay * state) / temperature
