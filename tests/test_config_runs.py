"""Configuration files describe the runs the Python API starts: data sets, losses, penalties, dynamics, every
initialisation, sweeps over any key — each run through the command line and compared bit for bit with the same run
started from Python; bad values are one line naming the table and the key (exit 2); sweeps on an existing scheduler
(a real ``dask scheduler`` process and a worker) and the job scripts of batch systems (dask-jobqueue)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import meanfield as mf
from meanfield.cli import build_parser, main
from meanfield.config import build_init, build_problem, load_config, schema
from meanfield.data import DataSet, from_sklearn, sample
from meanfield.dynamics import Conic, Langevin
from meanfield.registry import BACKENDS, DATA, DYNAMICS, INITS, UNITS


def _write(path, text):
    path.write_text(text)
    return str(path)


def _assert_same_run(traj, reference):
    """Bit-identical: every saved time, risk, observable and the final particles."""
    np.testing.assert_array_equal(traj.times, reference.times)
    np.testing.assert_array_equal(traj.risk, reference.risk)
    np.testing.assert_array_equal(traj.final.state(), reference.final.state())
    np.testing.assert_array_equal(traj.final.weights, reference.final.weights)
    assert set(traj.observables) == set(reference.observables)
    for name, values in reference.observables.items():
        np.testing.assert_array_equal(traj.observables[name], values, err_msg=name)


def _one_line(err: str) -> str:
    err = err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


TEACHER = """
[inputs]
d = 3
[target]
kind = "teacher"
k = 2
seed = 0
[init]
kind = "sign_sphere"
m = 8
seed = 1
[run]
t_max = 1.0
dt = 0.1
save_every = 2
backend = "numpy"
output = "{output}"
{extra}
"""


def test_run_dynamics_by_name_and_a_dynamics_table(tmp_path):
    """``[run] dynamics = "conic"`` passed validation and ended in AttributeError (exit 1); it now runs the conic flow,
    and a [dynamics] table sets its parameters — the same runs as simulate(..., dynamics=Conic(...))."""
    cfg = _write(tmp_path / "a.toml", TEACHER.format(output=tmp_path / "a.h5", extra='dynamics = "birth_death"'))
    proc = subprocess.run([sys.executable, "-m", "meanfield", "run", cfg, "--no-progress"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    problem, mu0 = build_problem(load_config(cfg)), build_init(load_config(cfg))
    options = dict(t_max=1.0, dt=0.1, save_every=2, backend="numpy")
    with mf.load(tmp_path / "a.h5") as traj:
        _assert_same_run(traj, mf.simulate(problem, mu0, dynamics=DYNAMICS.create("birth_death"), **options))
    conic = TEACHER.format(output=tmp_path / "c.h5", extra='[dynamics]\nkind = "conic"\nalpha = 2.0\nbeta = 0.5')
    assert main(["run", _write(tmp_path / "c.toml", conic), "--no-progress"]) == 0
    reference = mf.simulate(problem, mu0, dynamics=Conic(alpha=2.0, beta=0.5), **options)
    plain = mf.simulate(problem, mu0, **options)
    with mf.load(tmp_path / "c.h5") as traj:
        _assert_same_run(traj, reference)
        assert not np.array_equal(traj.final.state(), plain.final.state())  # the parameters were used


def test_a_unit_name_takes_its_option_from_the_problem_table(tmp_path):
    """``activation = "leaky_relu"`` with ``slope`` in [problem] (the form of older files) is Problem(..., slope=)."""
    text = TEACHER.format(output=tmp_path / "l.h5", extra="").replace("[init]", '[problem]\nactivation = "leaky_relu"'
                                                                       "\nslope = 0.2\n[init]")
    assert main(["run", _write(tmp_path / "l.toml", text), "--no-progress"]) == 0
    cfg = load_config(tmp_path / "l.toml")
    problem = mf.Problem(build_problem(cfg).target, mf.Gaussian(3), activation=mf.LeakyReLU(0.2))
    with mf.load(tmp_path / "l.h5") as traj:
        _assert_same_run(traj, mf.simulate(problem, build_init(cfg), t_max=1.0, dt=0.1, save_every=2,
                                           backend="numpy"))


DIGITS = """
[data]
kind = "sklearn"
name = "digits"
n_test = 297
seed = 3
[problem]
loss = "cross_entropy"
penalty = {{kind = "weight_decay", strength = {strength}}}
[init]
kind = "gaussian"
m = 12
seed = 2
[run]
t_max = 0.6
dt = 0.2
save_every = 1
backend = "numpy"
output = "{output}"
"""


def test_digits_cross_entropy_flow_with_a_penalty(tmp_path):
    """The digits flow with the cross-entropy loss (10 outputs: the init draws K output weights) and weight decay."""
    cfg = _write(tmp_path / "d.toml", DIGITS.format(output=tmp_path / "d.h5", strength=1e-2))
    assert main(["run", cfg, "--no-progress"]) == 0
    data = from_sklearn("digits", n_test=297, seed=3)
    problem = mf.EmpiricalProblem(data, loss="cross_entropy", penalty=("weight_decay", 1e-2))
    mu0 = mf.init.gaussian(12, 64, seed=2, outputs=10)
    reference = mf.simulate(problem, mu0, t_max=0.6, dt=0.2, save_every=1, backend="numpy")
    with mf.load(tmp_path / "d.h5") as traj:
        _assert_same_run(traj, reference)
        assert traj.final.state().shape == (12, 10 + 64) and "test_accuracy" in traj.observables
    unpenalised = mf.simulate(mf.EmpiricalProblem(data, loss="cross_entropy"), mu0, t_max=0.6, dt=0.2,
                              save_every=1, backend="numpy")
    assert not np.array_equal(unpenalised.final.state(), reference.final.state())


LANGEVIN = """
[data]
kind = "npz"
path = "{data}"
[problem]
loss = "logistic"
bias = true
activation = {{kind = "tanh", tol = 1e-8, max_order = 60}}
[init]
kind = "gaussian"
m = 16
seed = 4
bias_std = 0.5
[dynamics]
kind = "langevin"
temperature = 1e-2
weight_decay = 1e-2
seed = 7
diagnostic = false
[run]
t_max = 0.5
dt = 0.1
solver = "euler"
save_every = 1
backend = "numpy"
output = "{output}"
"""


def test_langevin_run_on_a_data_set_file(tmp_path):
    """Langevin dynamics on an .npz data set (with a held-out split), a tanh unit with its options and biases."""
    rng = np.random.default_rng(0)
    x, x_test = rng.standard_normal((40, 3)), rng.standard_normal((10, 3))
    y, y_test = np.sign(x[:, 0] + 0.1), np.sign(x_test[:, 0] + 0.1)
    np.savez(tmp_path / "toy.npz", x=x, y=y, x_test=x_test, y_test=y_test)
    cfg = _write(tmp_path / "l.toml", LANGEVIN.format(data=tmp_path / "toy.npz", output=tmp_path / "l.h5"))
    assert main(["run", cfg, "--no-progress"]) == 0
    problem = mf.EmpiricalProblem(DataSet(x, y, x_test, y_test, name="toy"), loss="logistic", bias=True,
                                  activation=UNITS.create("tanh", tol=1e-8, max_order=60))
    mu0 = mf.init.gaussian(16, 3, seed=4, bias_std=0.5)
    dynamics = Langevin(temperature=1e-2, weight_decay=1e-2, seed=7, diagnostic=False)
    reference = mf.simulate(problem, mu0, t_max=0.5, dt=0.1, solver="euler", save_every=1, backend="numpy",
                            dynamics=dynamics)
    with mf.load(tmp_path / "l.h5") as traj:
        _assert_same_run(traj, reference)
        assert traj.problem_spec["data"]["sha1"] == problem.data.checksum()


SAMPLED = """
[data]
kind = "sample"
n = 60
seed = 5
n_test = 20
[inputs]
law = "sphere"
d = 4
[target]
kind = "cubic"
seed = 1
[problem]
output_scale = 3.0
activation = {{kind = "leaky_relu", slope = 0.2}}
[init]
kind = "doubled"
base = "{base}"
m = 12
seed = 6
[run]
t_max = 0.5
dt = 0.1
save_every = 1
backend = "numpy"
output = "{output}"
"""


@pytest.mark.parametrize("base", ["gaussian", "sign_sphere"])
def test_samples_of_a_population_problem_and_the_doubled_start(tmp_path, base):
    """[data] kind = "sample" draws the data set from [inputs] × [target]; the doubled start wraps its base
    initialisation (f(μ0) = 0, so the scaled predictor starts at zero); output_scale and the unit's option."""
    cfg = _write(tmp_path / "s.toml", SAMPLED.format(base=base, output=tmp_path / "s.h5"))
    assert main(["run", cfg, "--no-progress"]) == 0
    inputs = mf.Sphere(4)
    z = np.random.default_rng(1).standard_normal(4)  # z = "random": a unit vector from the target's seed
    target = mf.CubicTarget.normalized(z / np.linalg.norm(z), inputs)
    data = sample(mf.Problem(target, inputs), 60, seed=5, n_test=20)
    problem = mf.EmpiricalProblem(data, activation=mf.LeakyReLU(0.2), output_scale=3.0)
    mu0 = mf.init.doubled(INITS[base](6, 4, seed=6))
    assert float(np.abs(mu0.predict(data.x)).max()) < 1e-15  # zero up to the round-off of a sum of 12 terms ~1
    reference = mf.simulate(problem, mu0, t_max=0.5, dt=0.1, save_every=1, backend="numpy")
    with mf.load(tmp_path / "s.h5") as traj:
        _assert_same_run(traj, reference)


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory):
    """A real ``dask scheduler`` process and one ``dask worker`` process, started here and stopped at the end."""
    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--dashboard-address", ":0", "--scheduler-file", str(info)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    worker = None
    try:
        deadline = time.monotonic() + 120
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--nworkers", "1", "--no-nanny", "--dashboard-address", ":0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=120)
        yield address
    finally:
        for proc in (worker, scheduler):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


