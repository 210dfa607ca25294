"""
Watching the particles move: an animation of a flow
===================================================

The particles of a two-layer network learning a teacher with two neurons, in d = 6: each neuron j is the point
a_j b_j, projected on the teacher's hidden subspace H = span(u_1, u_2) (the run knows it from its target), with a
marker area proportional to its mass times the size of a_j, red for a_j > 0 and blue for a_j < 0. The dashed rays
are the teacher's neurons c_i u_i. The mass that carries the output gathers on the teacher's directions while the
risk (right, with a marker at the frame's time) falls.

:func:`meanfield.animate.animation` returns a matplotlib animation (shown below with its controls, as a notebook
shows it); :func:`meanfield.animate.animate` writes the same frames to a GIF (Pillow) or an MP4 (ffmpeg), reading
the snapshots from the file one at a time; from the command line, ``meanfield plot run.h5 --animate run.gif``
(``--fps``, ``--stride``, ``--size``, ``--dpi``).
"""

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import meanfield as mf
from meanfield.animate import animate, animation

path = Path(tempfile.mkdtemp()) / "teacher.h5"
d = 6
problem = mf.Problem(mf.TeacherNetwork(c=[1.0, -1.0], U=np.eye(d)[:2]), mf.Gaussian(d))
mu0 = mf.init.sign_sphere(m=200, d=d, seed=0)
mf.simulate(problem, mu0, t_max=12.0, dt=0.1, save_every=4, backend="numpy", path=path).close()

traj = mf.load(path)
print(f"{len(traj)} snapshots, risk {traj.risk[0]:.3f} -> {traj.risk[-1]:.2e}")
gif = animate(traj, path.with_suffix(".gif"), fps=8, stride=2, size=(8, 3.5), dpi=60)
print(f"{gif.name}: {Image.open(gif).n_frames} frames")

# %%
# The animation itself (every other snapshot):
anim = animation(traj, stride=2, fps=8, size=(8, 3.5), dpi=72)
