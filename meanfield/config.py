"""Run configurations (TOML or YAML) for the ``meanfield`` command and for sweeps.

A configuration describes one run; every key is checked, and unknown ones are errors::

    name = "student_teacher"          # optional label

    [inputs]                          # the input law: law = a name of INPUT_LAWS and its options
    law = "gaussian"
    d = 20

    [target]                          # kind = a name of TARGETS and its options
    kind = "teacher"
    k = 3
    seed = 0

    [problem]                         # optional: the unit, biases, output scale, penalty (and loss, on a data set)
    activation = "relu"               #   a name of UNITS, or a table {kind = "tanh", tol = 1e-8}
    penalty = {kind = "weight_decay", strength = 1e-3}

    [init]                            # kind = a name of INITS and its options (d is the problem's)
    kind = "sign_sphere"
    m = 512
    seed = 1

    [dynamics]                        # optional: kind = a name of DYNAMICS and its parameters
    kind = "conic"
    alpha = 2.0

    [run]                             # kind = "flow" (default), "sgd" (eta, batch_size, mode, n_data, seed) or "mlp"
    t_max = 100.0
    dt = 0.1
    solver = "heun"
    save_every = 10
    backend = "numba"
    output = "results/runs/student_teacher.h5"   # relative to the working directory

A run on a data set replaces [inputs] and [target] by a [data] table, ``kind`` a name of
:data:`~meanfield.registry.DATA`: ``"sklearn"`` (``name = "digits"``, ``classes``, ``n_test``, ``seed``,
``standardize``: :func:`meanfield.data.from_sklearn`), ``"npz"`` (``path``: :func:`meanfield.data.load_npz`) or
``"sample"`` (``n``, ``seed``, ``n_test``: :func:`meanfield.data.sample` of the population problem that [inputs] and
[target] describe); its [problem] may name a ``loss``. The options of each kind are the parameters of the registered
entry (``meanfield.registry``), with the types of their annotations: :func:`schema` lists them all, and
docs/guide/configuration.md is written from it.

A run of kind "mlp" (a bias-free MLP on a real data set, :func:`meanfield.weights.mlp.train_mlp`) has no [inputs],
[target] or [init]; its [mlp] table holds the keyword arguments of ``train_mlp`` and [run] only kind and output.
A sweep adds [sweep] (:mod:`meanfield.sweep`) and, to run on a batch scheduler, [cluster].
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

from . import _config_schema as sc
from .registry import DATA, DYNAMICS, INITS, INPUT_LAWS, LOSSES, PENALTIES, SOLVERS, TARGETS, UNITS

__all__ = ["ConfigError", "load_config", "validate_config", "schema", "entry_options", "build_problem", "build_data",
           "build_init", "build_dynamics", "run_config"]


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


_TABLES = ("name", "inputs", "target", "data", "problem", "init", "dynamics", "run", "mlp", "cluster", "sweep")
#: Arguments of the run functions that are not settings of a configuration file.
_NOT_SETTINGS = {"problem", "mu0", "observables", "backend_options", "path", "overwrite", "resume", "config",
                 "progress", "alignment", "dynamics"}
#: Tables with a kind: (the key naming it, its registry, its default, the parameters the configuration supplies).
_KINDS = {"inputs": ("law", INPUT_LAWS, "gaussian", ()), "target": ("kind", TARGETS, None, ("inputs",)),
          "data": ("kind", DATA, None, ("problem",)), "init": ("kind", INITS, "sign_sphere", ("d",)),
          "dynamics": ("kind", DYNAMICS, None, ())}
#: Former names of kinds, still read: (table, old name) → the name of what it builds.
_RENAMED = {("target", "multi_index"): "radial"}
#: Keys of [problem] naming a component: its registry.
_COMPONENTS = {"activation": UNITS, "loss": LOSSES, "penalty": PENALTIES}


def _backends():
    from .registry import BACKENDS

    return ("auto", *sorted(BACKENDS.names()))  # sorted: the registry lists optional ones in the order imported


def _sgd_modes():
    from .sgd import MODES

    return MODES


def _mlp_names(name):
    def names():
        from .weights import mlp

        return getattr(mlp, name)
    return names


#: Keys whose values are names, by table: where the names come from.
_NAMED = {("run", "solver"): SOLVERS, ("run", "backend"): _backends, ("run", "mode"): _sgd_modes,
          ("mlp", "dataset"): _mlp_names("DATASETS"), ("mlp", "init"): _mlp_names("INITS"),
          ("mlp", "optimizer"): _mlp_names("OPTIMIZERS")}
#: Keys that must be > 0.
_POSITIVE = {("inputs", "d"), ("inputs", "variance"), ("target", "k"), ("target", "d_hidden"), ("init", "m"),
             ("init", "radius"), ("init", "a_scale"), ("init", "a_std"), ("init", "b_std"), ("run", "t_max"),
             ("run", "dt"), ("run", "save_every"), ("run", "rtol"), ("run", "atol"), ("run", "max_risk_factor"),
             ("run", "eta"), ("run", "batch_size"), ("run", "n_data"), ("mlp", "width"), ("mlp", "depth"),
             ("mlp", "lr"), ("mlp", "batch_size"), ("mlp", "epochs"), ("mlp", "save_every"), ("mlp", "n_test"),
             ("data", "n"), ("problem", "output_scale")}
#: Keys that must be >= 0 (seeds, sizes of held-out splits).
_NONNEGATIVE = {("target", "seed"), ("init", "seed"), ("run", "seed"), ("mlp", "seed"), ("mlp", "split_seed"),
                ("data", "seed"), ("data", "n_test")}


def _run_functions(kind: str):
    if kind == "flow":
        from .flow import simulate

        return simulate
    if kind == "sgd":
        from .sgd import train

        return train
    return None


def _run_schema(kind: str) -> dict[str, sc.Key]:
    """The keys of [run] for a kind of run, derived from the signature of the function that runs it."""
    common = {"kind": sc.Key((sc.STR,)), "output": sc.Key((sc.STR,))}
    fn = _run_functions(kind)
    if fn is None:
        return common
    keys = {key: sc.Key(k.types, k.required, _NAMED.get(("run", key)))
            for key, k in sc.signature_keys(fn, _NOT_SETTINGS).items()}
    if kind == "sgd":
        keys["backend"] = sc.Key((sc.STR,), names=_backends)
        keys.pop("risk_backend", None)
    else:
        keys["save_particles"] = sc.Key((sc.BOOL,))
        keys["dynamics"] = sc.Key((sc.STR,), names=DYNAMICS)
    return {**keys, **common}


def _problem_constructors(empirical: bool | None):
    from .empirical import EmpiricalProblem
    from .problem import Problem

    return {None: (Problem, EmpiricalProblem), False: (Problem,), True: (EmpiricalProblem,)}[empirical]


def _problem_schema(empirical: bool | None) -> dict[str, sc.Key]:
    """The keys of [problem]: the parameters of the problem's constructor (both kinds' when ``empirical`` is None)."""
    keys: dict[str, sc.Key] = {}
    for cls in _problem_constructors(empirical):
        for key, k in sc.signature_keys(cls, ("self", "target", "inputs", "data")).items():
            registry = _COMPONENTS.get(key)
            keys[key] = k if registry is None else sc.Key((sc.STR, sc.TABLE), names=registry)
    return keys


def _kind_of_table(table: str, spec: dict):
    """The registered name of a kinded table's entry (a former name read as the new one), None if none is given."""
    key, _, default, _ = _KINDS[table]
    kind = spec.get(key, default)
    return _RENAMED.get((table, kind), kind)


