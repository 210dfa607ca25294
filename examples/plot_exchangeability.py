"""
Exchangeability statistics of trained weights
=============================================

Neurons of a network trained from i.i.d. initial weights stay exchangeable in law: no row of the weight matrix is
special across seeds. We train 24 seeds of the mean-field flow (m = 32, d = 6) and track the within-row covariance of
the first-layer weights across seeds, scaled by the width (O(1) when correlations are O(1/width), as Tsuchida et al.
2019 predict), and the permutation test of row exchangeability.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import meanfield as mf
from meanfield.weights.analysis import Ensemble

d = 6
problem = mf.Problem(mf.TeacherNetwork(c=np.ones(2), U=np.eye(d)[:2]), mf.Gaussian(d=d))
folder = Path(tempfile.mkdtemp())
for seed in range(24):
    mf.simulate(problem, mf.init.gaussian(32, d, seed=seed), t_max=10.0, dt=0.1, save_every=10, backend="numpy",
                path=folder / f"seed{seed}.h5").close()

with Ensemble(sorted(folder.glob("*.h5")), progress=False) as ensemble:
    stats = ensemble.statistics("b")
    statistic, p = ensemble.permutation_test("b", index=-1, n_permutations=199, seed=0)
print(f"row exchangeability at t = 10: p = {p:.2f}")

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(stats["time"], stats["row_scaled"], "o-", label="d · ĉ_row / v̂")
ax.plot(stats["time"], stats["column_scaled"], "s-", label="m · ĉ_col / v̂")
ax.axhline(0, color="k", lw=0.5)
ax.set_xlabel("t")
ax.set_ylabel("width-scaled covariance")
ax.legend(frameon=False)
fig.tight_layout()
