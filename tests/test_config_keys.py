"""Every documented configuration key and CLI option, each checked against an independent computation; files
without particle snapshots; resuming converged and diverged runs."""

import json

import numpy as np
import pytest
from conftest import assert_mc_close

import meanfield as mf
from meanfield.cli import main
from meanfield.config import build_init, build_problem, load_config, run_config

BASE = {"inputs": {"law": "gaussian", "d": 5}, "target": {"kind": "teacher", "k": 2},
        "init": {"kind": "sign_sphere", "m": 16}, "run": {"t_max": 1.0, "dt": 0.1}}


def _cfg(**tables):
    cfg = json.loads(json.dumps(BASE))
    for table, values in tables.items():
        cfg[table] = values if table == "target" or table == "init" else dict(cfg.get(table, {}), **values)
    return cfg


def test_target_kinds_and_their_options():
    x = mf.Gaussian(5).sample(1_000_000, np.random.default_rng(0))
    # linear: an explicit β is used as given; "random" is a unit vector fixed by the seed.
    given = build_problem(_cfg(target={"kind": "linear", "beta": [1, 2, 3, 4, 5]})).target
    np.testing.assert_allclose(given(x[:3]), x[:3] @ np.arange(1, 6), rtol=1e-14)
    r0, r0_again, r1 = (build_problem(_cfg(target={"kind": "linear", "beta": "random", "seed": s})).target.beta
                        for s in (0, 0, 1))
    assert np.linalg.norm(r0) == pytest.approx(1.0) and np.array_equal(r0, r0_again) and not np.allclose(r0, r1)
    # cubic: half_energy is ½ E f*², checked by Monte Carlo (not by multiplying the normalisation back).
    for half in (1.0, 0.3):
        cubic = build_problem(_cfg(target={"kind": "cubic", "z": "random", "half_energy": half})).target
        assert_mc_close(half, 0.5 * cubic(x) ** 2)
    # teacher: k neurons with the given coefficients; unit_neurons = false keeps Gaussian norms.
    teacher = build_problem(_cfg(target={"kind": "teacher", "k": 3, "coefficients": [1.0, -1.0, 0.5],
                                         "unit_neurons": False})).target
    assert teacher.U.shape == (3, 5) and not np.allclose(np.linalg.norm(teacher.U, axis=1), 1.0)
    np.testing.assert_array_equal(teacher.c, [1.0, -1.0, 0.5])
    # multi_index: f* = |Qᵀx| with Q the first coordinates or a random orthonormal basis.
    for subspace in ("first", "random"):
        target = build_problem(_cfg(target={"kind": "multi_index", "d_hidden": 2, "subspace": subspace})).target
        Q = target.hidden_subspace()
        np.testing.assert_allclose(Q.T @ Q, np.eye(2), atol=1e-14)
        np.testing.assert_allclose(target(x[:5]), np.linalg.norm(x[:5] @ Q, axis=1), rtol=1e-13)
        if subspace == "first":
            np.testing.assert_array_equal(Q, np.eye(5)[:, :2])


def test_inputs_table():
    gaussian = build_problem(_cfg(inputs={"law": "gaussian", "d": 5, "variance": 0.5})).inputs
    x = gaussian.sample(400_000, np.random.default_rng(3))
    assert_mc_close(0.5, x[:, 0] ** 2)  # E x₁² = variance
    sphere = build_problem(_cfg(inputs={"law": "sphere", "d": 5})).inputs
    np.testing.assert_allclose(np.linalg.norm(sphere.sample(10, np.random.default_rng(4)), axis=1), 1.0, rtol=1e-14)


def test_problem_and_init_tables():
    problem = build_problem(_cfg(problem={"activation": "leaky_relu", "slope": 0.2}))
    mu = mf.init.sign_sphere(4, 5, seed=0)
    x = np.random.default_rng(1).standard_normal((6, 5))
    z = x @ mu.b.T
    np.testing.assert_allclose(problem.predict(mu, x), np.maximum(z, 0.2 * z) @ (mu.weights * mu.a), rtol=1e-14)
    # gaussian init: sample standard deviations of a and b match a_std and b_std (m = 40000: 4 SE ≈ 1.4 %).
    mu = build_init(_cfg(init={"kind": "gaussian", "m": 40_000, "seed": 2, "a_std": 0.5, "b_std": 2.0}))
    assert np.std(mu.a) == pytest.approx(0.5, rel=0.014) and np.std(mu.b) == pytest.approx(2.0, rel=0.007)
    mu = build_init(_cfg(init={"kind": "sign_sphere", "m": 50, "radius": 3.0, "a_scale": 0.5}))
    np.testing.assert_allclose(np.linalg.norm(mu.b, axis=1), 3.0, rtol=1e-14)
    np.testing.assert_array_equal(np.abs(mu.a), 0.5)
    mu = build_init(_cfg(init={"kind": "paired", "m": 10, "base": "gaussian", "a_std": 2.0}))
    np.testing.assert_array_equal(mu.a[:5], -mu.a[5:])
    np.testing.assert_array_equal(mu.b[:5], -mu.b[5:])


