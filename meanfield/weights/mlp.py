r"""Small bias-free ReLU MLPs with square hidden layers, trained on a real data set, stored as weight trajectories.

The network is x ↦ W_L σ(W_{L−1} ⋯ σ(W_0 x)) with W_0 of shape (width, n_in), square hidden matrices W_1, …,
W_{L−1} of shape (width, width) and the read-out W_L of shape (n_out, width); no biases (as in Tsuchida et al. and
Hirst & Ramgoolam). Ensembles over seeds of such runs are what the weight-statistics analyses of
:mod:`meanfield.weights.analysis` study: the square matrices with the 13-parameter S_D-invariant model, W_0 and W_L with
the rectangular one.

Training: cross-entropy, mini-batches reshuffled every epoch (permutation derived from (seed, epoch)), plain or
momentum SGD or Adam written out here so that the whole optimiser state is a fixed-size array. A run streams
through the package's one HDF5 writer (kind ``"mlp"``): ``series/time`` = epoch, ``series/risk`` = training loss,
observables ``W0`` … ``W{L}`` (one snapshot per saved epoch), ``train_accuracy``, ``test_accuracy``, ``test_loss``;
the checkpoint holds parameters and optimiser moments, so an interrupted run resumes bit-identically.

Data sets: ``"digits"`` — scikit-learn's 1797 8×8 handwritten digits (ships with scikit-learn, no download),
pixels standardised with the training split's mean and standard deviation.

Example
-------
>>> from meanfield.weights.mlp import train_mlp
>>> traj = train_mlp(width=8, depth=2, epochs=2, seed=0)
>>> traj.observables["W1"].shape
(3, 8, 8)
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from .._validation import check_positive, check_positive_int
from ..io import array_checksum
from ..runguard import FlowDivergedError, RunGuard
from ..status import Status
from ..trajectory import MemoryRecorder, Trajectory

__all__ = ["load_dataset", "BiasFreeMLP", "train_mlp", "DATASETS", "INITS", "OPTIMIZERS"]

DATASETS = ("digits",)
INITS = ("gaussian", "uniform")
OPTIMIZERS = ("sgd", "adam")


def load_dataset(name: str = "digits", n_test: int = 297, split_seed: int = 0):
    """(x_train, y_train, x_test, y_test) as float64 / int64 numpy arrays; features standardised on the train split.

    The split is a seeded permutation, the same for every training seed unless ``split_seed`` changes.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; available: {DATASETS}")
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the digits data set ships with scikit-learn: pip install scikit-learn") from None
    x, y = load_digits(return_X_y=True)
    n_test = check_positive_int(n_test, "n_test")
    if n_test >= len(x):
        raise ValueError(f"n_test = {n_test} leaves no training data (the data set has {len(x)} samples)")
    perm = np.random.default_rng(split_seed).permutation(len(x))
    test, train = perm[:n_test], perm[n_test:]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)  # constant (always blank) pixels stay 0
    x = (x - mean) / std
    return x[train], y[train].astype(np.int64), x[test], y[test].astype(np.int64)


