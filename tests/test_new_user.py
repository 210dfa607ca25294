"""What a new user hit (issue 11): resume integrity, damaged files, overwrite protection, SIGTERM, an interrupted
sweep, configuration and API errors, the thread policy, the README's API lines. Each test fails on the code before
the fix."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import SLOW_CONFIG

import meanfield as mf
from meanfield import threads
from meanfield.cli import main
from meanfield.io import TrajectoryFileError, file_status, recover

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
[inputs]
law = "gaussian"
d = 4
[target]
kind = "teacher"
k = 2
seed = {seed}
coefficients = {coef}
[init]
kind = "sign_sphere"
m = 16
seed = 1
[run]
t_max = {t_max}
dt = 0.1
save_every = 2
backend = "numpy"
output = "{output}"
"""

ENDLESS = SLOW_CONFIG.replace("t_max = 40.0", "t_max = 100000.0")  # a horizon no test reaches


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _write(path, text):
    path.write_text(text)
    return str(path)


def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    return lines[0]


def _teacher(U):
    return mf.Problem(mf.TeacherNetwork([1.0, 0.5], U), mf.Gaussian(4))


# -- resume must be the same problem ----------------------------------------------------------------------------
def test_cli_resume_with_a_changed_target_is_refused_and_the_file_is_untouched(tmp_path, capsys):
    out = tmp_path / "run.h5"
    cfg = _write(tmp_path / "a.toml", CONFIG.format(seed=0, coef=1.0, t_max=1.0, output=out))
    assert main(["run", cfg, "--no-progress"]) == 0
    before = _sha(out)
    capsys.readouterr()
    for seed, coef, names in ((1, 1.0, ["target array U differs"]), (0, 2.0, ["target array c differs"])):
        changed = _write(tmp_path / "b.toml", CONFIG.format(seed=seed, coef=coef, t_max=2.0, output=out))
        assert main(["run", changed, "--resume", "--no-progress"]) == 2
        line = _one_line(capsys.readouterr().err)
        assert all(name in line for name in names) and "t_max" in line  # says what may change
        assert _sha(out) == before and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.lock"))
    # A documented change (t_max) is accepted, and the continued run equals a longer uninterrupted one.
    longer = _write(tmp_path / "c.toml", CONFIG.format(seed=0, coef=1.0, t_max=2.0, output=out))
    assert main(["run", longer, "--resume", "--no-progress"]) == 0
    reference = tmp_path / "ref.h5"
    assert main(["run", longer, "--output", str(reference), "--no-progress"]) == 0
    with mf.load(out) as resumed, mf.load(reference) as ref:
        np.testing.assert_array_equal(resumed.risk, ref.risk)
        np.testing.assert_array_equal(resumed.final.state(), ref.final.state())


def test_python_resume_compares_every_part_of_the_problem(tmp_path):
    path = tmp_path / "flow.h5"
    U = np.eye(4)[:2]
    mu0 = mf.init.sign_sphere(8, 4, seed=0)
    mf.simulate(_teacher(U), mu0, t_max=0.4, dt=0.1, path=path).close()
    rotated = np.array([[0.0, 1.0, 0, 0], [1.0, 0, 0, 0]])  # same shapes, same spec, another teacher
    with pytest.raises(ValueError, match="target array U differs"):
        mf.simulate(_teacher(rotated), mu0, t_max=0.8, dt=0.1, path=path, resume=True)
    with pytest.raises(ValueError, match="mu0_sha1"):
        mf.simulate(_teacher(U), mf.init.sign_sphere(8, 4, seed=1), t_max=0.8, dt=0.1, path=path, resume=True)
    heavier = mf.ParticleMeasure(mu0.a, mu0.b, np.arange(1, 9) / 36)
    with pytest.raises(ValueError, match="particle masses differ"):
        mf.simulate(_teacher(U), heavier, t_max=0.8, dt=0.1, path=path, resume=True)
    leaky = mf.Problem(mf.TeacherNetwork([1.0, 0.5], U), mf.Gaussian(4), activation="leaky_relu", slope=0.1)
    with pytest.raises(ValueError, match=r"problem\.activation.*problem\.slope"):
        mf.simulate(leaky, mu0, t_max=0.8, dt=0.1, path=path, resume=True)


