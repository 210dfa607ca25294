r"""Equivalent kernels of rectified layers under rotationally invariant weights (Tsuchida, Roosta-Khorasani &
Gallagher, *Invariance of weight distributions in rectified MLPs*, arXiv:1711.09090, ICML 2018).

For any rotationally invariant law of w ∈ R^n and σ_α(z) = max(z, αz),

.. math::

    k(x, y) = E_w[σ_α(⟨w, x⟩) σ_α(⟨w, y⟩)]
            = \frac{E|w|^2\, |x||y|}{2π n} \big[(1 − α)^2 J(θ) + 2π α \cos θ\big],

only E|w|² matters. This is the closed-form kernel of :mod:`meanfield.kernels.closed_form` with the roles of weights
and inputs exchanged (scale κ = E|w|²/n), which is how it is computed here. Normalising by k(x, x) gives the deep
map of cosines, ρ_{l+1} = [(1 − α)²(√(1 − ρ_l²) + (π − arccos ρ_l) ρ_l) + 2πα ρ_l] / (π(1 + α²)), whose fixed point
ρ* = 1 is approached polynomially: θ_l ≈ 3π(1 + α²) / ((1 − α)² l).
"""

from __future__ import annotations

import numpy as np

from ..._validation import check_positive, check_positive_int
from ...activations import LeakyReLU, as_activation
from ...kernels.closed_form import relu_kernel

__all__ = ["equivalent_kernel", "empirical_kernel", "deep_cosine_map", "deep_cosines", "sample_weights", "WEIGHT_LAWS",
           "second_moment"]

#: Rotationally invariant laws (closed form exact for every n) and i.i.d. non-Gaussian laws (only as n → ∞).
WEIGHT_LAWS = {"gaussian": True, "sphere": True, "ball": True, "student_t": True,
               "uniform_iid": False, "rademacher_iid": False, "laplace_iid": False}


def sample_weights(law: str, n_samples: int, n: int, seed=None, scale: float = 1.0, dof: float = 5.0) -> np.ndarray:
    """Weight vectors w ∈ R^n, one per row.

    Rotationally invariant: "gaussian" (N(0, scale² I)), "sphere" (uniform on the sphere of radius scale), "ball"
    (uniform in the ball of radius scale), "student_t" (multivariate t with ``dof`` degrees of freedom, scale matrix
    scale² I). I.i.d. coordinates: "uniform_iid" (U[−scale, scale]), "rademacher_iid" (±scale), "laplace_iid".

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.weights.analysis import sample_weights, second_moment
    >>> w = sample_weights("student_t", 200_000, 4, seed=0, dof=5.0)
    >>> w.shape, bool(abs((w ** 2).sum(axis=1).mean() / second_moment("student_t", 4, dof=5.0) - 1) < 0.03)
    ((200000, 4), True)
    """
    n_samples, n = check_positive_int(n_samples, "n_samples"), check_positive_int(n, "n")
    check_positive(scale, "scale")
    rng = np.random.default_rng(seed)
    if law == "gaussian":
        return scale * rng.standard_normal((n_samples, n))
    if law in ("sphere", "ball"):
        g = rng.standard_normal((n_samples, n))
        w = scale * g / np.linalg.norm(g, axis=1, keepdims=True)
        return w if law == "sphere" else w * rng.uniform(size=(n_samples, 1)) ** (1.0 / n)
    if law == "student_t":
        check_positive(dof, "dof")
        return scale * rng.standard_normal((n_samples, n)) / np.sqrt(rng.chisquare(dof, (n_samples, 1)) / dof)
    if law == "uniform_iid":
        return rng.uniform(-scale, scale, (n_samples, n))
    if law == "rademacher_iid":
        return scale * rng.choice([-1.0, 1.0], (n_samples, n))
    if law == "laplace_iid":
        return rng.laplace(0.0, scale, (n_samples, n))
    raise ValueError(f"unknown weight law {law!r}; choose one of {sorted(WEIGHT_LAWS)}")


def second_moment(law: str, n: int, scale: float = 1.0, dof: float = 5.0) -> float:
    """E|w|² of :func:`sample_weights`' laws (the only statistic the equivalent kernel depends on).

    Examples
    --------
    >>> from meanfield.weights.analysis import second_moment
    >>> second_moment("gaussian", 10, scale=2.0)       # E|w|² = n σ²
    40.0
    """
    per_coordinate = {"gaussian": scale**2, "sphere": scale**2 / n, "ball": scale**2 / (n + 2),
                      "uniform_iid": scale**2 / 3, "rademacher_iid": scale**2, "laplace_iid": 2 * scale**2}
    if law == "student_t":
        if dof <= 2:
            raise ValueError("the multivariate t law has infinite second moment for dof <= 2")
        return n * scale**2 * dof / (dof - 2)
    if law not in per_coordinate:
        raise ValueError(f"unknown weight law {law!r}")
    return n * per_coordinate[law]


