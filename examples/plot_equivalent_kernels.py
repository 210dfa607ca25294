"""
Equivalent kernels of rectified layers
======================================

For a ReLU layer with i.i.d. rotationally invariant weights, the kernel k(x, y) = E[σ(w·x) σ(w·y)] depends on the
weight law only through E|w|² (Tsuchida, Roosta & Gallagher 2018): Gaussian, Student-t and uniform-on-the-sphere
weights with the same second moment give the same arc-cosine kernel. Sampled kernels (dots) against the closed form
(line) as the angle between x and y varies.
"""

import matplotlib.pyplot as plt
import numpy as np

from meanfield.weights.analysis import empirical_kernel, equivalent_kernel, sample_weights, second_moment

n = 8
angles = np.linspace(0, np.pi, 13)
x = np.tile(np.eye(n)[0], (len(angles), 1))
y = np.cos(angles)[:, None] * np.eye(n)[0] + np.sin(angles)[:, None] * np.eye(n)[1]

fig, ax = plt.subplots(figsize=(5, 3.2))
exact = equivalent_kernel(x, y, second_moment("gaussian", n))
ax.plot(angles, exact, "k", label="closed form (E|w|² = n)")
for i, law in enumerate(["gaussian", "student_t", "sphere"]):
    scale = np.sqrt(second_moment("gaussian", n) / second_moment(law, n))    # the same E|w|² for every law
    w = sample_weights(law, 200_000, n, seed=i, scale=scale)
    sampled = empirical_kernel(w, x, y)
    error = np.max(np.abs(sampled - exact)) / exact[0]
    print(f"{law:>10s}: largest deviation from the closed form {error:.4f} k(x, x)")
    ax.plot(angles, sampled, "o", ms=4, label=law)
ax.set_xlabel("angle between x and y")
ax.set_ylabel("k(x, y)")
ax.legend(frameon=False)
fig.tight_layout()
