"""Closed-form (leaky-)ReLU kernels and their backends (numpy reference, numba, torch)."""

from .base import Backend, available_backends, get_backend, register_backend
from .closed_form import arccos_j, pair_angle, relu_kernel, relu_kernel_grad

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
