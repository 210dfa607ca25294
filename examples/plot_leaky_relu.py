"""
Leaky ReLU and other units of the ReLU family
=============================================

The same teacher learned by students of three units — ReLU, leaky ReLU (slope 0.2) and abs — each with its own
closed-form dual kernel. The leaky ReLU student, σ(z) = 0.2 z + 0.8 relu(z), learns the ReLU teacher as well as the
ReLU student does. The abs student cannot: abs is even, so its networks are even functions and miss the odd part of
the teacher, relu(z) = ½z + ½ abs(z) summed over the teacher's neurons: ½⟨u₁ + u₂, x⟩, whose risk ½ E(½⟨u₁ + u₂, x⟩)² =
¼ is where the abs curve stops — exactly.
"""

import matplotlib.pyplot as plt
import numpy as np

import meanfield as mf
from meanfield.activations import Abs

d = 10
teacher = mf.TeacherNetwork(c=np.ones(2), U=np.eye(d)[:2])
mu0 = mf.init.sign_sphere(m=256, d=d, seed=0)

fig, ax = plt.subplots(figsize=(5, 3.2))
for unit in [mf.ReLU(), mf.LeakyReLU(0.2), Abs()]:
    problem = mf.Problem(teacher, mf.Gaussian(d=d), activation=unit)
    traj = mf.simulate(problem, mu0, t_max=30.0, dt=0.1, backend="numpy")
    print(f"{unit.name:>10s}: risk {traj.risk[0]:.3f} -> {traj.risk[-1]:.2e}")
    ax.semilogy(traj.times, traj.risk, label=unit.name)
ax.set_xlabel("t")
ax.set_ylabel("risk")
ax.legend(frameon=False)
fig.tight_layout()
