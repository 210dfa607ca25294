"""Finite-width SGD in torch against the flow; distances between measures; reproducibility and resume."""

import itertools
import warnings

import numpy as np
import pytest
import torch
from conftest import assert_mc_close, interrupt_at_save

import meanfield as mf
from meanfield.compare import function_distance, wasserstein
from meanfield.sgd import TwoLayerNetwork, train


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    return mf.Problem(mf.TeacherNetwork(np.ones(2), rng.standard_normal((2, 5))), mf.Gaussian(5))


def test_network_is_the_measure(problem):
    mu = mf.ParticleMeasure(np.array([1.0, -2.0, 0.5]), np.random.default_rng(1).standard_normal((3, 5)),
                            weights=np.array([1, 2, 3]) / 6)
    net = TwoLayerNetwork.from_measure(mu)
    x = problem.inputs.sample(50, 2)
    np.testing.assert_allclose(net(torch.tensor(x)).detach().numpy(), mu.predict(x), rtol=1e-14)
    np.testing.assert_array_equal(net.to_measure().state(), mu.state())


def test_large_batch_sgd_follows_the_flow(problem):
    """With lr = m·η the SGD step is the flow's Euler step plus Monte-Carlo noise of size ~ batch^{-1/2}:
    at batch 10⁵ the final predictors differ by < 3e-3 in L²(ρ), and 100x the batch shrinks the gap > 3x."""
    mu0 = mf.init.sign_sphere(32, 5, seed=1)
    flow = mf.simulate(problem, mu0, t_max=1.0, dt=0.01, solver="euler", save_every=50)
    gaps = {}
    for batch in (1_000, 100_000):
        sgd = train(problem, mu0, t_max=1.0, eta=0.01, batch_size=batch, save_every=50, seed=0)
        np.testing.assert_allclose(sgd.times, flow.times)
        gaps[batch] = function_distance(sgd.final, flow.final, problem.inputs)
    assert gaps[100_000] < 3e-3 and gaps[1_000] > 3 * gaps[100_000], gaps


def test_function_distance_against_monte_carlo(problem):
    rng = np.random.default_rng(3)
    mu = mf.ParticleMeasure(rng.standard_normal(6), rng.standard_normal((6, 5)))
    nu = mf.ParticleMeasure(rng.standard_normal(4), rng.standard_normal((4, 5)), weights=np.array([1, 1, 2, 2]) / 6)
    x = problem.inputs.sample(2_000_000, 4)
    sq = (mu.predict(x) - nu.predict(x)) ** 2
    assert_mc_close(function_distance(mu, nu, problem.inputs) ** 2, sq)


def test_wasserstein_exact_equals_brute_force_and_sliced_is_close():
    rng = np.random.default_rng(5)
    mu = mf.ParticleMeasure(rng.standard_normal(5), rng.standard_normal((5, 3)))
    nu = mf.ParticleMeasure(rng.standard_normal(5), rng.standard_normal((5, 3)))
    x, y = mu.state(), nu.state()
    brute = min(np.mean(np.sum((x - y[list(p)]) ** 2, axis=1)) for p in itertools.permutations(range(5)))
    np.testing.assert_allclose(wasserstein(mu, nu, method="exact"), np.sqrt(brute), rtol=1e-10)
    assert wasserstein(mu, mu) < 1e-12
    # Sliced W₂ lower-bounds W₂ (up to the projection Monte Carlo) and is positive for different clouds.
    assert 0 < wasserstein(mu, nu, method="sliced", n_projections=2000) <= np.sqrt(brute) * 1.05


def test_training_is_reproducible_from_its_seed(problem):
    mu0 = mf.init.sign_sphere(16, 5, seed=2)
    runs = [train(problem, mu0, t_max=0.5, eta=0.01, batch_size=64, seed=s).final.state() for s in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    for mode in ("minibatch", "full"):
        a = train(problem, mu0, t_max=0.5, eta=0.01, batch_size=32, mode=mode, n_data=256, seed=1).final.state()
        b = train(problem, mu0, t_max=0.5, eta=0.01, batch_size=32, mode=mode, n_data=256, seed=1).final.state()
        np.testing.assert_array_equal(a, b)


def test_interrupted_sgd_resumes_bit_identically(problem, tmp_path):
    mu0 = mf.init.sign_sphere(16, 5, seed=2)
    stop = interrupt_at_save(3)
    path = tmp_path / "sgd.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        part = train(problem, mu0, t_max=1.0, eta=0.01, batch_size=64, seed=5, save_every=10, path=path,
                     observables={"s": stop})
    assert part.status == "interrupted" and part.kind == "sgd"
    part.close()
    done = train(problem, mu0, t_max=1.0, eta=0.01, batch_size=64, seed=5, save_every=10, path=path, resume=True,
                 observables={"s": lambda mu: 0.0})
    ref = train(problem, mu0, t_max=1.0, eta=0.01, batch_size=64, seed=5, save_every=10)
    np.testing.assert_array_equal(done.final.state(), ref.final.state())
    np.testing.assert_array_equal(done.risk, ref.risk)
    done.close()


def test_sgd_errors_name_the_problem(problem):
    mu0 = mf.init.sign_sphere(8, 5, seed=0)
    with pytest.raises(ValueError, match="dimension 4 but the problem has d = 5"):
        train(problem, mf.init.sign_sphere(8, 4, seed=0), t_max=1.0, eta=0.1)
    with pytest.raises(ValueError, match="eta must be finite and > 0"):
        train(problem, mu0, t_max=1.0, eta=0.0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        train(problem, mu0, t_max=1.0, eta=0.1, batch_size=0)
    with pytest.raises(ValueError, match="pass n_data"):
        train(problem, mu0, t_max=1.0, eta=0.1, mode="minibatch")
    with pytest.raises(ValueError, match="exceeds the data set size"):
        train(problem, mu0, t_max=1.0, eta=0.1, mode="minibatch", n_data=10, batch_size=20)
    with pytest.raises(ValueError, match="mode"):
        train(problem, mu0, t_max=1.0, eta=0.1, mode="adam")
    with pytest.raises(mf.FlowDivergedError, match="reduce eta"):
        train(problem, mf.init.sign_sphere(8, 5, seed=0, a_scale=50.0, radius=50.0), t_max=50.0, eta=5.0,
              save_every=1)


def test_sgd_runs_from_a_configuration(tmp_path):
    from meanfield.config import run_config, validate_config

    cfg = {"inputs": {"law": "gaussian", "d": 4}, "target": {"kind": "teacher", "k": 2},
           "init": {"kind": "sign_sphere", "m": 8, "seed": 1},
           "run": {"kind": "sgd", "t_max": 0.5, "eta": 0.05, "batch_size": 32, "seed": 2, "save_every": 5,
                   "output": str(tmp_path / "s.h5")}}
    validate_config(cfg)
    with run_config(cfg) as traj:
        assert traj.kind == "sgd" and traj.status == "completed" and len(traj) == 3
    with pytest.raises(ValueError, match="do not apply to kind = 'sgd'"):
        run_config(dict(cfg, run=dict(cfg["run"], solver="heun")), overwrite=True)
