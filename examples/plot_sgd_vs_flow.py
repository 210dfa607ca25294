"""
SGD of the finite network against the mean-field flow
=====================================================

Online SGD with learning rate m·η per neuron follows the flow in mean-field time t = steps · η, up to the noise of
its batches. Both start from the same 256 neurons; the exact population risk of the SGD network is computed at every
save with the closed-form kernel.
"""

import matplotlib.pyplot as plt
import numpy as np

import meanfield as mf

d = 10
problem = mf.Problem(mf.TeacherNetwork(c=np.ones(2), U=np.eye(d)[:2]), mf.Gaussian(d=d))
mu0 = mf.init.sign_sphere(m=256, d=d, seed=0)
flow = mf.simulate(problem, mu0, t_max=20.0, dt=0.1, backend="numpy")

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogy(flow.times, flow.risk, "k", lw=2, label="flow")
for batch in (16, 256):
    sgd = mf.sgd.train(problem, mu0, t_max=20.0, eta=0.02, batch_size=batch, seed=0, save_every=20)
    print(f"batch {batch:3d}: risk at t = 20: SGD {sgd.risk[-1]:.2e}, flow {flow.risk[-1]:.2e}")
    ax.semilogy(sgd.times, sgd.risk, label=f"online SGD, batch {batch}")
ax.set_xlabel("t = steps · η")
ax.set_ylabel("population risk")
ax.legend(frameon=False)
fig.tight_layout()
