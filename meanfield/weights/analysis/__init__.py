"""Weight-statistics analyses: equivalent kernels (Tsuchida et al. 2018), exchangeability statistics of weight
ensembles and the layer kernel of exchangeable weights (Tsuchida et al. 2019), permutation-invariant Gaussian matrix
models (Ramgoolam 2019; Hirst & Ramgoolam 2025)."""

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
from .exchangeable_kernel import (
    ExchangeableFit,
    exchangeable_kernel,
    normalized_exchangeable_kernel,
    sample_exchangeable,
    transition_covariance,
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
           "compare_invariants", "SQUARE_INVARIANTS", "RECTANGULAR_INVARIANTS", "ExchangeableFit",
           "exchangeable_kernel", "normalized_exchangeable_kernel", "sample_exchangeable", "transition_covariance"]