class BiasFreeMLP(torch.nn.Module):
    """x ↦ W_L σ(W_{L−1} ⋯ σ(W_0 x)) with ``depth`` hidden layers of equal ``width`` (so depth − 1 square matrices).

    ``init``: "gaussian" (W_ij ~ N(0, gain²/fan_in)) or "uniform" (U[±gain √(3/fan_in)], the same variance); the
    default gain √2 is He's. The read-out layer uses gain 1.
    """

    def __init__(self, n_in: int, width: int, depth: int, n_out: int, init: str = "gaussian",
                 gain: float = math.sqrt(2.0), generator: torch.Generator | None = None):
        super().__init__()
        n_in, width = check_positive_int(n_in, "n_in"), check_positive_int(width, "width")
        depth, n_out = check_positive_int(depth, "depth"), check_positive_int(n_out, "n_out")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        gain = check_positive(gain, "gain")
        shapes = [(width, n_in)] + [(width, width)] * (depth - 1) + [(n_out, width)]
        self.layers = torch.nn.ParameterList()
        for i, (rows, cols) in enumerate(shapes):
            g = gain if i < len(shapes) - 1 else 1.0
            if init == "gaussian":
                w = torch.randn(rows, cols, generator=generator, dtype=torch.float64) * (g / math.sqrt(cols))
            else:
                u = torch.rand(rows, cols, generator=generator, dtype=torch.float64)
                w = (2 * u - 1) * (g * math.sqrt(3 / cols))
            self.layers.append(torch.nn.Parameter(w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.layers[:-1]:
            x = torch.relu(x @ w.T)
        return x @ self.layers[-1].T

    def matrices(self) -> dict:
        return {f"W{i}": w.detach().cpu().numpy().copy() for i, w in enumerate(self.layers)}


class _Optimizer:
    """SGD (with optional momentum) or Adam, with a fixed-size state: [params, first moments, second moments]."""

    def __init__(self, kind: str, params, lr: float, momentum: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8):
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {kind!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.kind, self.params, self.lr, self.momentum = kind, list(params), lr, momentum
        self.betas, self.eps, self.steps = betas, eps, 0
        self.m1 = [torch.zeros_like(p) for p in self.params]
        self.m2 = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        self.steps += 1
        for p, m1, m2 in zip(self.params, self.m1, self.m2):
            g = p.grad
            if self.kind == "sgd":
                if self.momentum:
                    m1.mul_(self.momentum).add_(g)
                    g = m1
                p.sub_(self.lr * g)
            else:
                b1, b2 = self.betas
                m1.mul_(b1).add_(g, alpha=1 - b1)
                m2.mul_(b2).addcmul_(g, g, value=1 - b2)
                step_size = self.lr / (1 - b1**self.steps)
                p.addcdiv_(m1, (m2 / (1 - b2**self.steps)).sqrt_().add_(self.eps), value=-step_size)

    def state(self) -> np.ndarray:
        return torch.cat([t.reshape(-1) for t in self.params + self.m1 + self.m2]).detach().cpu().numpy()

    @torch.no_grad()
    def load(self, flat: np.ndarray, steps: int):
        flat = torch.as_tensor(flat)
        pos = 0
        for t in self.params + self.m1 + self.m2:
            t.copy_(flat[pos:pos + t.numel()].reshape(t.shape))
            pos += t.numel()
        self.steps = steps


def train_mlp(width: int, depth: int = 2, dataset: str = "digits", init: str = "gaussian",
              gain: float = math.sqrt(2.0), optimizer: str = "sgd", lr: float = 0.05, momentum: float = 0.0,
              batch_size: int = 32, epochs: int = 30, seed: int = 0, save_every: int = 1, n_test: int = 297,
              split_seed: int = 0, max_loss_factor: float = 100.0, path=None, overwrite: bool = False,
              resume: bool = False, config: dict | None = None, progress: bool = False) -> Trajectory:
    """Train one bias-free MLP and record its weight matrices every ``save_every`` epochs (epoch 0 included).

    Parameters
    ----------
    width, depth : int
        Hidden width and number of hidden layers (depth − 1 square width×width matrices).
    init, gain : initial law (see :class:`BiasFreeMLP`).
    optimizer, lr, momentum : "sgd" (optionally with momentum) or "adam".
    seed : int
        Seeds the initial weights and the mini-batch order; a run is reproducible from it.
    max_loss_factor : float
        A batch loss above this multiple of the initial training loss (or a non-finite one) stops the run with
        :class:`~meanfield.FlowDivergedError` (the file keeps the epochs saved so far, status "diverged").
    path, overwrite, resume, config
        HDF5 output through the package's writer (kind "mlp"), as for :func:`meanfield.simulate`.

    Returns
    -------
    Trajectory
        ``times`` (epochs), ``risk`` (training cross-entropy), ``observables`` (``W0`` … and accuracies).
    """
    width, depth = check_positive_int(width, "width"), check_positive_int(depth, "depth")
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size")
    save_every, lr = check_positive_int(save_every, "save_every"), check_positive(lr, "lr")
    x_tr, y_tr, x_te, y_te = load_dataset(dataset, n_test, split_seed)
    if batch_size > len(x_tr):
        raise ValueError(f"batch_size {batch_size} exceeds the training set size {len(x_tr)}")
    n_out = int(y_tr.max()) + 1
    net = BiasFreeMLP(x_tr.shape[1], width, depth, n_out, init, gain, torch.Generator().manual_seed(int(seed)))
    opt = _Optimizer(optimizer, net.parameters(), lr, momentum)
    run_config = {"kind": "mlp", "dataset": dataset, "width": width, "depth": depth, "init": init, "gain": gain,
                  "optimizer": optimizer, "lr": lr, "momentum": momentum, "batch_size": batch_size, "epochs": epochs,
                  "seed": int(seed), "save_every": save_every, "n_test": n_test, "split_seed": split_seed,
                  "data_sha1": array_checksum(np.concatenate([x_tr.ravel(), y_tr, x_te.ravel(), y_te])),
                  "user": config or {}}
    spec = {"dataset": dataset, "n_in": int(x_tr.shape[1]), "n_out": n_out, "n_train": len(x_tr),
            "n_test": len(x_te), "architecture": [list(w.shape) for w in net.layers], "activation": "relu",
            "bias": False}
    xt, yt = torch.as_tensor(x_tr), torch.as_tensor(y_tr)
    xe, ye = torch.as_tensor(x_te), torch.as_tensor(y_te)

    recorder, start = _recorder(path, run_config, spec, (1, opt.state().size), overwrite, resume)
    epoch = 0
    if start is not None:
        opt.load(start["state"][0], int(start["n_evaluations"]))
        epoch = start["step"]
    wall0 = start["wall_time"] if start is not None else 0.0
    clock = time.perf_counter()
    info = {"optimizer": optimizer, "lr": lr, "epochs": epochs}
    initial = {"loss": float(start["max_risk"])} if start is not None else {}

    def record():
        with torch.no_grad():
            out_tr, out_te = net(xt), net(xe)
            loss = float(torch.nn.functional.cross_entropy(out_tr, yt))
            obs = dict(net.matrices(), train_accuracy=float((out_tr.argmax(1) == yt).double().mean()),
                       test_accuracy=float((out_te.argmax(1) == ye).double().mean()),
                       test_loss=float(torch.nn.functional.cross_entropy(out_te, ye)))
        recorder.append(float(epoch), loss, None, obs, particles=False)
        initial.setdefault("loss", loss)  # the initial loss, kept in the checkpoint for the divergence test
        meta = {"t": float(epoch), "step": epoch, "n_evaluations": opt.steps, "max_risk": initial["loss"],
                "wall_time": wall0 + time.perf_counter() - clock}
        recorder.checkpoint(opt.state()[None, :], meta)
        return loss

    def finish(status):
        info.update(epochs_done=epoch, wall_time=wall0 + time.perf_counter() - clock)
        return recorder.trajectory(None, status=status, info=info)

    if start is None:
        record()
    max_loss = max_loss_factor * initial["loss"]
    steps_per_epoch = len(x_tr) // batch_size
    bar = tqdm(total=epochs, initial=epoch, disable=not progress, desc=f"mlp[w={width}, seed={seed}]")
    with RunGuard(recorder, info, bar, lambda: f"training in epoch {epoch}",
                  "train_mlp(..., resume=True)") as guard:
        for epoch in range(epoch + 1, epochs + 1):  # noqa: B020 - record() reads `epoch`
            perm = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch))
            for k in range(steps_per_epoch):
                idx = perm[k * batch_size:(k + 1) * batch_size]
                net.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                value = float(loss.detach())
                if not math.isfinite(value) or value > max_loss:
                    raise FlowDivergedError(f"training diverged in epoch {epoch}: the batch loss reached "
                                            f"{value:.3g} (> {max_loss:.3g}); reduce lr", finish(Status.DIVERGED))
            guard.step_done(epoch)
            if epoch % save_every == 0 or epoch == epochs:
                record()
    return finish(guard.status)


def _recorder(path, run_config, spec, state_shape, overwrite, resume):
    from pathlib import Path

    from ..io import FileRecorder, TrajectoryWriter

    if path is None:
        if resume:
            raise ValueError("resume=True needs the path of the run to continue")
        recorder = MemoryRecorder(np.ones(1), kind="mlp")
        recorder.spec = spec
        return recorder, None
    if resume and Path(path).exists():
        keys = [k for k in run_config if k not in ("epochs", "user")]
        writer, start = TrajectoryWriter.resume(path, run_config, compare_keys=keys)
    else:
        writer, start = TrajectoryWriter(path, "mlp", run_config, spec, {}, np.ones(1), seed=run_config["seed"],
                                         overwrite=overwrite), None
    return FileRecorder(writer, np.ones(1), state_shape=state_shape), start
