"""Run configurations (TOML or YAML) for the ``meanfield`` command and for sweeps.

A configuration has five tables; every key is checked, and unknown ones are errors::

    name = "student_teacher"          # optional label

    [inputs]                          # law = "gaussian" (d, variance) or "sphere" (d)
    law = "gaussian"
    d = 20

    [target]                          # kind = teacher | linear | cubic | multi_index
    kind = "teacher"
    k = 3                             # teacher: k random unit neurons (seed), output weights `coefficients`
    seed = 0

    [problem]                         # optional: activation = "relu" | "leaky_relu", slope
    activation = "relu"

    [init]                            # kind = sign_sphere | gaussian | paired
    kind = "sign_sphere"
    m = 512
    seed = 1

    [run]                             # kind = "flow" (default), "sgd" (eta, batch_size, mode, n_data, seed) or "mlp"
    t_max = 100.0
    dt = 0.1
    solver = "heun"
    save_every = 10
    backend = "numba"
    output = "results/runs/student_teacher.h5"   # relative to the working directory

Target options: teacher (k, coefficients = scalar or list, seed, unit_neurons), linear (beta = list or "random",
seed), cubic (z = list or "random", seed, half_energy: ½E f*², default 1), multi_index (d_hidden, g = "norm" for
g = |x_H|, subspace = "first" (the first d_H coordinates) or "random" (seed)).

A run of kind "mlp" (a bias-free MLP on a real data set, :func:`meanfield.mlp.train_mlp`) has no [inputs], [target]
or [init]; its [mlp] table holds the keyword arguments of ``train_mlp`` (width, depth, dataset, init, gain,
optimizer, lr, momentum, batch_size, epochs, seed, save_every, n_test, split_seed) and [run] only kind and output.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from . import init as _init
from .inputs import Gaussian, Sphere
from .problem import Problem
from .targets import CubicTarget, LinearTarget, RadialTarget, TeacherNetwork

__all__ = ["load_config", "build_problem", "build_init", "run_options", "sgd_options", "run_config", "set_key",
           "validate_config"]

_ALLOWED = {
    "": {"name", "inputs", "target", "problem", "init", "run", "sweep", "mlp"},
    "inputs": {"law", "d", "variance"},
    "target": {"kind", "k", "coefficients", "seed", "unit_neurons", "beta", "z", "half_energy", "d_hidden", "g",
               "subspace"},
    "problem": {"activation", "slope"},
    "init": {"kind", "m", "seed", "radius", "a_scale", "a_std", "b_std", "base"},
    "run": {"kind", "t_max", "dt", "solver", "save_every", "save_particles", "backend", "output", "rtol", "atol",
            "stop_risk", "max_risk_factor", "eta", "batch_size", "mode", "n_data", "seed", "dtype", "device"},
    "mlp": {"width", "depth", "dataset", "init", "gain", "optimizer", "lr", "momentum", "batch_size", "epochs", "seed",
            "save_every", "n_test", "split_seed", "max_loss_factor"},
}


def load_config(path) -> dict:
    """Read a TOML (.toml) or YAML (.yaml, .yml) configuration file and check it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such configuration file: {path}")
    text = path.read_text()
    if path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        try:
            cfg = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: invalid TOML: {err}") from None
    elif path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ModuleNotFoundError:
            raise ModuleNotFoundError("YAML configurations need PyYAML: pip install pyyaml") from None
        cfg = yaml.safe_load(text)
    else:
        raise ValueError(f"{path}: configuration files must end in .toml, .yaml or .yml")
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: a configuration must be a table of settings")
    validate_config(cfg, str(path))
    return cfg


def validate_config(cfg: dict, where: str = "configuration") -> None:
    """Reject unknown tables and keys, and missing required ones, naming them."""
    unknown = set(cfg) - _ALLOWED[""]
    if unknown:
        raise ValueError(f"{where}: unknown top-level keys {sorted(unknown)} (allowed: {sorted(_ALLOWED[''])})")
    is_mlp = cfg.get("run", {}).get("kind") == "mlp"
    for table in ("mlp", "run") if is_mlp else ("inputs", "target", "init", "run"):
        if table not in cfg and "sweep" not in cfg:
            raise ValueError(f"{where}: missing table [{table}]")
    for table, allowed in _ALLOWED.items():
        if table and table in cfg:
            bad = set(cfg[table]) - allowed
            if bad:
                raise ValueError(f"{where}: unknown keys {sorted(bad)} in [{table}] (allowed: {sorted(allowed)})")


def set_key(cfg: dict, dotted: str, value) -> dict:
    """A copy of ``cfg`` with ``table.key`` set to ``value`` (used by sweeps)."""
    out = copy.deepcopy(cfg)
    table, _, key = dotted.rpartition(".")
    node = out
    for part in filter(None, table.split(".")):
        node = node.setdefault(part, {})
    node[key] = value
    return out


def _inputs(cfg):
    spec = dict(cfg["inputs"])
    law = spec.pop("law", "gaussian")
    if law == "gaussian":
        return Gaussian(spec["d"], spec.get("variance", 1.0))
    if law == "sphere":
        return Sphere(spec["d"])
    raise ValueError(f"[inputs] law must be 'gaussian' or 'sphere', got {law!r}")


def _vector(value, d, rng, name):
    if isinstance(value, str):
        if value != "random":
            raise ValueError(f"[target] {name} must be a list of {d} numbers or 'random', got {value!r}")
        v = rng.standard_normal(d)
        return v / np.linalg.norm(v)
    v = np.asarray(value, dtype=np.float64)
    if v.shape != (d,):
        raise ValueError(f"[target] {name} has {v.size} entries but the inputs have d = {d}")
    return v