def test_sgd_and_mlp_resume_refuse_another_start_or_other_data(tmp_path, monkeypatch):
    from meanfield import mlp
    from meanfield.sgd import train

    problem = _teacher(np.eye(4)[:2])
    path = tmp_path / "sgd.h5"
    train(problem, mf.init.sign_sphere(8, 4, seed=0), t_max=0.2, eta=0.1, path=path).close()
    with pytest.raises(ValueError, match="mu0_sha1"):
        train(problem, mf.init.sign_sphere(8, 4, seed=5), t_max=0.4, eta=0.1, path=path, resume=True)

    path = tmp_path / "mlp.h5"
    mlp.train_mlp(width=8, epochs=1, path=path).close()
    real = mlp.load_dataset

    def shifted(*args, **kwargs):  # the same settings, other data (e.g. another scikit-learn release)
        x_tr, y_tr, x_te, y_te = real(*args, **kwargs)
        return x_tr + 1e-3, y_tr, x_te, y_te

    monkeypatch.setattr(mlp, "load_dataset", shifted)
    with pytest.raises(ValueError, match="data_sha1"):
        mlp.train_mlp(width=8, epochs=2, path=path, resume=True)


# -- damaged files --------------------------------------------------------------------------------------------
def _saved_run(tmp_path, name="run.h5"):
    path = tmp_path / name
    problem = _teacher(np.eye(4)[:2])
    mu0 = mf.init.sign_sphere(64, 4, seed=0)
    mf.simulate(problem, mu0, t_max=3.0, dt=0.1, save_every=1, path=path).close()
    return path, problem, mu0


def test_resuming_a_truncated_file_is_one_line_and_recover_keeps_the_intact_snapshots(tmp_path, capsys):
    path, problem, mu0 = _saved_run(tmp_path)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    with pytest.raises(TrajectoryFileError) as err:
        mf.simulate(problem, mu0, t_max=4.0, dt=0.1, save_every=1, path=cut, resume=True)
    message = str(err.value)
    assert "\n" not in message and "recover" in message
    found = re.search(r"its first (\d+) of (\d+) snapshots are intact", message)
    intact = int(found.group(1))
    assert 0 < intact < 31 and int(found.group(2)) == 31
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.h5", "run.h5"]  # no .tmp, no .lock left
    # The CLI says the same in one line (exit 2), and recovers.
    assert main(["run", _write(tmp_path / "c.toml", CONFIG.format(seed=0, coef=1.0, t_max=1.0, output=cut)),
                 "--resume", "--no-progress"]) == 2
    _one_line(capsys.readouterr().err)
    assert main(["recover", str(cut)]) == 0
    recovered = tmp_path / "cut.recovered.h5"
    with mf.load(recovered) as rec, mf.load(path) as original:
        assert len(rec) == intact
        np.testing.assert_array_equal(rec.risk, original.risk[:intact])
        np.testing.assert_array_equal(np.asarray(rec.b), np.asarray(original.b)[:intact])
        np.testing.assert_array_equal(rec.final.b, np.asarray(original.b[intact - 1]))
    assert main(["recover", str(cut)]) == 2  # never overwrites
    assert "exists" in _one_line(capsys.readouterr().err)


def test_a_damaged_last_snapshot_recovers_to_a_resumable_file(tmp_path):
    path, problem, mu0 = _saved_run(tmp_path)
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(path.read_bytes())
    with h5py.File(damaged, "r") as h:  # where the last snapshot's compressed particle chunk lies
        info = h["particles/b"].id.get_chunk_info_by_coord((30, 0, 0))
    with open(damaged, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * info.size)
    with pytest.raises(TrajectoryFileError, match="snapshots 30 to 30 cannot be read, the 30 before are intact"):
        mf.simulate(problem, mu0, t_max=3.0, dt=0.1, save_every=1, path=damaged, resume=True)
    out = recover(damaged)
    assert file_status(out) == "interrupted"  # the backup checkpoint belongs to the intact prefix
    with mf.simulate(problem, mu0, t_max=3.0, dt=0.1, save_every=1, path=out, resume=True) as resumed, \
            mf.load(path) as original:
        np.testing.assert_array_equal(resumed.risk, original.risk)
        np.testing.assert_array_equal(resumed.final.state(), original.final.state())