def equivalent_kernel(x, y, weight_second_moment: float, activation=0.0):
    """k(x, y) = E_w[σ(w·x) σ(w·y)] for a rotationally invariant law with E|w|² = ``weight_second_moment``, any
    positively homogeneous unit of degree 1: s |x||y| k(cos θ), s = E|w|²/n, k the unit's dual kernel (the ReLU
    family through the closed form with accurate angles). ``activation``: an
    :class:`~meanfield.activations.Activation`, or a leaky slope.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 0.0]); y = np.array([0.0, 2.0])
    >>> bool(np.isclose(equivalent_kernel(x, y, 2.0), 2.0 / (2 * np.pi * 2) * 2 * 1.0))   # θ = π/2: J = 1
    True
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    unit = as_activation(activation)
    scale = weight_second_moment / x.shape[-1]
    if unit.relu_decomposition is not None and isinstance(unit, LeakyReLU):
        return relu_kernel(x, y, scale, unit.relu_decomposition[0])
    if unit.degree != 1:
        raise ValueError(f"the equivalent kernel is written for units homogeneous of degree 1, not {unit!r}")
    nx_, ny_ = np.linalg.norm(x, axis=-1), np.linalg.norm(y, axis=-1)
    cosine = np.clip(np.sum(x * y, axis=-1) / (nx_ * ny_), -1.0, 1.0)
    return scale * nx_ * ny_ * unit.dual(np.asarray(cosine), np)[0]


def empirical_kernel(weights, x, y, activation=0.0):
    """k̂(x, y) = (1/N) Σ_i σ(w_i·x) σ(w_i·y) for a sample of weights (rows), at each pair of rows of x, y;
    ``activation`` is the unit (an :class:`~meanfield.activations.Activation`, or a leaky slope).

    Examples
    --------
    Sampled weights against the closed-form equivalent kernel:

    >>> import numpy as np
    >>> from meanfield.weights.analysis import empirical_kernel, equivalent_kernel, sample_weights, second_moment
    >>> x, y = np.array([[1.0, 0.0, 0.0]]), np.array([[0.6, 0.8, 0.0]])
    >>> w = sample_weights("gaussian", 400_000, 3, seed=0)
    >>> exact = equivalent_kernel(x, y, second_moment("gaussian", 3))
    >>> bool(abs(empirical_kernel(w, x, y)[0] - exact[0]) < 0.01 * exact[0])
    True
    """
    unit = as_activation(activation)
    zx, zy = np.asarray(x) @ np.asarray(weights).T, np.asarray(y) @ np.asarray(weights).T
    return np.mean(unit(zx) * unit(zy), axis=-1)


def deep_cosine_map(rho, activation=0.0):
    """One layer of the normalised kernel, ρ ↦ k(ρ)/k(1) with k the unit's dual kernel; for the leaky ReLU
    ρ ↦ [(1−α)²(√(1−ρ²) + (π − arccos ρ)ρ) + 2πα ρ] / (π(1+α²)).

    Examples
    --------
    For the ReLU the map is the normalised arc-cosine kernel: ρ = 0 goes to 1/π, and ρ = 1 is fixed:

    >>> import numpy as np
    >>> from meanfield.weights.analysis import deep_cosine_map
    >>> bool(np.isclose(deep_cosine_map(0.0), 1 / np.pi)), float(deep_cosine_map(1.0))
    (True, 1.0)
    """
    unit = as_activation(activation)
    rho = np.clip(np.asarray(rho, dtype=np.float64), -1.0, 1.0)
    return unit.dual(rho, np)[0] / unit.dual(np.ones(1), np)[0][0]


def deep_cosines(rho0, depth: int, activation=0.0) -> np.ndarray:
    """ρ_0, ρ_1, …, ρ_depth under :func:`deep_cosine_map`.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.weights.analysis import deep_cosines
    >>> rho = deep_cosines(0.0, depth=20)
    >>> rho.shape, bool(np.all(np.diff(rho) > 0) and rho[-1] < 1)    # cosines rise towards 1 with depth
    ((21,), True)
    """
    out = [float(rho0)]
    for _ in range(check_positive_int(depth, "depth")):
        out.append(float(deep_cosine_map(out[-1], activation)))
    return np.array(out)
