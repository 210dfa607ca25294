"""Targets: F*, ∇F*, E f*², E[f* x] against Monte Carlo, and quadrature against closed forms."""

import numpy as np
import pytest
from conftest import MC_SAMPLES, assert_mc_close, random_rotation

import meanfield as mf


def relu(z):
    return np.maximum(z, 0.0)


def _targets(d, rng):
    rot = random_rotation(d, rng)
    return {
        "teacher": mf.TeacherNetwork(np.array([1.0, -0.7, 0.4]), rng.standard_normal((3, d))),
        "linear": mf.LinearTarget(rng.standard_normal(d)),
        "cubic": mf.CubicTarget(rng.standard_normal(d), scale=1.5),
        "multi_index": mf.MultiIndexTarget(lambda xh: np.linalg.norm(xh, axis=1), rot[:, :2], degree=1),
    }


@pytest.mark.parametrize("name", ["teacher", "linear", "cubic", "multi_index"])
def test_target_moments_against_monte_carlo(law_and_sample, name):
    law, x = law_and_sample
    rng = np.random.default_rng(6)
    target = _targets(law.d, rng)[name]
    y = target(x)
    assert_mc_close(target.second_moment(law), y**2)
    assert_mc_close(target.linear_moment(law), y[:, None] * x)
    b = rng.standard_normal((3, law.d))
    b[2] *= 1e-3
    value, grad = target.relu_correlation(law, b)
    for j in range(3):
        z = x @ b[j]
        assert_mc_close(value[j], y * relu(z))
        assert_mc_close(grad[j], (y * (z > 0))[:, None] * x)


@pytest.mark.parametrize("law", [mf.Gaussian(6, 0.5), mf.Sphere(6)])
def test_multi_index_quadrature_against_teacher_closed_form(law):
    """g(x_H) = relu(⟨v, x_H⟩) is a one-neuron teacher u = Qv: the quadrature must match the closed form."""
    rng = np.random.default_rng(7)
    Q = random_rotation(6, rng)[:, :3]
    v = rng.standard_normal(3)
    mi = mf.MultiIndexTarget(lambda xh: relu(xh @ v), Q, degree=1)
    teacher = mf.TeacherNetwork([1.0], (Q @ v)[None])
    b = rng.standard_normal((5, 6))
    b[1] = Q @ rng.standard_normal(3)  # a neuron inside H (r = 0)
    for got, want in zip(mi.relu_correlation(law, b), teacher.relu_correlation(law, b)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-3 * np.abs(want).max())
    np.testing.assert_allclose(mi.second_moment(law), teacher.second_moment(law), rtol=1e-10)
    np.testing.assert_allclose(mi.linear_moment(law), teacher.linear_moment(law), rtol=1e-10)


