"""The fused Triton kernel (in Triton's interpreter on this CPU; compiled on CUDA where a GPU is present), the fp32
paths and their accuracy, and the memory fallbacks (issue 16).

Tolerances: fp64 kernels against the numpy reference to 1e-13 relative to the field's scale (round-off of sums of
m ≤ 100 terms); fp32 to torch_backend.FP32_RTOL = 1e-5 (measured worst 4e-7 here); the near-parallel checks
compare with the fp64 reference on the same fp32-rounded inputs, so that only the kernel's own arithmetic is judged."""

import os

import numpy as np
import pytest
import torch

import meanfield as mf
from meanfield.kernels.base import FP32_RTOL

if not torch.cuda.is_available():  # Triton's interpreter, chosen before triton is first imported
    os.environ["TRITON_INTERPRET"] = "1"
triton = pytest.importorskip("triton", reason="the triton backend needs the triton package (in the test extra)")

from meanfield.kernels.triton_backend import relu_sums  # noqa: E402

UNITS = [mf.ReLU(), mf.LeakyReLU(0.2), mf.activations.Abs()]


def reference(points, sources, coef, scale, unit):
    return mf.get_backend("numpy").field(points, sources, coef, scale, unit)


def relative(value, ref):
    return np.abs(value - ref).max() / np.abs(ref).max()


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
@pytest.mark.parametrize("precise", [False, True])
def test_triton_fp64_field_matches_numpy(unit, precise):
    """Self and cross fields, sizes that are not multiples of the blocks, d not a power of two."""
    rng = np.random.default_rng(0)
    b = rng.standard_normal((70, 5)) * rng.uniform(0.3, 2, (70, 1))
    coef = rng.standard_normal(70)
    backend = mf.get_backend("triton", device="cpu", precise=precise)
    for points, sources, c in ((b, b, coef), (b[:37], b[20:], coef[20:])):
        value, grad = backend.field(points, sources, c, 0.7, unit)
        ref_value, ref_grad = reference(points, sources, c, 0.7, unit)
        assert relative(backend.to_numpy(value), ref_value) < 1e-13
        assert relative(backend.to_numpy(grad), ref_grad) < 1e-13


@pytest.mark.parametrize("precise", [False, True])
def test_triton_fp32_field_within_the_stated_accuracy(precise):
    rng = np.random.default_rng(1)
    b = rng.standard_normal((90, 12))
    coef = rng.standard_normal(90)
    backend = mf.get_backend("triton", device="cpu", dtype="float32", precise=precise)
    value, grad = backend.field(b, b, coef, 1.0)
    rounded = b.astype(np.float32).astype(np.float64)
    ref_value, ref_grad = reference(rounded, rounded, coef.astype(np.float32).astype(np.float64), 1.0, mf.ReLU())
    assert relative(backend.to_numpy(value), ref_value) < FP32_RTOL
    assert relative(backend.to_numpy(grad), ref_grad) < FP32_RTOL


def pair(theta, d=16, seed=0):
    """Two unit vectors at angle θ in fp32, and the fp64 angle between the fp32-rounded vectors."""
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    u = np.stack([q[:, 0], np.cos(theta) * q[:, 0] + np.sin(theta) * q[:, 1]]).astype(np.float32)
    exact = u.astype(np.float64)
    exact /= np.linalg.norm(exact, axis=1, keepdims=True)
    # the angle of the rounded vectors, from the chord (accurate at every angle in fp64)
    chord, other = np.linalg.norm(exact[0] - exact[1]), np.linalg.norm(exact[0] + exact[1])
    angle = 2 * np.arcsin(chord / 2) if chord <= other else np.pi - 2 * np.arcsin(other / 2)
    return torch.tensor(exact, dtype=torch.float32), angle


@pytest.mark.parametrize("theta", [1e-1, 1e-2, 1e-3, 1e-4, np.pi - 1e-2, np.pi - 1e-4])
def test_fp32_chords_keep_nearly_parallel_and_opposite_neurons_accurate(theta):
    """sin θ (the radial term) and π − θ (the gradient's weights) to ~1e-6 relative in fp32 with the chord formulas,
    at θ → 0 and θ → π; the arccos of the fp32 cosine loses them (the check that this test can fail)."""
    u, angle = pair(theta)
    cn = torch.tensor([0.0, 1.0], dtype=torch.float32)
    w = torch.zeros((2, u.shape[1]), dtype=torch.float32)
    w[1, 0] = 1.0
    errors = {}
    for precise in (True, False):
        _, acc_s, acc_g = relu_sums(u, u, cn, w, precise, 16, 16)
        sin_error = abs(float(acc_s[0]) - np.sin(angle)) / np.sin(angle)
        weight_error = abs(float(acc_g[0, 0]) - (np.pi - angle)) / (np.pi - angle)
        errors[precise] = max(sin_error, weight_error)
    assert errors[True] < 2e-6, errors
    if min(theta, np.pi - theta) <= 1e-3:
        assert errors[False] > 1e-3, errors


