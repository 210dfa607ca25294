r"""Small bias-free ReLU MLPs with square hidden layers, trained on a real data set, stored as weight trajectories.

The network is x ↦ W_L σ(W_{L−1}⋯σ(W_0x)) with W_0 of shape (width, n_in), square hidden matrices W_1, …,
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

import numpy as np
import torch

from .._defaults import call_defaults
from .._validation import check_positive, check_positive_int, check_seed
from ..controllers import ConstantStep, Diverged
from ..io import array_checksum, recorder_for
from ..loop import Snapshot, run_loop
from ..saving import SaveAt
from ..trajectory import Trajectory

__all__ = ["load_dataset", "BiasFreeMLP", "Optimizer", "MLPEpoch", "train_mlp", "DATASETS", "INITS", "OPTIMIZERS"]

#: The data sets ``train_mlp(dataset=...)`` trains on.
DATASETS = ("digits",)
#: The initial laws of the weights (:class:`BiasFreeMLP`).
INITS = ("gaussian", "uniform")
#: The optimisers of :func:`train_mlp`.
OPTIMIZERS = ("sgd", "adam")


def load_dataset(name: str = "digits", n_test: int = 297, split_seed: int = 0):
    """(x_train, y_train, x_test, y_test) as float64 / int64 numpy arrays; features standardised on the train split.

    The split is a seeded permutation, the same for every training seed unless ``split_seed`` changes.

    Examples
    --------
    >>> from meanfield.weights.mlp import load_dataset
    >>> x_train, y_train, x_test, y_test = load_dataset("digits")
    >>> x_train.shape, x_test.shape, int(y_train.max()) + 1
    ((1500, 64), (297, 64), 10)
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
    """x ↦ W_L σ(W_{L−1}⋯σ(W_0x)) with ``depth`` hidden layers of equal ``width`` (so depth − 1 square matrices).

    ``init``: "gaussian" (W_ij ~ N(0, gain²/fan_in)) or "uniform" (U[±gain √(3/fan_in)], the same variance); the
    default gain √2 is He's. The read-out layer uses gain 1.

    Examples
    --------
    >>> import torch
    >>> from meanfield.weights.mlp import BiasFreeMLP
    >>> net = BiasFreeMLP(n_in=64, width=32, depth=3, n_out=10, generator=torch.Generator().manual_seed(0))
    >>> [tuple(w.shape) for w in net.layers]
    [(32, 64), (32, 32), (32, 32), (10, 32)]
    >>> tuple(net(torch.zeros(5, 64, dtype=torch.float64)).shape)
    (5, 10)
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

    @property
    def names(self) -> list[str]:
        """The matrices' names, W0 (input) … WL (read-out)."""
        return [f"W{i}" for i in range(len(self.layers))]

    def matrices(self) -> dict:
        return {name: w.detach().cpu().numpy().copy() for name, w in zip(self.names, self.layers)}


