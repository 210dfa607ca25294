"""The command line on bad input: one line on stderr naming the file, table, key or argument, exit status 2, and
nothing already written is changed (a read-only directory, a damaged file, a configuration path that is a folder)."""

import ctypes
import hashlib
import os
import subprocess
import sys

import h5py
import pytest

from meanfield.cli import main

CONFIG = """
[inputs]
law = "gaussian"
d = 3
[target]
kind = "teacher"
k = 1
seed = {target_seed}
[init]
kind = "sign_sphere"
m = 8
seed = {init_seed}
[run]
t_max = {t_max}
dt = 0.1
save_every = 2
backend = "numpy"
output = "{output}"
"""


def _config(tmp_path, output, t_max=0.4, target_seed=0, init_seed=1, name="run.toml"):
    path = tmp_path / name
    path.write_text(CONFIG.format(output=output, t_max=t_max, target_seed=target_seed, init_seed=init_seed))
    return path


def _digest(path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _one_line_error(capsys, status, *names):
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    for name in names:
        assert name in err, err
    return err


def test_a_configuration_path_that_is_a_folder(tmp_path, capsys):
    _one_line_error(capsys, main(["run", str(tmp_path)]), str(tmp_path), "directory")
    _one_line_error(capsys, main(["sweep", str(tmp_path)]), str(tmp_path), "directory")


@pytest.mark.parametrize("table, key", [("target", "seed"), ("init", "seed")])
def test_negative_seeds_in_a_configuration(tmp_path, capsys, table, key):
    seeds = {"target_seed": 0, "init_seed": 1, f"{table}_seed": -1}
    config = _config(tmp_path, tmp_path / "run.h5", **seeds)
    _one_line_error(capsys, main(["run", str(config)]), f"[{table}] {key}")
    assert not (tmp_path / "run.h5").exists()


def _without_permission_override():
    """In the child, before exec: drop the capabilities that let root write anywhere (CAP_DAC_OVERRIDE = 1,
    CAP_DAC_READ_SEARCH = 2) from the bounding set, so that a read-only directory is read-only for it too."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "meanfield", *map(str, args)], capture_output=True, text=True,
                          preexec_fn=_without_permission_override, timeout=120)


@pytest.fixture
def read_only_run(tmp_path):
    """A completed run in a folder that its writer may no longer write."""
    folder = tmp_path / "ro"
    folder.mkdir()
    config = _config(tmp_path, folder / "run.h5")
    assert main(["run", str(config), "--no-progress"]) == 0
    folder.chmod(0o555)
    yield config, folder / "run.h5"
    folder.chmod(0o755)


def test_a_read_only_output_folder(tmp_path, read_only_run):
    config, run = read_only_run
    before = _digest(run)
    cases = [["run", _config(tmp_path, run.parent / "new.h5", name="new.toml"), "--no-progress"],
             ["run", config, "--resume", "--no-progress"], ["run", config, "--overwrite", "--no-progress"],
             ["recover", run], ["plot", run]]
    for args in cases:
        proc = _cli(*args)
        err = proc.stderr.strip()
        assert proc.returncode == 2, (args, err)
        assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, (args, err)
        assert str(run.parent) in err, (args, err)
    assert _digest(run) == before and sorted(p.name for p in run.parent.iterdir()) == ["run.h5"]


#: What a damaged file may lack: (kind of entry, its name).
MISSING = [("attribute", "kind"), ("attribute", "config"), ("attribute", "seed"), ("attribute", "created"),
           ("dataset", "particles/weights"), ("dataset", "problem/target"), ("dataset", "checkpoint/clock"),
           ("dataset", "checkpoint"), ("dataset", "series/risk")]


@pytest.mark.parametrize("what, name", MISSING, ids=[name for _, name in MISSING])
def test_files_missing_an_entry(tmp_path, capsys, what, name):
    """``info``, ``recover`` and ``--resume`` of a file without one of its entries: a one-line error (or, for info,
    what can be read), and a failed resume leaves the file as it was (never rewritten as "failed")."""
    config = _config(tmp_path, tmp_path / "run.h5")
    assert main(["run", str(config), "--no-progress"]) == 0
    capsys.readouterr()
    run = tmp_path / "run.h5"
    with h5py.File(run, "r+") as f:
        if what == "attribute":
            del f.attrs[name]
        else:
            del f[name]
    before = _digest(run)
    for args in (["info", run], ["recover", run, "--out", tmp_path / "kept.h5"]):
        status = main(list(map(str, args)))
        if status != 0:
            _one_line_error(capsys, status, str(run))
    extended = _config(tmp_path, run, t_max=0.8, name="longer.toml")
    _one_line_error(capsys, main(["run", str(extended), "--resume", "--no-progress"]), str(run))
    assert _digest(run) == before
