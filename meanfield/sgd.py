r"""Finite-width two-layer networks trained by SGD, from the same description as the mean-field flow.

The network of a particle measure μ = Σ_j w_j δ_{(a_j, b_j)} is f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩) (1/m output scaling for
uniform weights; σ(⟨b_j, x⟩ + c_j) for neurons with biases). Training minimises ½ mean_batch (f(x) − f*(x))² and
moves each neuron by η / w_j times its own gradient (lr = m · η for uniform weights), so that t = steps · η is
mean-field time and, as the batch grows and η shrinks, the network follows the Euler scheme of the flow (Mei,
Montanari & Nguyen 2018, arXiv:1804.06561; Chizat & Bach 2018, arXiv:1805.09545). The population risk of every
saved state is the exact closed form of the flow's :class:`~meanfield.Problem`, so SGD runs and flows are compared on
the same footing (and stored in the same format). The torch side (the network module, its data, the stepping rule)
is :mod:`meanfield.torch_sgd`, imported when a run starts, so that reading a configuration needs no torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

from ._defaults import call_defaults
from ._validation import check_nonnegative, check_positive, check_positive_int, check_seed
from .controllers import ConstantStep
from .empirical import EmpiricalProblem
from .loop import run_loop
from .measure import ParticleMeasure
from .observables import run_observables
from .problem import Objective, Problem, ProblemVariant
from .saving import SaveAt
from .trajectory import Trajectory

__all__ = ["train", "MODES"]

#: The sampling modes of :func:`train`: fresh samples, mini-batches of a fixed data set, full batches.
MODES = ("online", "minibatch", "full")
#: The names :mod:`meanfield.torch_sgd` defines, available here too (imported on first use).
_TORCH_NAMES = ("TwoLayerNetwork", "SGDStep", "training_data", "minibatch_indices")


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        return getattr(importlib.import_module(".torch_sgd", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train(problem: Problem | EmpiricalProblem, mu0: ParticleMeasure, t_max: float, eta: float, batch_size: int = 512,
          mode: str = "online", n_data: int | None = None, seed: int = 0, save_every: int = 10,
          observables: Mapping[str, Callable] | None = None, device="cpu", dtype: str = "float64",
          risk_backend="auto", max_risk_factor: float = 1e6, path=None, overwrite: bool = False,
          resume: bool = False, config: dict | None = None, progress: bool = False,
          alignment: bool = True, temperature: float = 0.0, weight_decay: float = 0.0) -> Trajectory:
    """Train the finite network of ``mu0`` by SGD for mean-field time ``t_max`` (steps = t_max / eta).

    Parameters
    ----------
    problem : Problem or EmpiricalProblem
        The same object the flow uses: a population problem (target, input law, unit; the saved risk is its exact
        population risk) or an :class:`~meanfield.EmpiricalProblem` (its data set is the training set, its loss the
        one trained and saved, ``n_data`` is the data set's size).
    mu0 : ParticleMeasure
        Initial neurons (the flow's initial measure).
    t_max : float
        Final mean-field time: ⌈t_max / eta⌉ steps.
    eta : float
        Mean-field step: each neuron moves by eta / w_j times its gradient (lr = m · eta).
    batch_size : int
        Samples per step ("online", "minibatch").
    mode : {"online", "minibatch", "full"}
        Fresh samples every step (from an EmpiricalProblem's data set: drawn with replacement); mini-batches of a
        fixed data set of ``n_data`` samples (reshuffled every epoch); or full-batch gradient descent on that data
        set.
    n_data : int, optional
        The size of the fixed data set of "minibatch" and "full" runs of a population problem (drawn by
        :func:`training_data`); left out for an EmpiricalProblem.
    seed : int
        Seeds the samples (and the data set); the run is reproducible from it and resumable bit-identically.
    save_every : int
        Steps between saves; every save records the exact population risk (closed form) and the observables.
    observables : dict of name -> callable(ParticleMeasure) -> float or array, optional
        Recorded at every save, as for :func:`meanfield.simulate`.
    device, dtype : str
        Where the network is trained (torch device, e.g. "cuda") and its precision ("float64" or "float32").
    risk_backend : str or Backend
        The backend of the exact risk at the saves (see :func:`meanfield.simulate`).
    max_risk_factor : float
        The run stops as diverged when the risk exceeds this factor times max(F(μ0), ½ E f*²).
    progress : bool
        Show a tqdm progress bar.
    path, overwrite, resume, config, alignment
        As for :func:`meanfield.simulate` (HDF5 streaming through the same writer, kind "sgd").

    temperature, weight_decay : float
        Noisy SGD: Gaussian noise √(2τη) ξ and weight decay λ per step, the finite-network counterpart of mean-field
        Langevin dynamics at temperature τ (0 and 0: plain SGD).

    Returns
    -------
    Trajectory
        Same object as a flow's: ``times`` (t = steps · eta), ``risk`` (population risk), ``a``, ``b``, ``final``.

    Examples
    --------
    SGD of the finite network with m = 64 and online batches, against the same problem's flow:

    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(4)[:2]), mf.Gaussian(4))
    >>> mu0 = mf.init.sign_sphere(64, 4, seed=0)
    >>> sgd = mf.sgd.train(problem, mu0, t_max=2.0, eta=0.01, batch_size=256, seed=0)
    >>> flow = mf.simulate(problem, mu0, t_max=2.0, dt=0.05)
    >>> sgd.kind, bool(sgd.risk[-1] < sgd.risk[0]), bool(abs(sgd.risk[-1] - flow.risk[-1]) < 0.2 * flow.risk[-1])
    ('sgd', True, True)
    """
    if not isinstance(problem, Objective):
        raise TypeError(f"problem must be a meanfield Problem, got {type(problem).__name__}")
    if not problem.particles_are_neurons:
        raise ValueError(f"SGD trains neurons, and the particles of {type(problem).__name__} are not; train the full "
                         "problem (problem.base) from a lifted measure")
    if isinstance(problem, ProblemVariant):  # its particles stand for another network than the one SGD would train
        raise ValueError(f"SGD trains the network of the particles as they are, and {type(problem).__name__} "
                         f"({problem.variant_spec()}) computes the risk of another one; train the full problem "
                         "(problem.base) from the measure it stands for (e.g. mf.init.symmetrize(mu0) for the odd "
                         "reduction)")
    problem.check_measure(mu0)
    t_max, eta = check_positive(t_max, "t_max"), check_positive(eta, "eta")
    seed, max_risk_factor = check_seed(seed, "seed"), check_positive(max_risk_factor, "max_risk_factor")
    batch_size, save_every = check_positive_int(batch_size, "batch_size"), check_positive_int(save_every, "save_every")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(problem, EmpiricalProblem):  # the data set is the problem's
        if n_data is not None and n_data != problem.data.n:
            raise ValueError(f"n_data = {n_data} but the problem's data set has n = {problem.data.n} samples; leave "
                             "n_data out for an EmpiricalProblem")
        n_data = problem.data.n
        if mode == "minibatch" and batch_size > n_data:
            raise ValueError(f"batch_size {batch_size} exceeds the data set size n = {n_data}")
    elif mode != "online":
        if n_data is None:
            raise ValueError(f"mode {mode!r} trains on a fixed data set: pass n_data (its size)")
        n_data = check_positive_int(n_data, "n_data")
        if mode == "minibatch" and batch_size > n_data:
            raise ValueError(f"batch_size {batch_size} exceeds the data set size n_data = {n_data}")
    temperature = check_nonnegative(temperature, "temperature")
    weight_decay = check_nonnegative(weight_decay, "weight_decay")
    save = SaveAt(save_every, observables=run_observables(problem, observables, path, resume, alignment))
    run_config = {"kind": "sgd", "mode": mode, "eta": eta, "t_max": t_max, "batch_size": batch_size, "n_data": n_data,
                  "seed": int(seed), "save_every": save_every, "dtype": dtype, "problem": problem.spec(),
                  "m": mu0.m, "d": mu0.d, "mu0_sha1": mu0.checksum(), "observables": sorted(save.observables),
                  "temperature": temperature, "weight_decay": weight_decay, "max_risk_factor": max_risk_factor,
                  "user": config or {}}
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    from .kernels.torch_backend import torch_device
    from .torch_sgd import SGDStep

    rule = SGDStep(problem, mu0, mode, batch_size, n_data, seed, torch_device(device), dtype, risk_backend,
                   max_risk_factor, temperature, weight_decay)

    from .io import recorder_for

    recorder, start = recorder_for(path, SGDStep.kind, run_config, problem.spec(), problem.arrays(),
                                   mu0.weights, overwrite=overwrite, resume=resume, resumable=("t_max", "user"),
                                   seed=seed, defaults=call_defaults(train),
                                   t_end=ConstantStep(eta).n_steps(t_max) * eta)
    info = {"mode": mode, "eta": eta, "batch_size": batch_size, "n_data": n_data, "dtype": dtype}
    return run_loop(rule, ConstantStep(eta, exact_end=False), save, t_max, recorder, start, info=info,
                    progress=progress, resume_hint="sgd.train(..., resume=True)")
