"""Symmetries of the target and the input law: maps, detection, asymmetry, enforcement, alignment."""

from .alignment import alignment_observables, neuron_alignment, output_masses
from .detect import SymmetryReport, asymmetry, candidate_symmetries, detect_symmetries, hidden_subspace
from .enforce import SymmetricProblem, orbit_measure
from .maps import (
    Symmetry,
    coordinate_reflection,
    orbit,
    permutation,
    reflection,
    sign_flip,
    subspace_rotation,
)

__all__ = [
    "Symmetry", "sign_flip", "permutation", "reflection", "coordinate_reflection", "subspace_rotation", "orbit",
    "SymmetryReport", "candidate_symmetries", "detect_symmetries", "hidden_subspace", "asymmetry",
    "SymmetricProblem", "orbit_measure", "alignment_observables", "neuron_alignment", "output_masses",
]
