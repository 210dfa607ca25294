"""SGD modes against independent implementations: full-batch GD and mini-batch SGD re-done in numpy with
hand-written gradients, the batches of an epoch, other input laws and targets, leaky units, and the recorded
population risk against Monte Carlo."""

import numpy as np
import pytest
import torch
from conftest import assert_mc_close

import meanfield as mf
from meanfield.sgd import TwoLayerNetwork, minibatch_indices, train, training_data


def _numpy_gd(mu, x, y, eta, steps, slope=0.0, batches=None):
    """Gradient steps on ½ mean (f − y)² written out by hand: each neuron moves by η / w_j times its gradient."""
    a, b, w = mu.a.copy(), mu.b.copy(), mu.weights
    for step in range(1, steps + 1):
        idx = batches(step) if batches is not None else np.arange(len(x))
        xb, yb = x[idx], y[idx]
        z = xb @ b.T                                        # (n, m)
        act = np.where(z > 0, z, slope * z)
        deriv = np.where(z > 0, 1.0, slope)
        residual = act @ (w * a) - yb                       # (n,)
        grad_a = w * (residual @ act) / len(xb)
        grad_b = (w * a)[:, None] * ((residual[:, None] * deriv).T @ xb) / len(xb)
        a, b = a - eta * grad_a / w, b - eta * grad_b / w[:, None]
    return a, b


PROBLEMS = {
    "teacher, Gaussian": lambda: mf.Problem(mf.TeacherNetwork([1.0, -0.5], np.eye(5)[:2]), mf.Gaussian(5, 0.8)),
    "cubic, sphere": lambda: mf.Problem(mf.CubicTarget(np.linspace(1, 2, 5)), mf.Sphere(5)),
    "linear, sphere": lambda: mf.Problem(mf.LinearTarget(np.ones(5)), mf.Sphere(5)),
    "teacher, leaky": lambda: mf.Problem(mf.TeacherNetwork([1.0], np.eye(5)[:1]), mf.Gaussian(5),
                                         activation="leaky_relu", slope=0.2),
}


@pytest.mark.parametrize("name", PROBLEMS)
def test_full_batch_gd_equals_an_independent_implementation(name):
    problem = PROBLEMS[name]()
    mu0 = mf.init.gaussian(8, 5, seed=1)
    eta, steps = 0.05, 12
    traj = train(problem, mu0, t_max=eta * steps, eta=eta, mode="full", n_data=64, seed=3, save_every=steps)
    x, _ = training_data(problem, 64, seed=3)
    x = x.numpy()
    y = problem.target(x)  # the numpy target, not the torch one the trainer uses
    if isinstance(problem.inputs, mf.Sphere):
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-14)
    a, b = _numpy_gd(mu0, x, y, eta, steps, problem.slope)
    # Same arithmetic in another order: fp64 round-off over 12 steps (~1e-15 relative per step, no amplification
    # over so few contracting steps) stays far below 1e-11.
    np.testing.assert_allclose(traj.final.a, a, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(traj.final.b, b, rtol=1e-11, atol=1e-13)


def test_minibatches_partition_each_epoch_and_minibatch_sgd_equals_an_independent_implementation():
    n, batch = 50, 8  # 6 steps per epoch, 2 samples left out of each epoch
    for epoch in range(3):
        steps = range(6 * epoch + 1, 6 * epoch + 7)
        seen = np.concatenate([minibatch_indices(n, batch, 4, s).numpy() for s in steps])
        assert len(seen) == 48 and len(set(seen.tolist())) == 48 and seen.min() >= 0 and seen.max() < n
    first, second = (minibatch_indices(n, batch, 4, s).numpy() for s in (1, 7))
    assert not np.array_equal(first, second)  # each epoch draws a new permutation
    problem = PROBLEMS["teacher, Gaussian"]()
    mu0 = mf.init.gaussian(8, 5, seed=2)
    eta, steps = 0.05, 14  # crosses two epoch boundaries
    traj = train(problem, mu0, t_max=eta * steps, eta=eta, batch_size=batch, mode="minibatch", n_data=n, seed=4,
                 save_every=steps)
    x = training_data(problem, n, seed=4)[0].numpy()
    a, b = _numpy_gd(mu0, x, problem.target(x), eta, steps,
                     batches=lambda s: minibatch_indices(n, batch, 4, s).numpy())
    np.testing.assert_allclose(traj.final.state(), np.concatenate([a[:, None], b], axis=1), rtol=1e-11, atol=1e-13)


def test_the_recorded_population_risk_is_the_risk_of_the_saved_network():
    problem = mf.Problem(mf.CubicTarget(np.linspace(1, 2, 4)), mf.Sphere(4), activation="leaky_relu", slope=0.1)
    traj = train(problem, mf.init.sign_sphere(8, 4, seed=0), t_max=0.6, eta=0.1, batch_size=64, save_every=3)
    x = problem.inputs.sample(400_000, np.random.default_rng(9))
    for i in range(len(traj)):
        mu = traj.measure(i)
        values = 0.5 * (mu.predict(x, problem.slope) - problem.target(x)) ** 2  # ½ (f − f*)², sample by sample
        assert_mc_close(traj.risk[i], values)


def test_leaky_networks_are_their_measures():
    mu = mf.init.gaussian(6, 4, seed=3)
    net = TwoLayerNetwork.from_measure(mu, activation=0.3)
    x = np.random.default_rng(4).standard_normal((20, 4))
    z = x @ mu.b.T
    by_hand = np.where(z > 0, z, 0.3 * z) @ (mu.weights * mu.a)
    np.testing.assert_allclose(net(torch.tensor(x)).detach().numpy(), by_hand, rtol=1e-13)
    np.testing.assert_allclose(mu.predict(x, 0.3), by_hand, rtol=1e-13)
    problem = mf.Problem(mf.LinearTarget(np.ones(4)), mf.Gaussian(4), activation="leaky_relu", slope=0.3)
    np.testing.assert_allclose(problem.predict(mu, x), by_hand, rtol=1e-13)
    assert not np.allclose(mu.predict(x), by_hand)  # the ReLU prediction differs: the slope is not ignored
