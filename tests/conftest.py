"""Shared helpers: Monte-Carlo estimates with their standard errors, random rotations.

Tolerances in this suite: a comparison of two fp64 computations of the same quantity (closed form against a
brute-force sum, a backend against numpy, a fit against its defining moments) uses 1e-10 … 1e-15, the round-off of
the operations involved; a comparison with Monte Carlo uses Z_TOL standard errors; every other tolerance carries a
comment with where it comes from."""

import numpy as np
import pytest

import meanfield as mf

MC_SAMPLES = 2_000_000
#: Monte-Carlo checks accept |exact − estimate| <= Z_TOL standard errors (false-alarm rate ~6e-7 per check).
Z_TOL = 5.0


#: A teacher flow slow enough on the numpy backend (m = 256, dt = 0.01) for a test to interrupt it mid-run.
SLOW_CONFIG = """
[inputs]
law = "gaussian"
d = 10
[target]
kind = "teacher"
k = 2
[init]
kind = "sign_sphere"
m = 256
seed = 3
[run]
t_max = 40.0
dt = 0.01
solver = "heun"
save_every = 50
backend = "numpy"
output = "{output}"
"""


@pytest.fixture(scope="session")
def small_problem():
    """A teacher with two unit neurons in d = 5 (Gaussian inputs)."""
    rng = np.random.default_rng(20)
    U = rng.standard_normal((2, 5))
    return mf.Problem(mf.TeacherNetwork([1.0, 0.8], U / np.linalg.norm(U, axis=1, keepdims=True)), mf.Gaussian(5))


def mc_mean(values):
    """Mean along axis 0 and its standard error."""
    values = np.asarray(values)
    return values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])


def assert_mc_close(exact, values, z=Z_TOL, floor=1e-12):
    mean, se = mc_mean(values)
    err = np.abs(np.asarray(exact) - mean)
    assert np.all(err <= z * se + floor), f"exact {exact} vs MC {mean} ± {se} (err {err / (se + 1e-300)} SE)"


def field_on_every_backend(b, coef, scale, unit, bias=False):
    """The self-field of the particles b (rows [b | c] with ``bias``) on numpy, checked on numba and torch against it
    at 1e-10 (the same closed forms in another library or compiled); returns numpy's (V, ∇V)."""
    from meanfield.kernels import get_backend

    v, g = get_backend("numpy").field(b, b, coef, scale, unit, bias=bias)
    for backend in ("numba", "torch"):
        bk = get_backend(backend)
        b_bk = bk.asarray(b)
        vb, gb = bk.field(b_bk, b_bk, bk.asarray(coef), scale, unit, bias=bias)
        # 1e-10 relative to each entry, or to the largest entry for entries that are sums cancelling to near 0 (the
        # biased ReLU's Φ₂, compiled on numba with polynomial exp and sin, differs from numpy's by ~1e-16, amplified
        # there to ~1e-12 · max|V|).
        np.testing.assert_allclose(bk.to_numpy(vb), v, rtol=1e-10, atol=1e-10 * np.max(np.abs(v)))
        np.testing.assert_allclose(bk.to_numpy(gb), g, rtol=1e-10, atol=1e-10 * np.max(np.abs(g)))
    return v, g


def check_unit_flow(problem, mu0, h, t_max, seed):
    """For a teacher–student problem on Gaussian inputs: the exact risk of μ0 against 2·10⁶-sample Monte Carlo, and
    the energy identity dF/dt = −∫(ψ² + a²|∇ψ|²)dμ along an RK4 run (central differences of the saved risks, error
    O(h²): 1e-4 relative covers h ≤ 0.01). Returns the trajectory."""
    x = problem.inputs.sample(2_000_000, seed)
    assert_mc_close(problem.risk(mu0), 0.5 * (problem.predict(mu0, x) - problem.target(x)) ** 2)
    traj = mf.simulate(problem, mu0, t_max=t_max, dt=h, solver="rk4", save_every=1)
    dF = (traj.risk[2:] - traj.risk[:-2]) / (2 * h)
    diss = np.array([problem.dissipation(traj.measure(i)) for i in range(1, len(traj) - 1)])
    np.testing.assert_allclose(dF, -diss, rtol=1e-4)
    return traj


def interrupt_at_save(n):
    """An observable that presses Ctrl-C (raises KeyboardInterrupt) at the n-th save and returns 0 before."""
    calls = []

    def observable(mu):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return 0.0

    return observable


def random_rotation(d, rng):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def pair_at_angle(theta, d, rng, r1=1.3, r2=0.7):
    """Two vectors of norms r1, r2 at angle theta, in a random orientation."""
    rot = random_rotation(d, rng)
    b1 = r1 * rot[0]
    b2 = r2 * (np.cos(theta) * rot[0] + np.sin(theta) * rot[1])
    return b1, b2


@pytest.fixture(scope="session", params=["gaussian", "sphere"])
def law_and_sample(request):
    """An input law (d = 5) and a large sample from it, seeded."""
    law = mf.Gaussian(d=5, variance=0.7) if request.param == "gaussian" else mf.Sphere(d=5)
    return law, law.sample(MC_SAMPLES, np.random.default_rng(12345))
