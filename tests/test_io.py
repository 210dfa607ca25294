"""HDF5 trajectories: round trip, errors, crash safety (SIGKILL), SIGINT, resume, a second writer, following."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import SLOW_CONFIG

import meanfield as mf
from meanfield.config import build_init, build_problem, load_config, run_options
from meanfield.io import FileBusyError, TrajectoryFileError, file_status


def _problem():
    return mf.Problem(mf.TeacherNetwork([1.0, 0.5], np.eye(4)[:2]), mf.Gaussian(4))


def _cli(*args, **kwargs):
    proc = subprocess.Popen([sys.executable, "-m", "meanfield", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)
    _STARTED.append(proc)
    return proc


_STARTED: list = []


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    """Every process a test started is killed when the test ends, passed or failed (an endless run left behind
    would hold its file's lock)."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _wait_for_snapshots(path, n, proc, timeout=60):
    """Follow a file being written (SWMR reader) until it holds n snapshots."""
    start = time.time()
    while time.time() - start < timeout:
        assert proc.poll() is None, proc.communicate()
        if path.exists():
            try:
                with mf.load(path) as traj:
                    if len(traj) >= n:
                        return len(traj)
            except (TrajectoryFileError, OSError, KeyError):
                pass  # the writer has not created the datasets yet
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not reach {n} snapshots")


def test_file_round_trip_equals_memory(tmp_path):
    problem, mu0 = _problem(), mf.init.sign_sphere(12, 4, seed=0)
    obs = {"w": lambda mu: (mu.weights * mu.a) @ mu.b, "mass": lambda mu: np.abs(mu.a).mean()}
    mem = mf.simulate(problem, mu0, t_max=2.0, dt=0.1, save_every=3, observables=obs)
    with mf.simulate(problem, mu0, t_max=2.0, dt=0.1, save_every=3, observables=obs, path=tmp_path / "r.h5") as f:
        np.testing.assert_array_equal(f.times, mem.times)
        np.testing.assert_array_equal(f.risk, mem.risk)
        np.testing.assert_array_equal(np.asarray(f.b), mem.b)
        np.testing.assert_array_equal(f.b[-1], mem.b[-1])
        np.testing.assert_array_equal(f.a[2:4], mem.a[2:4])
        np.testing.assert_array_equal(f.observables["w"][:], mem.observables["w"])
        np.testing.assert_array_equal(f.final.state(), mem.final.state())
        assert f.status == "completed" and f.b.shape == mem.b.shape
    # The documented layout, read with plain h5py.
    with h5py.File(tmp_path / "r.h5", "r") as h:
        assert h.attrs["format"] == "meanfield-trajectory" and h.attrs["format_version"] == 2
        assert json.loads(h.attrs["config"])["solver"] == "heun"
        np.testing.assert_array_equal(h["series/risk"][:], mem.risk)
        np.testing.assert_array_equal(h["particles/b"][-1], mem.b[-1])
        np.testing.assert_array_equal(h["problem/target/U"][:], problem.target.U)
        assert h["particles/b"].chunks == (1, 12, 4) and h["particles/b"].compression == "gzip"
        np.testing.assert_array_equal(h["checkpoint/b"][:], mem.final.b)  # the checkpoint: named arrays and a clock
        t, step, n_saved = h["checkpoint/clock"][:3]
        assert (t, step, n_saved) == (2.0, 20, len(mem.times))


def test_existing_output_is_never_overwritten_without_permission(tmp_path):
    path = tmp_path / "r.h5"
    mf.simulate(_problem(), mf.init.sign_sphere(4, 4, seed=0), t_max=0.5, dt=0.1, path=path).close()
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        mf.simulate(_problem(), mf.init.sign_sphere(4, 4, seed=1), t_max=0.5, dt=0.1, path=path)
    assert path.read_bytes() == before
    mf.simulate(_problem(), mf.init.sign_sphere(4, 4, seed=1), t_max=0.5, dt=0.1, path=path, overwrite=True).close()
    assert path.read_bytes() != before


def test_foreign_newer_and_truncated_files_give_clear_errors(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h:
        h["x"] = np.arange(3)
    with pytest.raises(TrajectoryFileError, match="not a meanfield trajectory"):
        mf.load(foreign)
    good = tmp_path / "good.h5"
    mf.simulate(_problem(), mf.init.sign_sphere(4, 4, seed=0), t_max=0.5, dt=0.1, path=good).close()
    newer = tmp_path / "newer.h5"
    shutil.copy(good, newer)
    with h5py.File(newer, "r+") as h:
        h.attrs["format_version"] = 99
    with pytest.raises(TrajectoryFileError, match="newer"):
        mf.load(newer)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(TrajectoryFileError, match="corrupt or truncated"):
        mf.load(truncated)
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(TrajectoryFileError, match="cannot be opened as HDF5"):
        mf.load(text)
    with pytest.raises(FileNotFoundError):
        mf.load(tmp_path / "missing.h5")


def test_resume_with_a_different_configuration_is_refused(tmp_path):
    path = tmp_path / "r.h5"
    mu0 = mf.init.sign_sphere(6, 4, seed=0)
    mf.simulate(_problem(), mu0, t_max=0.5, dt=0.1, path=path).close()
    with pytest.raises(ValueError, match="dt: file has 0.1, now 0.05"):
        mf.simulate(_problem(), mu0, t_max=1.0, dt=0.05, path=path, resume=True)
    with pytest.raises(ValueError, match="mu0_sha1"):
        mf.simulate(_problem(), mf.init.sign_sphere(6, 4, seed=1), t_max=1.0, dt=0.1, path=path, resume=True)
    assert file_status(path) == "completed"


@pytest.mark.parametrize("solver", ["heun", "bosh3"])
def test_extending_a_finished_run_is_bit_identical(tmp_path, solver):
    path = tmp_path / "r.h5"
    problem, mu0 = _problem(), mf.init.sign_sphere(10, 4, seed=2)
    mf.simulate(problem, mu0, t_max=1.0, dt=0.1, solver=solver, save_every=2, path=path).close()
    with mf.simulate(problem, mu0, t_max=2.5, dt=0.1, solver=solver, save_every=2, path=path, resume=True) as ext:
        full = mf.simulate(problem, mu0, t_max=2.5, dt=0.1, solver=solver, save_every=2)
        np.testing.assert_array_equal(ext.times, full.times)
        np.testing.assert_array_equal(ext.final.state(), full.final.state())
        np.testing.assert_array_equal(np.asarray(ext.b), full.b)


def test_sigkill_at_any_moment_then_resume_is_bit_identical(tmp_path):
    cfg_path = tmp_path / "slow.toml"
    out = tmp_path / "slow.h5"
    # 1200 steps, 25 saves: killed at >= 3 and >= 9 of them, a margin of 16 saves (~400 steps) for each kill to land
    # before the run ends.
    cfg_path.write_text(SLOW_CONFIG.format(output=out).replace("t_max = 40.0", "t_max = 12.0"))
    # Reference: the same configuration, uninterrupted, in this process.
    cfg = load_config(cfg_path)
    reference = mf.simulate(build_problem(cfg), build_init(cfg), **run_options(cfg))
    seen = 0
    for wait_for in (3, 6):  # killed twice, the second time after a resume
        proc = _cli("run", str(cfg_path), "--no-progress", *(["--resume"] if seen else []))
        seen = _wait_for_snapshots(out, seen + wait_for, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with mf.load(out) as crashed:  # opens, holds every completed snapshot, knows it was interrupted
            assert crashed.status == "interrupted"
            assert len(crashed) >= seen and np.all(np.isfinite(crashed.risk))
            np.testing.assert_array_equal(crashed.risk, reference.risk[: len(crashed)])
            seen = len(crashed)
    proc = _cli("run", str(cfg_path), "--no-progress", "--resume")
    assert proc.wait(timeout=120) == 0, proc.communicate()
    with mf.load(out) as done:
        assert done.status == "completed"
        np.testing.assert_array_equal(done.times, reference.times)
        np.testing.assert_array_equal(done.risk, reference.risk)
        np.testing.assert_array_equal(done.final.state(), reference.final.state())
        np.testing.assert_array_equal(np.asarray(done.b), reference.b)


def test_sigint_stops_cleanly_and_a_second_writer_is_refused(tmp_path):
    cfg_path = tmp_path / "endless.toml"
    out = tmp_path / "endless.h5"
    # A horizon no machine reaches during the test, so the signal always arrives mid-run.
    cfg_path.write_text(SLOW_CONFIG.format(output=out).replace("t_max = 40.0", "t_max = 100000.0"))
    cfg = load_config(cfg_path)
    proc = _cli("run", str(cfg_path), "--no-progress")
    _wait_for_snapshots(out, 2, proc)
    # A reader follows the live file: refresh() sees new snapshots while the writer runs.
    traj = mf.load(out)
    n0, start = len(traj), time.time()
    while len(traj.refresh()) == n0 and time.time() - start < 60:  # a slow machine may take a while per save
        time.sleep(0.05)
    assert len(traj) > n0 and traj.status == "running"
    traj.close()
    with pytest.raises(FileBusyError, match="another process"):
        mf.simulate(build_problem(cfg), build_init(cfg), path=out, resume=True, **run_options(cfg))
    with pytest.raises(FileBusyError, match="another process"):
        mf.simulate(build_problem(cfg), build_init(cfg), path=out, overwrite=True, **run_options(cfg))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    with h5py.File(out, "r") as h:  # closed cleanly: plain (non-SWMR) readers open it too
        assert h.attrs["status"] == "interrupted"
        t_stop = float(h["series/time"][-1])
    assert file_status(out) == "interrupted"
    # Resume to a horizon just past the last checkpoint (t_max may change on resume) and compare with an
    # uninterrupted run to the same horizon.
    options = dict(run_options(cfg), t_max=t_stop + 1.0)
    with mf.simulate(build_problem(cfg), build_init(cfg), path=out, resume=True, **options) as done:
        reference = mf.simulate(build_problem(cfg), build_init(cfg), **options)
        np.testing.assert_array_equal(done.final.state(), reference.final.state())
        np.testing.assert_array_equal(done.risk, reference.risk)
        assert done.status == "completed"


def test_cli_info_and_plot(tmp_path):
    cfg = tmp_path / "mi.toml"
    cfg.write_text("""
[inputs]
law = "sphere"
d = 8
[target]
kind = "multi_index"
d_hidden = 2
[init]
kind = "paired"
m = 32
[run]
t_max = 2.0
dt = 0.2
save_every = 5
output = "%s"
""" % (tmp_path / "mi.h5"))
    env = dict(os.environ, MPLBACKEND="Agg")
    ran = subprocess.run([sys.executable, "-m", "meanfield", "run", str(cfg), "--no-progress"], env=env)
    assert ran.returncode == 0
    info = subprocess.run([sys.executable, "-m", "meanfield", "info", str(tmp_path / "mi.h5")], capture_output=True,
                          text=True, check=True).stdout
    assert "RadialTarget" in info and "m = 32, d = 8" in info and "status completed" in info
    subprocess.run([sys.executable, "-m", "meanfield", "plot", str(tmp_path / "mi.h5"), "--out", str(tmp_path / "p")],
                   check=True, env=env, capture_output=True)
    assert {p.name for p in (tmp_path / "p").iterdir()} == {"risk.png", "particles.png", "alignment.png"}
    bad = subprocess.run([sys.executable, "-m", "meanfield", "run", str(cfg)], capture_output=True, text=True)
    assert bad.returncode == 2 and "--overwrite" in bad.stderr


def test_config_errors_name_the_problem(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[inputs]\nlaw = "gaussian"\nd = 3\nvariance = 1.0\ncolour = "red"\n[target]\nkind="teacher"\n'
                   '[init]\nm = 4\n[run]\nt_max = 1.0\ndt = 0.1\n')
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\] in \[inputs\]"):
        load_config(cfg)
    cfg.write_text('[inputs]\nd = 3\n[target]\nkind="teacher"\n[init]\nm = 4\n')
    with pytest.raises(ValueError, match=r"missing table \[run\]"):
        load_config(cfg)


def test_yaml_and_toml_configurations_describe_the_same_run(tmp_path):
    pytest.importorskip("yaml")
    toml = tmp_path / "c.toml"
    toml.write_text(SLOW_CONFIG.format(output=tmp_path / "x.h5"))
    yaml_text = """
inputs: {law: gaussian, d: 10}
target: {kind: teacher, k: 2}
init: {kind: sign_sphere, m: 256, seed: 3}
run: {t_max: 40.0, dt: 0.01, solver: heun, save_every: 50, backend: numpy, output: "%s"}
""" % (tmp_path / "x.h5")
    (tmp_path / "c.yaml").write_text(yaml_text)
    a, b = load_config(toml), load_config(tmp_path / "c.yaml")
    assert a == b
    np.testing.assert_array_equal(build_init(a).state(), build_init(b).state())


def test_an_error_inside_a_run_closes_the_file_and_releases_the_lock(tmp_path):
    path = tmp_path / "r.h5"
    problem, mu0 = _problem(), mf.init.sign_sphere(6, 4, seed=0)

    def broken(mu):
        if len(broken.calls) == 2:
            raise ZeroDivisionError("bug in a user observable")
        broken.calls.append(1)
        return 0.0

    broken.calls = []
    with pytest.raises(ZeroDivisionError, match="user observable"):
        mf.simulate(problem, mu0, t_max=1.0, dt=0.1, save_every=2, path=path, observables={"o": broken})
    assert file_status(path) == "failed"
    with mf.load(path) as part:
        assert len(part) == 2
    # The lock was released: the same process can continue the run.
    done = mf.simulate(problem, mu0, t_max=1.0, dt=0.1, save_every=2, path=path, resume=True,
                       observables={"o": lambda mu: 0.0})
    ref = mf.simulate(problem, mu0, t_max=1.0, dt=0.1, save_every=2)
    np.testing.assert_array_equal(done.final.state(), ref.final.state())
    done.close()


def test_two_readers_of_one_file_and_refresh_read_the_right_rows(tmp_path):
    """Regression: HDF5 2.0's dataset refresh with a second open object of the same dataset (a second load of the
    file, or a refresh while earlier rows are still referenced) made every read return snapshot 0."""
    path = tmp_path / "r.h5"
    problem = mf.Problem(mf.TeacherNetwork([1.0], np.eye(3)[:1]), mf.Gaussian(3))
    ref = mf.simulate(problem, mf.init.sign_sphere(6, 3, seed=0), t_max=1.0, dt=0.1, save_every=5)
    mf.simulate(problem, mf.init.sign_sphere(6, 3, seed=0), t_max=1.0, dt=0.1, save_every=5, path=path).close()
    first = mf.load(path)
    old_rows = first.b
    second = mf.load(path)
    first.refresh()
    for traj in (first, second):
        for i in range(3):
            np.testing.assert_array_equal(traj.b[i], ref.b[i])
    second.close()
    for i in range(3):
        np.testing.assert_array_equal(old_rows[i], ref.b[i])
        np.testing.assert_array_equal(first.a[i], ref.a[i])
    first.close()


def test_ctrl_c_is_held_back_until_the_checkpoint_is_written():
    from meanfield._signals import deferred_interrupts

    reached_the_end = False
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the signal is delivered here, and must wait
            reached_the_end = True
    assert reached_the_end and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _half_write(path, slot, entry=(0, 0)):
    """What a process killed in the middle of writing the checkpoint ``slot`` leaves: part of the new state."""
    with h5py.File(path, "r+") as h:
        h[f"{slot}/b"][entry] += 0.25


@pytest.mark.parametrize("trainer", ["flow", "sgd"])
def test_a_half_written_checkpoint_falls_back_to_the_previous_one(tmp_path, trainer):
    path = tmp_path / "r.h5"
    problem, mu0 = _problem(), mf.init.sign_sphere(10, 4, seed=2)

    def run(t_max, **kw):
        if trainer == "flow":
            return mf.simulate(problem, mu0, t_max=t_max, dt=0.1, save_every=2, **kw)
        return mf.sgd.train(problem, mu0, t_max=t_max, eta=0.05, batch_size=32, seed=1, save_every=2, **kw)

    run(1.0, path=path).close()
    with h5py.File(path, "r") as h:
        latest, previous = h["checkpoint/clock"][:], h["checkpoint/previous/clock"][:]
        assert previous[1] == latest[1] - 2 and previous[2] == latest[2] - 1  # step, n_saved: one save apart
    _half_write(path, "checkpoint")
    with h5py.File(path, "r") as h:
        backup = h["checkpoint/previous/b"][:]
    with mf.load(path) as crashed:  # a reader's final state is the intact one
        np.testing.assert_array_equal(crashed.final.b, backup)
    with run(2.0, path=path, resume=True) as resumed:  # from the backup, one save earlier
        reference = run(2.0)
        np.testing.assert_array_equal(resumed.risk, reference.risk)
        np.testing.assert_array_equal(resumed.final.state(), reference.final.state())
    _half_write(path, "checkpoint")
    _half_write(path, "checkpoint/previous")
    with pytest.raises(TrajectoryFileError, match="no intact checkpoint"):
        run(3.0, path=path, resume=True)
    with mf.load(path) as kept:  # nothing was lost: the snapshots still read
        np.testing.assert_array_equal(kept.risk, reference.risk)


VERSION_1 = Path(__file__).parent / "data"  # files written by meanfield's format version 1 (make_v1_files.py)


def _version_1_run(kind, path, longer: bool, **kw):
    """The run that wrote tests/data/v1_<kind>.h5 (longer: to twice its length), with the current code."""
    problem, mu0 = _problem(), mf.init.sign_sphere(10, 4, seed=2)
    t_max = 2.0 if longer else 1.0
    if kind in ("flow", "adaptive"):
        return mf.simulate(problem, mu0, t_max=t_max, dt=0.1, save_every=2, alignment=False, path=path,
                           solver="bosh3" if kind == "adaptive" else "heun", **kw)
    if kind == "sgd":
        return mf.sgd.train(problem, mu0, t_max=t_max, eta=0.05, batch_size=32, seed=1, save_every=2,
                            alignment=False, path=path, **kw)
    from meanfield.weights.mlp import train_mlp

    return train_mlp(width=4, depth=2, epochs=4 if longer else 2, seed=0, optimizer="adam", lr=1e-3, path=path, **kw)


@pytest.mark.parametrize("kind", ["flow", "adaptive", "sgd", "mlp"])
def test_version_1_files_load_and_resume_bit_identically(tmp_path, kind):
    path = tmp_path / "old.h5"
    shutil.copy(VERSION_1 / f"v1_{kind}.h5", path)
    reference = _version_1_run(kind, None, longer=False)
    with mf.load(path) as old:  # the old file reads as the same run
        assert old.file_attributes["format_version"] == 1
        np.testing.assert_array_equal(old.risk, reference.risk)
        if kind != "mlp":
            np.testing.assert_array_equal(old.final.state(), reference.final.state())
    with _version_1_run(kind, path, longer=True, resume=True) as resumed:
        longer = _version_1_run(kind, None, longer=True)
        assert resumed.file_attributes["format_version"] == 2 and resumed.status == "completed"
        np.testing.assert_array_equal(resumed.times, longer.times)
        np.testing.assert_array_equal(resumed.risk, longer.risk)
        for name in longer.observables:
            np.testing.assert_array_equal(resumed.observables[name][:], longer.observables[name])
        if kind != "mlp":
            np.testing.assert_array_equal(resumed.final.state(), longer.final.state())


def test_files_from_before_checksums_and_backups_still_resume(tmp_path):
    path = tmp_path / "old.h5"
    shutil.copy(VERSION_1 / "v1_flow.h5", path)
    with h5py.File(path, "r+") as h:  # the layout of the first version-1 files: 8 meta entries, no backup
        meta = h["checkpoint/meta"][:8]
        del h["checkpoint/meta"], h["checkpoint/previous"]
        h["checkpoint/meta"] = meta
    with _version_1_run("flow", path, longer=True, resume=True) as resumed:
        reference = _version_1_run("flow", None, longer=True)
        np.testing.assert_array_equal(resumed.final.state(), reference.final.state())