def test_overwrite_refuses_what_is_not_a_trajectory(tmp_path):
    problem, mu0 = _teacher(np.eye(4)[:2]), mf.init.sign_sphere(4, 4, seed=0)
    text = tmp_path / "notes.h5"
    text.write_text("my notes")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h:
        h["x"] = np.arange(3)
    folder = tmp_path / "folder.h5"
    folder.mkdir()
    for target, what in ((text, "not an HDF5 file"), (foreign, "not a meanfield trajectory"),
                         (folder, "not a regular file")):
        before = None if target.is_dir() else _sha(target)
        with pytest.raises(FileExistsError, match=what):
            mf.simulate(problem, mu0, t_max=0.2, dt=0.1, path=target, overwrite=True)
        assert target.is_dir() or _sha(target) == before
    ours = tmp_path / "ours.h5"
    mf.simulate(problem, mu0, t_max=0.2, dt=0.1, path=ours).close()
    mf.simulate(problem, mu0, t_max=0.3, dt=0.1, path=ours, overwrite=True).close()
    with mf.load(ours) as traj:
        assert traj.times[-1] == pytest.approx(0.3)


# -- signals ----------------------------------------------------------------------------------------------------
def _cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "meanfield", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_until(predicate, proc, timeout=90):
    start = time.time()
    while time.time() - start < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"the process ended early: {proc.communicate()}")
        try:
            if predicate():
                return
        except (TrajectoryFileError, OSError, KeyError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError("timed out")


def _has_snapshots(path, n):
    if not path.exists():
        return False
    with mf.load(path) as traj:
        return len(traj) >= n


def test_sigterm_closes_the_run_as_interrupted_and_says_how_to_resume(tmp_path):
    out = tmp_path / "endless.h5"
    cfg = _write(tmp_path / "endless.toml", ENDLESS.format(output=out))
    proc = _cli("run", cfg, "--no-progress")
    try:
        _wait_until(lambda: _has_snapshots(out, 2), proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        _, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    line = _one_line(err)
    assert "SIGTERM" in line and f"meanfield run {cfg} --resume" in line
    assert not Path(str(out) + ".lock").exists()
    with h5py.File(out, "r") as h:  # closed cleanly: plain readers open it
        assert h.attrs["status"] == "interrupted"
        assert json.loads(h.attrs["info"])["interrupted_by"] == "SIGTERM"
        t_stop = float(h["series/time"][-1])
    # It resumes bit-identically (to a horizon just past the stop, compared with an uninterrupted run).
    from meanfield.config import build_init, build_problem, load_config, run_options

    conf = load_config(cfg)
    options = dict(run_options(conf), t_max=t_stop + 0.5)
    with mf.simulate(build_problem(conf), build_init(conf), path=out, resume=True, **options) as done:
        reference = mf.simulate(build_problem(conf), build_init(conf), **options)
        np.testing.assert_array_equal(done.final.state(), reference.final.state())
        np.testing.assert_array_equal(done.risk, reference.risk)


def test_ctrl_c_during_a_sweep_stops_the_cluster_and_marks_the_runs(tmp_path):
    pytest.importorskip("dask.distributed")
    out_dir = tmp_path / "sweep"
    cfg = ENDLESS.format(output="unused").replace('output = "unused"\n', "")
    cfg += f'[sweep]\noutput_dir = "{out_dir}"\n[sweep.grid]\n"init.seed" = [0, 1, 2]\n'
    path = _write(tmp_path / "sweep.toml", cfg)
    proc = _cli("sweep", path, "--no-progress", start_new_session=True)
    try:
        # Two workers, three runs: wait until two runs (whichever Dask started) have saved a snapshot.
        _wait_until(lambda: sum(_has_snapshots(out_dir / f"seed-{s}.h5", 1) for s in range(3)) == 2, proc,
                    timeout=120)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        assert proc.wait(timeout=90) == 130
        _, err = proc.communicate()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    line = _one_line(err)
    assert "sweep interrupted by SIGINT" in line and "again to resume" in line
    manifest = json.loads((out_dir / "manifest.json").read_text())
    statuses = {run["id"]: run["status"] for run in manifest["runs"]}
    started = {f"seed-{s}" for s in range(3) if (out_dir / f"seed-{s}.h5").exists()}
    assert len(started) == 2 and all(statuses[i] == "interrupted" for i in started)
    assert [statuses[i] for i in statuses if i not in started] == ["pending"]
    assert not list(out_dir.glob("*.lock"))
    for run_id in started:
        with h5py.File(out_dir / f"{run_id}.h5", "r") as h:  # each closed by its own run
            assert h.attrs["status"] == "interrupted"


# -- configuration and API errors -----------------------------------------------------------------------------
BAD_CONFIGS = [
    ('d = 4', 'd = "ten"', "[inputs] d"),
    ('m = 16', 'm = 64.5', "[init] m"),
    ('d = 4\n', '', "[inputs] needs d"),
    ('m = 16\n', '', "[init] needs m"),
    ('k = 2', 'k = "two"', "[target] k"),
    ('dt = 0.1', 'dt = "0.1"', "[run] dt"),
    ('dt = 0.1', 'dt = 0.1\nsolver = "rk45"', "[run] solver"),
    ('m = 16', 'm = 0', "[init] m"),
    ('dt = 0.1', 'dt = 0.1\neta = 0.1', "[run] keys ['eta']"),
    ('law = "gaussian"', 'law = "laplace"', "[inputs] law"),
    ('coefficients = 1.0', 'coefficients = [1.0, 2.0, 3.0]', "[target]"),
]


@pytest.mark.parametrize("old, new, names", BAD_CONFIGS)
def test_every_config_problem_is_one_line_naming_table_and_key(tmp_path, capsys, old, new, names):
    text = CONFIG.format(seed=0, coef=1.0, t_max=1.0, output=tmp_path / "x.h5")
    assert old in text
    cfg = _write(tmp_path / "bad.toml", text.replace(old, new, 1))
    assert main(["run", cfg, "--no-progress"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert names in line, line
    assert not (tmp_path / "x.h5").exists()


def test_a_rising_risk_is_divergence_and_short_runs_are_said(tmp_path):
    problem = _teacher(np.eye(4)[:2])
    mu0 = mf.init.sign_sphere(16, 4, seed=0)
    with pytest.raises(mf.FlowDivergedError, match=r"at step 1 .*the risk rose from"):
        mf.simulate(problem, mu0, t_max=20.0, dt=6.0, solver="euler", path=tmp_path / "x.h5")
    assert file_status(tmp_path / "x.h5") == "diverged"
    with pytest.warns(UserWarning, match="shorter than dt"):
        traj = mf.simulate(problem, mu0, t_max=0.05, dt=0.1)
    assert traj.times[-1] == pytest.approx(0.05)


def test_python_api_errors_are_one_line():
    from meanfield.sgd import TwoLayerNetwork

    mu = mf.init.sign_sphere(3, 2, seed=0)
    problem = mf.Problem(mf.LinearTarget(np.ones(2)), mf.Gaussian(d=2))
    cases = [
        (lambda: mf.get_backend("torch", device="gpu"), "device 'gpu' is not a torch device"),
        (lambda: TwoLayerNetwork.from_measure(mu, device="gpu"), "device 'gpu' is not a torch device"),
        (lambda: mf.get_backend("numpy", device="cuda"), "backend 'numpy' takes only"),
        (lambda: mu.predict(np.ones((2, 3))), r"shape \(n, 2\)"),
        (lambda: problem.predict(mu, np.ones(2)), r"shape \(n, 2\)"),
        (lambda: mf.simulate(problem, mu, t_max=0.2, dt=0.1, observables={"bad": lambda m: "x"}), "observable 'bad'"),
    ]
    for call, match in cases:
        with pytest.raises((ValueError, TypeError), match=match) as err:
            call()
        assert "\n" not in str(err.value)
    with pytest.warns(UserWarning, match="sum to 3, not 1"):
        weighted = mf.ParticleMeasure([1.0, 1.0], [[1.0], [2.0]], weights=[1.0, 2.0])
    np.testing.assert_allclose(weighted.weights, [1 / 3, 2 / 3], rtol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mf.ParticleMeasure([1.0, 1.0], [[1.0], [2.0]], weights=[0.25, 0.75])


def test_version_and_progress_bar(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"meanfield {mf.__version__}"
    problem = mf.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(d=3))
    mf.simulate(problem, mf.init.sign_sphere(8, 3, seed=0), t_max=1.0, dt=0.1, progress=True)
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "t = 1/1" in last and "0.9999" not in last, last


# -- thread policy ----------------------------------------------------------------------------------------------
def test_thread_policy_limits_blas_and_sees_a_busy_core(monkeypatch):
    from threadpoolctl import threadpool_info

    with threads.blas_threads(1) as limit:
        assert limit == 1
        assert all(lib["num_threads"] == 1 for lib in threadpool_info() if lib["user_api"] == "blas")
    with pytest.raises(ValueError, match="thread policy"):
        threads.set_policy("many")
    monkeypatch.setenv("MEANFIELD_BLAS_THREADS", "3")
    assert threads.get_policy() == 3
    monkeypatch.setenv("MEANFIELD_BLAS_THREADS", "lots")
    with pytest.raises(ValueError, match="MEANFIELD_BLAS_THREADS"):
        threads.get_policy()
    # A busy process takes a core away from what "auto" gives BLAS. On 64 cores (counted as such here) the floor of
    # one core is never reached, so the drop is visible however loaded the machine is: the most idle of ten counts
    # before the spinner against the least idle of ten while it runs (the spinner is always runnable; the other
    # processes would have to be less busy at all ten later counts than at the least busy earlier one: for a load
    # that fluctuates without a trend, a chance of 1 in C(20, 10) ≈ 2·10⁵).
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    idle = max(threads.idle_cores() for _ in range(10))
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        busy = min(threads.idle_cores() for _ in range(10))
    finally:
        spinner.kill()
        spinner.wait()
    assert busy <= idle - 1, (idle, busy)


BLAS_POLICY_SCRIPT = """
import json, sys
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
import meanfield as mf
from meanfield import threads

def blas():
    return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")

threadpool_limits(2, user_api="blas")          # BLAS as configured outside the runs: two threads
problem = mf.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(3))
seen = []

def run():
    seen.clear()
    traj = mf.simulate(problem, mf.init.sign_sphere(8, 3, seed=0), t_max=0.2, dt=0.1, backend="numpy",
                       observables={"blas": lambda mu: seen.append(blas()) or 0.0})
    return [traj.info.get("blas_threads"), max(seen)]

out = {"environment": run()}
threads.set_policy(1)
out["one"] = run()
threads.set_policy("all")
out["all"] = run()
out["after"] = blas()
print(json.dumps(out))
"""


@pytest.mark.parametrize("environment", ["all", "1"])
def test_blas_thread_policy_all_leaves_blas_as_configured_and_a_number_limits_it(environment):
    """Inside a run (an observable reads the BLAS pools), in a fresh process whose BLAS is set to two threads:
    MEANFIELD_BLAS_THREADS=all leaves the two (and records no limit), =1 limits BLAS to one thread and records it;
    set_policy(1) and set_policy("all") override the environment likewise; after the runs BLAS is as before."""
    env = dict(os.environ, MEANFIELD_BLAS_THREADS=environment)
    done = subprocess.run([sys.executable, "-c", BLAS_POLICY_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["environment"] == ([None, 2] if environment == "all" else [1, 1])
    assert out["one"] == [1, 1] and out["all"] == [None, 2] and out["after"] == 2


# -- plots, subspaces and the README ----------------------------------------------------------------------------
def test_loaded_trajectories_know_their_hidden_subspace_and_the_plot_command_draws_it(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    U = np.array([[1.0, 1.0, 0, 0], [0, 1.0, 0, 1.0]])
    problem = mf.Problem(mf.TeacherNetwork([1.0, 0.5], U), mf.Gaussian(4))
    path = tmp_path / "t.h5"
    mf.simulate(problem, mf.init.sign_sphere(16, 4, seed=0), t_max=0.4, dt=0.1, path=path).close()
    with mf.load(path) as traj:
        H = traj.hidden_subspace()
        # span(U): the orthogonal projector onto H equals the one built from U by least squares.
        P = U.T @ np.linalg.solve(U @ U.T, U)
        np.testing.assert_allclose(H @ H.T, P, atol=1e-12)
        assert {"mass_pos", "angle_hist_pos"} <= set(traj.observables)  # recorded since the target names H
        from meanfield import plot

        ax = plot.particle_cloud(traj.final, subspace=H, t=float(traj.times[-1]))
        mu = traj.final
        drawn = np.concatenate([c.get_offsets() for c in ax.collections])
        expected = np.concatenate([((mu.a[:, None] * mu.b) @ H[:, :2])[sel] for sel in (mu.a > 0, mu.a <= 0)])
        np.testing.assert_allclose(drawn, expected, rtol=1e-12)
        assert ax.get_title() == "neurons at t = 0.4" and ax.get_xlabel() == "a·b on h1"
    assert main(["plot", str(path), "--out", str(tmp_path / "figs")]) == 0
    assert {p.name for p in (tmp_path / "figs").iterdir()} == {"risk.png", "particles.png", "alignment.png"}


def test_the_readme_api_lines_run_as_written():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## The API in five lines\n\n```python\n(.*?)```", readme, re.S).group(1)
    assert len(block.strip().splitlines()) == 5
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    traj = scope["traj"]
    assert traj.risk[-1] < 0.1 * traj.risk[0] and traj.hidden_subspace().shape == (20, 3)