CONIC_SWEEP = """
name = "conic"
[inputs]
d = 3
[target]
kind = "teacher"
k = 2
seed = 0
[init]
kind = "sign_sphere"
m = 8
[dynamics]
kind = "conic"
[run]
t_max = 0.5
dt = 0.1
save_every = 5
backend = "numpy"
[sweep]
output_dir = "{out}"
[sweep.grid]
"init.m" = [6, 10]
"init.seed" = [0, 1]
[sweep.zip]
"dynamics.alpha" = [0.5, 2.0]
"dynamics.beta" = [1.0, 0.25]
"""


def test_conic_sweep_over_alpha_beta_width_and_seed_on_a_running_scheduler(tmp_path, dask_scheduler, capsys):
    """(α, β) pairs × width × seed: 8 runs on the workers of an existing scheduler, each the Python run."""
    out = tmp_path / "runs"
    cfg = _write(tmp_path / "sweep.toml", CONIC_SWEEP.format(out=out))
    assert main(["sweep", cfg, "--no-progress", "--scheduler", dask_scheduler]) == 0
    assert "8 runs: 8 completed" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["runs"]) == 8
    teacher = np.random.default_rng(0).standard_normal((2, 3))  # k = 2 unit neurons drawn from the target's seed
    teacher /= np.linalg.norm(teacher, axis=1, keepdims=True)
    seen = set()
    for run in manifest["runs"]:
        o = run["overrides"]
        seen.add((o["dynamics.alpha"], o["dynamics.beta"], o["init.m"], o["init.seed"]))
        problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], teacher), mf.Gaussian(3))
        mu0 = mf.init.sign_sphere(o["init.m"], 3, seed=o["init.seed"])
        reference = mf.simulate(problem, mu0, t_max=0.5, dt=0.1, save_every=5, backend="numpy",
                                dynamics=Conic(alpha=o["dynamics.alpha"], beta=o["dynamics.beta"]))
        with mf.load(run["path"]) as traj:
            _assert_same_run(traj, reference)
    assert seen == {(a, b, m, s) for a, b in ((0.5, 1.0), (2.0, 0.25)) for m in (6, 10) for s in (0, 1)}


