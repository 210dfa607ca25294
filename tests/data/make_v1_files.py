"""Writes the format-version-1 trajectory files in this folder (kept so that tests read and resume files written by
meanfield before the checkpoint became named arrays). Run with meanfield at commit d5ca558 (format version 1):
``git worktree add /tmp/v1 d5ca558 && cd /tmp/v1 && python /path/to/tests/data/make_v1_files.py /path/to/tests/data``.
Tests resume each of them to a longer run and compare with an uninterrupted run of the current code."""

import sys
from pathlib import Path

import numpy as np

import meanfield as mf
from meanfield.weights.mlp import train_mlp

out = Path(sys.argv[1])
problem = mf.Problem(mf.TeacherNetwork([1.0, 0.5], np.eye(4)[:2]), mf.Gaussian(4))
mu0 = mf.init.sign_sphere(10, 4, seed=2)
common = {"save_every": 2, "alignment": False, "overwrite": True}
mf.simulate(problem, mu0, t_max=1.0, dt=0.1, path=out / "v1_flow.h5", **common).close()
mf.simulate(problem, mu0, t_max=1.0, dt=0.1, solver="bosh3", path=out / "v1_adaptive.h5", **common).close()
mf.sgd.train(problem, mu0, t_max=1.0, eta=0.05, batch_size=32, seed=1, path=out / "v1_sgd.h5", **common).close()
train_mlp(width=4, depth=2, epochs=2, seed=0, optimizer="adam", lr=1e-3, path=out / "v1_mlp.h5", overwrite=True).close()