class Optimizer:
    """SGD (with optional momentum) or Adam, written out so that its whole state (parameters, first and second
    moments, step count) is named arrays that a checkpoint stores.

    Examples
    --------
    One Adam step moves each parameter by about lr against the sign of its gradient:

    >>> import torch
    >>> from meanfield.weights.mlp import Optimizer
    >>> w = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    >>> opt = Optimizer("adam", [w], lr=0.1)
    >>> (w ** 2).sum().backward()
    >>> opt.step()
    >>> [round(v, 6) for v in w.detach().tolist()]
    [0.9, -0.9]
    """

    def __init__(self, kind: str, params, lr: float, momentum: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {kind!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.kind, self.params, self.lr, self.momentum = kind, list(params), lr, momentum
        self.weight_decay = float(weight_decay)
        self.betas, self.eps, self.steps = betas, eps, 0
        self.m1 = [torch.zeros_like(p) for p in self.params]
        self.m2 = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        self.steps += 1
        for p, m1, m2 in zip(self.params, self.m1, self.m2):
            g = p.grad
            if self.weight_decay:  # L2 regularisation (λ/2)|W|², as torch.optim's weight_decay
                g = g.add(p, alpha=self.weight_decay)
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

    def _named(self, names) -> dict:
        return {f"{name}{suffix}": tensor for suffix, tensors in (("", self.params), (".m1", self.m1), (".m2", self.m2))
                for name, tensor in zip(names, tensors)}

    def arrays(self, names) -> dict:
        """Parameters ``name``, moments ``name.m1``, ``name.m2`` (numpy copies) and ``optimizer_steps``."""
        out = {key: t.detach().cpu().numpy().copy() for key, t in self._named(names).items()}
        return dict(out, optimizer_steps=self.steps)

    @torch.no_grad()
    def load(self, arrays: dict, names) -> None:
        """Restore what :meth:`arrays` returned."""
        for key, tensor in self._named(names).items():
            tensor.copy_(torch.as_tensor(arrays[key]))
        self.steps = int(arrays["optimizer_steps"])


class MLPState:
    """The network and optimiser being trained (changed in place) and the epochs done."""

    def __init__(self, net: BiasFreeMLP, optimizer: Optimizer, epoch: int):
        self.net, self.optimizer, self.epoch = net, optimizer, epoch


class MLPEpoch:
    """The stepping rule of MLP training: one epoch of mini-batches (a permutation seeded by (seed, epoch)) with
    cross-entropy. A batch loss above ``max_loss_factor`` times the initial training loss, or a non-finite one,
    stops the run as diverged.

    Examples
    --------
    The rule :func:`train_mlp` builds, driven by :func:`~meanfield.loop.run_loop`; one epoch by hand:

    >>> import torch
    >>> from meanfield.weights.mlp import BiasFreeMLP, MLPEpoch, Optimizer, load_dataset
    >>> data = load_dataset("digits")
    >>> net = BiasFreeMLP(64, 16, 2, 10, generator=torch.Generator().manual_seed(0))
    >>> rule = MLPEpoch(net, Optimizer("sgd", net.parameters(), lr=0.05), data, batch_size=64, seed=0,
    ...                 max_loss_factor=100.0)
    >>> state = rule.init(None)
    >>> state, _ = rule.step(state, 1.0)
    >>> state.epoch
    1
    """

    kind = "mlp"

    def __init__(self, net: BiasFreeMLP, optimizer: Optimizer, data, batch_size: int, seed: int,
                 max_loss_factor: float):
        self.net, self.optimizer, self.batch_size, self.seed = net, optimizer, batch_size, int(seed)
        self.x_train, self.y_train, self.x_test, self.y_test = (torch.as_tensor(v) for v in data)
        self.max_loss_factor = max_loss_factor
        self.initial_loss = math.nan
        self.label = f"mlp[w={net.layers[0].shape[0]}, seed={seed}]"

    def _losses(self):
        with torch.no_grad():
            out_tr, out_te = self.net(self.x_train), self.net(self.x_test)
            return out_tr, out_te, float(torch.nn.functional.cross_entropy(out_tr, self.y_train))

    def init(self, start) -> MLPState:
        if start is None:
            self.initial_loss = self._losses()[2]
            return MLPState(self.net, self.optimizer, 0)
        self.optimizer.load(start.arrays, self.net.names)
        self.initial_loss = float(start.arrays["initial_loss"])
        return MLPState(self.net, self.optimizer, start.step)

    def step(self, state: MLPState, h: float):
        state.epoch += 1
        n = len(self.x_train)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + state.epoch))
        max_loss = self.max_loss_factor * self.initial_loss
        for k in range(n // self.batch_size):
            idx = perm[k * self.batch_size:(k + 1) * self.batch_size]
            state.net.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(state.net(self.x_train[idx]), self.y_train[idx])
            loss.backward()
            state.optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value) or value > max_loss:
                raise Diverged(f"training diverged in epoch {state.epoch}: the batch loss reached {value:.3g} "
                               f"(> {max_loss:.3g}); reduce lr")
        return state, None

    def accept(self, state: MLPState, clock):
        return state, False

    def observe(self, state: MLPState, clock) -> Snapshot:
        out_tr, out_te, loss = self._losses()
        obs = dict(state.net.matrices(), train_accuracy=float((out_tr.argmax(1) == self.y_train).double().mean()),
                   test_accuracy=float((out_te.argmax(1) == self.y_test).double().mean()),
                   test_loss=float(torch.nn.functional.cross_entropy(out_te, self.y_test)))
        return Snapshot(loss, None, obs)

    def checkpoint(self, state: MLPState, snapshot: Snapshot) -> dict:
        return dict(state.optimizer.arrays(state.net.names), initial_loss=self.initial_loss)

    def where(self, clock) -> str:
        return f"training in epoch {clock.step + 1}"

    def info(self, state: MLPState) -> dict:
        return {"epochs_done": state.epoch}


