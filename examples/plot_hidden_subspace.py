"""
Neurons aligning with a hidden subspace
=======================================

The teacher depends on x only through its projection on H = span(U), dim H = 2, in d = 16. As the flow learns, the
mass of the student's neurons concentrates on directions inside H: the mass-weighted histogram of the angle between
each neuron and H moves to 0. The alignment observables are recorded with every save of the run.
"""

import matplotlib.pyplot as plt
import numpy as np

import meanfield as mf
from meanfield import plot

d = 16
U = np.eye(d)[:2]
problem = mf.Problem(mf.TeacherNetwork(c=np.ones(2), U=U), mf.Gaussian(d=d))
traj = mf.simulate(problem, mf.init.sign_sphere(m=256, d=d, seed=0), t_max=40.0, dt=0.1, backend="numpy")

Q = traj.hidden_subspace()           # span(U), as an orthonormal basis (d, 2)
mean_angle = traj.observables["mean_angle_pos"]
print(f"mean angle of the positive mass to H: {mean_angle[0]:.2f} rad at t = 0, {mean_angle[-1]:.3f} rad at t = 40")

axes = plot.alignment_histograms(traj, Q, snapshots=(0, len(traj.times) // 4, -1))
plt.gcf().set_size_inches(8, 3)
