"""Activations as objects: the dual kernels against Monte Carlo, and a new activation defined here, in one class,
running through every backend, the problem, the flow and the finite network with nothing edited elsewhere."""

import math

import numpy as np
import pytest
import torch
from conftest import MC_SAMPLES, assert_mc_close, pair_at_angle

import meanfield as mf
from meanfield.activations import Activation, LeakyReLU, as_activation
from meanfield.kernels import available_backends, get_backend
from meanfield.sgd import TwoLayerNetwork


class Abs(Activation):
    """σ(z) = |z| = 2 relu(z) − z; for standard normals with correlation c, E|X||Y| = (2/π)(√(1 − c²) + c arcsin c)."""

    name = "abs"

    def __call__(self, z):
        return np.abs(z)

    def torch(self, z):
        return torch.abs(z)

    def derivative(self, z):
        return np.sign(z)

    def dual(self, c, nx):
        sqrt = nx.sqrt((1.0 - c) * (1.0 + c))
        arcsin = math.pi / 2 - nx.arccos(c)
        return (2 / math.pi) * (sqrt + c * arcsin), (2 / math.pi) * arcsin, (2 / math.pi) * sqrt

    @property
    def relu_decomposition(self):
        return -1.0, 2.0


@pytest.mark.parametrize("unit", [LeakyReLU(0.0), LeakyReLU(0.3), Abs()], ids=["relu", "leaky", "abs"])
@pytest.mark.parametrize("theta", [0.2, 1.5, 2.9])
def test_dual_kernels_against_monte_carlo(unit, theta):
    rng = np.random.default_rng(7)
    g = rng.standard_normal((MC_SAMPLES, 2))
    c = math.cos(theta)
    x, y = g[:, 0], c * g[:, 0] + math.sin(theta) * g[:, 1]  # correlation c
    k, dk, radial = unit.dual(np.array([c]), get_backend("numpy"))
    assert_mc_close(k[0], unit(x) * unit(y))
    # k'(c) = E[σ'(X) σ'(Y)] for standard normals (Price's theorem), and the radial part is k − c k'.
    assert_mc_close(dk[0], unit.derivative(x) * unit.derivative(y))
    np.testing.assert_allclose(radial[0], k[0] - c * dk[0], rtol=1e-12)


@pytest.mark.parametrize("backend", available_backends())
def test_a_new_activation_runs_on_every_backend(backend):
    """The field of Abs on each backend against Monte Carlo of E[|⟨b, x⟩| |⟨b', x⟩|] and its gradient."""
    law = mf.Gaussian(5, 0.7)
    x = law.sample(MC_SAMPLES, np.random.default_rng(3))
    b1, b2 = pair_at_angle(1.1, 5, np.random.default_rng(4))
    bk = get_backend(backend)
    v, g = bk.field(bk.asarray(b1[None]), bk.asarray(b2[None]), bk.asarray(np.ones(1)), law.kernel_scale, Abs())
    z1, z2 = x @ b1, x @ b2
    assert_mc_close(bk.to_numpy(v)[0], np.abs(z1) * np.abs(z2))
    assert_mc_close(bk.to_numpy(g)[0], (np.sign(z1) * np.abs(z2))[:, None] * x)


def test_a_new_activation_in_a_problem_a_flow_and_a_network():
    law = mf.Gaussian(4)
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.5], np.eye(4)[:2]), law, activation=Abs())
    mu = mf.init.sign_sphere(12, 4, seed=0)
    x = law.sample(MC_SAMPLES, np.random.default_rng(5))
    assert_mc_close(problem.risk(mu), 0.5 * (np.abs(x @ mu.b.T) @ (mu.weights * mu.a) - problem.target(x)) ** 2)
    net = TwoLayerNetwork.from_measure(mu, activation=Abs())
    np.testing.assert_allclose(net(torch.tensor(x[:50])).detach().numpy(), mu.predict(x[:50], Abs()), rtol=1e-13)
    # The energy identity along an RK4 run (central differences: error O(h²), rtol 1e-4 as for the ReLU).
    h = 0.005
    traj = mf.simulate(problem, mu, t_max=0.5, dt=h, solver="rk4", save_every=1)
    dF = (traj.risk[2:] - traj.risk[:-2]) / (2 * h)
    diss = np.array([problem.dissipation(traj.measure(i)) for i in range(1, len(traj) - 1)])
    np.testing.assert_allclose(dF, -diss, rtol=1e-4)
    assert problem.spec()["activation"] == "abs" and as_activation(Abs()) == Abs()