def train_mlp(width: int, depth: int = 2, dataset: str = "digits", init: str = "gaussian",
              gain: float = math.sqrt(2.0), optimizer: str = "sgd", lr: float = 0.05, momentum: float = 0.0,
              weight_decay: float = 0.0, batch_size: int = 32, epochs: int = 30, seed: int = 0, save_every: int = 1,
              n_test: int = 297, split_seed: int = 0, max_loss_factor: float = 100.0, path=None,
              overwrite: bool = False, resume: bool = False, config: dict | None = None,
              progress: bool = False) -> Trajectory:
    """Train one bias-free MLP and record its weight matrices every ``save_every`` epochs (epoch 0 included).

    Parameters
    ----------
    width, depth : int
        Hidden width and number of hidden layers (depth − 1 square width×width matrices).
    dataset : {"digits"}
        The data set (scikit-learn's, see :func:`load_dataset`).
    init : {"gaussian", "uniform"}
        The initial law, with ``gain`` (see :class:`BiasFreeMLP`).
    gain : float
        The initial weights' scale (He's √2 by default).
    optimizer : {"sgd", "adam"}
        "sgd" (with ``momentum``) or "adam", at learning rate ``lr``.
    lr, momentum : float
        The learning rate, and the momentum of "sgd".
    weight_decay : float
        L2 regularisation λ: the loss gains (λ/2) Σ |W|² over every matrix (torch.optim's ``weight_decay``).
    seed : int
        Seeds the initial weights and the mini-batch order; a run is reproducible from it.
    batch_size, epochs : int
        Samples per mini-batch, and epochs of training (the trajectory's ``times`` count epochs).
    save_every : int
        Epochs between saves.
    n_test, split_seed : int
        The held-out split of :func:`load_dataset`: its size and the seed of its permutation.
    progress : bool
        Show a tqdm progress bar.
    max_loss_factor : float
        A batch loss above this multiple of the initial training loss (or a non-finite one) stops the run with
        :class:`~meanfield.FlowDivergedError` (the file keeps the epochs saved so far, status "diverged").
    path, overwrite, resume, config
        HDF5 output through the package's writer (kind "mlp"), as for :func:`meanfield.simulate`.

    Returns
    -------
    Trajectory
        ``times`` (epochs), ``risk`` (training cross-entropy), ``observables`` (``W0`` … and accuracies).

    Examples
    --------
    >>> from meanfield.weights.mlp import train_mlp
    >>> traj = train_mlp(width=8, depth=2, epochs=2, seed=0)
    >>> traj.kind, traj.observables["W1"].shape                 # 3 saves (epochs 0, 1, 2) of the 8 × 8 matrix
    ('mlp', (3, 8, 8))
    """
    width, depth = check_positive_int(width, "width"), check_positive_int(depth, "depth")
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size")
    save_every, lr = check_positive_int(save_every, "save_every"), check_positive(lr, "lr")
    seed, max_loss_factor = check_seed(seed, "seed"), check_positive(max_loss_factor, "max_loss_factor")
    split_seed = check_seed(split_seed, "split_seed")
    x_tr, y_tr, x_te, y_te = load_dataset(dataset, n_test, split_seed)
    if batch_size > len(x_tr):
        raise ValueError(f"batch_size {batch_size} exceeds the training set size {len(x_tr)}")
    n_out = int(y_tr.max()) + 1
    net = BiasFreeMLP(x_tr.shape[1], width, depth, n_out, init, gain, torch.Generator().manual_seed(int(seed)))
    rule = MLPEpoch(net, Optimizer(optimizer, net.parameters(), lr, momentum, weight_decay=weight_decay),
                    (x_tr, y_tr, x_te, y_te), batch_size, seed, max_loss_factor)
    run_config = {"kind": "mlp", "dataset": dataset, "width": width, "depth": depth, "init": init, "gain": gain,
                  "optimizer": optimizer, "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                  "batch_size": batch_size, "epochs": epochs,
                  "seed": seed, "save_every": save_every, "n_test": n_test, "split_seed": split_seed,
                  "max_loss_factor": max_loss_factor,
                  "data_sha1": array_checksum(np.concatenate([x_tr.ravel(), y_tr, x_te.ravel(), y_te])),
                  "user": config or {}}
    spec = {"dataset": dataset, "n_in": int(x_tr.shape[1]), "n_out": n_out, "n_train": len(x_tr),
            "n_test": len(x_te), "architecture": [list(w.shape) for w in net.layers], "activation": "relu",
            "bias": False}
    recorder, start = recorder_for(path, MLPEpoch.kind, run_config, spec, {}, np.ones(1), overwrite=overwrite,
                                   resume=resume, resumable=("epochs", "user"), seed=seed,
                                   defaults=call_defaults(train_mlp), t_end=float(epochs))
    info = {"optimizer": optimizer, "lr": lr, "epochs": epochs}
    return run_loop(rule, ConstantStep(1.0, exact_end=False), SaveAt(save_every), float(epochs), recorder, start,
                    info=info, progress=progress, resume_hint="train_mlp(..., resume=True)")
