"""Sweeps on a real Dask LocalCluster (2 worker processes): manifest, failures with reasons, skip and resume."""

import json
import warnings

import numpy as np
import pytest

import meanfield as mf
import meanfield.loop as loop_module
from meanfield.config import build_init, build_problem, load_config, run_config, run_options
from meanfield.sweep import expand_sweep, run_sweep

pytest.importorskip("dask.distributed")

SWEEP = """
name = "tiny"
[inputs]
law = "gaussian"
d = 5
[target]
kind = "teacher"
k = 2
[init]
kind = "sign_sphere"
m = 8
seed = 0
[run]
t_max = 40.0
dt = 0.1
solver = "euler"
save_every = 50
backend = "numpy"
[sweep]
output_dir = "{out}"
[sweep.grid]
"init.m" = [8, 16]
{extra}
"""


def _reference(cfg):
    return mf.simulate(build_problem(cfg), build_init(cfg), **run_options(cfg))


def test_sweep_records_failures_and_skips_finished_runs(tmp_path):
    cfg_path = tmp_path / "sweep.toml"
    cfg_path.write_text(SWEEP.format(out=tmp_path / "runs", extra='"run.dt" = [0.1, 5.0]'))
    cfg = load_config(cfg_path)
    runs = expand_sweep(cfg)
    assert len(runs) == 4 and len({r["path"] for r in runs}) == 4

    manifest = run_sweep(cfg, n_workers=2, progress=False)
    assert json.loads((tmp_path / "runs" / "manifest.json").read_text())["runs"] == manifest["runs"]
    by_id = {r["id"]: r for r in manifest["runs"]}
    for run in runs:
        entry = by_id[run["id"]]
        if run["overrides"]["run.dt"] == 5.0:  # Euler steps of 5 make this flow blow up
            assert entry["status"] == "failed" and "FlowDivergedError" in entry["error"], entry
        else:
            assert entry["status"] == "completed", entry
            with mf.load(run["path"]) as traj:  # each file holds the run its configuration describes
                np.testing.assert_array_equal(traj.final.state(), _reference(run["config"]).final.state())

    mtimes = {r["id"]: (tmp_path / "runs" / f"{r['id']}.h5").stat().st_mtime_ns for r in runs}
    manifest = run_sweep(cfg, n_workers=2, progress=False)
    assert all(r.get("skipped") for r in manifest["runs"])
    assert {r["id"]: r["status"] for r in manifest["runs"]} == {r["id"]: by_id[r["id"]]["status"] for r in runs}
    assert mtimes == {r["id"]: (tmp_path / "runs" / f"{r['id']}.h5").stat().st_mtime_ns for r in runs}


def test_sweep_resumes_an_interrupted_run(tmp_path, monkeypatch):
    cfg_path = tmp_path / "sweep.toml"
    cfg_path.write_text(SWEEP.format(out=tmp_path / "runs", extra=""))
    cfg = load_config(cfg_path)
    run = expand_sweep(cfg)[0]

    # Write that run's file as the sweep would, stopped by Ctrl-C after its second save.
    record, saves = loop_module.Saver.record, []

    def record_then_interrupt(self, *args, **kwargs):
        record(self, *args, **kwargs)
        saves.append(1)
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop_module.Saver, "record", record_then_interrupt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_config(run["config"]).close()
    monkeypatch.undo()
    with mf.load(run["path"]) as part:
        assert part.status == "interrupted" and len(part) == 2

    manifest = run_sweep(cfg, n_workers=2, progress=False)
    entry = {r["id"]: r for r in manifest["runs"]}[run["id"]]
    assert entry["status"] == "completed" and not entry.get("skipped")
    ref = _reference(run["config"])
    with mf.load(run["path"]) as done:
        np.testing.assert_array_equal(done.final.state(), ref.final.state())
        np.testing.assert_array_equal(done.risk, ref.risk)


def test_sweep_configuration_errors(tmp_path):
    cfg_path = tmp_path / "sweep.toml"
    cfg_path.write_text(SWEEP.format(out=tmp_path / "runs", extra='"init.seed" = []'))
    with pytest.raises(ValueError, match="init.seed must be a non-empty list"):
        expand_sweep(load_config(cfg_path))


def test_zipped_keys_vary_together_times_the_grid():
    cfg = {"inputs": {"law": "gaussian", "d": 3}, "target": {"kind": "teacher"}, "init": {"m": 4},
           "run": {"t_max": 1.0, "dt": 0.5},
           "sweep": {"output_dir": "out", "grid": {"init.m": [4, 8]},
                     "zip": {"init.seed": [0, 1, 2], "run.seed": [10, 11, 12]}}}
    runs = expand_sweep(cfg)
    assert len(runs) == 6 and len({r["path"] for r in runs}) == 6
    assert {(r["config"]["init"]["seed"], r["config"]["run"]["seed"]) for r in runs} == {(0, 10), (1, 11), (2, 12)}
    cfg["sweep"]["zip"]["run.seed"] = [10, 11]
    with pytest.raises(ValueError, match="one common length"):
        expand_sweep(cfg)
    cfg["sweep"]["zip"] = {"init.m": [1, 2]}
    with pytest.raises(ValueError, match="both"):
        expand_sweep(cfg)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args, what", [(["--workers", "0"], "n_workers"), (["--workers", "-1"], "n_workers"),
                                        (["--scheduler", "tcp://127.0.0.1:{port}"], "no Dask scheduler answers"),
                                        (["--scheduler", "127.0.0.1:{port}"], "no Dask scheduler answers")])
def test_sweep_with_no_workers_or_a_dead_scheduler_is_one_line(tmp_path, capsys, args, what):
    """--workers 0 or −1 hung with no output; --scheduler to a port where nothing listens waited 30 s, then a
    traceback. Both: a one-line error, exit 2, and nothing written."""
    from meanfield.cli import main

    cfg_path = tmp_path / "sweep.toml"
    cfg_path.write_text(SWEEP.format(out=tmp_path / "runs", extra=""))
    args = [a.format(port=_free_port()) for a in args]
    assert main(["sweep", str(cfg_path), "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and what in err, err
    assert not (tmp_path / "runs").exists()
