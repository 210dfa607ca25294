"""A campaign of faults against the package, as a user meets them: bad configurations and bad Python calls, resumes
that change the run, damaged files, and runs interrupted by a signal then resumed; each case runs in a subprocess
(the command line, or a Python interpreter), and is counted by how it ends:

- one-line error: refused with one line (``error: ...`` and exit 2 from the command line; a ValueError or TypeError
  of one line naming the argument from Python);
- traceback: anything else that fails (a traceback, an error naming no argument, a crash, a hang);
- silently accepted: a bad input or a changed resume that ran;
- succeeded: a case where running is right (info or recover of a damaged file, resuming an interrupted run);
- data lost: the file held readable snapshots before and fewer, or other bytes after a refused command;
- bit-identical resumes: an interrupted run resumed to the same final particles as an uninterrupted one.

Cases are objects in the lists ``CONFIG_CASES``, ``PYTHON_CASES``, ``FILE_CASES`` and ``INTERRUPT_CASES``; add one
there. It takes a few minutes on two cores.

    python benchmarks/fault_campaign.py                       # this checkout; writes
                                                              # results/benchmarks/fault_campaign.json
    python benchmarks/fault_campaign.py --source OLD --out F  # the package in the folder OLD (another version)
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("cases", "one_line", "traceback", "accepted", "succeeded", "data_lost", "bit_identical")

# -- the base run ------------------------------------------------------------------------------------------------
BASE = {"inputs": {"law": "gaussian", "d": 4},
        "target": {"kind": "teacher", "k": 2, "seed": 0},
        "init": {"kind": "sign_sphere", "m": 16, "seed": 1},
        "run": {"t_max": 1.0, "dt": 0.05, "solver": "heun", "save_every": 2, "backend": "numpy"}}
#: A run slow enough on numpy (m = 256) to be interrupted in its middle.
SLOW = {"inputs": {"law": "gaussian", "d": 10},
        "target": {"kind": "teacher", "k": 2, "seed": 0},
        "init": {"kind": "sign_sphere", "m": 256, "seed": 3},
        "run": {"t_max": 4.0, "dt": 0.01, "solver": "heun", "save_every": 20, "backend": "numpy"}}


def toml(cfg: dict) -> str:
    """A configuration as TOML (flat tables of numbers, strings, booleans and lists)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, float) and v != v:
            return "nan"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)
    return "\n".join(f"[{table}]\n" + "\n".join(f"{k} = {value(v)}" for k, v in keys.items())
                     for table, keys in cfg.items()) + "\n"


def changed(cfg: dict, **changes) -> dict:
    """A copy of ``cfg`` with ``table__key=value`` set (``None`` removes the key)."""
    out = json.loads(json.dumps(cfg))
    for name, v in changes.items():
        table, key = name.split("__")
        if v is None:
            out.setdefault(table, {}).pop(key, None)
        else:
            out.setdefault(table, {})[key] = v
    return out


