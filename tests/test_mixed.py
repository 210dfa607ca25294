"""A student of one unit against a teacher of another: the exact Hermite coefficients of kinked units, the mixed pair
kernel and its gradient against Monte Carlo and finite differences, the risk of every student unit against Monte Carlo,
backends against numpy, and the energy identity along a mixed flow."""

import math

import numpy as np
import pytest
from conftest import MC_SAMPLES, assert_mc_close, check_unit_flow
from numpy.polynomial.hermite_e import hermeval

import meanfield as mf
from meanfield.activations import RELU, Abs, Erf, ReLUPower, Tanh, as_activation
from meanfield.hermite import truncated_power_coefficients
from meanfield.mixed import MixedUnit


@pytest.mark.parametrize("n", [0, 1, 2, 3])
@pytest.mark.parametrize("s, c", [(1.3, 0.4), (0.7, -1.1), (0.0, 0.5), (0.0, -0.5), (1.0, 0.0)])
def test_truncated_power_coefficients_against_monte_carlo(n, s, c):
    g = np.random.default_rng(n).standard_normal(MC_SAMPLES)
    f = np.where(s * g + c > 0, (s * g + c) ** n, 0.0) if n else (s * g + c > 0).astype(float)
    exact = truncated_power_coefficients(n, np.array([s]), np.array([c]), 7)[0]
    for k in range(8):
        h_k = hermeval(g, [0.0] * k + [1.0]) / math.sqrt(math.factorial(k))
        assert_mc_close(exact[k], f * h_k)


CASES = [(0.3, 1.2, 0.5, 0.3, -0.2), (0.0, 0.8, 1.0, -0.6, 0.0), (0.5, 0.6, 0.5, 0.0, 0.0)]


@pytest.mark.parametrize("student, teacher", [(RELU, Tanh()), (ReLUPower(2), Erf()), (Abs(), Erf()),
                                              (as_activation("gelu"), RELU), (ReLUPower(3), as_activation("silu"))],
                         ids=["relu|tanh", "relu2|erf", "abs|erf", "gelu|relu", "relu3|silu"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_mixed_kernel_against_monte_carlo_and_differences(student, teacher, case):
    p, q, q2, c, c2 = CASES[case]
    mixed = MixedUnit(student, teacher)

    def kernel(*args):
        return [float(np.ravel(v)[0]) for v in mixed.shifted_pair_kernel(*(np.array([[x]]) for x in args), np)]

    k, dk_dp, dk_dq, dk_dc = kernel(p, q, q2, c, c2)
    rng = np.random.default_rng(case)
    g1, g2 = rng.standard_normal((2, MC_SAMPLES))
    rho = p / math.sqrt(q * q2)
    u = math.sqrt(q) * g1 + c
    v = math.sqrt(q2) * (rho * g1 + math.sqrt(1 - rho * rho) * g2) + c2
    assert_mc_close(k, student(u) * teacher(v))
    assert_mc_close(dk_dp, student.derivative(u) * teacher.derivative(v))  # Price
    assert_mc_close(dk_dc, student.derivative(u) * teacher(v))
    eps = 1e-6  # central differences: ~1e-11 here (the series is truncated at ~1e-10 relative)
    for index, exact in ((0, dk_dp), (1, dk_dq), (3, dk_dc)):
        up, down = list(CASES[case]), list(CASES[case])
        up[index] += eps
        down[index] -= eps
        assert abs((kernel(*up)[0] - kernel(*down)[0]) / (2 * eps) - exact) <= 1e-8


@pytest.fixture(scope="module")
def erf_teacher():
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 3)))[0].T
    return mf.TeacherNetwork([1.0, -0.7, 0.5], U, activation="erf")


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "abs", "relu2", "relu3", "gelu", "tanh", "softplus"])
def test_every_student_against_a_shared_teacher(erf_teacher, activation):
    """The exact risk of each student unit against one erf teacher, against Monte Carlo; torch against numpy."""
    problem = mf.Problem(erf_teacher, mf.Gaussian(6), activation=activation)
    mu = mf.init.gaussian(10, 6, seed=2, b_std=0.3)  # tanh at tol 1e-10 needs √κ|b| below ~1.2
    x = problem.inputs.sample(MC_SAMPLES, 3)
    assert_mc_close(problem.risk(mu), 0.5 * (problem.predict(mu, x) - erf_teacher(x)) ** 2)
    numpy, torch = problem.evaluate(mu, "numpy"), problem.evaluate(mu, "torch")
    np.testing.assert_allclose(torch.grad_psi, numpy.grad_psi, rtol=1e-10, atol=1e-13)


def test_energy_identity_along_a_mixed_flow(erf_teacher):
    problem = mf.Problem(erf_teacher, mf.Gaussian(6), activation="relu")
    check_unit_flow(problem, mf.init.gaussian(12, 6, seed=4), h=0.01, t_max=0.2, seed=5)


def test_biased_student_against_a_teacher_of_another_unit():
    U = np.eye(4)[:2]
    teacher = mf.TeacherNetwork([1.0, 0.6], U, activation="gelu", bias=[0.3, -0.4])
    problem = mf.Problem(teacher, mf.Gaussian(4), activation="relu", bias=True)
    mu = mf.init.gaussian(8, 4, seed=1, bias_std=0.6)
    x = problem.inputs.sample(MC_SAMPLES, 6)
    assert_mc_close(problem.risk(mu), 0.5 * (problem.predict(mu, x) - teacher(x)) ** 2)


def test_mixed_units_need_gaussian_inputs_and_a_convergent_series():
    teacher = mf.TeacherNetwork([1.0], np.eye(3)[:1], activation="relu2")
    with pytest.raises(ValueError, match="Gaussian inputs only"):
        mf.Problem(teacher, mf.Sphere(3), activation="relu3")
    # Two kinked units: coefficients decaying like powers of k (without biases, parity would zero the products).
    one = np.array([[1.0]])
    with pytest.raises(ValueError, match="needs more than max_order"):
        MixedUnit(ReLUPower(1), ReLUPower(2), tol=1e-12).shifted_pair_kernel(0.5 * one, one, one, 0.3 * one, one, np)