CLUSTER = """
[cluster]
jobqueue = "{kind}"
cores = 3
memory = "5GB"
walltime = "01:30:00"
queue = "short"
account = "meanfield"
jobs = 4
"""


@pytest.mark.parametrize("kind, lines", [
    ("slurm", ["#SBATCH -p short", "#SBATCH -A meanfield", "#SBATCH -t 01:30:00", "#SBATCH --cpus-per-task=3"]),
    ("pbs", ["#PBS -q short", "#PBS -A meanfield", "#PBS -l walltime=01:30:00", "#PBS -l select=1:ncpus=3:mem="])])
def test_job_script_of_a_batch_system(tmp_path, capsys, kind, lines):
    """``--job-script`` prints what each job of a [cluster] sweep runs: the batch directives of its options and a
    Dask worker of that many threads and that much memory (no queue needed)."""
    out = tmp_path / "runs"
    cfg = _write(tmp_path / "sweep.toml", CONIC_SWEEP.format(out=out) + CLUSTER.format(kind=kind))
    assert main(["sweep", cfg, "--job-script"]) == 0
    script = capsys.readouterr().out
    for line in lines:
        assert line in script, (line, script)
    # One single-threaded worker process per core (as the local cluster runs), sharing the job's memory: 5 GB / 3.
    worker = next(line for line in script.splitlines() if "distributed.cli.dask_worker" in line)
    assert worker.startswith(sys.executable) and "--nworkers 3" in worker and "--nthreads 1" in worker
    assert f"--memory-limit {5e9 / 3 / 2**30:.2f}GiB" in worker
    assert not out.exists()
    # No sbatch/qsub here: running the sweep says so in one line, before anything is written.
    assert main(["sweep", cfg, "--no-progress"]) == 2
    assert "not on this machine's PATH" in _one_line(capsys.readouterr().err)
    assert not out.exists()