def test_multi_index_is_exact_for_polynomial_g():
    rng = np.random.default_rng(8)
    Q = random_rotation(5, rng)[:, :2]
    v = rng.standard_normal(2)
    mi = mf.MultiIndexTarget(lambda xh: xh @ v, Q, degree=1)
    lin = mf.LinearTarget(Q @ v)
    law = mf.Gaussian(5, 2.0)
    b = rng.standard_normal((4, 5))
    for got, want in zip(mi.relu_correlation(law, b), lin.relu_correlation(law, b)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_multi_index_sobol_rule_for_large_hidden_dimension():
    rng = np.random.default_rng(9)
    Q = random_rotation(12, rng)[:, :10]
    mi = mf.MultiIndexTarget(lambda xh: np.linalg.norm(xh, axis=1), Q, degree=1, max_nodes=1 << 14)
    assert mi.rule == "sobol"
    law = mf.Gaussian(12)
    x = law.sample(1_000_000, 10)
    b = rng.standard_normal((2, 12))
    value, _ = mi.relu_correlation(law, b)
    y = mi(x)
    for j in range(2):
        mean = np.mean(y * relu(x @ b[j]))
        assert abs(value[j] - mean) < 5e-3 * abs(mean)


def test_monte_carlo_target_is_approximate_and_close_to_exact():
    rng = np.random.default_rng(10)
    teacher = mf.TeacherNetwork([1.0, 0.5], rng.standard_normal((2, 4)))
    approx = mf.MonteCarloTarget(teacher, d=4, n_samples=400_000, seed=1)
    assert approx.exact is False and teacher.exact is True
    law = mf.Gaussian(4)
    b = rng.standard_normal((3, 4))
    exact_v, _ = teacher.relu_correlation(law, b)
    approx_v, _ = approx.relu_correlation(law, b)
    # A fixed sample of 4e5 inputs: relative SE of these means ≈ 2/√(4e5) ≈ 3e-3; 2e-2 ≈ 6 SE.
    np.testing.assert_allclose(approx_v, exact_v, rtol=2e-2)
    np.testing.assert_allclose(approx.second_moment(law), teacher.second_moment(law), rtol=2e-2)


def test_cubic_normalisation():
    """½ E f*² = 1 after normalisation, by Monte Carlo (not by multiplying the normalising constant back)."""
    law = mf.Gaussian(60, 1 / 60)
    target = mf.CubicTarget.normalized(np.ones(60) / np.sqrt(60), law)
    x = law.sample(MC_SAMPLES, np.random.default_rng(17))
    assert_mc_close(1.0, 0.5 * target(x) ** 2)


def test_target_validation():
    with pytest.raises(ValueError, match="c has 2 entries but U has 3 rows"):
        mf.TeacherNetwork([1.0, 2.0], np.ones((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        mf.TeacherNetwork([np.nan], np.ones((1, 4)))
    with pytest.raises(ValueError, match="orthonormal"):
        mf.MultiIndexTarget(np.sum, np.ones((4, 2)))
    with pytest.raises(ValueError, match="degree"):
        Q = np.eye(4)[:, :2]
        mf.MultiIndexTarget(lambda xh: xh[:, 0] ** 2, Q).relu_correlation(mf.Sphere(4), np.ones((1, 4)))


@pytest.mark.parametrize("law", [mf.Gaussian(7, 0.6), mf.Sphere(7)])
def test_radial_target_against_monte_carlo(law):
    rng = np.random.default_rng(11)
    Q = random_rotation(7, rng)[:, :3]
    target = mf.RadialTarget(lambda r: r, Q, degree=1)
    x = law.sample(2_000_000, 12)
    y = target(x)
    assert_mc_close(target.second_moment(law), y**2)
    b = rng.standard_normal((3, 7))
    value, grad = target.relu_correlation(law, b)
    for j in range(3):
        z = x @ b[j]
        assert_mc_close(value[j], y * relu(z))
        assert_mc_close(grad[j], (y * (z > 0))[:, None] * x)
    # Against the generic d_H-dimensional quadrature (accurate to ~1e-3, see MultiIndexTarget).
    generic = mf.MultiIndexTarget(lambda xh: np.linalg.norm(xh, axis=1), Q, degree=1)
    np.testing.assert_allclose(value, generic.relu_correlation(law, b)[0], rtol=2e-3)


def _every_target(d=5):
    rng = np.random.default_rng(11)
    Q = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    U = rng.standard_normal((3, d))
    return {
        "teacher": mf.TeacherNetwork([1.0, -0.5, 0.3], U),
        "linear": mf.LinearTarget(rng.standard_normal(d)),
        "cubic": mf.CubicTarget(rng.standard_normal(d)),
        "multi_index": mf.MultiIndexTarget(lambda z: np.tanh(z[:, 0]) * z[:, 1], Q, degree=None),
        "radial": mf.RadialTarget.norm(Q),
        "monte_carlo": mf.MonteCarloTarget(lambda x: np.sin(x[:, 0]) + x[:, 1] ** 2, d, n_samples=4096),
    }


@pytest.mark.parametrize("name", list(_every_target()))
def test_target_correlations_on_torch_equal_numpy_and_stay_on_torch(name):
    """Every target computes F* and ∇F* on the backend's own arrays (no copy to the host at each evaluation) and
    agrees with the numpy computation to round-off (1e-12 relative: the same operations in another library), at
    generic neurons, at neurons inside and orthogonal to H, and at a zero neuron."""
    import torch

    from meanfield.kernels import get_backend

    target = _every_target()[name]
    inputs = mf.Gaussian(5)
    rng = np.random.default_rng(12)
    b = rng.standard_normal((9, 5))
    b[7] = 0.0
    if hasattr(target, "Q"):
        b[5] = target.Q @ np.array([0.7, -0.2])
        b[6] -= target.Q @ (target.Q.T @ b[6])
    f_np, g_np = target.relu_correlation(inputs, b)
    torch_backend = get_backend("torch")
    f_t, g_t = target.relu_correlation(inputs, torch_backend.asarray(b), torch_backend)
    assert isinstance(f_t, torch.Tensor) and isinstance(g_t, torch.Tensor)
    np.testing.assert_allclose(f_t.numpy(), f_np, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.broadcast_to(g_t.numpy(), b.shape), np.broadcast_to(g_np, b.shape), rtol=1e-12,
                               atol=1e-14)
    x = inputs.sample(50, 13)
    np.testing.assert_allclose(target.torch(torch.as_tensor(x)).numpy(), target(x), rtol=1e-13, atol=1e-15)


def test_a_monte_carlo_target_warns_when_its_surrogate_risk_goes_negative():
    """With 64 samples the sample correlations are not those of any function the kernel can fit, so the flow drives
    the surrogate risk below 0 (here to about −2.5 by t = 20): warned once, naming the fix; exact targets never warn."""
    rng = np.random.default_rng(0)
    teacher = mf.TeacherNetwork(np.ones(2), rng.standard_normal((2, 5)))
    problem = mf.Problem(mf.MonteCarloTarget(teacher, 5, n_samples=64, seed=0), mf.Gaussian(5))
    with pytest.warns(mf.problem.ApproximateRiskWarning, match="negative.*increase its n_samples") as caught:
        traj = mf.simulate(problem, mf.init.sign_sphere(64, 5, seed=1), t_max=5.0, dt=0.05, backend="numpy",
                           alignment=False)
    assert traj.risk.min() < 0 and sum(w.category is mf.problem.ApproximateRiskWarning for w in caught) == 1


@pytest.mark.parametrize("n", [16, 40])
def test_half_normal_rule_integrates_the_moments_of_the_half_normal_weight(n):
    """The Gauss rule of radial targets for E[g(w) 1(w > 0)], w ~ N(0, 1): its moments E[w^k 1(w > 0)] =
    2^{k/2 − 1} Γ((k + 1)/2)/√π for k ≤ 30 (< 2n, exact for a Gauss rule) to 1e-12 relative (measured ≤ 1.4e-13: the
    round-off of the Stieltjes procedure on the 2000-point discretisation), nodes in (0, ∞), positive weights; and the
    same arrays on a second call (computed once per process), which the caller may modify without changing later
    rules."""
    from math import gamma, pi, sqrt

    from meanfield.targets import half_normal_rule

    nodes, weights = half_normal_rule(n)
    assert nodes.shape == weights.shape == (n,) and np.all(nodes > 0) and np.all(weights > 0)
    for k in range(min(30, 2 * n - 1) + 1):
        exact = 2 ** (k / 2 - 1) * gamma((k + 1) / 2) / sqrt(pi)
        assert abs(weights @ nodes**k - exact) <= 1e-12 * exact, (n, k, weights @ nodes**k, exact)
    nodes[:] = 0.0
    again, weights_again = half_normal_rule(n)
    assert np.all(again > 0)
    np.testing.assert_array_equal(weights_again, weights)
