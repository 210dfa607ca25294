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

    [problem]                         # optional: activation = "relu" | "leaky_relu" (slope) | "abs" | "relu2" | "relu3"
                                      #   | "erf" | "gelu" | "tanh" | "silu" | "softplus" (Hermite); bias = true for
    activation = "relu"               #   neurons σ(⟨b, x⟩ + c) (Gaussian inputs; the init then needs bias_std)

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

Target options: teacher (k, coefficients = scalar or list, seed, unit_neurons, activation: the teacher's unit, "relu"
by default; the student's [problem] activation must be the same or of the ReLU family for a ReLU teacher; bias = scalar
or list: the teacher's biases), linear
(beta = list or "random", seed), cubic (z = list or "random", seed, half_energy: ½E f*², default 1), multi_index
(d_hidden, g = "norm" for g = |x_H|, subspace = "first" (the first d_H coordinates) or "random" (seed)).

A run of kind "mlp" (a bias-free MLP on a real data set, :func:`meanfield.weights.mlp.train_mlp`) has no [inputs],
[target] or [init]; its [mlp] table holds the keyword arguments of ``train_mlp`` (width, depth, dataset, init, gain,
optimizer, lr, momentum, weight_decay, batch_size, epochs, seed, save_every, n_test, split_seed) and [run] only kind
and output.
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

__all__ = ["ConfigError", "load_config", "validate_config", "build_problem", "build_init", "run_config"]

class ConfigError(ValueError):
    """A configuration problem; its message names the file, the table and the key.

    Examples
    --------
    >>> from meanfield.config import ConfigError, validate_config
    >>> try:
    ...     validate_config({"inputs": {"law": "gaussian", "d": 3}, "targett": {}})
    ... except ConfigError as err:
    ...     print(str(err).split(" (")[0])
    configuration: unknown top-level keys ['targett']
    """


# The type of every key of every table. "number" accepts integers and floats (not strings, not booleans); "vector"
# is a list of numbers; a tuple accepts any of its types.
_INT, _NUM, _STR, _BOOL, _VEC = "integer", "number", "string", "boolean", "list of numbers"
_SCHEMA: dict[str, dict[str, object]] = {
    "inputs": {"law": _STR, "d": _INT, "variance": _NUM},
    "target": {"kind": _STR, "k": _INT, "coefficients": (_NUM, _VEC), "seed": _INT, "unit_neurons": _BOOL,
               "beta": (_VEC, _STR), "z": (_VEC, _STR), "half_energy": _NUM, "d_hidden": _INT, "g": _STR,
               "subspace": _STR, "activation": _STR, "bias": (_NUM, _VEC)},
    "problem": {"activation": _STR, "slope": _NUM, "bias": _BOOL},
    "init": {"kind": _STR, "m": _INT, "seed": _INT, "radius": _NUM, "a_scale": _NUM, "a_std": _NUM, "b_std": _NUM,
             "base": _STR, "bias_std": _NUM},
}
_TABLES = {"name", "inputs", "target", "problem", "init", "run", "sweep", "mlp"}
#: Arguments of the run functions that are not settings of a configuration file.
_NOT_SETTINGS = {"problem", "mu0", "observables", "backend_options", "path", "overwrite", "resume", "config",
                 "progress", "alignment"}


def _kind_of(param) -> str:
    """The schema type of a run function's argument, from its annotation (or its default)."""
    text = param.annotation if isinstance(param.annotation, str) else getattr(param.annotation, "__name__", "")
    if not text or text == "_empty":
        text = type(param.default).__name__
    for name, kind in (("bool", _BOOL), ("float", _NUM), ("int", _INT), ("str", _STR)):
        if name in text:
            return kind
    return _STR


def _signature_keys(fn, rename=None) -> dict:
    """{key: type} of the settings a run function takes (its keyword arguments, less :data:`_NOT_SETTINGS`)."""
    import inspect

    rename = rename or {}
    return {rename.get(name, name): _kind_of(param) for name, param in inspect.signature(fn).parameters.items()
            if name not in _NOT_SETTINGS}


def _run_schema(kind: str) -> dict:
    """The keys of [run] for a kind of run, derived from the signature of the function that runs it."""
    common = {"kind": _STR, "output": _STR}
    if kind == "flow":
        from .flow import simulate

        return dict(_signature_keys(simulate), save_particles=_BOOL, **common)
    if kind == "sgd":
        from .sgd import train

        return dict(_signature_keys(train, rename={"risk_backend": "backend"}), **common)
    return common


def _table_schema(table: str, kind: str) -> dict:
    """The keys a table may hold. [run] takes the keys of every kind of run here (a sweep may vary a key of another
    kind); whether they apply to this run's kind is checked when it runs (:func:`run_options`, :func:`sgd_options`)."""
    if table == "run":
        return {**_run_schema("sgd"), **_run_schema("flow")} if kind != "mlp" else _run_schema("mlp")
    if table == "mlp":
        from .weights.mlp import train_mlp

        return _signature_keys(train_mlp)
    return _SCHEMA[table]


#: Keys without a default, by table; [run] depends on its kind.
_REQUIRED = {"inputs": ("d",), "init": ("m",), "mlp": ("width",)}
_REQUIRED_RUN = {"flow": ("t_max", "dt"), "sgd": ("t_max", "eta"), "mlp": ()}


#: Keys with a fixed set of values.
_CHOICES = {
    ("inputs", "law"): ("gaussian", "sphere"),
    ("target", "kind"): ("teacher", "linear", "cubic", "multi_index"),
    ("problem", "activation"): ("relu", "leaky_relu", "abs", "relu2", "relu3", "erf", "gelu", "tanh", "silu",
                                "softplus"),
    ("target", "activation"): ("relu", "abs", "relu2", "relu3", "erf", "gelu", "tanh", "silu", "softplus"),
    ("init", "kind"): ("sign_sphere", "gaussian", "paired"),
    ("init", "base"): ("sign_sphere", "gaussian"),
    ("run", "solver"): ("euler", "heun", "rk4", "bosh3", "dopri5"),
    ("run", "backend"): ("auto", "numpy", "numba", "torch"),
    ("run", "mode"): ("online", "minibatch", "full"),
    ("run", "dtype"): ("float64", "float32"),
    ("mlp", "dataset"): ("digits",),
    ("mlp", "init"): ("gaussian", "uniform"),
    ("mlp", "optimizer"): ("sgd", "adam"),
}
#: Keys that must be > 0.
_POSITIVE = {("inputs", "d"), ("inputs", "variance"), ("target", "k"), ("target", "d_hidden"), ("init", "m"),
             ("init", "radius"), ("init", "a_scale"), ("init", "a_std"), ("init", "b_std"), ("run", "t_max"),
             ("run", "dt"), ("run", "save_every"), ("run", "rtol"), ("run", "atol"), ("run", "max_risk_factor"),
             ("run", "eta"), ("run", "batch_size"), ("run", "n_data"), ("mlp", "width"), ("mlp", "depth"),
             ("mlp", "lr"), ("mlp", "batch_size"), ("mlp", "epochs"), ("mlp", "save_every"), ("mlp", "n_test")}
#: Keys that must be >= 0 (seeds).
_NONNEGATIVE = {("target", "seed"), ("init", "seed"), ("run", "seed"), ("mlp", "seed"), ("mlp", "split_seed")}


def _is(value, kind) -> bool:
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == _STR:
        return isinstance(value, str)
    if kind == _BOOL:
        return isinstance(value, bool)
    return isinstance(value, list) and all(_is(v, _NUM) for v in value)


def _check_types(cfg: dict, where: str, kind: str) -> None:
    for table in ("inputs", "target", "problem", "init", "run", "mlp"):
        if table not in cfg:
            continue
        if not isinstance(cfg[table], dict):
            raise ConfigError(f"{where}: [{table}] must be a table of settings, got {cfg[table]!r}")
        keys = _table_schema(table, kind)
        bad = set(cfg[table]) - set(keys)
        if bad and table == "run":
            raise ConfigError(f"{where}: [run] keys {sorted(bad)} do not apply to kind = {kind!r} (put training "
                              "settings of an MLP in [mlp])" if kind == "mlp" else
                              f"{where}: unknown keys {sorted(bad)} in [run] (allowed: {sorted(keys)})")
        if bad:
            raise ConfigError(f"{where}: unknown keys {sorted(bad)} in [{table}] (allowed: {sorted(keys)})")
        for key, value in cfg[table].items():
            kinds = keys[key] if isinstance(keys[key], tuple) else (keys[key],)
            if not any(_is(value, k) for k in kinds):
                article = "an" if kinds[0][0] in "aeiou" else "a"
                raise ConfigError(f"{where}: [{table}] {key} must be {article} {' or '.join(kinds)}, got {value!r}")
            choices = _CHOICES.get((table, key))
            if choices is not None and value not in choices:
                raise ConfigError(f"{where}: [{table}] {key} must be one of {', '.join(map(repr, choices))}, "
                                  f"got {value!r}")
            if (table, key) in _POSITIVE and not value > 0:
                raise ConfigError(f"{where}: [{table}] {key} must be > 0, got {value!r}")
            if (table, key) in _NONNEGATIVE and not value >= 0:
                raise ConfigError(f"{where}: [{table}] {key} must be >= 0, got {value!r}")


def load_config(path) -> dict:
    """Read a TOML (.toml) or YAML (.yaml, .yml) configuration file and check it.

    Examples
    --------
    >>> from meanfield.config import load_config
    >>> cfg = load_config("experiments/student_teacher.toml")
    >>> cfg["inputs"], cfg["init"]["m"]
    ({'law': 'gaussian', 'd': 20}, 512)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such configuration file: {path}")
    if not path.is_file():
        raise ConfigError(f"{path} is {'a directory' if path.is_dir() else 'not a regular file'}, not a configuration "
                          "file: give the path of a .toml or .yaml file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read as a configuration file ({err})") from None
    if path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        try:
            cfg = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: invalid TOML: {err}") from None
    elif path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ModuleNotFoundError:
            raise ModuleNotFoundError("YAML configurations need PyYAML: pip install pyyaml") from None
        try:
            cfg = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: invalid YAML: {' '.join(str(err).split())}") from None
    else:
        raise ConfigError(f"{path}: configuration files must end in .toml, .yaml or .yml")
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a configuration must be a table of settings")
    validate_config(cfg, str(path))
    return cfg


def validate_config(cfg: dict, where: str = "configuration") -> None:
    """Reject unknown tables and keys, values of the wrong type and missing required keys, naming them.

    Raises
    ------
    ConfigError
        One line: where, the table, the key and what to change.

    Examples
    --------
    >>> from meanfield.config import ConfigError, validate_config
    >>> try:
    ...     validate_config({"inputs": {"law": "gaussian", "d": "ten"}})
    ... except ConfigError as err:
    ...     print(err)
    configuration: [inputs] d must be an integer, got 'ten'
    """
    unknown = set(cfg) - _TABLES
    if unknown:
        raise ConfigError(f"{where}: unknown top-level keys {sorted(unknown)} (allowed: {sorted(_TABLES)})")
    kind = cfg.get("run", {}).get("kind", "flow") if isinstance(cfg.get("run", {}), dict) else "flow"
    if kind not in _REQUIRED_RUN:
        raise ConfigError(f"{where}: [run] kind must be 'flow', 'sgd' or 'mlp', got {kind!r}")
    _check_types(cfg, where, kind)
    if "sweep" in cfg:  # a sweep's base configuration may leave keys to its grid; each run is checked in full
        return
    tables = ("mlp", "run") if kind == "mlp" else ("inputs", "target", "init", "run")
    for table in tables:
        if table not in cfg:
            raise ConfigError(f"{where}: missing table [{table}]")
    for table in tables:
        required = _REQUIRED_RUN[kind] if table == "run" else _REQUIRED.get(table, ())
        for key in required:
            if key not in cfg[table]:
                raise ConfigError(f"{where}: [{table}] needs {key}" + (f" (for [run] kind = {kind!r})"
                                                                       if table == "run" else ""))


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
    raise ConfigError(f"[inputs] law must be 'gaussian' or 'sphere', got {law!r}")


def _vector(value, d, rng, name):
    if isinstance(value, str):
        if value != "random":
            raise ConfigError(f"[target] {name} must be a list of {d} numbers or 'random', got {value!r}")
        v = rng.standard_normal(d)
        return v / np.linalg.norm(v)
    v = np.asarray(value, dtype=np.float64)
    if v.shape != (d,):
        raise ConfigError(f"[target] {name} has {v.size} entries but the inputs have d = {d}")
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
        bias = spec.get("bias")
        if bias is not None:
            bias = np.asarray(bias, dtype=np.float64)
            if bias.ndim and bias.shape != (k,):
                raise ConfigError(f"[target] bias has {bias.size} entries but the teacher has k = {k} neurons")
            bias = np.broadcast_to(bias, (k,)).copy()
        return TeacherNetwork(c.copy(), U, activation=spec.get("activation", "relu"), bias=bias)
    if kind == "linear":
        return LinearTarget(_vector(spec.get("beta", "random"), d, rng, "beta"))
    if kind == "cubic":
        return CubicTarget.normalized(_vector(spec.get("z", "random"), d, rng, "z"), inputs,
                                      spec.get("half_energy", 1.0))
    if kind == "multi_index":
        d_h = int(spec["d_hidden"])
        if spec.get("g", "norm") != "norm":
            raise ConfigError("[target] multi_index supports g = 'norm' (g(x_H) = |x_H|) in configuration files")
        if spec.get("subspace", "first") == "first":
            Q = np.eye(d)[:, :d_h]
        else:
            Q, _ = np.linalg.qr(rng.standard_normal((d, d_h)))
        return RadialTarget.norm(Q)
    raise ConfigError(f"[target] kind must be teacher, linear, cubic or multi_index, got {kind!r}")


def _in_table(table: str, build, *args):
    """``build(*args)``, with any argument error re-raised as a :class:`ConfigError` naming the table."""
    try:
        return build(*args)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"[{table}] {err}") from None


def build_problem(cfg: dict) -> Problem:
    """The :class:`~meanfield.Problem` a configuration describes.

    Examples
    --------
    >>> cfg = {"inputs": {"law": "gaussian", "d": 5}, "target": {"kind": "teacher", "k": 2, "seed": 0},
    ...        "init": {"kind": "sign_sphere", "m": 16, "seed": 1},
    ...        "run": {"t_max": 1.0, "dt": 0.1, "solver": "heun", "backend": "numpy"}}
    >>> from meanfield.config import build_init, build_problem
    >>> problem, mu0 = build_problem(cfg), build_init(cfg)
    >>> problem.d, mu0.m, problem.risk(mu0) > 0
    (5, 16, True)
    """
    inputs = _in_table("inputs", _inputs, cfg)
    target = _in_table("target", _target, cfg, inputs)
    prob = cfg.get("problem", {})
    return _in_table("problem", Problem, target, inputs, prob.get("activation", "relu"), prob.get("slope", 0.01),
                     prob.get("bias", False))


def build_init(cfg: dict):
    """The initial :class:`~meanfield.ParticleMeasure` a configuration describes.

    Examples
    --------
    >>> from meanfield.config import build_init
    >>> build_init({"inputs": {"d": 3}, "init": {"kind": "gaussian", "m": 4, "seed": 0}}).b.shape
    (4, 3)
    """
    return _in_table("init", _build_init, cfg)


def _build_init(cfg: dict):
    spec = dict(cfg["init"])
    kind = spec.pop("kind", "sign_sphere")
    m, seed = spec.pop("m"), spec.pop("seed", 0)
    draw = {"sign_sphere": _init.sign_sphere, "gaussian": _init.gaussian, "paired": _init.paired}.get(kind)
    if draw is None:
        raise ConfigError(f"[init] kind must be sign_sphere, gaussian or paired, got {kind!r}")
    return draw(m, cfg["inputs"]["d"], seed, **spec)


def _run_settings(cfg: dict, kind: str) -> dict:
    """The [run] table of a run of ``kind`` less ``kind`` and ``output``, after checking that every key applies to
    that kind (a configuration is validated against the keys of every kind, since a sweep may vary any) and that the
    required ones are there."""
    run = dict(cfg["run"])
    if run.pop("kind", "flow") != kind:
        raise ConfigError(f"this [run] table describes kind = {cfg['run'].get('kind', 'flow')!r}, not {kind!r}")
    run.pop("output", None)
    keys = _run_schema(kind)
    bad = set(run) - set(keys)
    if bad:
        raise ConfigError(f"[run] keys {sorted(bad)} do not apply to kind = {kind!r} (allowed: {sorted(keys)})")
    for key in _REQUIRED_RUN[kind]:
        if key not in run:
            raise ConfigError(f"[run] needs {key} (for [run] kind = {kind!r})")
    return run


def sgd_options(cfg: dict) -> dict:
    """Keyword arguments of :func:`meanfield.sgd.train` from a [run] table with kind = "sgd"."""
    run = _run_settings(cfg, "sgd")
    run["risk_backend"] = run.pop("backend", "auto")
    return run


def run_options(cfg: dict) -> dict:
    """Keyword arguments of :func:`meanfield.simulate` from the [run] table (without the output path)."""
    from .saving import SaveAt

    run = _run_settings(cfg, "flow")
    save = SaveAt(run.pop("save_every", 10), run.pop("save_particles", True))
    return dict(run, save_every=save)


def run_config(cfg: dict, output=None, overwrite: bool = False, resume: bool = False, progress: bool = False,
               backend: str | None = None):
    """Run the simulation a configuration describes, streaming it to its output file.

    Examples
    --------
    >>> cfg = {"inputs": {"law": "gaussian", "d": 5}, "target": {"kind": "teacher", "k": 2, "seed": 0},
    ...        "init": {"kind": "sign_sphere", "m": 16, "seed": 1},
    ...        "run": {"t_max": 1.0, "dt": 0.1, "solver": "heun", "backend": "numpy"}}
    >>> import tempfile, pathlib
    >>> from meanfield.config import run_config
    >>> traj = run_config(cfg, output=pathlib.Path(tempfile.mkdtemp()) / "run.h5")
    >>> traj.status, float(traj.times[-1])
    ('completed', 1.0)
    >>> traj.close()
    """
    from .flow import simulate

    validate_config(cfg)
    output = output or cfg["run"].get("output")
    if not output:
        raise ConfigError("[run] needs output (the HDF5 file to write), or pass an output path")
    kind = cfg["run"].get("kind", "flow")
    if kind == "mlp":  # validate_config checked [run] (kind and output only) and [mlp]
        from .weights.mlp import train_mlp

        return train_mlp(**cfg["mlp"], path=output, overwrite=overwrite, resume=resume, progress=progress,
                         config=json.loads(json.dumps(cfg)))
    if kind == "sgd":
        from .sgd import train

        options = sgd_options(cfg)
        if backend:
            options["risk_backend"] = backend
        return train(build_problem(cfg), build_init(cfg), path=output, overwrite=overwrite, resume=resume,
                     progress=progress, config=json.loads(json.dumps(cfg)), **options)
    options = run_options(cfg)
    if backend:
        options["backend"] = backend
    return simulate(build_problem(cfg), build_init(cfg), path=output, overwrite=overwrite, resume=resume,
                    progress=progress, config=json.loads(json.dumps(cfg)), **options)