def _kinded_schema(table: str, spec: dict, loose: bool) -> dict[str, sc.Key]:
    """The keys of a table with a kind: its kind key and the options of the entry it names (with ``loose``, of every
    entry, since a sweep may vary the kind)."""
    key, registry, default, supplied = _KINDS[table]
    keys = {key: sc.Key((sc.STR,), required=default is None, names=registry)}
    kind = _kind_of_table(table, spec)
    base = spec.get("base")
    names = registry.names() if loose or kind not in registry else (kind,)
    options: dict[str, sc.Key] = {}
    for name in names:
        for option, k in sc.entry_keys(registry, name, supplied, base=base).items():
            if name == kind or option not in options:
                options[option] = k
    if loose or kind not in registry:
        options = {option: sc.Key(k.types, names=k.names) for option, k in options.items()}  # required: per run
    return {**options, **keys}


def table_schema(table: str, cfg: dict, loose: bool = False) -> dict[str, sc.Key]:
    """The keys [``table``] may hold in ``cfg`` (with ``loose``, those of every kind: a sweep's base configuration)."""
    spec = cfg.get(table) if isinstance(cfg.get(table), dict) else {}
    if table in _KINDS:
        return _kinded_schema(table, spec, loose)
    if table == "problem":
        return _problem_schema(None if loose else "data" in cfg)
    if table == "run":
        kind = spec.get("kind", "flow")
        if kind == "mlp":
            return _run_schema("mlp")
        return {**_run_schema("sgd"), **_run_schema("flow")}  # checked per kind when it runs (:func:`run_options`)
    if table == "mlp":
        from .weights.mlp import train_mlp

        return {key: sc.Key(k.types, k.required, _NAMED.get(("mlp", key)))
                for key, k in sc.signature_keys(train_mlp, _NOT_SETTINGS).items()}
    if table == "cluster":
        from .sweep import cluster_schema

        return cluster_schema(spec)
    raise KeyError(table)


