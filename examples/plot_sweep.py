"""
A sweep over widths and seeds
=============================

A sweep is a configuration with a ``[sweep]`` table: every combination of the values in ``[sweep.grid]`` is one run,
executed on a Dask cluster (here a local one with two workers) and written to its own HDF5 file, with a manifest
that lets an interrupted sweep continue. The final risks show the finite-m error of the particle flow shrinking with
the number of particles.
"""

import tempfile

import matplotlib.pyplot as plt
import numpy as np

import meanfield as mf
from meanfield.sweep import run_sweep


def main():
    cfg = {
        "inputs": {"law": "gaussian", "d": 10},
        "target": {"kind": "teacher", "k": 3, "seed": 0},
        "init": {"kind": "sign_sphere", "m": 16, "seed": 0},
        "run": {"t_max": 20.0, "dt": 0.1, "solver": "heun", "save_every": 20, "backend": "numpy"},
        "sweep": {"output_dir": tempfile.mkdtemp(), "grid": {"init.m": [8, 32, 128, 512], "init.seed": [0, 1, 2]}},
    }
    manifest = run_sweep(cfg, n_workers=2, progress=False)

    final = {}
    for run in manifest["runs"]:
        traj = mf.load(run["path"])
        final.setdefault(run["overrides"]["init.m"], []).append(traj.risk[-1])
        traj.close()
    widths = sorted(final)
    for m in widths:
        print(f"m = {m:4d}: final risk {np.mean(final[m]):.2e} (over {len(final[m])} seeds)")

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for m in widths:
        ax.loglog([m] * len(final[m]), final[m], "o", color="C0", alpha=0.6)
    ax.loglog(widths, [np.mean(final[m]) for m in widths], "k-", label="mean over seeds")
    ax.set_xlabel("number of particles m")
    ax.set_ylabel("risk at t = 20")
    ax.legend(frameon=False)
    fig.tight_layout()


# Dask starts its workers as new processes, which import this script again: the guard keeps them from running it.
if __name__ == "__main__":
    main()
