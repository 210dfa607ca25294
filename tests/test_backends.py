"""Every backend against the numpy reference (fp64: relative error <= 1e-10 on field, velocity and risk).

The tolerance is far above fp64 round-off (~1e-15 seen) and far below any modelling error; an fp32 run is
checked at 1e-4.
"""

import numpy as np
import pytest

import meanfield as mf
from meanfield.kernels import get_backend

torch = pytest.importorskip("torch")

CUDA = torch.cuda.is_available()
BACKENDS = [
    pytest.param(("numba", {"strategy": "fused"}), id="numba-fused"),
    pytest.param(("numba", {"strategy": "blas", "tile": 64}), id="numba-blas"),
    pytest.param(("torch", {"device": "cpu"}), id="torch-cpu"),
    pytest.param(("torch", {"device": "cuda"}), id="torch-cuda",
                 marks=pytest.mark.skipif(not CUDA, reason="no CUDA device visible to torch on this machine")),
]
RTOL = 1e-10


def rel_err(got, want):
    return np.abs(np.asarray(got) - want).max() / np.abs(want).max()


def _normalised(w):
    return w / w.sum()


def awkward_neurons(m, d, rng):
    """Random neurons plus zero-norm, parallel, antiparallel and near-parallel ones."""
    b = rng.standard_normal((m, d))
    b[0] = 0.0
    b[1] = 3.0 * b[2]
    b[3] = -0.5 * b[4]
    b[5] = b[6] + 1e-9 * rng.standard_normal(d)
    b[7] = -b[8] * (1 + 1e-12)
    return b


@pytest.mark.parametrize("spec", BACKENDS)
@pytest.mark.parametrize("d", [3, 20, 70])
@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_field_matches_numpy(spec, d, alpha):
    name, options = spec
    backend = get_backend(name, **options)
    rng = np.random.default_rng(d)
    pts, src = awkward_neurons(150, d, rng), awkward_neurons(130, d, rng)
    coef = rng.standard_normal(130)
    ref_v, ref_g = get_backend("numpy").field(pts, src, coef, 0.7, alpha)
    v, g = backend.field(backend.asarray(pts), backend.asarray(src), backend.asarray(coef), 0.7, alpha)
    assert rel_err(backend.to_numpy(v), ref_v) < RTOL and rel_err(backend.to_numpy(g), ref_g) < RTOL
    # The self-interaction (points are the sources) takes the symmetric path where one exists.
    p = backend.asarray(pts)
    v, g = backend.field(p, p, backend.asarray(coef[:1].repeat(150)), 0.7, alpha)
    ref_v, ref_g = get_backend("numpy").field(pts, pts, coef[:1].repeat(150), 0.7, alpha)
    assert rel_err(backend.to_numpy(v), ref_v) < RTOL and rel_err(backend.to_numpy(g), ref_g) < RTOL
    v_only, none = backend.field(p, p, backend.asarray(coef[:1].repeat(150)), 0.7, alpha, grad=False)
    assert none is None and rel_err(backend.to_numpy(v_only), ref_v) < RTOL


def _problems(d, rng):
    U = rng.standard_normal((3, d))
    yield mf.Problem(mf.TeacherNetwork([1.0, -0.5, 2.0], U), mf.Gaussian(d, 0.5))
    yield mf.Problem(mf.CubicTarget(rng.standard_normal(d)), mf.Sphere(d), activation="leaky_relu", slope=0.05)
    yield mf.Problem(mf.MultiIndexTarget(lambda xh: np.linalg.norm(xh, axis=1), np.eye(d)[:, :2], degree=1),
                     mf.Sphere(d))


@pytest.mark.parametrize("spec", BACKENDS)
def test_velocity_and_risk_match_numpy(spec):
    name, options = spec
    backend = get_backend(name, **options)
    rng = np.random.default_rng(0)
    for d in (4, 30):
        mu = mf.ParticleMeasure(rng.standard_normal(200), awkward_neurons(200, d, rng),
                                weights=_normalised(rng.uniform(0.5, 1.5, 200)))
        for problem in _problems(d, rng):
            ref = problem.evaluate(mu, "numpy")
            got = problem.evaluate(mu, backend)
            assert abs(got.risk - ref.risk) <= RTOL * abs(ref.risk)
            da, db = problem.velocity(mu, backend)
            ra, rb = problem.velocity(mu, "numpy")
            assert rel_err(da, ra) < RTOL and rel_err(db, rb) < RTOL