def schema(table: str | None = None, kind: str | None = None) -> dict:
    """The keys of the configuration tables, read from the registries and the signatures they point to.

    Parameters
    ----------
    table : str, optional
        One table ("inputs", "target", "data", "problem", "init", "dynamics", "run", "mlp"); every one by default.
    kind : str, optional
        For a table with a kind, that kind's keys only (every kind's by default).

    Returns
    -------
    dict
        {table: {key: description}}, or {key: description} for one table.

    Examples
    --------
    >>> from meanfield.config import schema
    >>> schema("dynamics", "conic")     # doctest: +ELLIPSIS
    {'alpha': 'number', 'beta': 'number', 'conserve_mass': 'boolean', 'kind': "one of 'birth_death', 'conic', ..."}
    """
    if table is None:
        return {name: schema(name) for name in ("inputs", "target", "data", "problem", "init", "dynamics", "run",
                                                  "mlp")}
    if table in _KINDS:
        cfg = {table: {_KINDS[table][0]: kind}} if kind else {}
        keys = table_schema(table, cfg, loose=kind is None)
    elif table == "run":
        keys = _run_schema(kind) if kind else table_schema("run", {})
    else:
        keys = table_schema(table, {}, loose=True)
    return {key: k.describe() for key, k in keys.items()}


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


#: The kinds of run: the function that runs each is :func:`_run_functions`.
_RUN_KINDS = ("flow", "sgd", "mlp")


def _required_run_keys(kind: str) -> list[str]:
    return [key for key, k in _run_schema(kind).items() if k.required]


