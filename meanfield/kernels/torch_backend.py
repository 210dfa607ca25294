"""torch backend: the kernel field on CPU or CUDA, tiled over rows, fp64 by default (fp32 on request)."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .base import Backend, check_precision, register_backend

__all__ = ["TorchBackend", "torch_device"]

_DTYPES = {"float64": torch.float64, "float32": torch.float32}

#: The smallest tile (pair entries) the CUDA out-of-memory fallback goes down to.
MIN_TILE_ELEMENTS = 1 << 16


def torch_device(device) -> torch.device:
    """A torch device from a name ("cpu", "cuda", "cuda:1", "auto": CUDA when available), with one-line errors.

    Examples
    --------
    >>> torch_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        dev = device
    else:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device {device!r} is not a torch device: use 'cpu', 'cuda', 'cuda:N' or 'auto'") \
                from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(dev)!r} was asked for but torch sees no GPU (CUDA) on this machine; use "
                           "device='cpu' (or 'auto', which falls back to the CPU)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {str(dev)!r} is not supported: use 'cpu', 'cuda', 'cuda:N' or 'auto'")
    return dev


class TorchBackend(Backend):
    """Kernel field with torch tensors.

    Parameters
    ----------
    device : str or torch.device
        "cpu" (default), "cuda", "cuda:1", ...; "auto" takes CUDA when available.
    dtype : {"float64", "float32"}
        fp64 by default; fp32 trades ~1e-6 relative accuracy for speed on GPUs.
    tile_elements : int, optional
        Pair entries held at once (rows per tile = tile_elements // number of sources); by default 2²² on
        CPU and 2²⁶ on CUDA. A CUDA tile that does not fit in the free GPU memory is halved (with a warning) until it
        does.
    rtol : float, optional
        The relative accuracy the caller needs: fp32 is refused when it is below
        :data:`~meanfield.kernels.base.FP32_RTOL`.

    Notes
    -----
    The arccos comes from ``torch.acos`` on the clipped Gram matrix (its θ error is harmless, see
    :mod:`meanfield.kernels.closed_form`); nothing is differentiated by autograd.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> b = mf.init.sign_sphere(16, 4, seed=0).b
    >>> nx = mf.get_backend("torch", device="cpu")
    >>> value, grad = nx.field(b, b, np.ones(16), 1.0)
    >>> reference = mf.get_backend("numpy").field(b, b, np.ones(16), 1.0)[0]
    >>> type(value).__name__, bool(np.allclose(nx.to_numpy(value), reference))
    ('Tensor', True)
    """

    name = "torch"

    def __init__(self, device="cpu", dtype="float64", tile_elements: int | None = None, rtol: float | None = None):
        self.device = torch_device(device)
        check_precision(dtype, rtol)
        self.dtype = _DTYPES[dtype]
        default_tile = 1 << (26 if self.device.type == "cuda" else 22)
        self.tile_elements = int(tile_elements or default_tile)
        self.itemsize = torch.finfo(self.dtype).bits // 8

    def free_memory(self):
        if self.device.type == "cuda":
            return int(torch.cuda.mem_get_info(self.device)[0])
        return super().free_memory()

    def asarray(self, x):
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=self.dtype)
        return torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device)

    def to_numpy(self, x):
        if isinstance(x, torch.Tensor):
            return x.detach().to("cpu", torch.float64).numpy()
        return np.asarray(x, dtype=np.float64)

    def concat(self, arrays, axis: int = 0):
        return torch.cat(arrays, dim=axis)

    def all_finite(self, x) -> bool:
        return bool(torch.isfinite(x).all())

    def copy(self, x):
        return x.clone()

    # The array namespace of :func:`meanfield.kernels.field.kernel_field` (the field itself is the base class's).
    @torch.no_grad()
    def field(self, points, sources, coef, scale, activation=0.0, grad=True, bias=False):
        while True:
            try:
                return super().field(points, sources, coef, scale, activation, grad, bias)
            except torch.OutOfMemoryError:
                self._smaller_tile()

    def _smaller_tile(self) -> None:
        """After an out-of-memory error of torch (on CUDA): halve the tile (kept for the next calls, with a warning),
        or raise a one-line MemoryError once even the smallest tile does not fit."""
        if self.tile_elements <= MIN_TILE_ELEMENTS:
            raise MemoryError(f"the field does not fit in the free memory of {self.device} even with tiles of "
                              f"{self.tile_elements} pair entries: use fewer particles, dtype='float32', or the "
                              "CPU") from None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self.tile_elements //= 2
        warnings.warn(f"{self.device}: out of memory for a tile; tiles of {self.tile_elements} pair entries from now "
                      "on", ResourceWarning, stacklevel=4)

    def empty(self, shape):
        return torch.empty(shape, dtype=self.dtype, device=self.device)

    def unit_rows(self, x):
        norm = torch.linalg.vector_norm(x, dim=1)
        return x / torch.where(norm > 0, norm, 1.0)[:, None], norm

    def clip(self, x, low, high):
        return torch.clamp_(x, low, high)

    def arccos(self, x):
        return torch.acos(x)

    def sqrt(self, x):
        return torch.sqrt(x)

    def zeros(self, shape):
        return torch.zeros(shape, dtype=self.dtype, device=self.device)

    def where(self, condition, x, y):
        return torch.where(condition, x, y)

    def exp(self, x):
        return torch.exp(x)

    def ndtr(self, x):
        # torch.special.ndtr is ½(1 + erf(x/√2)), which is 0 below x ≈ −8.3; erfc keeps the lower tail's digits
        return 0.5 * torch.special.erfc(x * -0.7071067811865476)

    def abs(self, x):
        return torch.abs(x)

    def log1p(self, x):
        return torch.log1p(x)

    def log(self, x):
        return torch.log(x)

    def amax(self, x, axis: int):
        return torch.amax(x, dim=axis)

    def maximum(self, x, value: float):
        return torch.clamp(x, min=value)

    def sign(self, x):
        return torch.sign(x)

    def unit_value(self, activation, z):
        return activation.torch(z)

    def unit_values(self, activation, z):
        return activation.torch(z), activation.torch_derivative(z)

    def arctan(self, x):
        return torch.atan(x)

    def erf(self, x):
        return torch.erf(x)

    def tanh(self, x):
        return torch.tanh(x)

    def cos(self, x):
        return torch.cos(x)

    def full_like(self, x, value: float):
        return torch.full_like(x, value)

    def arcsin(self, x):
        return torch.asin(x)

    def sin(self, x):
        return torch.sin(x)

    def nonzero(self, mask):
        return torch.nonzero(mask, as_tuple=True)

    def searchsorted(self, sorted_values, x):
        return torch.searchsorted(sorted_values, x.contiguous(), right=True)

    def __repr__(self):
        return f"TorchBackend(device={str(self.device)!r}, dtype={str(self.dtype).split('.')[-1]!r})"


register_backend("torch", TorchBackend)
