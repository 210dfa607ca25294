"""
A permutation-invariant Gaussian matrix model
=============================================

The 13-parameter S_D-invariant Gaussian model of D × D matrices (Ramgoolam 2019; Hirst & Ramgoolam 2025) fitted
by moment matching to a sample from a known model: the fitted parameters recover the true ones, and the cubic and
quartic invariants of the sample agree with the exact (Wick) predictions of the fit, in units of the data's standard
deviation.
"""

import matplotlib.pyplot as plt
import numpy as np

from meanfield import plot
from meanfield.weights.analysis import SquareMatrixModel, compare_invariants

D = 8
truth = SquareMatrixModel(D, mean=np.array([0.1, -0.05]), cov0=np.array([[1.0, 0.3], [0.3, 0.5]]),
                          cov_h=np.array([[0.8, 0.1, 0.0], [0.1, 0.6, 0.0], [0.0, 0.0, 0.4]]), lam2=0.7, lam3=0.3)
sample = truth.sample(20_000, seed=0)
fit = SquareMatrixModel.fit(sample)
print(f"lam2 {fit.lam2:.3f} (true 0.7), lam3 {fit.lam3:.3f} (true 0.3), W2(fit, truth) = {fit.wasserstein(truth):.3f}")

rows = compare_invariants(sample, fit, n_model=20_000, seed=1)
worst = max(rows, key=lambda r: abs(r["deviation"]))
print(f"{len(rows)} invariants; largest deviation {worst['deviation']:+.3f} sd ({worst['name']})")
fig, ax = plt.subplots(figsize=(5, 4), constrained_layout=True)
plot.invariant_deviations({"fit to its own sample": rows}, ax=ax)
