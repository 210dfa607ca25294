"""
Conic, birth–death and Langevin dynamics
========================================

Three dynamics of the particles beyond the Wasserstein flow, on the same problem and start: a teacher of 5 ReLU
neurons on the sphere in d = 20 and a student of only 8 neurons. From this start the Wasserstein flow stalls in a
spurious configuration; the conic (Wasserstein–Fisher–Rao) flow with the position step four times the mass step
(Chizat 2019) reaches the teacher; mean-field Langevin dynamics at a small temperature with weight decay settles at
the risk of its stationary state instead of 0.
"""

import matplotlib.pyplot as plt
import numpy as np

import meanfield as mf
from meanfield.dynamics import Conic, Langevin

d, k = 20, 5
rng = np.random.default_rng(1)
U = rng.standard_normal((k, d))
problem = mf.Problem(mf.TeacherNetwork(np.ones(k), U / np.linalg.norm(U, axis=1, keepdims=True)), mf.Sphere(d))
mu0 = mf.init.gaussian(8, d, seed=1)
runs = {
    "Wasserstein flow": None,
    "conic flow (α = 1, β = 4)": Conic(alpha=1.0, beta=4.0),
    "Langevin (τ = 1e-5, λ = 1e-3)": Langevin(1e-5, weight_decay=1e-3, seed=0, diagnostic=False),
}
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for name, dynamics in runs.items():
    traj = mf.simulate(problem, mu0, t_max=1500.0, dt=0.2, backend="numpy", dynamics=dynamics, save_every=20)
    relative = traj.risk / problem.target_energy
    print(f"{name:>30s}: risk / ½E f*² = {relative[-1]:.1e} at t = {traj.times[-1]:.0f}")
    ax.loglog(traj.times[1:], relative[1:], label=name)
ax.set_xlabel("t")
ax.set_ylabel("risk / ½E f*²")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()
