r"""Finite-width two-layer networks in torch, trained by SGD, from the same description as the mean-field flow.

The network of a particle measure μ = Σ_j w_j δ_{(a_j, b_j)} is f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩) (1/m output scaling for
uniform weights). Training minimises ½ mean_batch (f(x) − f*(x))² and moves each neuron by η / w_j times its own
gradient (lr = m · η for uniform weights), so that t = steps · η is mean-field time and, as the batch grows and η
shrinks, the network follows the Euler scheme of the flow (Mei, Montanari & Nguyen 2018, arXiv:1804.06561; Chizat &
Bach 2018, arXiv:1805.09545). The population risk of every saved state is the exact closed form of the flow's
:class:`~meanfield.Problem`, so SGD runs and flows are compared on the same footing (and stored in the same format).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validation import check_positive, check_positive_int
from .activations import as_activation
from .inputs import Gaussian, InputLaw, Sphere
from .kernels.torch_backend import torch_device
from .measure import ParticleMeasure
from .problem import Problem
from .runguard import FlowDivergedError, RunGuard
from .status import Status
from .symmetry.alignment import default_observables
from .targets import CubicTarget, LinearTarget, TeacherNetwork
from .trajectory import Trajectory, evaluate_observables

__all__ = ["TwoLayerNetwork", "train", "sample_inputs", "torch_target", "training_data", "minibatch_indices", "MODES"]

MODES = ("online", "minibatch", "full")
_DTYPES = {"float64": torch.float64, "float32": torch.float32}


class TwoLayerNetwork(torch.nn.Module):
    """Bias-free two-layer network f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩), the finite counterpart of a
    :class:`~meanfield.ParticleMeasure`.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> mu = mf.init.sign_sphere(4, 3, seed=0)
    >>> net = TwoLayerNetwork.from_measure(mu)
    >>> x = np.ones((2, 3))
    >>> bool(np.allclose(net(torch.tensor(x)).detach().numpy(), mu.predict(x)))
    True
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor, activation=0.0):
        super().__init__()
        self.a = torch.nn.Parameter(a)
        self.b = torch.nn.Parameter(b)
        self.register_buffer("weights", weights)
        self.unit = as_activation(activation)

    @classmethod
    def from_measure(cls, mu: ParticleMeasure, device="cpu", dtype: str = "float64", slope=0.0):
        """The network of ``mu`` with activation ``slope`` (an :class:`~meanfield.activations.Activation`, or a leaky
        slope: 0 is the ReLU)."""
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        opts = {"device": torch_device(device), "dtype": _DTYPES[dtype]}
        return cls(torch.tensor(mu.a, **opts), torch.tensor(mu.b, **opts), torch.tensor(mu.weights, **opts), slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unit.torch(x @ self.b.T) @ (self.weights * self.a)

    def to_measure(self) -> ParticleMeasure:
        """The measure of the current parameters: a copy (on a CPU fp64 network ``numpy()`` would share the
        parameters' memory, and the next in-place step would rewrite every snapshot taken so far)."""
        with torch.no_grad():
            def copy(t):
                return t.detach().cpu().double().numpy().copy()

            return ParticleMeasure(copy(self.a), copy(self.b), copy(self.weights))


def sample_inputs(inputs: InputLaw, n: int, generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """n inputs from the law, drawn with a (CPU) torch generator so that runs are reproducible on any device."""
    g = torch.randn(n, inputs.d, generator=generator, dtype=torch.float64)
    if isinstance(inputs, Gaussian):
        g = math.sqrt(inputs.variance) * g
    elif isinstance(inputs, Sphere):
        g = g / torch.linalg.vector_norm(g, dim=1, keepdim=True)
    else:
        raise TypeError(f"no torch sampler for {type(inputs).__name__}")
    return g.to(dtype)


def torch_target(target) -> Callable[[torch.Tensor], torch.Tensor]:
    """f* on torch tensors: native for teacher, linear and cubic targets, through numpy otherwise."""
    if isinstance(target, TeacherNetwork):
        U, c = torch.tensor(target.U), torch.tensor(target.c)
        return lambda x: torch.relu(x @ U.to(x).T) @ c.to(x)
    if isinstance(target, LinearTarget):
        beta = torch.tensor(target.beta)
        return lambda x: x @ beta.to(x)
    if isinstance(target, CubicTarget):
        z = torch.tensor(target.z)
        return lambda x: target.scale * (x**3 @ z.to(x))
    return lambda x: torch.as_tensor(target(x.detach().cpu().double().numpy())).to(x)


def training_data(problem: Problem, n_data: int, seed: int, dtype=torch.float64, device="cpu"):
    """The fixed data set (x, f*(x)) of ``mode="minibatch"`` and ``"full"`` runs seeded by ``seed``: n_data inputs
    from the problem's law (a CPU generator seeded with seed + 7919, so that it differs from the online stream).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> problem = mf.Problem(mf.LinearTarget(np.ones(3)), mf.Sphere(3))
    >>> x, y = training_data(problem, 5, seed=0)
    >>> tuple(x.shape), tuple(y.shape)
    ((5, 3), (5,))
    """
    xs = sample_inputs(problem.inputs, n_data, torch.Generator().manual_seed(int(seed) + 7919), dtype)
    xs = xs.to(torch_device(device))
    return xs, torch_target(problem.target)(xs)


def minibatch_indices(n_data: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """The data indices of mini-batch ``step`` (1, 2, ...): each epoch of ⌊n_data / batch_size⌋ steps draws a
    permutation seeded by (seed, epoch) and takes consecutive slices of it, so the batches of an epoch are disjoint
    (the remainder n_data mod batch_size is left out of that epoch).

    Examples
    --------
    >>> sorted(torch.cat([minibatch_indices(6, 2, 0, s) for s in (1, 2, 3)]).tolist())
    [0, 1, 2, 3, 4, 5]
    """
    per_epoch = n_data // batch_size
    epoch, pos = divmod(step - 1, per_epoch)
    perm = torch.randperm(n_data, generator=torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch))
    return perm[pos * batch_size:(pos + 1) * batch_size]


def _generator_state(gen: torch.Generator) -> bytes:
    return bytes(gen.get_state().numpy().tobytes())


def train(problem: Problem, mu0: ParticleMeasure, t_max: float, eta: float, batch_size: int = 512,
          mode: str = "online", n_data: int | None = None, seed: int = 0, save_every: int = 10,
          observables: Mapping[str, Callable] | None = None, device="cpu", dtype: str = "float64",
          risk_backend="auto", max_risk_factor: float = 1e6, path=None, overwrite: bool = False,
          resume: bool = False, config: dict | None = None, progress: bool = False,
          alignment: bool = True) -> Trajectory:
    """Train the finite network of ``mu0`` by SGD for mean-field time ``t_max`` (steps = t_max / eta).

    Parameters
    ----------
    problem : Problem
        Target, input law, activation (the same object the flow uses).
    mu0 : ParticleMeasure
        Initial neurons (the flow's initial measure).
    eta : float
        Mean-field step: each neuron moves by eta / w_j times its gradient (lr = m · eta).
    batch_size : int
        Samples per step ("online", "minibatch").
    mode : {"online", "minibatch", "full"}
        Fresh samples every step; mini-batches of a fixed data set of ``n_data`` samples (reshuffled every epoch);
        or full-batch gradient descent on that data set.
    seed : int
        Seeds the samples (and the data set); the run is reproducible from it and resumable bit-identically.
    save_every : int
        Steps between saves; every save records the exact population risk (closed form) and the observables.
    path, overwrite, resume, config, alignment
        As for :func:`meanfield.simulate` (HDF5 streaming through the same writer, kind "sgd").

    Returns
    -------
    Trajectory
        Same object as a flow's: ``times`` (t = steps · eta), ``risk`` (population risk), ``a``, ``b``, ``final``.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a meanfield Problem, got {type(problem).__name__}")
    problem.check_measure(mu0)
    t_max, eta = check_positive(t_max, "t_max"), check_positive(eta, "eta")
    batch_size, save_every = check_positive_int(batch_size, "batch_size"), check_positive_int(save_every, "save_every")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode != "online":
        if n_data is None:
            raise ValueError(f"mode {mode!r} trains on a fixed data set: pass n_data (its size)")
        n_data = check_positive_int(n_data, "n_data")
        if mode == "minibatch" and batch_size > n_data:
            raise ValueError(f"batch_size {batch_size} exceeds the data set size n_data = {n_data}")
    observables = default_observables(problem, observables, path, resume, alignment)
    n_steps = max(1, math.ceil(t_max / eta - 1e-9))
    run_config = {"kind": "sgd", "mode": mode, "eta": eta, "t_max": t_max, "batch_size": batch_size, "n_data": n_data,
                  "seed": int(seed), "save_every": save_every, "dtype": dtype, "problem": problem.spec(),
                  "m": mu0.m, "d": mu0.d, "mu0_sha1": mu0.checksum(), "observables": sorted(observables),
                  "user": config or {}}

    net = TwoLayerNetwork.from_measure(mu0, device, dtype, problem.unit)  # checks dtype and device
    tdtype, dev = net.a.dtype, net.a.device
    gen = torch.Generator().manual_seed(int(seed))
    f_star = torch_target(problem.target)
    data = training_data(problem, n_data, seed, tdtype, dev) if mode != "online" else None
    inv_w = 1.0 / net.weights

    from .io import recorder_for

    recorder, start = recorder_for(path, "sgd", run_config, problem, mu0.weights, overwrite=overwrite, resume=resume,
                                   resumable=("t_max", "user"), seed=int(seed), rng_state=_generator_state(gen))
    step = 0
    if start is not None:
        with torch.no_grad():
            net.a.copy_(torch.tensor(start["state"][:, 0]))
            net.b.copy_(torch.tensor(start["state"][:, 1:]))
        gen.set_state(torch.tensor(np.frombuffer(start["rng_state"], dtype=np.uint8).copy()))
        step = start["step"]

    wall0 = start["wall_time"] if start is not None else 0.0
    clock = time.perf_counter()
    info = {"mode": mode, "eta": eta, "batch_size": batch_size, "n_data": n_data, "device": str(dev), "dtype": dtype}

    def record(t):
        mu = net.to_measure()
        risk = problem.risk(mu, backend=risk_backend)
        obs = evaluate_observables(observables, mu)
        recorder.append(t, risk, mu, obs)
        meta = {"t": t, "step": step, "h": eta, "wall_time": wall0 + time.perf_counter() - clock, "max_risk": max_risk}
        recorder.checkpoint(mu.state(), meta, _generator_state(gen))
        recorder.final = mu
        return risk

    def finish(status):
        info.update(n_steps=step, wall_time=wall0 + time.perf_counter() - clock)
        return recorder.trajectory(problem, status=status, info=info)

    max_risk = start["max_risk"] if start is not None else math.inf
    if start is None:
        risk0 = record(0.0)
        max_risk = max_risk_factor * max(risk0, problem.target_energy)
    bar = tqdm(total=n_steps, initial=step, disable=not progress, desc=f"sgd[{mode}]")
    first = step + 1
    with RunGuard(recorder, info, bar, lambda: f"training at step {step}",
                  "sgd.train(..., resume=True)") as guard:
        for step in range(first, n_steps + 1):  # noqa: B020 - `step` is also read by record() for the checkpoint
            if mode == "online":
                x = sample_inputs(problem.inputs, batch_size, gen, tdtype).to(dev)
                y = f_star(x)
            elif mode == "minibatch":
                idx = minibatch_indices(n_data, batch_size, seed, step).to(dev)
                x, y = data[0][idx], data[1][idx]
            else:
                x, y = data
            net.zero_grad(set_to_none=True)
            loss = 0.5 * torch.mean((net(x) - y) ** 2)
            loss.backward()
            with torch.no_grad():
                net.a -= eta * inv_w * net.a.grad
                net.b -= eta * inv_w[:, None] * net.b.grad
            if not torch.isfinite(loss):
                raise FlowDivergedError(f"SGD diverged at step {step}: non-finite loss; reduce eta",
                                        finish(Status.DIVERGED))
            guard.step_done(step)
            if step % save_every == 0 or step == n_steps:
                risk = record(step * eta)
                if not math.isfinite(risk) or risk > max_risk:
                    raise FlowDivergedError(f"SGD diverged at t = {step * eta:.6g}: the risk blew up to {risk:.3g}; "
                                            "reduce eta", finish(Status.DIVERGED))
    return finish(guard.status)
