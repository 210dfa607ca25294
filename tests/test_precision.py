"""float32 runs against float64 runs of the same problem, with tolerances derived from the float32 unit round-off."""

import numpy as np

import meanfield as mf
from meanfield.sgd import train

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7


def test_a_float32_flow_follows_the_float64_flow(small_problem):
    problem = small_problem
    """Each fp32 velocity carries a relative error of a few ε32 (rounding of the Gram matrix, of arccos and of the
    two m-term sums, whose terms have no systematic sign). The flow is a gradient flow that contracts towards its
    minimisers, so over t = 2 (40 Heun steps) these errors add up without amplification: a few ε32 per unit time
    (measured: 2.8e-7 at t = 1, 4.0e-7 at t = 2, 5.5e-7 at t = 4). The tolerance 20 ε32 = 2.4e-6 holds that with a
    margin, and fails on what would be a bug: fp16 anywhere (≥ 1e-3), or an fp32 arccos near θ = 0 that loses half
    the digits (~3e-4)."""
    mu0 = mf.init.sign_sphere(64, 5, seed=1)
    f64 = mf.simulate(problem, mu0, t_max=2.0, dt=0.05, backend="numpy")
    f32 = mf.simulate(problem, mu0, t_max=2.0, dt=0.05, backend="torch", backend_options={"dtype": "float32"})
    scale = np.abs(f64.final.state()).max()
    assert np.abs(f32.final.state() - f64.final.state()).max() <= 20 * EPS32 * scale
    # The risk is a sum of m² fp32 kernel terms: relative error a few ε32 of the initial risk.
    np.testing.assert_allclose(f32.risk, f64.risk, rtol=0, atol=20 * EPS32 * f64.risk[0])
    assert f32.risk[-1] < 0.5 * f32.risk[0]


def test_a_float32_sgd_run_follows_the_float64_run(small_problem):
    problem = small_problem
    """Same seed, same samples (drawn in fp64, then rounded): the fp32 run differs by the rounding of the inputs and
    of each step's products, a few ε32 per step, again without amplification over 40 contracting steps (measured
    2e-7 after 20 steps, 3e-7 after 80): tolerance 20 ε32 of the largest parameter."""
    mu0 = mf.init.sign_sphere(64, 5, seed=1)
    s64 = train(problem, mu0, t_max=2.0, eta=0.05, batch_size=256, save_every=20)
    s32 = train(problem, mu0, t_max=2.0, eta=0.05, batch_size=256, save_every=20, dtype="float32")
    scale = np.abs(s64.final.state()).max()
    assert np.abs(s32.final.state() - s64.final.state()).max() <= 20 * EPS32 * scale
    # Both risks are exact population risks of the saved networks, computed in fp64 from the fp32 parameters.
    np.testing.assert_allclose(s32.risk, s64.risk, rtol=0, atol=20 * EPS32 * s64.risk[0])
