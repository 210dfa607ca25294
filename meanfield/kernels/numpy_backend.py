"""Reference backend: plain vectorised numpy, tiled over rows so that no m×m matrix is held whole."""

from __future__ import annotations

import numpy as np

from .base import Backend, register_backend


def _unit_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))
    inv = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)
    return x * inv[:, None], norm


class NumpyBackend(Backend):
    """Straightforward numpy evaluation of the closed forms (the reference every backend is tested against).

    Parameters
    ----------
    tile_elements : int
        Number of pair entries held at once (rows per tile = tile_elements // number of sources).
    """

    name = "numpy"

    def __init__(self, tile_elements: int = 1 << 22):
        self.tile_elements = int(tile_elements)

    def asarray(self, x):
        return np.asarray(x, dtype=np.float64)

    def to_numpy(self, x):
        return np.asarray(x)

    def field(self, points, sources, coef, scale, alpha=0.0, grad=True):
        points = np.ascontiguousarray(points, dtype=np.float64)
        sources = np.ascontiguousarray(sources, dtype=np.float64)
        coef = np.asarray(coef, dtype=np.float64)
        n, d = points.shape
        u_p, n_p = _unit_rows(points)
        u_s, n_s = _unit_rows(sources)
        cn = coef * n_s
        value = np.empty(n)
        gradient = np.empty((n, d)) if grad else None
        rows = max(1, self.tile_elements // max(1, sources.shape[0]))
        for i0 in range(0, n, rows):
            i1 = min(n, i0 + rows)
            c = np.clip(u_p[i0:i1] @ u_s.T, -1.0, 1.0)
            theta = np.arccos(c)
            sin = np.sqrt((1.0 - c) * (1.0 + c))
            value[i0:i1] = n_p[i0:i1] * ((sin + (np.pi - theta) * c) @ cn)
            if grad:
                gradient[i0:i1] = ((np.pi - theta) * coef) @ sources + u_p[i0:i1] * (sin @ cn)[:, None]
        return self._finish(points, sources, coef, scale, alpha, value, gradient)

    @staticmethod
    def _finish(points, sources, coef, scale, alpha, value, gradient):
        """Apply κ/(2π) and the leaky-ReLU linear part: K_α = α κ ⟨b, b'⟩ + (1 − α)² K."""
        factor = scale / (2 * np.pi) * (1 - alpha) ** 2
        value *= factor
        if gradient is not None:
            gradient *= factor
        if alpha:
            mean_source = alpha * scale * (coef @ sources)
            value += points @ mean_source
            if gradient is not None:
                gradient += mean_source
        return value, gradient


register_backend("numpy", NumpyBackend)