# -- running -----------------------------------------------------------------------------------------------------
def _without_permission_override():
    """Root writes anywhere: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the child's bounding set, so that a
    read-only folder is read-only for it too."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):
            libc.prctl(24, capability, 0, 0, 0)  # PR_CAPBSET_DROP


@dataclass
class Env:
    source: Path
    work: Path

    def environ(self) -> dict:
        return dict(os.environ, PYTHONPATH=str(self.source), PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1",
                    MEANFIELD_THREADS="1")

    def cli(self, *args, timeout: float = 120.0) -> subprocess.CompletedProcess:
        return self.run([sys.executable, "-m", "meanfield", *map(str, args)], timeout)

    def python(self, code: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        return self.run([sys.executable, "-c", code], timeout)

    def run(self, argv, timeout):
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=self.work, env=self.environ(),
                                  timeout=timeout, preexec_fn=_without_permission_override)
        except subprocess.TimeoutExpired as err:
            return subprocess.CompletedProcess(argv, -999, err.stdout or "", f"hang: no end after {timeout} s")


def cli_outcome(proc: subprocess.CompletedProcess, should_fail: bool) -> str:
    err = proc.stderr.strip()
    if proc.returncode == 0:
        return "accepted" if should_fail else "succeeded"
    if proc.returncode == 2 and err.startswith("error:") and "\n" not in err and "Traceback" not in err:
        return "one_line"
    return "traceback"


def readable_snapshots(env: Env, path: Path) -> int:
    """Snapshots that load() reads back (0 when the file does not load)."""
    code = (f"import meanfield as mf\ntry:\n    t = mf.load({str(path)!r}); print(len(t)); t.close()\n"
            "except Exception:\n    print(0)")
    proc = env.python(code, timeout=60)
    try:
        return int(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0


def digest(path: Path) -> str | None:
    return hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else None


# -- cases -------------------------------------------------------------------------------------------------------
@dataclass
class ConfigCase:
    """``meanfield run`` of a bad configuration (or a bad path): it must be refused with one line."""

    name: str
    config: dict | None = None
    path: str | None = None          # run this path instead of a written configuration ("{dir}" is the case's folder)
    read_only: bool = False          # the output goes into a read-only folder
    text: str | None = None          # the configuration file's text, as it is

    def run(self, env: Env) -> dict:
        folder = Path(tempfile.mkdtemp(dir=env.work))
        output = folder / ("ro" if self.read_only else ".") / "run.h5"
        output.parent.mkdir(exist_ok=True)
        if self.config is not None:
            cfg = changed(self.config, run__output=str(output))
            (folder / "run.toml").write_text(toml(cfg))
        if self.text is not None:
            (folder / "run.toml").write_text(self.text)
        path = self.path.format(dir=folder) if self.path else folder / "run.toml"
        if self.read_only:
            output.parent.chmod(0o555)
        proc = env.cli("run", path, "--no-progress")
        if self.read_only:
            output.parent.chmod(0o755)
        return {"outcome": cli_outcome(proc, True), "stderr": proc.stderr.strip()[-300:]}


@dataclass
class PythonCase:
    """A Python call that must raise one line naming ``name`` (code runs in a fresh folder with ``mf``, ``np``).
    With ``resume``, ``setup`` first writes the file ``run.h5`` and the call must leave it as it was."""

    name: str
    code: str
    names: str
    setup: str = ""


@dataclass
class FileCase:
    """A command on a damaged copy of a completed run (``damage(path)`` in this process, with h5py only)."""

    name: str
    damage: str                    # "truncate:<fraction>", "del_attr:<name>", "del:<dataset>", "zero:<fraction>"
    commands: tuple = ("info", "recover", "resume")

    def run(self, env: Env, base: Path) -> list[dict]:
        results, before_n = [], None
        for command in self.commands:
            folder = Path(tempfile.mkdtemp(dir=env.work))
            path = folder / "run.h5"
            shutil.copy(base, path)
            _damage(path, self.damage)  # the same bytes for every command
            before = digest(path)
            before_n = readable_snapshots(env, path) if before_n is None else before_n
            if command == "info":
                proc = env.cli("info", path)
            elif command == "recover":
                proc = env.cli("recover", path)
            else:
                cfg = changed(BASE, run__output=str(path), run__t_max=2.0)
                (folder / "run.toml").write_text(toml(cfg))
                proc = env.cli("run", folder / "run.toml", "--resume", "--no-progress")
            outcome = cli_outcome(proc, False)
            after_n = before_n if digest(path) == before else readable_snapshots(env, path)
            lost = after_n < before_n or (outcome != "succeeded" and digest(path) != before)
            results.append({"case": f"{self.name} / {command}", "outcome": outcome, "data_lost": bool(lost),
                            "snapshots": [before_n, after_n], "stderr": proc.stderr.strip()[-300:]})
        return results


def _damage(path: Path, how: str) -> None:
    import h5py

    kind, _, arg = how.partition(":")
    if kind == "truncate":
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            fh.truncate(int(size * float(arg)))
    elif kind == "zero":
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            fh.seek(int(size * float(arg)))
            fh.write(b"\0" * 4096)
    elif kind == "del_attr":
        with h5py.File(path, "r+") as f:
            del f.attrs[arg]
    elif kind == "del":
        with h5py.File(path, "r+") as f:
            del f[arg]
    else:
        raise ValueError(f"unknown damage {how!r}")


@dataclass
class InterruptCase:
    """``meanfield run`` stopped by ``sig`` after ``delay`` s, then ``--resume``: the result must equal an
    uninterrupted run's, bit for bit."""

    name: str
    config: dict
    sig: int = signal.SIGTERM
    delay: float = 0.5

    def run(self, env: Env) -> dict:
        folder = Path(tempfile.mkdtemp(dir=env.work))
        straight, cut = folder / "straight.h5", folder / "cut.h5"
        for out in (straight, cut):
            (folder / f"{out.stem}.toml").write_text(toml(changed(self.config, run__output=str(out))))
        env.cli("run", folder / "straight.toml", "--no-progress", timeout=300)
        proc = subprocess.Popen([sys.executable, "-m", "meanfield", "run", folder / "cut.toml", "--no-progress"],
                                cwd=env.work, env=env.environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        start = time.time()
        while not cut.exists() and time.time() - start < 60 and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(self.delay)
        if proc.poll() is None:
            proc.send_signal(self.sig)
        _, err = proc.communicate(timeout=120)
        killed_by = {signal.SIGTERM: 143, signal.SIGINT: 130}.get(self.sig)
        stopped = proc.returncode in (killed_by, -self.sig)
        interrupted_right = proc.returncode == -signal.SIGKILL or (stopped and "Traceback" not in err)
        resumed = env.cli("run", folder / "cut.toml", "--resume", "--no-progress", timeout=300)
        code = ("import numpy as np, meanfield as mf\n"
                f"a, b = mf.load({str(straight)!r}), mf.load({str(cut)!r})\n"
                "print(len(a) == len(b) and np.array_equal(a.final.state(), b.final.state()) and "
                "np.array_equal(a.risk, b.risk))")
        same = env.python(code).stdout.strip().endswith("True")
        outcome = "succeeded" if resumed.returncode == 0 and interrupted_right else "traceback"
        return {"outcome": outcome, "bit_identical": same, "interrupted": proc.returncode != 0,
                "exit": proc.returncode, "stderr": (err.strip() + " | " + resumed.stderr.strip())[-300:]}


CONFIG_CASES = [
    ConfigCase("d = 0", changed(BASE, inputs__d=0)),
    ConfigCase("d = -3", changed(BASE, inputs__d=-3)),
    ConfigCase("unknown input law", changed(BASE, inputs__law="uniform")),
    ConfigCase("unknown target kind", changed(BASE, target__kind="quadratic")),
    ConfigCase("negative target seed", changed(BASE, target__seed=-1)),
    ConfigCase("negative init seed", changed(BASE, init__seed=-1)),
    ConfigCase("m = 0", changed(BASE, init__m=0)),
    ConfigCase("t_max < 0", changed(BASE, run__t_max=-1.0)),
    ConfigCase("dt = 0", changed(BASE, run__dt=0.0)),
    ConfigCase("unknown solver", changed(BASE, run__solver="rk45")),
    ConfigCase("unknown backend", changed(BASE, run__backend="gpu")),
    ConfigCase("max_risk_factor = nan", changed(BASE, run__max_risk_factor=float("nan"))),
    ConfigCase("stop_risk = nan", changed(BASE, run__stop_risk=float("nan"))),
    ConfigCase("stop_risk a string", changed(BASE, run__stop_risk="low")),
    ConfigCase("t_max = true", changed(BASE, run__t_max=True)),
    ConfigCase("save_every = 0", changed(BASE, run__save_every=0)),
    ConfigCase("unknown [run] key", changed(BASE, run__dtt=0.1)),
    ConfigCase("bias = 'no'", changed(BASE, problem__bias="no")),
    ConfigCase("sgd temperature a string", changed(BASE, run__kind="sgd", run__eta=0.1, run__dt=None,
                                                   run__solver=None, run__temperature="hot")),
    ConfigCase("sgd negative seed", changed(BASE, run__kind="sgd", run__eta=0.1, run__dt=None, run__solver=None,
                                            run__seed=-5)),
    ConfigCase("sgd max_risk_factor < 0", changed(BASE, run__kind="sgd", run__eta=0.1, run__dt=None,
                                                  run__solver=None, run__max_risk_factor=-1.0)),
    ConfigCase("configuration path is a folder", path="{dir}"),
    ConfigCase("configuration path missing", path="{dir}/none.toml"),
    ConfigCase("invalid TOML", text="[inputs\nlaw = "),
    ConfigCase("read-only output folder", BASE, read_only=True),
]

_TEACHER = "mf.Problem(mf.TeacherNetwork([1.0, 0.5], np.eye(3)[:2]), mf.Gaussian(3))"
_MU = "mf.init.sign_sphere(8, 3, seed=1)"
_FLOW = f"mf.simulate({_TEACHER}, {_MU}, t_max={{t}}, dt=0.1, backend='numpy'{{extra}})"
_SGD = f"mf.sgd.train({_TEACHER}, {_MU}, t_max={{t}}, eta=0.1, batch_size=16{{extra}})"
_CE = ("x = np.random.default_rng(0).standard_normal((6, 2)); "
       "mf.EmpiricalProblem(DataSet(x, np.array({y}, float), x[:2], np.array({y_test}, float)), loss='cross_entropy')")


def _resume(run: str, before: str, after: str, names: str, name: str) -> PythonCase:
    """A run to t = 0.5 written to run.h5, then resumed to t = 1 with ``after`` instead of ``before``."""
    return PythonCase(name, run.format(t=1.0, extra=f", path='run.h5', resume=True{after}"), names,
                      setup=run.format(t=0.5, extra=f", path='run.h5'{before}") + ".close()")


_LANGEVIN = ", dynamics=Langevin(1e-3, seed=2{})"
_MC = ("mf.simulate(mf.Problem(mf.MonteCarloTarget({fn}, d=3, n_samples=512), mf.Gaussian(3)), " + _MU +
       ", t_max={t}, dt=0.1, backend='numpy'{extra})")
_DATA = ("mf.simulate(mf.EmpiricalProblem(DataSet(X, np.abs(X[:, 0])){tile}), " + _MU +
         ", t_max={t}, dt=0.1, backend='numpy'{extra})")

PYTHON_CASES = [
    PythonCase("observable named with '/'", _FLOW.format(t=0.2, extra=", observables={'loss/train': lambda mu: 1.0}"),
               "observable"),
    PythonCase("observable named ''", _FLOW.format(t=0.2, extra=", observables={'': lambda mu: 1.0}"), "observable"),
    PythonCase("sgd of an OddReducedProblem", f"mf.sgd.train(OddReducedProblem(mf.Problem(mf.LinearTarget(np.ones(3)),"
               f" mf.Gaussian(3))), {_MU}, t_max=0.2, eta=0.1)", "OddReducedProblem"),
    PythonCase("sgd max_risk_factor = nan", _SGD.format(t=0.2, extra=", max_risk_factor=float('nan')"),
               "max_risk_factor"),
    PythonCase("sgd max_risk_factor < 0", _SGD.format(t=0.2, extra=", max_risk_factor=-1.0"), "max_risk_factor"),
    PythonCase("mlp max_loss_factor = nan", "train_mlp(width=4, epochs=1, max_loss_factor=float('nan'))",
               "max_loss_factor"),
    PythonCase("stop_risk = nan", _FLOW.format(t=0.2, extra=", stop_risk=float('nan')"), "stop_risk"),
    PythonCase("stop_risk a string", _FLOW.format(t=0.2, extra=", stop_risk='0.1'"), "stop_risk"),
    PythonCase("t_max = True", _FLOW.format(t=True, extra=""), "t_max"),
    PythonCase("Problem(bias='no')", "mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0, 0]]), mf.Gaussian(3), bias='no')",
               "bias"),
    PythonCase("CrossEntropy(classes=0)", "CrossEntropy(classes=0)", "classes"),
    PythonCase("measure with d = 0", "mf.ParticleMeasure(np.ones(3), np.ones((3, 0)))", "b"),
    PythonCase("measure with 0 outputs", "mf.init.gaussian(3, 2, seed=0, outputs=0)", "outputs"),
    PythonCase("sgd seed = 1.5", _SGD.format(t=0.2, extra=", seed=1.5"), "seed"),
    PythonCase("sgd seed = -1", _SGD.format(t=0.2, extra=", seed=-1"), "seed"),
    PythonCase("init seed = -1", "mf.init.sign_sphere(4, 3, seed=-1)", "seed"),
    PythonCase("Langevin diagnostic_particles < 0", "Langevin(0.1, diagnostic_particles=-5)", "diagnostic_particles"),
    PythonCase("Langevin temperature a string", "Langevin(temperature='0.1')", "temperature"),
    PythonCase("sgd temperature a string", _SGD.format(t=0.2, extra=", temperature='0.1'"), "temperature"),
    PythonCase("output_scale = 1e300", "mf.problem.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(3), "
               "output_scale=1e300)", "output_scale"),
    PythonCase("cross-entropy test class absent from training", _CE.format(y=[0, 1, 2, 0, 1, 2], y_test=[0, 3]),
               "y_test"),
    PythonCase("cross-entropy with one class", _CE.format(y=[0, 0, 0, 0, 0, 0], y_test=[0, 0]), "class"),
    _resume(_FLOW, _LANGEVIN.format(""), _LANGEVIN.format(", diagnostic=False"), "diagnostic",
            "resume Langevin without its diagnostic"),
    _resume(_FLOW, _LANGEVIN.format(", diagnostic=False"), _LANGEVIN.format(""), "diagnostic",
            "resume Langevin with a diagnostic added"),
    _resume(_FLOW, _LANGEVIN.format(""), _LANGEVIN.format(", diagnostic_particles=16"), "diagnostic_particles",
            "resume Langevin with other diagnostic_particles"),
    _resume(_SGD, "", ", temperature=1e-3", "temperature", "resume SGD with a temperature added"),
    _resume(_SGD, ", temperature=1e-3", "", "temperature", "resume SGD with its temperature removed"),
    _resume(_SGD, "", ", weight_decay=0.1", "weight_decay", "resume SGD with a weight decay added"),
    _resume(_SGD, "", ", max_risk_factor=10.0", "max_risk_factor", "resume SGD with another max_risk_factor"),
    _resume("train_mlp(width=4, epochs=int({t} * 2), batch_size=500{extra})", "", ", max_loss_factor=5.0",
            "max_loss_factor", "resume MLP with another max_loss_factor"),
    PythonCase("resume a MonteCarloTarget with another function",
               _MC.format(fn="lambda x: np.abs(x[:, 1])", t=1.0, extra=", path='run.h5', resume=True"), "fn",
               setup=_MC.format(fn="lambda x: np.abs(x[:, 0])", t=0.5, extra=", path='run.h5'") + ".close()"),
    PythonCase("resume a MultiIndexTarget with another g",
               _FLOW.replace(_TEACHER, "mf.Problem(mf.MultiIndexTarget(lambda h: np.abs(h[:, 0] + h[:, 1]), "
                             "np.eye(3)[:, :2], max_nodes=64), mf.Gaussian(3))").format(
                   t=1.0, extra=", path='run.h5', resume=True"), "g",
               setup=_FLOW.replace(_TEACHER, "mf.Problem(mf.MultiIndexTarget(lambda h: np.abs(h[:, 0] * h[:, 1]), "
                                   "np.eye(3)[:, :2], max_nodes=64), mf.Gaussian(3))").format(
                   t=0.5, extra=", path='run.h5'") + ".close()"),
    PythonCase("resume a data-set run with another tile_elements",
               _DATA.format(tile=", tile_elements=64", t=1.0, extra=", path='run.h5', resume=True"), "tile_elements",
               setup=_DATA.format(tile=", tile_elements=16", t=0.5, extra=", path='run.h5'") + ".close()"),
    _resume(_FLOW, "", ", backend_options={'tile_elements': 4096}", "tile_elements",
            "resume with another backend tile_elements"),
    _resume(_FLOW, "", ", solver='rk4'", "solver", "resume with another solver"),
    _resume(_FLOW, "", ", max_risk_factor=10.0", "max_risk_factor", "resume a flow with another max_risk_factor"),
    PythonCase("resume to a t_max already passed", _FLOW.format(t=0.3, extra=", path='run.h5', resume=True"),
               "t_max", setup=_FLOW.format(t=0.5, extra=", path='run.h5'") + ".close()"),
]

FILE_CASES = [
    FileCase("truncated at 50 %", "truncate:0.5"),
    FileCase("truncated at 90 %", "truncate:0.9"),
    FileCase("4 KiB zeroed at 60 %", "zero:0.6"),
    FileCase("without attribute kind", "del_attr:kind"),
    FileCase("without attribute config", "del_attr:config", ("info", "resume")),
    FileCase("without attribute seed", "del_attr:seed", ("recover", "resume")),
    FileCase("without particles/weights", "del:particles/weights"),
    FileCase("without problem/target", "del:problem/target", ("recover", "resume")),
    FileCase("without checkpoint/clock", "del:checkpoint/clock", ("resume",)),
]

INTERRUPT_CASES = [
    InterruptCase("flow, SIGTERM", SLOW, signal.SIGTERM),
    InterruptCase("flow, SIGKILL", SLOW, signal.SIGKILL),
    InterruptCase("flow, SIGINT", SLOW, signal.SIGINT),
    InterruptCase("adaptive flow, SIGKILL", changed(SLOW, run__solver="bosh3", run__save_every=2), signal.SIGKILL),
    InterruptCase("sgd, SIGTERM", changed(SLOW, run__kind="sgd", run__eta=0.002, run__dt=None, run__solver=None,
                                          run__batch_size=256), signal.SIGTERM),
]

#: The driver of PYTHON_CASES, run in one interpreter: one JSON line per case.
_PYTHON_DRIVER = textwrap.dedent("""
    import hashlib, json, os, signal, sys, tempfile, warnings
    warnings.simplefilter("ignore")
    import numpy as np, meanfield as mf
    from meanfield.data import DataSet
    from meanfield.dynamics import Langevin
    from meanfield.losses import CrossEntropy
    from meanfield.reduced import OddReducedProblem
    from meanfield.weights.mlp import train_mlp

    X = np.random.default_rng(0).standard_normal((40, 3))   # the data set of the data-set runs

    def digest(path):
        return hashlib.sha1(open(path, "rb").read()).hexdigest() if os.path.isfile(path) else None

    def alarm(*_):
        raise TimeoutError("hang")

    signal.signal(signal.SIGALRM, alarm)
    for case in json.loads(sys.argv[1]):
        os.chdir(tempfile.mkdtemp())
        result = {"case": case["name"]}
        try:
            signal.alarm(60)
            if case["setup"]:
                exec(case["setup"])
            before = digest("run.h5")
            try:
                out = exec(case["code"])
                result["outcome"] = "accepted"
            except (ValueError, TypeError) as err:
                text = str(err)
                one = "\\n" not in text and case["names"] in text
                result["outcome"] = "one_line" if one else "traceback"
                result["error"] = f"{type(err).__name__}: {text}"[:300]
            except Exception as err:
                result["outcome"] = "traceback"
                result["error"] = f"{type(err).__name__}: {err}"[:300]
            result["data_lost"] = before is not None and result["outcome"] != "accepted" and digest("run.h5") != before
        except Exception as err:
            result.update(outcome="traceback", error=f"setup: {type(err).__name__}: {err}"[:300], data_lost=False)
        finally:
            signal.alarm(0)
        print(json.dumps(result), flush=True)
""")


def run_python_cases(env: Env, cases) -> list[dict]:
    payload = json.dumps([{"name": c.name, "code": c.code, "names": c.names, "setup": c.setup} for c in cases])
    proc = env.run([sys.executable, "-c", _PYTHON_DRIVER, payload], timeout=60 * len(cases))
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    done = {r["case"] for r in results}
    for case in cases:  # a case that crashed the interpreter
        if case.name not in done:
            results.append({"case": case.name, "outcome": "traceback", "data_lost": False,
                            "error": proc.stderr.strip()[-300:]})
            break
    return results


def base_file(env: Env) -> Path:
    folder = Path(tempfile.mkdtemp(dir=env.work))
    path = folder / "base.h5"
    (folder / "base.toml").write_text(toml(changed(BASE, run__output=str(path))))
    proc = env.cli("run", folder / "base.toml", "--no-progress")
    if proc.returncode != 0:
        raise RuntimeError(f"the base run failed: {proc.stderr}")
    return path


def damaged_files(env: Env) -> list[dict]:
    base = base_file(env)
    return [row for case in FILE_CASES for row in case.run(env, base)]


def campaign(source: Path, only: set | None = None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="fault_campaign_"))
    env = Env(source, work)
    rows, wall = [], {}

    def timed(group, make):
        start = time.time()
        rows.extend({"group": group, **row} for row in make())
        wall[group] = round(time.time() - start, 1)

    groups = {"configuration": lambda: [{"case": c.name, **c.run(env)} for c in CONFIG_CASES],
              "python call": lambda: run_python_cases(env, PYTHON_CASES),
              "damaged file": lambda: damaged_files(env),
              "interrupted run": lambda: [{"case": c.name, **c.run(env)} for c in INTERRUPT_CASES]}
    try:
        for group, make in groups.items():
            if only is None or group in only:
                timed(group, make)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"source": str(source), "rows": rows, "counts": counts(rows),
            "by_group": {g: counts([r for r in rows if r["group"] == g]) for g in wall}, "group_wall_s": wall,
            "subprocess_cpu_s": round(children.ru_utime + children.ru_stime, 1)}


