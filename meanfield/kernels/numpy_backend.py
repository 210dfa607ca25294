"""Reference backend: plain vectorised numpy, tiled over rows so that no m×m matrix is held whole (the field itself
is :func:`meanfield.kernels.field.kernel_field`)."""

from __future__ import annotations

import numpy as np

from .base import Backend, register_backend

__all__ = ["NumpyBackend"]


class NumpyBackend(Backend):
    """Straightforward numpy evaluation of the closed forms (the reference every backend is tested against).

    Parameters
    ----------
    tile_elements : int
        Number of pair entries held at once (rows per tile = tile_elements // number of sources).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels.numpy_backend import NumpyBackend
    >>> nx = NumpyBackend()
    >>> value, _ = nx.field(np.eye(2), np.eye(2), np.array([1.0, 1.0]), scale=1.0, grad=False)
    >>> bool(np.allclose(value, 0.5 + 1 / (2 * np.pi)))    # K(e, e) = ½, K(e₁, e₂) = 1/(2π)
    True
    """

    name = "numpy"

    def __init__(self, tile_elements: int = 1 << 22):
        self.tile_elements = int(tile_elements)

    def asarray(self, x):
        return np.asarray(x, dtype=np.float64)

    def to_numpy(self, x):
        return np.asarray(x)


register_backend("numpy", NumpyBackend)
