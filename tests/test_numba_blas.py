"""The numba backend's BLAS strategy (issue 16): tiles and panels of any shape, and its fp32 path — single-precision
tiles with fp64 sums across tiles and an fp64 repair of nearly parallel and nearly opposite pairs.

Tolerances: dense random sets against the fp64 numpy reference to FP32_RTOL = 1e-5 relative to the field's largest
entry (what fp32 promises; measured 2–6e-7 here). The pairs within NEAR_ANGLE of θ = 0 or π are computed wholly in
fp64, so a two-neuron field at such angles must equal the fp64 numba field (same formulas): its gradient to 1e-7 of its
own size (measured ≤ 4e-9; the fp32 cosine alone misses it by 7e-4 at θ = π − 1e-2 and wholly at π − 1e-4, checked
so that the test can fail), its value to 1e-13 of the pair's scale |c||b||s| (near π the value ~ (π − θ)³ falls below
the fp64 round-off of its O(1) terms, so its own size is no yardstick)."""

import numpy as np
import pytest

import meanfield as mf
from meanfield.kernels import numba_backend
from meanfield.kernels.base import FP32_RTOL


def relative(value, ref):
    return np.abs(value - ref).max() / np.abs(ref).max()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("tile, panel", [(128, 300), (100, 1000), (512, 256), (64, 64)])
def test_blas_tiles_and_panels_of_any_shape(tile, panel, dtype):
    """Row blocks, diagonal squares and column panels that divide nothing evenly, self and cross fields, against the
    numpy reference: 1e-13 in fp64 (round-off of sums of ~1000 terms), FP32_RTOL in fp32."""
    rng = np.random.default_rng(tile + panel)
    b = rng.standard_normal((777, 40))
    coef = rng.standard_normal(777)
    backend = mf.get_backend("numba", strategy="blas", tile=tile, panel=panel, dtype=dtype)
    tolerance = 1e-13 if dtype == "float64" else FP32_RTOL
    for points, sources in ((b, b), (b[:500], b), (b, b[:200])):
        c = coef[: len(sources)]
        value, grad = backend.field(points, sources, c, 1.0)
        ref_value, ref_grad = mf.get_backend("numpy").field(points, sources, c, 1.0)
        assert relative(value, ref_value) < tolerance and relative(grad, ref_grad) < tolerance


@pytest.mark.parametrize("unit", [mf.ReLU(), mf.LeakyReLU(0.2), mf.activations.Abs()], ids=lambda u: u.name)
@pytest.mark.parametrize("d", [5, 30, 100])
def test_fp32_field_within_the_stated_accuracy(unit, d):
    """Self fields (diagonal and symmetric off-diagonal tiles) and cross fields, sizes not multiples of the tile."""
    rng = np.random.default_rng(d)
    b = rng.standard_normal((700, d)) * rng.uniform(0.3, 2.0, (700, 1))
    coef = rng.standard_normal(700)
    single = mf.get_backend("numba", dtype="float32", tile=256)
    reference = mf.get_backend("numpy")
    for points, sources, c in ((b, b, coef), (b[:333], b[100:], coef[100:])):
        value, grad = single.field(points, sources, c, 0.8, unit)
        ref_value, ref_grad = reference.field(points, sources, c, 0.8, unit)
        assert value.dtype == grad.dtype == np.float64
        assert relative(value, ref_value) < FP32_RTOL
        assert relative(grad, ref_grad) < FP32_RTOL


