r"""triton backend: the ReLU-family field as one fused Triton kernel (FlashAttention-style), torch arrays otherwise.

A program owns a block of rows (points) and sweeps the sources in blocks held on chip: per block, the cosine tile
from a matrix product (``tl.dot``, tensor cores on a GPU), the transcendental pass (π − θ, sin θ, J(θ)) and the row
sums, and the second contraction Σ_k (π − θ_jk) c_k s_k as another ``tl.dot`` — nothing of size m² is ever stored:
O(m d) memory. It returns the same three sums as the numba kernels, finished alike
(:mod:`meanfield.kernels.numba_backend`).

Precision. In fp64 the cosines come from the product and θ = arccos(c) (error ~√ε ≈ 1e-8 near θ = 0, as the other
backends). In fp32 that would lose θ for nearly parallel (or opposite) neurons: c = 1 − θ²/2 is rounded to 6e-8, so
θ ≈ 1e-3 would carry a relative error ~5e-2. The fp32 kernel therefore takes θ from the chords (``precise=True``, the
default in fp32): |u_j − u_k|² and |u_j + u_k|², each summed from its own small differences, give
θ = 2 asin(|u_j − u_k|/2) (or π − 2 asin(|u_j + u_k|/2)) and sin θ = |u_j − u_k||u_j + u_k|/2 to fp32's relative
accuracy at every angle, at the price of a d-loop of differences instead of the cosine product.

On a machine without a GPU the kernel runs in Triton's interpreter (numpy underneath: correct and slow, for tests on
small m); on CUDA it is compiled. Any other unit, and biased neurons, go through the torch backend's generic field.
"""

from __future__ import annotations

import os
import sys

import torch

from .base import compiles, register_backend
from .field import finish_relu_sums
from .routes import ArcCosine
from .torch_backend import TorchBackend

__all__ = ["TritonBackend", "relu_sums"]

_KERNELS: dict = {}


def _import_triton(interpret: bool):
    """triton, imported in interpreter mode for the CPU (a mode Triton fixes when it is first imported)."""
    if interpret:
        if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
            raise RuntimeError("the triton backend on the CPU runs Triton's interpreter, which must be chosen before "
                               "triton is imported: set TRITON_INTERPRET=1 at the start of the process")
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        import triton
    except ImportError as err:
        raise ImportError("the triton backend needs the triton package: pip install triton") from err
    return triton


def _kernel(interpret: bool):
    """The kernel compiled by Triton (CUDA) or wrapped for its interpreter (CPU), built once each."""
    if interpret not in _KERNELS:
        triton = _import_triton(interpret)

        from ._triton_kernel import relu_sums_kernel

        _KERNELS[interpret] = triton.jit(relu_sums_kernel)   # an interpreted function under TRITON_INTERPRET=1
    return _KERNELS[interpret]


def relu_sums(u_rows, u_cols, cn, weighted, precise: bool, block_m: int, block_n: int):
    """The three sums of the ReLU field (acc_v, acc_s, acc_g) from unit rows, unit sources, c_k|s_k| and c_k s_k
    (torch tensors on one device, one dtype), by the fused kernel.

    Examples
    --------
    >>> import numpy as np, torch
    >>> u = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> acc_v, acc_s, acc_g = relu_sums(u, u, torch.ones(2, dtype=torch.float64), u, False, 16, 16)
    >>> bool(torch.allclose(acc_v, torch.tensor([np.pi + 1.0, np.pi + 1.0], dtype=torch.float64)))
    True
    """
    n, d = u_rows.shape
    k = u_cols.shape[0]
    block_d = max(16, 1 << (d - 1).bit_length())
    acc_v = torch.empty(n, dtype=u_rows.dtype, device=u_rows.device)
    acc_s, acc_g = torch.empty_like(acc_v), torch.empty_like(u_rows)
    grid = (-(-n // block_m),)
    _kernel(u_rows.device.type != "cuda")[grid](
        u_rows.contiguous(), u_cols.contiguous(), cn.contiguous(), weighted.contiguous(), acc_v, acc_s, acc_g,
        n, k, d, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, CHUNK_D=16, PRECISE=bool(precise),
        DOT="ieee")   # fp32 products in full precision (TF32 would cost the cosines three digits)
    return acc_v, acc_s, acc_g


class TritonBackend(TorchBackend):
    """The torch backend with the ReLU family's field (ReLU, leaky ReLU, abs; no biases) as one fused Triton kernel.

    Parameters
    ----------
    device : str
        "cuda" (compiled), "cpu" (Triton's interpreter: correct, slow; for tests) or "auto" (CUDA when present).
    dtype : {"float64", "float32"}
    precise : bool, optional
        θ from the chords |u ∓ v| (fp32 relative accuracy at every angle) instead of arccos of the cosine product;
        by default True in fp32 and False in fp64 (see the module's notes).
    block_m, block_n : int, optional
        Rows per program and sources per block (powers of two ≥ 16; defaults 64 × 64 in fp32, 32 × 32 in fp64).
    tile_elements, rtol
        As for :class:`~meanfield.kernels.torch_backend.TorchBackend` (the units and fields the fused kernel does not
        cover run there).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> b = mf.init.sign_sphere(40, 3, seed=0).b
    >>> fast = mf.get_backend("triton", device="cpu")
    >>> value, grad = fast.field(b, b, np.ones(40), 1.0)
    >>> ref = mf.get_backend("numpy").field(b, b, np.ones(40), 1.0)
    >>> bool(np.allclose(fast.to_numpy(grad), ref[1], rtol=0, atol=1e-12))
    True
    """

    name = "triton"

    def __init__(self, device="auto", dtype="float64", precise: bool | None = None, block_m: int | None = None,
                 block_n: int | None = None, tile_elements: int | None = None, rtol: float | None = None):
        super().__init__(device, dtype, tile_elements, rtol)
        _import_triton(interpret=self.device.type != "cuda")
        single = self.dtype == torch.float32
        self.precise = single if precise is None else bool(precise)
        default = 64 if single else 32
        self.block_m, self.block_n = (int(block_m or default), int(block_n or default))
        for name, value in (("block_m", self.block_m), ("block_n", self.block_n)):
            if value < 16 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two >= 16, got {value}")

    @compiles(ArcCosine)
    @torch.no_grad()
    def _arc_cosine_field(self, route, points, sources, coef, scale, grad):
        """The ReLU family's field (:class:`~meanfield.kernels.routes.ArcCosine`) by the fused kernel."""
        same = points is sources
        points = self.asarray(points)
        sources = points if same else self.asarray(sources)
        coef = self.asarray(coef)
        u_p, n_p = self.unit_rows(points)
        u_s, n_s = (u_p, n_p) if same else self.unit_rows(sources)
        acc_v, acc_s, acc_g = relu_sums(u_p, u_s, coef * n_s, coef[:, None] * sources, self.precise, self.block_m,
                                        self.block_n)
        return finish_relu_sums(points, sources, coef, scale, route.linear, route.weight, n_p * acc_v,
                                acc_g + u_p * acc_s[:, None] if grad else None)

    def __repr__(self):
        return (f"TritonBackend(device={str(self.device)!r}, dtype={str(self.dtype).split('.')[-1]!r}, "
                f"precise={self.precise})")


register_backend("triton", TritonBackend)
