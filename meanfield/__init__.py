"""meanfield — exact particle simulation of the mean-field dynamics of two-layer ReLU networks.

    import meanfield as mf
    problem = mf.Problem(mf.TeacherNetwork(c, U), mf.Gaussian(d=20))
    traj = mf.simulate(problem, mf.init.sign_sphere(m=1024, d=20, seed=0), t_max=50.0, dt=0.05)
"""

from . import compare, init, kernels
from .activations import Activation, LeakyReLU, ReLU
from .data import DataSet
from .empirical import EmpiricalProblem
from .flow import simulate
from .inputs import Gaussian, InputLaw, Sphere
from .io import load
from .kernels import available_backends, get_backend
from .measure import ParticleMeasure
from .problem import Problem
from .runguard import FlowDivergedError
from .saving import SaveAt
from .solvers import RungeKutta, get_solver
from .targets import (
    CubicTarget,
    LinearTarget,
    MonteCarloTarget,
    MultiIndexTarget,
    OddTarget,
    RadialTarget,
    Target,
    TeacherNetwork,
)
from .trajectory import Trajectory

__version__ = "0.1.0"

_LAZY = {"sgd": "sgd", "symmetry": "symmetry", "reduced": "reduced", "io": "io", "config": "config",
         "sweep": "sweep", "plot": "plot", "threads": "threads", "weights": "weights",
         "mlp": "weights.mlp", "analysis": "weights.analysis"}  # the weight-statistics family, by its short names


def __getattr__(name):
    """Submodules with heavier imports (torch for sgd, dask for sweep) load on first use: ``mf.sgd.train``,
    ``mf.mlp.train_mlp`` (:mod:`meanfield.weights.mlp`), ``mf.analysis.Ensemble``
    (:mod:`meanfield.weights.analysis`)."""
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{_LAZY[name]}", __name__)
    raise AttributeError(f"module 'meanfield' has no attribute {name!r}")

__all__ = [
    "Activation",
    "ReLU",
    "LeakyReLU",
    "compare",
    "init",
    "kernels",
    "Gaussian",
    "Sphere",
    "InputLaw",
    "available_backends",
    "get_backend",
    "ParticleMeasure",
    "Problem",
    "EmpiricalProblem",
    "DataSet",
    "simulate",
    "SaveAt",
    "FlowDivergedError",
    "RungeKutta",
    "get_solver",
    "Target",
    "TeacherNetwork",
    "OddTarget",
    "RadialTarget",
    "LinearTarget",
    "CubicTarget",
    "MultiIndexTarget",
    "MonteCarloTarget",
    "Trajectory",
    "load",
]
