"""Weight-statistics analyses (DESIGN.md §2.5): equivalent kernels (Tsuchida et al. 2018), exchangeability
statistics of weight ensembles (Tsuchida et al. 2019) and permutation-invariant Gaussian matrix models (Ramgoolam
2019; Hirst & Ramgoolam 2025)."""

from .ensemble import Ensemble
from .equivalent_kernel import (
    WEIGHT_LAWS,
    deep_cosine_map,
    deep_cosines,
    empirical_kernel,
    equivalent_kernel,
    sample_weights,
    second_moment,
)
from .exchangeability import (
    EnsembleMoments,
    RowPermutationTest,
    entry_moments,
    probe_pairs,
    row_permutation_test,
    scaled_covariance,
    within_column_covariance,
    within_row_covariance,
)
from .matrix_models import (
    RECTANGULAR_INVARIANTS,
    SQUARE_INVARIANTS,
    Invariant,
    MatrixModel,
    RectangularMatrixModel,
    SquareMatrixModel,
    bures_squared,
    compare_invariants,
)

__all__ = ["Ensemble", "EnsembleMoments", "RowPermutationTest", "WEIGHT_LAWS", "deep_cosine_map", "deep_cosines",
           "empirical_kernel", "equivalent_kernel", "sample_weights", "second_moment", "entry_moments",
           "within_row_covariance", "within_column_covariance", "scaled_covariance", "row_permutation_test",
           "probe_pairs", "Invariant", "MatrixModel", "SquareMatrixModel", "RectangularMatrixModel", "bures_squared",
           "compare_invariants", "SQUARE_INVARIANTS", "RECTANGULAR_INVARIANTS"]