BAD_VALUES = [  # (where the key goes in TEACHER's extra text, what must be named in the error)
    ('dynamics = "conik"', "[run] dynamics"),
    ('[dynamics]\nkind = "langevine"', "[dynamics] kind"),
    ('[dynamics]\nkind = "langevin"', "[dynamics] needs temperature"),
    ('[dynamics]\nkind = "langevin"\ntemperature = -1.0', "[dynamics] Langevin temperature"),
    ('[dynamics]\nkind = "conic"\ngamma = 1.0', "unknown keys ['gamma'] in [dynamics]"),
    ('[dynamics]\nkind = "conic"\nalpha = "big"', "[dynamics] alpha"),
    ('[problem]\nloss = "logistic"', "[problem] keys ['loss'] apply to a problem on a data set"),
    ('[problem]\npenalty = {kind = "weight_decay"}', "[problem] penalty 'weight_decay' needs strength"),
    ('[problem]\npenalty = {kind = "weight_decay", strength = -1.0}', "[problem] penalty"),
    ('[problem]\npenalty = "l1"', "[problem] penalty"),
    ('[problem]\nactivation = {kind = "tanh", tol = "small"}', "[problem] activation 'tanh' tol"),
    ('[problem]\nactivation = {kind = "gelu", order = 3}', "[problem] activation 'gelu' takes"),
    ('[problem]\noutput_scale = 0.0', "[problem] output_scale"),
]


@pytest.mark.parametrize("extra, names", BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_bad_values_are_one_line_naming_table_and_key(tmp_path, capsys, extra, names):
    cfg = _write(tmp_path / "bad.toml", TEACHER.format(output=tmp_path / "x.h5", extra=extra))
    assert main(["run", cfg, "--no-progress"]) == 2
    assert names in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "x.h5").exists()


def test_a_value_that_the_run_function_refuses_names_the_run_table(tmp_path, capsys):
    text = TEACHER.format(output=tmp_path / "x.h5", extra='kind = "sgd"\neta = 0.1\ndtype = "float16"')
    assert main(["run", _write(tmp_path / "sgd.toml", text.replace("dt = 0.1\n", "")), "--no-progress"]) == 2
    assert "[run] dtype must be" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "x.h5").exists()


DATA_BAD = [('name = "digits"', 'name = "digitz"', "[data] name 'digitz'"),
            ('n_test = 297', 'n_test = 5000', "[data] n_test = 5000"),
            ('kind = "sklearn"', 'kind = "npz"\npath = "nowhere.npz"', "[data] keys ['n_test', 'seed']"),
            ('kind = "gaussian"', 'kind = "gausian"', "[init] kind"),
            ('seed = 2', 'a_scale = 2.0', "[init] keys ['a_scale']")]