def test_triton_flow_matches_numpy():
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.5], np.eye(4)[:2]), mf.Gaussian(4), activation="leaky_relu",
                         slope=0.1)
    mu0 = mf.init.sign_sphere(40, 4, seed=0)
    ref = mf.simulate(problem, mu0, t_max=1.0, dt=0.1, backend="numpy")
    fast = mf.simulate(problem, mu0, t_max=1.0, dt=0.1, backend="triton", backend_options={"device": "cpu"})
    np.testing.assert_allclose(fast.final.state(), ref.final.state(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.risk, ref.risk, rtol=1e-12)


def test_other_units_fall_back_to_the_torch_field():
    b = mf.init.gaussian(20, 3, seed=0).b
    value, _ = mf.get_backend("triton", device="cpu").field(b, b, np.ones(20), 1.0, mf.activations.Erf())
    np.testing.assert_allclose(value.numpy(), reference(b, b, np.ones(20), 1.0, mf.activations.Erf())[0], rtol=1e-13)


# -- bad input and fallbacks -----------------------------------------------------------------------------------------
def test_fp32_refused_when_the_caller_asks_for_more_accuracy():
    with pytest.raises(ValueError, match="float32.*less than the rtol=1e-08 asked: use dtype='float64'"):
        mf.get_backend("torch", dtype="float32", rtol=1e-8)
    with pytest.raises(ValueError, match="less than the rtol"):
        mf.get_backend("triton", device="cpu", dtype="float32", rtol=1e-7)
    assert mf.get_backend("torch", dtype="float32", rtol=1e-4).dtype == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_cuda_request_without_a_gpu_is_one_clear_error():
    for name in ("torch", "triton"):
        with pytest.raises(RuntimeError, match="torch sees no GPU"):
            mf.get_backend(name, device="cuda")


def test_out_of_memory_halves_the_tile_then_refuses(monkeypatch):
    """torch's out-of-memory error (CUDA) halves the tile, with a warning, until the field fits; below the smallest
    tile a one-line MemoryError."""
    from meanfield.kernels import field as field_module
    from meanfield.kernels.torch_backend import MIN_TILE_ELEMENTS, TorchBackend

    original = field_module.kernel_field
    budget = {"limit": 1 << 17}

    def tight(nx, points, sources, coef, scale, activation, grad=True, tile_elements=1 << 22):
        if tile_elements > budget["limit"]:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(nx, points, sources, coef, scale, activation, grad, tile_elements)

    b = mf.init.sign_sphere(64, 3, seed=0).b
    expected = reference(b, b, np.ones(64), 1.0, mf.ReLU())[0]
    monkeypatch.setattr(field_module, "kernel_field", tight)
    backend = TorchBackend(tile_elements=1 << 20)
    with pytest.warns(ResourceWarning, match="out of memory for a tile"):
        value, _ = backend.field(b, b, np.ones(64), 1.0)
    assert backend.tile_elements == 1 << 17
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-13)
    budget["limit"] = MIN_TILE_ELEMENTS // 2
    with pytest.raises(MemoryError, match="does not fit .* even with tiles of"), pytest.warns(ResourceWarning):
        backend.field(b, b, np.ones(64), 1.0)


def test_ring_function_distance_against_monte_carlo():
    """‖f(μ) − f(ν)‖² for neurons μ and rings ν against Monte Carlo over x ~ N(0, I): f_ν(x) = Σ_k c_k E_t relu(u_k·x_H
    + r_k |x_⊥| t), t the first coordinate of a uniform point of the unit sphere of H^⊥, integrated by 400-node
    Gauss–Jacobi quadrature in t (independent of the kernel's own formulas); within 5 standard errors."""
    from conftest import assert_mc_close

    from meanfield.reduced import LowDimReducedProblem
    from meanfield.reduced.lowdim import ring_quadrature

    d, d_h = 7, 2
    Q = np.eye(d)[:, :d_h]
    reduced = LowDimReducedProblem(mf.Problem(mf.RadialTarget.norm(Q), mf.Gaussian(d)))
    mu = mf.init.sign_sphere(5, d, seed=3)
    nu = reduced.reduce(mf.init.sign_sphere(4, d, seed=4))
    exact = reduced.function_distance(mu, nu, backend="numpy") ** 2
    x = np.random.default_rng(0).standard_normal((200_000, d))
    t, w = ring_quadrature(d - d_h, 400)
    x_h, x_perp = x[:, :d_h], np.linalg.norm(x[:, d_h:], axis=1)
    f_nu = sum(c * (np.maximum((x_h @ u)[:, None] + r * x_perp[:, None] * t[None, :], 0.0) @ w)
               for c, u, r in zip(nu.weights * nu.a, nu.u, nu.r))
    assert_mc_close(exact, (mu.predict(x) - f_nu) ** 2)
