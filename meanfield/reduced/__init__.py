"""Reduced flows implied by symmetries: odd targets (linear predictor) and low-dimensional targets."""

from .lowdim import LowDimReducedProblem, ring_quadrature
from .odd import OddReducedProblem, odd_minimum

__all__ = ["OddReducedProblem", "odd_minimum", "LowDimReducedProblem", "ring_quadrature"]