def test_run_table_keys(tmp_path):
    # save_particles = false: no particle snapshots, the final state still there; it loads and resumes.
    out = tmp_path / "np.h5"
    cfg = _cfg(run={"save_particles": False, "save_every": 2, "output": str(out)})
    run_config(cfg).close()
    reference = mf.simulate(build_problem(cfg), build_init(cfg), t_max=2.0, dt=0.1, save_every=2)
    with mf.load(out) as traj:
        assert traj.a is None and traj.b is None and len(traj) == 6
        np.testing.assert_array_equal(traj.risk, reference.risk[:6])
    with run_config(_cfg(run={"save_particles": False, "save_every": 2, "t_max": 2.0}), output=out,
                    resume=True) as longer:
        np.testing.assert_array_equal(longer.risk, reference.risk)
        np.testing.assert_array_equal(longer.final.state(), reference.final.state())
    # rtol/atol: an adaptive run with a tighter tolerance takes more steps and lands closer to a fine RK4 run.
    fine = mf.simulate(build_problem(cfg), build_init(cfg), t_max=1.0, dt=0.001, solver="rk4", save_every=1000)
    errors, steps = [], []
    for rtol in (1e-4, 1e-8):
        traj = run_config(_cfg(run={"solver": "dopri5", "rtol": rtol, "atol": rtol * 1e-2}),
                          output=tmp_path / f"a{rtol}.h5")
        errors.append(np.abs(traj.final.state() - fine.final.state()).max())
        steps.append(traj.info["n_steps"])
        assert traj.config["rtol"] == rtol
        traj.close()
    assert steps[1] > steps[0] and errors[1] < 1e-3 * errors[0]
    # stop_risk: the run stops at the first step at or below it.
    traj = run_config(_cfg(run={"stop_risk": 0.05, "t_max": 50.0, "save_every": 1}), output=tmp_path / "s.h5")
    assert traj.status == "converged" and traj.risk[-1] <= 0.05 < traj.risk[-2]
    traj.close()
    # max_risk_factor: a bound below the starting risk stops the run as diverged at once.
    problem = build_problem(BASE)
    factor = 0.5 * problem.risk(build_init(BASE)) / problem.target_energy
    with pytest.raises(mf.FlowDivergedError, match="blew up"):
        run_config(_cfg(run={"max_risk_factor": factor}), output=tmp_path / "m.h5")


def test_sgd_keys_from_a_configuration_equal_the_python_call(tmp_path):
    from meanfield.sgd import train

    run = {"kind": "sgd", "t_max": 0.5, "eta": 0.05, "batch_size": 8, "mode": "minibatch", "n_data": 40,
           "seed": 3, "save_every": 5, "dtype": "float32", "device": "cpu"}
    cfg = _cfg(run=run)
    cfg["run"].pop("dt")
    with run_config(cfg, output=tmp_path / "sgd.h5") as traj:
        direct = train(build_problem(cfg), build_init(cfg), t_max=0.5, eta=0.05, batch_size=8, mode="minibatch",
                       n_data=40, seed=3, save_every=5, dtype="float32", device="cpu")
        np.testing.assert_array_equal(traj.final.state(), direct.final.state())
        np.testing.assert_array_equal(traj.risk, direct.risk)
        assert traj.info["dtype"] == "float32" and traj.info["mode"] == "minibatch" and traj.info["n_data"] == 40