def counts(rows) -> dict:
    out = dict.fromkeys(COLUMNS, 0)
    out["cases"] = len(rows)
    for row in rows:
        out[row["outcome"]] += 1
        out["data_lost"] += bool(row.get("data_lost"))
        out["bit_identical"] += bool(row.get("bit_identical"))
    return out


def table(result: dict) -> str:
    head = ["", *COLUMNS]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for group, c in {**result["by_group"], "all": result["counts"]}.items():
        lines.append(" | ".join([group, *(str(c[k]) for k in COLUMNS)]))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="folder holding the meanfield package to try")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "fault_campaign.json")
    parser.add_argument("--label", default="this checkout", help="what the package tried is (e.g. a commit)")
    parser.add_argument("--groups", help="comma-separated groups to run (configuration, python call, damaged file, "
                        "interrupted run); all by default")
    args = parser.parse_args(argv)
    start = time.time()
    result = campaign(args.source.resolve(), set(args.groups.split(",")) if args.groups else None)
    result["source"], result["wall_time_s"] = args.label, round(time.time() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    bad = [r for r in result["rows"] if r["outcome"] in ("traceback", "accepted") or r.get("data_lost")]
    for row in bad:
        print(f"  {row['outcome']:>9}{' + data lost' if row.get('data_lost') else ''}: {row['group']}: "
              f"{row['case']}: {row.get('error') or row.get('stderr', '')}"[:240])
    print(f"wrote {args.out} ({result['wall_time_s']} s wall, {result['subprocess_cpu_s']} s of CPU in its "
          "subprocesses)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
