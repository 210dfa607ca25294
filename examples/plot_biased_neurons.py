"""
Neurons with biases
===================

Neurons σ(⟨b, x⟩ + c) with a bias c that the flow moves like b, exact for Gaussian inputs (the ReLU through the
bivariate normal distribution). A teacher of two biased ReLU neurons in d = 2 and a student of 128 biased neurons:
the risk, and the hyperplanes ⟨b, x⟩ + c = 0 of the heaviest student neurons at the end against the teacher's (dashed).
"""

import matplotlib.pyplot as plt
import numpy as np

import meanfield as mf

teacher = mf.TeacherNetwork(c=[1.0, 1.0], U=[[1.0, 0.0], [0.0, 1.0]], bias=[0.5, -0.5])
problem = mf.Problem(teacher, mf.Gaussian(d=2), bias=True)
mu0 = mf.init.sign_sphere(m=128, d=2, seed=0, bias_std=0.5)
traj = mf.simulate(problem, mu0, t_max=40.0, dt=0.1, backend="numpy")
print(f"risk {traj.risk[0]:.3f} -> {traj.risk[-1]:.2e}")

mu = traj.final
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
axes[0].semilogy(traj.times, traj.risk)
axes[0].set_xlabel("t")
axes[0].set_ylabel("risk")
grid = np.linspace(-3, 3, 2)
mass = np.abs(mu.a) * np.hypot(np.linalg.norm(mu.b, axis=1), mu.c)
for j in np.argsort(mass)[-20:]:
    (b1, b2), c = mu.b[j], mu.c[j]
    if abs(b2) > abs(b1):
        axes[1].plot(grid, -(b1 * grid + c) / b2, color="C3" if mu.a[j] > 0 else "C0", alpha=0.5)
    else:
        axes[1].plot(-(b2 * grid + c) / b1, grid, color="C3" if mu.a[j] > 0 else "C0", alpha=0.5)
axes[1].axvline(-0.5, color="k", ls="--")
axes[1].axhline(0.5, color="k", ls="--")
axes[1].set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal", title="hyperplanes of the 20 heaviest neurons")
fig.tight_layout()