def test_cli_backend_and_output_options(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[inputs]\nd = 5\n[target]\nkind = "teacher"\nk = 2\n[init]\nm = 32\n'
                   f'[run]\nt_max = 1.0\ndt = 0.1\nbackend = "numpy"\noutput = "{tmp_path / "default.h5"}"\n')
    assert main(["run", str(cfg), "--no-progress", "--backend", "numba", "--output", str(tmp_path / "o.h5")]) == 0
    assert not (tmp_path / "default.h5").exists()
    reference = mf.simulate(build_problem(load_config(cfg)), build_init(load_config(cfg)), t_max=1.0, dt=0.1)
    with mf.load(tmp_path / "o.h5") as traj:
        assert traj.info["backend"] == "numba"
        # A second backend against the numpy reference (the backend tests' tolerance).
        np.testing.assert_allclose(traj.final.state(), reference.final.state(), rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def dask_scheduler():
    """One Dask LocalCluster (2 worker processes, as a sweep starts by default) that this module's sweeps reach with
    ``--scheduler``, instead of each starting and stopping its own (the default cluster is tested in
    test_sweep.py)."""
    from dask.distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    yield cluster.scheduler_address
    cluster.close()


def test_sweep_retry_failed_and_overwrite(tmp_path, capsys, dask_scheduler):
    runs = tmp_path / "runs"
    cfg = tmp_path / "sweep.toml"
    cfg.write_text('[inputs]\nd = 5\n[target]\nkind = "teacher"\nk = 2\n[init]\nm = 8\n'
                   f'[run]\nt_max = 1.0\ndt = 0.1\nbackend = "numpy"\n[sweep]\noutput_dir = "{runs}"\n'
                   '[sweep.grid]\n"init.m" = [8, 16]\n')
    runs.mkdir()
    sweep = ["sweep", str(cfg), "--no-progress", "--scheduler", dask_scheduler]
    (runs / "m-16.h5").write_text("a file that is not ours")  # the cause of a failure, fixed below
    assert main(sweep) == 1
    manifest = {r["id"]: r for r in json.loads((runs / "manifest.json").read_text())["runs"]}
    assert manifest["m-8"]["status"] == "completed" and manifest["m-16"]["status"] == "failed"
    assert "cannot be opened as HDF5" in manifest["m-16"]["error"]
    (runs / "m-16.h5").unlink()
    assert main(sweep) == 1  # a recorded failure is not retried by default
    assert main([*sweep, "--retry-failed"]) == 0
    reference = {m: mf.simulate(build_problem(dict(BASE, init={"m": m})), build_init(dict(BASE, init={"m": m})),
                                t_max=1.0, dt=0.1, backend="numpy") for m in (8, 16)}  # the sweep's backend
    for m in (8, 16):
        with mf.load(runs / f"m-{m}.h5") as traj:
            np.testing.assert_array_equal(traj.final.state(), reference[m].final.state())
    stamps = {m: (runs / f"m-{m}.h5").stat().st_mtime_ns for m in (8, 16)}
    assert main(sweep) == 0  # finished runs are skipped ...
    assert stamps == {m: (runs / f"m-{m}.h5").stat().st_mtime_ns for m in (8, 16)}
    assert main([*sweep, "--overwrite"]) == 0  # ... unless overwritten
    for m in (8, 16):
        assert (runs / f"m-{m}.h5").stat().st_mtime_ns != stamps[m]
        with mf.load(runs / f"m-{m}.h5") as traj:
            np.testing.assert_array_equal(traj.final.state(), reference[m].final.state())


def test_resuming_converged_and_diverged_runs(tmp_path):
    problem = build_problem(BASE)
    mu0 = build_init(BASE)
    path = tmp_path / "conv.h5"
    mf.simulate(problem, mu0, t_max=50.0, dt=0.1, save_every=1, stop_risk=0.05, path=path).close()
    with mf.simulate(problem, mu0, t_max=50.0, dt=0.1, save_every=1, stop_risk=0.05, path=path,
                     resume=True) as same:  # nothing left to do: unchanged, no duplicated snapshot
        assert same.status == "converged" and np.all(np.diff(same.times) > 0)
    with mf.simulate(problem, mu0, t_max=50.0, dt=0.1, save_every=1, stop_risk=0.02, path=path,
                     resume=True) as lower:  # continues to the lower threshold, as an uninterrupted run does
        direct = mf.simulate(problem, mu0, t_max=50.0, dt=0.1, save_every=1, stop_risk=0.02)
        assert lower.status == "converged"
        np.testing.assert_array_equal(lower.risk, direct.risk)
    path = tmp_path / "div.h5"
    with pytest.raises(mf.FlowDivergedError):
        mf.simulate(problem, mu0, t_max=20.0, dt=8.0, solver="euler", path=path)
    with pytest.raises(ValueError, match="diverged after t = .*smaller step"):
        mf.simulate(problem, mu0, t_max=20.0, dt=8.0, solver="euler", path=path, resume=True)
