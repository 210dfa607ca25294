"""Closed-form (leaky-)ReLU kernels and their backends (numpy reference, numba, torch)."""

import os

# The numba backend alternates numba's OpenMP workers with OpenBLAS threads, and torch runs its own OpenMP
# pool; with OpenMP's default busy-waiting these pools fight for the cores after every switch (measured up to
# 10x slower on small tiles). Passive waiting must be set before any OpenMP runtime starts, hence here, at
# import; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .base import Backend, available_backends, get_backend, register_backend  # noqa: E402
from .closed_form import arccos_j, pair_angle, relu_kernel, relu_kernel_grad  # noqa: E402

__all__ = [
    "Backend",
    "available_backends",
    "get_backend",
    "register_backend",
    "arccos_j",
    "pair_angle",
    "relu_kernel",
    "relu_kernel_grad",
]