def test_bad_values_through_the_command(tmp_path):
    """The same through ``python -m meanfield``: the process's stderr and exit status."""
    for old, new, names in DATA_BAD:
        text = DIGITS.format(output=tmp_path / "x.h5", strength=1e-2)
        assert old in text
        cfg = _write(tmp_path / "bad.toml", text.replace(old, new, 1))
        proc = subprocess.run([sys.executable, "-m", "meanfield", "run", cfg, "--no-progress"], capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert names in _one_line(proc.stderr), proc.stderr
        assert not (tmp_path / "x.h5").exists()


def test_names_and_keys_come_from_the_registries():
    """The choices are the registries' names (``--backend triton`` was refused), the keys the entries' parameters."""
    for name in ("auto", *BACKENDS.names()):
        assert build_parser().parse_args(["run", "c.toml", "--backend", name]).backend == name
    assert "triton" in BACKENDS.names()
    assert all(f"'{name}'" in schema("dynamics")["kind"] for name in DYNAMICS.names())
    assert all(f"'{name}'" in schema("init")["kind"] for name in INITS.names())
    assert all(f"'{name}'" in schema("data")["kind"] for name in DATA.names())
    assert set(schema("dynamics", "langevin")) == {"kind", "temperature", "weight_decay", "seed", "diagnostic",
                                                   "diagnostic_particles"}
    assert schema("dynamics", "langevin")["temperature"] == "number, required"
    assert set(schema("init", "doubled")) == {"kind", "m", "seed", "base", "a_std", "b_std", "bias_std", "outputs"}
    assert set(schema("data", "sklearn")) == {"kind", "name", "classes", "n_test", "seed", "standardize"}
    help_text = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    for plural in ("units", "losses", "dynamics", "targets", "inits", "data"):
        assert plural + ": " in help_text


def test_target_kinds_are_named_for_what_they_build():
    """``radial`` builds the RadialTarget |Qᵀx|; ``multi_index``, its former name, still reads, and says so."""
    base = {"inputs": {"d": 5}, "init": {"m": 4}, "run": {"t_max": 1.0, "dt": 0.1}}
    radial = build_problem(dict(base, target={"kind": "radial", "d_hidden": 2})).target
    assert isinstance(radial, mf.RadialTarget)
    with pytest.warns(FutureWarning, match="former name of 'radial'"):
        old = build_problem(dict(base, target={"kind": "multi_index", "d_hidden": 2})).target
    assert type(old) is type(radial) and np.array_equal(old.Q, radial.Q)


def test_configuration_page_is_up_to_date():
    """docs/guide/configuration.md is what docs/apigen.py writes from the registries (the site build rewrites it)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
    import apigen

    assert apigen.CONFIGURATION.read_text() == apigen.configuration_page(), \
        "docs/guide/configuration.md is stale: run `python -c 'import apigen; apigen.write_configuration()'` in docs/"


def test_a_sweep_varies_keys_of_any_table():
    """Dotted keys reach dynamics parameters and the options of a [problem] component; each run is checked in full."""
    from meanfield.sweep import expand_sweep

    cfg = {
        "inputs": {"d": 3}, "target": {"kind": "teacher"}, "init": {"m": 4},
        "problem": {"penalty": {"kind": "variation_norm", "strength": 1e-3}},
        "dynamics": {"kind": "langevin", "temperature": 1e-3},
        "run": {"t_max": 1.0, "dt": 0.5},
        "sweep": {"output_dir": "out", "grid": {"dynamics.temperature": [1e-3, 1e-2],
                                                "problem.penalty.strength": [1e-3, 1e-1]}}}
    runs = expand_sweep(cfg)
    assert {(r["config"]["dynamics"]["temperature"], r["config"]["problem"]["penalty"]["strength"]) for r in runs} \
        == {(t, s) for t in (1e-3, 1e-2) for s in (1e-3, 1e-1)}
    assert {build_problem(r["config"]).penalty.strength for r in runs} == {1e-3, 1e-1}
    cfg["sweep"]["grid"] = {"dynamics.temperature": [1e-3, -1.0]}
    with pytest.raises(ValueError, match=r"sweep run .*\[dynamics\] Langevin temperature must be >= 0"):
        expand_sweep(cfg)
    cfg["problem"]["activation"] = "tanh"
    cfg["sweep"]["grid"] = {"problem.activation.tol": [1e-8]}
    with pytest.raises(ValueError, match="problem.activation is 'tanh', not a table"):
        expand_sweep(cfg)


def test_fixed_output_committee_machine_of_erf_units(tmp_path):
    """A soft committee machine (Saad & Solla): erf student and teacher, the student's output weights fixed — a
    configuration key of [problem], run by the command and equal bit for bit to the same run from Python, with every
    output weight where it started."""
    text = TEACHER.format(output=tmp_path / "scm.h5", extra="").replace(
        'kind = "teacher"\nk = 2', 'kind = "teacher"\nk = 2\nactivation = "erf"')
    text += '[problem]\nactivation = "erf"\noutput = "fixed"\n'
    cfg = _write(tmp_path / "scm.toml", text)
    proc = subprocess.run([sys.executable, "-m", "meanfield", "run", cfg, "--no-progress"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    problem, mu0 = build_problem(load_config(cfg)), build_init(load_config(cfg))
    assert problem.unit == UNITS.create("erf") and problem.spec()["output"] == "fixed"
    reference = mf.simulate(problem, mu0, t_max=1.0, dt=0.1, save_every=2, backend="numpy")
    with mf.load(tmp_path / "scm.h5") as traj:
        _assert_same_run(traj, reference)
        np.testing.assert_array_equal(traj.final.a, mu0.a)
        assert not np.array_equal(traj.final.b, mu0.b) and traj.risk[-1] < traj.risk[0]
