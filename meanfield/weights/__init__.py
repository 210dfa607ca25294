"""The second family of the package: weights of trained networks and their statistics.

The simulator (the rest of :mod:`meanfield`) integrates the mean-field flow and trains finite two-layer networks;
this family trains small bias-free MLPs on real data (:mod:`meanfield.weights.mlp`) and studies the weights of
ensembles of runs of any kind, read from the same HDF5 files (:mod:`meanfield.weights.analysis`: equivalent
kernels, exchangeability, ensembles, permutation-invariant matrix models). It shares only the file format with the
simulator.
"""

__all__: list[str] = []