def _check_value(where: str, table: str, key: str, value, spec: sc.Key, label: str | None = None) -> None:
    """One value against its key's types, names and range; ``label`` names the key in messages (default
    ``[table] key``)."""
    label = label or f"[{table}] {key}"
    if not any(sc.is_of(value, kind) for kind in spec.types):
        article = "an" if spec.types[0][0] in "aeiou" else "a"
        raise ConfigError(f"{where}: {label} must be {article} {' or '.join(spec.types)}, got {value!r}")
    choices = spec.choices()
    if choices is not None and isinstance(value, str) and _RENAMED.get((table, value), value) not in choices:
        raise ConfigError(f"{where}: {label} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    if (table, key) in _POSITIVE and not value > 0:
        raise ConfigError(f"{where}: {label} must be > 0, got {value!r}")
    if (table, key) in _NONNEGATIVE and not value >= 0:
        raise ConfigError(f"{where}: {label} must be >= 0, got {value!r}")


def entry_options(registry, name: str) -> dict[str, str]:
    """{option: its type in words} of a registry's entry, as a configuration table gives them.

    Examples
    --------
    >>> from meanfield.config import entry_options
    >>> from meanfield.registry import PENALTIES
    >>> entry_options(PENALTIES, "weight_decay")
    {'strength': 'number, required'}
    """
    return {key: k.describe() for key, k in sc.entry_keys(registry, name).items()}


def _check_component(where: str, key: str, value, problem_keys) -> None:
    """[problem] activation, loss or penalty: a name, or a table with kind and the entry's options (built once here,
    so that a bad option is reported with the configuration, not when the run starts). A bare name leaves to
    [problem] the options it holds (``slope`` of "leaky_relu")."""
    registry = _COMPONENTS[key]
    table = isinstance(value, dict)
    name = value.get("kind") if table else value
    options = {option: v for option, v in value.items() if option != "kind"} if table else {}
    if not isinstance(name, str) or name not in registry:
        raise ConfigError(f"{where}: [problem] {key} must name one of {', '.join(map(repr, registry.names()))}"
                          + (" in its kind" if table else "") + f", got {name!r}")
    keys = sc.entry_keys(registry, name)
    unknown = sorted(set(options) - set(keys))
    if unknown:
        raise ConfigError(f"{where}: [problem] {key} {name!r} takes {', '.join(keys) or 'no options'}; got "
                          f"{', '.join(unknown)}")
    for option, spec in keys.items():
        if option in options:
            _check_value(where, "problem", option, options[option], spec, f"[problem] {key} {name!r} {option}")
        elif spec.required and (table or option not in problem_keys):
            raise ConfigError(f"{where}: [problem] {key} {name!r} needs {option}: write {key} = {{kind = {name!r}, "
                              f"{option} = ...}}")
    if table:
        try:
            registry.create(name, **options)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: [problem] {key}: {' '.join(str(err).split())}") from None


def _check_table(cfg: dict, table: str, where: str, loose: bool) -> None:
    spec = cfg[table]
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: [{table}] must be a table of settings, got {spec!r}")
    keys = table_schema(table, cfg, loose)
    bad = set(spec) - set(keys)
    if bad and table == "run" and spec.get("kind") == "mlp":
        raise ConfigError(f"{where}: [run] keys {sorted(bad)} do not apply to kind = 'mlp' (put training settings of "
                          "an MLP in [mlp])")
    if (bad and table in _KINDS and not loose and _kind_of_table(table, spec) in _KINDS[table][1]
            and bad <= set(table_schema(table, cfg, loose=True))):  # keys of another kind
        key = _KINDS[table][0]
        raise ConfigError(f"{where}: [{table}] keys {sorted(bad)} do not apply to {key} = {spec.get(key, key)!r} "
                          f"(it takes {sorted(k for k in keys if k != key)})")
    if bad and table == "problem" and not loose and bad <= set(_problem_schema(True)):
        raise ConfigError(f"{where}: [problem] keys {sorted(bad)} apply to a problem on a data set: add a [data] table "
                          "(a population problem of [inputs] and [target] has the squared loss)")
    if bad:
        raise ConfigError(f"{where}: unknown keys {sorted(bad)} in [{table}] (allowed: {sorted(keys)})")
    for key, value in spec.items():
        if table == "problem" and key in _COMPONENTS:
            if not isinstance(value, (str, dict)):
                raise ConfigError(f"{where}: [problem] {key} must be a name or a table {{kind = NAME, ...}}, got "
                                  f"{value!r}")
            _check_component(where, key, value, keys)
            continue
        _check_value(where, table, key, value, keys[key])


def validate_config(cfg: dict, where: str = "configuration") -> None:
    """Reject unknown tables and keys, values of the wrong type or outside their choices and missing required keys,
    naming them; the keys of each table are those of the registered entry its kind names.

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
    unknown = set(cfg) - set(_TABLES)
    if unknown:
        raise ConfigError(f"{where}: unknown top-level keys {sorted(unknown)} (allowed: {sorted(_TABLES)})")
    run = cfg.get("run", {}) if isinstance(cfg.get("run", {}), dict) else {}
    kind = run.get("kind", "flow")
    if kind not in _RUN_KINDS:
        raise ConfigError(f"{where}: [run] kind must be one of {', '.join(map(repr, _RUN_KINDS))}, got {kind!r}")
    loose = "sweep" in cfg  # a sweep's base configuration may leave keys (and kinds) to its grid
    for table in _TABLES:
        if table in cfg and table not in ("name", "sweep"):
            _check_table(cfg, table, where, loose)
    if loose:
        return
    _check_complete(cfg, where, kind)
    _in_table(where, "dynamics", lambda: build_dynamics(cfg))  # its parameters' ranges, before anything runs


def _check_complete(cfg: dict, where: str, kind: str) -> None:
    """The tables and keys a run of ``kind`` needs."""
    if kind == "mlp":
        tables = ("mlp", "run")
    elif "data" in cfg:
        sampled = _kind_of_table("data", cfg["data"]) == "sample"
        tables = ("data", "inputs", "target", "init", "run") if sampled else ("data", "init", "run")
        extra = [t for t in ("inputs", "target") if t in cfg and not sampled]
        if extra:
            raise ConfigError(f"{where}: [{extra[0]}] describes a population problem, which a run on [data] of kind "
                              f"{cfg['data'].get('kind')!r} does not use: remove it (or use [data] kind = 'sample')")
    else:
        tables = ("inputs", "target", "init", "run")
    for table in tables:
        if table not in cfg:
            raise ConfigError(f"{where}: missing table [{table}]")
    if "dynamics" in cfg and (kind != "flow" or "dynamics" in cfg["run"]):
        raise ConfigError(f"{where}: [dynamics] " + ("applies to runs of kind 'flow'" if kind != "flow" else
                                                     "and [run] dynamics both name the dynamics: keep one"))
    for table in (*tables, *(["dynamics"] if "dynamics" in cfg else [])):
        if table == "run":
            required = _required_run_keys(kind)
        else:
            required = [key for key, k in table_schema(table, cfg).items() if k.required]
        for key in required:
            if key not in cfg[table]:
                raise ConfigError(f"{where}: [{table}] needs {key}" + (f" (for [run] kind = {kind!r})"
                                                                       if table == "run" else ""))


def set_key(cfg: dict, dotted: str, value) -> dict:
    """A copy of ``cfg`` with ``table.key`` set to ``value`` (used by sweeps)."""
    out = copy.deepcopy(cfg)
    table, _, key = dotted.rpartition(".")
    node, path = out, []
    for part in filter(None, table.split(".")):
        path.append(part)
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted}: {'.'.join(path)} is {node!r}, not a table (write it as a table, "
                              f"e.g. {path[-1]} = {{kind = {node!r}, ...}})")
    node[key] = value
    return out


def _options(cfg: dict, table: str) -> tuple[str, dict]:
    """(the registered name, its options) of a table with a kind."""
    spec = dict(cfg[table])
    spec.pop(_KINDS[table][0], None)
    kind = _kind_of_table(table, cfg[table])
    old = cfg[table].get(_KINDS[table][0])
    if old != kind and old is not None:
        warnings.warn(f"[{table}] {_KINDS[table][0]} = {old!r} is the former name of {kind!r} (what it builds); "
                      f"write {_KINDS[table][0]} = {kind!r}", FutureWarning, stacklevel=3)
    return kind, spec


def _in_table(where: str, table: str, build):
    """``build()``, with an argument error re-raised as a :class:`ConfigError` naming the table."""
    try:
        return build()
    except ConfigError as err:
        if where and not str(err).startswith(where):
            raise ConfigError(f"{where}: {err}") from None
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where + ': ' if where else ''}[{table}] {' '.join(str(err).split())}") from None


def _inputs(cfg: dict):
    law, options = _options(cfg, "inputs")
    return _in_table("", "inputs", lambda: INPUT_LAWS.create(law, **options))


def _target(cfg: dict, inputs):
    kind, options = _options(cfg, "target")
    return _in_table("", "target", lambda: TARGETS.create(kind, inputs=inputs, **options))


def _component(key: str, value):
    """A [problem] component from its name (passed as given: the problem reads it) or its table."""
    if isinstance(value, str):
        return value
    options = dict(value)
    return _COMPONENTS[key].create(options.pop("kind"), **options)


def _problem_options(cfg: dict) -> dict:
    return {key: _component(key, value) if key in _COMPONENTS else value
            for key, value in cfg.get("problem", {}).items()}


def _population_problem(cfg: dict, options: dict):
    from .problem import Problem

    inputs = _inputs(cfg)
    target = _target(cfg, inputs)
    return _in_table("", "problem", lambda: Problem(target, inputs, **options))


def build_data(cfg: dict):
    """The :class:`~meanfield.data.DataSet` of a configuration's [data] table.

    Examples
    --------
    >>> from meanfield.config import build_data
    >>> build_data({"data": {"kind": "sklearn", "name": "iris", "classes": [[0], [1, 2]], "n_test": 30}})
    DataSet('iris 0 vs 1+2', n=120, d=4, n_test=30)
    """
    kind, options = _options(cfg, "data")
    if kind == "sample":
        options["problem"] = _population_problem(cfg, {})
    return _in_table("", "data", lambda: DATA.create(kind, **options))


def build_problem(cfg: dict):
    """The problem a configuration describes: a :class:`~meanfield.Problem` (population: [inputs], [target]) or,
    with [data], an :class:`~meanfield.EmpiricalProblem`; [problem] holds the keyword arguments of either.

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
    options = _in_table("", "problem", lambda: _problem_options(cfg))
    if "data" not in cfg:
        return _population_problem(cfg, options)
    from .empirical import EmpiricalProblem

    data = build_data(cfg)
    return _in_table("", "problem", lambda: EmpiricalProblem(data, **options))


def build_init(cfg: dict, problem=None):
    """The initial particles a configuration's [init] describes, in the dimension of ``problem`` (by default the one
    of [inputs], or of the problem the configuration describes); with K outputs (the cross-entropy loss) an
    initialisation that takes ``outputs`` draws K output weights unless [init] says otherwise.

    Examples
    --------
    >>> from meanfield.config import build_init
    >>> build_init({"inputs": {"d": 3}, "init": {"kind": "gaussian", "m": 4, "seed": 0}}).b.shape
    (4, 3)
    """
    if problem is None and "data" in cfg:
        problem = build_problem(cfg)
    d = problem.d if problem is not None else cfg["inputs"]["d"]
    kind, options = _options(cfg, "init")
    outputs = getattr(problem, "outputs", None)
    if outputs is not None and "outputs" in sc.entry_keys(INITS, kind, base=options.get("base")):
        options.setdefault("outputs", outputs)
    m, seed = options.pop("m"), options.pop("seed", 0)
    return _in_table("", "init", lambda: INITS[kind](m, d, seed, **options))


def build_dynamics(cfg: dict):
    """The dynamics of a configuration's [dynamics] table (or [run] dynamics, a name), None for the plain flow.

    Examples
    --------
    >>> from meanfield.config import build_dynamics
    >>> build_dynamics({"dynamics": {"kind": "conic", "alpha": 2.0}})
    Conic(alpha=2.0, beta=1.0, conserve_mass=False)
    """
    if "dynamics" in cfg:
        kind, options = _options(cfg, "dynamics")
    elif cfg.get("run", {}).get("dynamics") is not None:
        kind, options = cfg["run"]["dynamics"], {}
    else:
        return None
    return _in_table("", "dynamics", lambda: DYNAMICS.create(kind, **options))


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
    for key in _required_run_keys(kind):
        if key not in run:
            raise ConfigError(f"[run] needs {key} (for [run] kind = {kind!r})")
    return run


def sgd_options(cfg: dict) -> dict:
    """Keyword arguments of :func:`meanfield.sgd.train` from a [run] table with kind = "sgd"."""
    run = _run_settings(cfg, "sgd")
    run["risk_backend"] = run.pop("backend", "auto")
    return run


def run_options(cfg: dict) -> dict:
    """Keyword arguments of :func:`meanfield.simulate` from the [run] table (without the output path) and the
    [dynamics] table."""
    from .saving import SaveAt

    run = _run_settings(cfg, "flow")
    run.pop("dynamics", None)
    save = SaveAt(run.pop("save_every", 10), run.pop("save_particles", True))
    dynamics = build_dynamics(cfg)
    return dict(run, save_every=save, **({"dynamics": dynamics} if dynamics is not None else {}))


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
    stored = json.loads(json.dumps({k: v for k, v in cfg.items() if k != "cluster"}))
    if kind == "mlp":  # validate_config checked [run] (kind and output only) and [mlp]
        from .weights.mlp import train_mlp

        return train_mlp(**cfg["mlp"], path=output, overwrite=overwrite, resume=resume, progress=progress,
                         config=stored)
    problem = build_problem(cfg)
    mu0 = build_init(cfg, problem)
    if kind == "sgd":
        from .sgd import train

        options = sgd_options(cfg)
        if backend:
            options["risk_backend"] = backend
        try:
            return train(problem, mu0, path=output, overwrite=overwrite, resume=resume, progress=progress,
                         config=stored, **options)
        except ValueError as err:  # train's own check of one of its arguments (dtype): name the table
            if str(err).split(" ", 1)[0] in cfg["run"]:
                raise ConfigError(f"[run] {err}") from None
            raise
    options = run_options(cfg)
    if backend:
        options["backend"] = backend
    return simulate(problem, mu0, path=output, overwrite=overwrite, resume=resume, progress=progress,
                    config=stored, **options)
