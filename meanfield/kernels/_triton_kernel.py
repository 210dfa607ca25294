"""The fused Triton kernel of the ReLU field's three sums (see :mod:`meanfield.kernels.triton_backend`). This module
imports triton and is imported only when that backend runs; its kernel is a plain function that the backend compiles
with ``triton.jit`` on CUDA or wraps for Triton's interpreter on the CPU. No ``from __future__ import annotations``
here: Triton reads the ``tl.constexpr`` annotations as objects."""

import triton.language as tl

__all__ = ["relu_sums_kernel"]


def relu_sums_kernel(u_rows_ptr, u_cols_ptr, cn_ptr, w_ptr, acc_v_ptr, acc_s_ptr, acc_g_ptr, n, k, d,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                      CHUNK_D: tl.constexpr, PRECISE: tl.constexpr, DOT: tl.constexpr):
    """acc_v[j] = Σ_k cn_k J(θ_jk), acc_s[j] = Σ_k cn_k sin θ_jk, acc_g[j] = Σ_k (π − θ_jk) w_k for unit rows u."""
    pid = tl.program_id(0)
    rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    dims = tl.arange(0, BLOCK_D)
    row_mask = rows < n
    dim_mask = dims < d
    u_rows = tl.load(u_rows_ptr + rows[:, None] * d + dims[None, :], mask=row_mask[:, None] & dim_mask[None, :],
                     other=0.0)
    acc_v = tl.zeros((BLOCK_M,), dtype=u_rows.dtype)
    acc_s = tl.zeros((BLOCK_M,), dtype=u_rows.dtype)
    acc_g = tl.zeros((BLOCK_M, BLOCK_D), dtype=u_rows.dtype)
    for k0 in range(0, k, BLOCK_N):
        cols = k0 + tl.arange(0, BLOCK_N)
        col_mask = cols < k
        u_cols = tl.load(u_cols_ptr + cols[:, None] * d + dims[None, :],
                         mask=col_mask[:, None] & dim_mask[None, :], other=0.0)
        if PRECISE:
            # chords |u − v|², |u + v|² summed from their own differences: no cancellation at θ → 0 or π
            minus = tl.zeros((BLOCK_M, BLOCK_N), dtype=u_rows.dtype)
            plus = tl.zeros((BLOCK_M, BLOCK_N), dtype=u_rows.dtype)
            for d0 in range(0, BLOCK_D, CHUNK_D):
                chunk = d0 + tl.arange(0, CHUNK_D)
                chunk_mask = chunk < d
                a = tl.load(u_rows_ptr + rows[:, None] * d + chunk[None, :],
                            mask=row_mask[:, None] & chunk_mask[None, :], other=0.0)
                b = tl.load(u_cols_ptr + cols[:, None] * d + chunk[None, :],
                            mask=col_mask[:, None] & chunk_mask[None, :], other=0.0)
                diff = a[:, None, :] - b[None, :, :]
                both = a[:, None, :] + b[None, :, :]
                minus += tl.sum(diff * diff, axis=2)
                plus += tl.sum(both * both, axis=2)
            near = minus <= plus                      # θ ≤ π/2: θ = 2 asin(|u − v|/2)
            x = tl.sqrt(tl.where(near, minus, plus)) * 0.5
            x = tl.minimum(x, 1.0)
            c = (plus - minus) * 0.25
            sin = tl.sqrt(minus * plus) * 0.5
        else:
            c = tl.dot(u_rows, tl.trans(u_cols), input_precision=DOT)
            c = tl.minimum(tl.maximum(c, -1.0), 1.0)
            x = tl.abs(c)
            near = c >= 0.0
            sin = tl.sqrt((1.0 - c) * (1.0 + c))
        # asin (PRECISE) or acos (from c) by the same rational approximation, selects only
        big = x > 0.5
        z = tl.where(big, (1.0 - x) * 0.5, x * x)
        s = tl.where(big, tl.sqrt(z), x)
        p = z * (1.66666666666666657415e-01 + z * (-3.25565818622400915405e-01 + z * (
            2.01212532134862925881e-01 + z * (-4.00555345006794114027e-02 + z * (
                7.91534994289814532176e-04 + z * 3.47933107596021167570e-05)))))
        q = 1.0 + z * (-2.40339491173441421878e00 + z * (2.02094576023350569471e00 + z * (
            -6.88283971605453293030e-01 + z * 7.70381505559019352791e-02)))
        r = s + s * (p / q)
        # π − θ straight from the small angle when θ is near π (no π − (π − ε) cancellation)
        if PRECISE:
            half = tl.where(big, 0.5 * 3.141592653589793 - 2.0 * r, r)     # asin(x): θ/2 or (π − θ)/2
            pi_minus_theta = tl.where(near, 3.141592653589793 - 2.0 * half, 2.0 * half)
        else:
            acos_x = tl.where(big, 2.0 * r, 0.5 * 3.141592653589793 - r)   # acos(|c|): θ or π − θ
            pi_minus_theta = tl.where(near, 3.141592653589793 - acos_x, acos_x)
        cn = tl.load(cn_ptr + cols, mask=col_mask, other=0.0)
        acc_v += tl.sum(cn[None, :] * (sin + pi_minus_theta * c), axis=1)
        acc_s += tl.sum(cn[None, :] * sin, axis=1)
        w = tl.load(w_ptr + cols[:, None] * d + dims[None, :], mask=col_mask[:, None] & dim_mask[None, :], other=0.0)
        acc_g += tl.dot(pi_minus_theta, w, input_precision=DOT)
    tl.store(acc_v_ptr + rows, acc_v, mask=row_mask)
    tl.store(acc_s_ptr + rows, acc_s, mask=row_mask)
    tl.store(acc_g_ptr + rows[:, None] * d + dims[None, :], acc_g, mask=row_mask[:, None] & dim_mask[None, :])
