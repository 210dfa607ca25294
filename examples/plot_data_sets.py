"""
A data set, the logistic loss and the lazy regime
=================================================

The exact flow of a two-layer ReLU network with biases on a finite data set: 60 points in the plane, labelled ±1 by
a circle, the logistic loss. The same initial neurons are trained three ways — the mean-field flow (α = 1), the same
flow with the output scale α = 30 (the lazy regime: the neurons barely move), and the linearised (NTK) flow around
the start, which the scaled flow approaches as α grows. Left: decision boundaries; right: training losses.
"""

import matplotlib.pyplot as plt
import numpy as np

import meanfield as mf
from meanfield.data import DataSet
from meanfield.lazy import LinearizedProblem

rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (60, 2))
y = np.where((x**2).sum(axis=1) < 0.45, 1.0, -1.0)
data = DataSet(x, y)
mu0 = mf.init.doubled(mf.init.gaussian(200, 2, seed=0, bias_std=0.5))   # f(μ0) = 0

runs = {}
for alpha in (1.0, 30.0):
    problem = mf.EmpiricalProblem(data, loss="logistic", bias=True, output_scale=alpha)
    traj = mf.simulate(problem, mu0, t_max=200.0, dt=0.1, save_every=20)
    runs[f"α = {alpha:g}"] = (problem, traj.final, traj.times, traj.observables["train_loss"])
lin = LinearizedProblem(mf.EmpiricalProblem(data, loss="logistic", bias=True), mu0)
traj = mf.simulate(lin, lin.start(), t_max=200.0, dt=0.1, save_every=20)
runs["linearised"] = (lin, traj.final, traj.times, traj.observables["train_loss"])

grid = np.linspace(-1.2, 1.2, 200)
xx, yy = np.meshgrid(grid, grid)
points = np.column_stack([xx.ravel(), yy.ravel()])
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
left.scatter(*x[y > 0].T, c="tab:red", s=12)
left.scatter(*x[y < 0].T, c="tab:blue", s=12)
for color, (name, (problem, final, times, loss)) in zip(("k", "tab:orange", "tab:green"), runs.items()):
    left.contour(xx, yy, problem.predict(final, points).reshape(xx.shape), levels=[0], colors=color)
    right.loglog(times[1:], loss[1:], color=color, label=name)
    print(f"{name:>10s}: training loss {loss[-1]:.2e} at t = {times[-1]:g}")
left.set(aspect="equal", title="decision boundaries")
right.set(xlabel="t", ylabel="training loss", title="logistic loss")
right.legend()
fig.tight_layout()