def test_fp32_field_of_condensed_neurons():
    """Neurons in five tight clusters (and their opposites), as late in a flow towards a few teacher directions:
    most pairs are repaired in fp64; the field stays within the fp32 accuracy, value only and with gradient."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((5, 40))
    b = centres[rng.integers(0, 5, 1200)] + 1e-4 * rng.standard_normal((1200, 40))
    b[::2] *= -1
    coef = rng.standard_normal(1200)
    single = mf.get_backend("numba", dtype="float32", tile=256)
    ref_value, ref_grad = mf.get_backend("numpy").field(b, b, coef, 1.0)
    value, grad = single.field(b, b, coef, 1.0)
    assert relative(value, ref_value) < FP32_RTOL and relative(grad, ref_grad) < FP32_RTOL
    value_only, none = single.field(b, b, coef, 1.0, grad=False)
    assert none is None and relative(value_only, ref_value) < FP32_RTOL


def two_neurons(theta, d=100, seed=1):
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    return 1.3 * np.stack([q[:, 0], np.cos(theta) * q[:, 0] + np.sin(theta) * q[:, 1]])


@pytest.mark.parametrize("theta", [1e-1 / 2, 1e-2, 1e-3, 1e-4, np.pi - 1e-2, np.pi - 1e-4])
def test_fp32_nearly_parallel_and_opposite_pairs_in_fp64(theta, monkeypatch):
    b = two_neurons(theta)
    scale = 1.1 * 1.3 * 1.3
    double = mf.get_backend("numba", strategy="blas")
    single = mf.get_backend("numba", dtype="float32", strategy="blas")   # two sources would take the fused fp64 loop
    coef = np.array([-1.1])
    for points, sources in ((b[:1], b[1:]), (b, b)):
        c = coef if len(sources) == 1 else np.array([0.7, -1.1])
        ref_value, ref_grad = double.field(points, sources, c, 1.0)
        value, grad = single.field(points, sources, c, 1.0)
        assert np.abs(value - ref_value).max() < 1e-13 * scale
        assert relative(grad, ref_grad) < 1e-7
    if theta > 3:
        monkeypatch.setattr(numba_backend, "NEAR_ANGLE", -1.0)   # no repair: θ from the fp32 cosine
        _, grad = single.field(b[:1], b[1:], coef, 1.0)
        assert relative(grad, double.field(b[:1], b[1:], coef, 1.0)[1]) > 1e-4


def test_fp32_flow_follows_the_fp64_flow():
    """A whole flow (d = 20, the BLAS strategy in fp32) stays within 1e-5 of the fp64 one."""
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.5], np.eye(20)[:2]), mf.Gaussian(20))
    mu0 = mf.init.sign_sphere(300, 20, seed=0)
    double = mf.simulate(problem, mu0, t_max=2.0, dt=0.1, backend="numba")
    single = mf.simulate(problem, mu0, t_max=2.0, dt=0.1, backend="numba", backend_options={"dtype": "float32"})
    np.testing.assert_allclose(single.final.state(), double.final.state(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(single.risk, double.risk, rtol=1e-5)


def test_few_sources_take_the_fused_loop_in_fp64():
    """A teacher's handful of neurons: the fused fp64 loop whatever the dtype, equal to the BLAS tiles' field."""
    rng = np.random.default_rng(5)
    b, teacher = rng.standard_normal((300, 50)), rng.standard_normal((3, 50))
    coef = np.array([1.0, -0.5, 0.25])
    ref_value, ref_grad = mf.get_backend("numpy").field(b, teacher, coef, 1.0)
    for options in ({}, {"dtype": "float32"}):
        value, grad = mf.get_backend("numba", **options).field(b, teacher, coef, 1.0)
        assert relative(value, ref_value) < 1e-13 and relative(grad, ref_grad) < 1e-13


def test_fp32_refused_when_the_caller_asks_for_more_accuracy():
    with pytest.raises(ValueError, match="float32.*less than the rtol=1e-07 asked: use dtype='float64'"):
        mf.get_backend("numba", dtype="float32", rtol=1e-7)
    with pytest.raises(ValueError, match="dtype must be 'float64' or 'float32', got 'float16'"):
        mf.get_backend("numba", dtype="float16")
    assert mf.get_backend("numba", dtype="float32", rtol=1e-5).dtype == np.float32
    with pytest.raises(ValueError, match="panel must be >= 1, got 0"):
        mf.get_backend("numba", panel=0)
