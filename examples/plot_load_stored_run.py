"""
Loading and plotting a stored run
=================================

A run streamed to an HDF5 file is reopened lazily with :func:`meanfield.load`: the risk and the times are read at
once, particle snapshots only when indexed. The file also records the problem, so that the run can be resumed
(``resume=True``) — here from t = 10 to t = 20, with the same result as a run that went straight to t = 20.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import meanfield as mf
from meanfield import plot

path = Path(tempfile.mkdtemp()) / "run.h5"
d = 8
problem = mf.Problem(mf.TeacherNetwork(c=np.ones(2), U=np.eye(d)[:2]), mf.Gaussian(d=d))
mu0 = mf.init.sign_sphere(m=128, d=d, seed=0)
mf.simulate(problem, mu0, t_max=10.0, dt=0.1, backend="numpy", path=path).close()
mf.simulate(problem, mu0, t_max=20.0, dt=0.1, backend="numpy", path=path, resume=True).close()

traj = mf.load(path)
print(traj.status, traj.times[-1], traj.b.shape, traj.problem_spec["target"])
straight = mf.simulate(problem, mu0, t_max=20.0, dt=0.1, backend="numpy")
print("resumed run equals the uninterrupted one:", bool(np.array_equal(traj.b[-1], straight.b[-1])))

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
plot.risk_curve(traj, ax=axes[0])
plot.particle_cloud(traj.measure(-1), ax=axes[1], subspace=traj.hidden_subspace(), t=float(traj.times[-1]))
fig.tight_layout()
traj.close()