def _target(cfg, inputs):
    spec = cfg["target"]
    kind = spec.get("kind")
    d = inputs.d
    rng = np.random.default_rng(spec.get("seed", 0))
    if kind == "teacher":
        k = int(spec.get("k", 1))
        U = rng.standard_normal((k, d))
        if spec.get("unit_neurons", True):
            U /= np.linalg.norm(U, axis=1, keepdims=True)
        c = np.broadcast_to(np.asarray(spec.get("coefficients", 1.0), dtype=np.float64), (k,))
        return TeacherNetwork(c.copy(), U)
    if kind == "linear":
        return LinearTarget(_vector(spec.get("beta", "random"), d, rng, "beta"))
    if kind == "cubic":
        return CubicTarget.normalized(_vector(spec.get("z", "random"), d, rng, "z"), inputs,
                                      spec.get("half_energy", 1.0))
    if kind == "multi_index":
        d_h = int(spec["d_hidden"])
        if spec.get("g", "norm") != "norm":
            raise ValueError("[target] multi_index supports g = 'norm' (g(x_H) = |x_H|) in configuration files")
        if spec.get("subspace", "first") == "first":
            Q = np.eye(d)[:, :d_h]
        else:
            Q, _ = np.linalg.qr(rng.standard_normal((d, d_h)))
        return RadialTarget.norm(Q)
    raise ValueError(f"[target] kind must be teacher, linear, cubic or multi_index, got {kind!r}")


def build_problem(cfg: dict) -> Problem:
    """The :class:`~meanfield.Problem` a configuration describes."""
    inputs = _inputs(cfg)
    prob = cfg.get("problem", {})
    return Problem(_target(cfg, inputs), inputs, prob.get("activation", "relu"), prob.get("slope", 0.01))


def build_init(cfg: dict):
    """The initial :class:`~meanfield.ParticleMeasure` a configuration describes."""
    spec = dict(cfg["init"])
    kind = spec.pop("kind", "sign_sphere")
    m, seed = spec.pop("m"), spec.pop("seed", 0)
    draw = {"sign_sphere": _init.sign_sphere, "gaussian": _init.gaussian, "paired": _init.paired}.get(kind)
    if draw is None:
        raise ValueError(f"[init] kind must be sign_sphere, gaussian or paired, got {kind!r}")
    return draw(m, cfg["inputs"]["d"], seed, **spec)


_SGD_KEYS = ("t_max", "eta", "batch_size", "mode", "n_data", "seed", "save_every", "dtype", "device", "max_risk_factor")


def sgd_options(cfg: dict) -> dict:
    """Keyword arguments of :func:`meanfield.sgd.train` from a [run] table with kind = "sgd"."""
    run = dict(cfg["run"])
    bad = set(run) - set(_SGD_KEYS) - {"kind", "output", "backend"}
    if bad:
        raise ValueError(f"[run] keys {sorted(bad)} do not apply to kind = 'sgd' (allowed: {sorted(_SGD_KEYS)})")
    for key in ("t_max", "eta"):
        if key not in run:
            raise ValueError(f"[run] with kind = 'sgd' needs {key}")
    out = {k: run[k] for k in _SGD_KEYS if k in run}
    out["risk_backend"] = run.get("backend", "numpy")
    return out


def run_options(cfg: dict) -> dict:
    """Keyword arguments of :func:`meanfield.simulate` from the [run] table (without the output path)."""
    from .driver import SaveAt

    run = dict(cfg["run"])
    if run.pop("kind", "flow") != "flow":
        raise ValueError("run_options describes flows; use sgd_options for [run] kind = 'sgd'")
    run.pop("output", None)
    for key in ("t_max", "dt"):
        if key not in run:
            raise ValueError(f"[run] needs {key}")
    save = SaveAt(run.pop("save_every", 10), run.pop("save_particles", True))
    return dict(run, save_every=save)


def run_config(cfg: dict, output=None, overwrite: bool = False, resume: bool = False, progress: bool = False,
               backend: str | None = None):
    """Run the simulation a configuration describes, streaming it to its output file."""
    from .driver import simulate

    output = output or cfg["run"].get("output")
    if not output:
        raise ValueError("[run] needs output (the HDF5 file to write), or pass an output path")
    kind = cfg["run"].get("kind", "flow")
    if kind == "mlp":
        from .mlp import train_mlp

        bad = set(cfg["run"]) - {"kind", "output"}
        if bad:
            raise ValueError(f"[run] keys {sorted(bad)} do not apply to kind = 'mlp' (put training settings in [mlp])")
        if "width" not in cfg.get("mlp", {}):
            raise ValueError("[mlp] needs width")
        return train_mlp(**cfg["mlp"], path=output, overwrite=overwrite, resume=resume, progress=progress,
                         config=json.loads(json.dumps(cfg)))
    if kind == "sgd":
        from .sgd import train

        options = sgd_options(cfg)
        if backend:
            options["risk_backend"] = backend
        return train(build_problem(cfg), build_init(cfg), path=output, overwrite=overwrite, resume=resume,
                     progress=progress, config=json.loads(json.dumps(cfg)), **options)
    if kind != "flow":
        raise ValueError(f"[run] kind must be 'flow', 'sgd' or 'mlp', got {kind!r}")
    options = run_options(cfg)
    if backend:
        options["backend"] = backend
    return simulate(build_problem(cfg), build_init(cfg), path=output, overwrite=overwrite, resume=resume,
                    progress=progress, config=json.loads(json.dumps(cfg)), **options)