@pytest.mark.parametrize("spec", BACKENDS)
def test_simulation_is_backend_independent(spec):
    name, options = spec
    rng = np.random.default_rng(1)
    problem = mf.Problem(mf.TeacherNetwork(np.ones(2), rng.standard_normal((2, 20))), mf.Gaussian(20))
    mu0 = mf.init.sign_sphere(96, 20, seed=2)
    ref = mf.simulate(problem, mu0, t_max=2.0, dt=0.05, solver="rk4", save_every=10)
    got = mf.simulate(problem, mu0, t_max=2.0, dt=0.05, solver="rk4", save_every=10, backend=name,
                      backend_options=options)
    # Per evaluation the backends agree to ~1e-15 relative (test above at 1e-10); over 40 RK4 steps of a contracting
    # flow the differences accumulate to ~1e-13 at most: 1e-9 leaves room for fp64 summation-order differences.
    np.testing.assert_allclose(got.risk, ref.risk, rtol=1e-9)
    np.testing.assert_allclose(got.final.state(), ref.final.state(), rtol=1e-9, atol=1e-12)
    assert got.info["backend"] == name


def test_torch_float32_on_request():
    backend = get_backend("torch", dtype="float32")
    rng = np.random.default_rng(3)
    pts = rng.standard_normal((64, 10))
    coef = rng.standard_normal(64)
    v, g = backend.field(backend.asarray(pts), backend.asarray(pts), backend.asarray(coef), 1.0)
    assert v.dtype == torch.float32
    ref_v, ref_g = get_backend("numpy").field(pts, pts, coef, 1.0)
    assert rel_err(backend.to_numpy(v), ref_v) < 1e-4 and rel_err(backend.to_numpy(g), ref_g) < 1e-4


def test_vectorised_arccos_is_within_an_ulp():
    from meanfield.kernels.numba_backend import acos_vectorised

    c = np.concatenate([np.linspace(-1, 1, 200_001), 1 - np.logspace(-17, -1, 200), -1 + np.logspace(-17, -1, 200)])
    ref = np.arccos(c)
    assert np.all(np.abs(acos_vectorised(c) - ref) <= np.spacing(np.maximum(ref, np.pi / 2)))


def test_backend_errors():
    with pytest.raises(ValueError, match="unknown backend"):
        get_backend("cupy")
    with pytest.raises(ValueError, match="strategy"):
        get_backend("numba", strategy="magic")
    with pytest.raises(ValueError, match="dtype"):
        get_backend("torch", dtype="float16")
    if not CUDA:
        with pytest.raises(RuntimeError, match="no GPU"):
            get_backend("torch", device="cuda")


def test_auto_backend_is_numpy_when_numba_does_not_import():
    """In a process where ``import numba`` fails: "auto" is numpy, a default run records backend "numpy" and gives
    the numpy backend's risks (compared in this process, where numba imports: the same numbers to 1e-12), and
    asking for numba by name is a one-line ImportError."""
    import json
    import subprocess
    import sys

    script = (
        "import sys, json\n"
        "sys.modules['numba'] = None\n"
        "import numpy as np, meanfield as mf\n"
        "from meanfield.kernels import get_backend\n"
        "problem = mf.Problem(mf.TeacherNetwork([1.0, -0.5], np.eye(4)[:2]), mf.Gaussian(4))\n"
        "traj = mf.simulate(problem, mf.init.sign_sphere(16, 4, seed=0), t_max=1.0, dt=0.1)\n"
        "try:\n"
        "    get_backend('numba')\n"
        "    error = None\n"
        "except ImportError as err:\n"
        "    error = str(err)\n"
        "print(json.dumps({'auto': get_backend('auto').name, 'backend': traj.info['backend'],\n"
        "                  'risk': traj.risk.tolist(), 'error': error}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["auto"] == "numpy" and out["backend"] == "numpy"
    assert out["error"].startswith("backend 'numba' needs a package that is not installed")
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.5], np.eye(4)[:2]), mf.Gaussian(4))
    reference = mf.simulate(problem, mf.init.sign_sphere(16, 4, seed=0), t_max=1.0, dt=0.1, backend="numpy")
    np.testing.assert_allclose(out["risk"], reference.risk, rtol=1e-12)
    assert get_backend("auto").name == "numba"          # here numba imports
