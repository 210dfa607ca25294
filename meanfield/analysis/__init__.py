"""Weight-statistics analyses (DESIGN.md §2.5). So far: equivalent kernels (Tsuchida et al. 2018)."""

from .equivalent_kernel import (
    WEIGHT_LAWS,
    deep_cosine_map,
    deep_cosines,
    empirical_kernel,
    equivalent_kernel,
    sample_weights,
    second_moment,
)

__all__ = ["WEIGHT_LAWS", "deep_cosine_map", "deep_cosines", "empirical_kernel", "equivalent_kernel", "sample_weights",
           "second_moment"]
