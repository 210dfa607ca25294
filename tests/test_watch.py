"""``meanfield watch`` against a real writer in another process: it follows the run without disturbing it and ends
by itself with the run's final status."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

import meanfield as mf
from meanfield.watch import RunProgress, progress_line

# A flow that saves at every step and takes ~0.1 s per save (an observable that sleeps): 41 saves, ~4 s. Whatever
# the machine's load, its saves 2 to 13 each wait until the test has read n − 1 "running" lines of a watcher (the test
# writes that count to <path>.seen), so that at least 12 refreshes happen while the writer is in the middle of its run.
WRITER = """
import os, sys, time, numpy as np, meanfield as mf
saves = []
def seen():
    try:
        with open(sys.argv[1] + ".seen") as fh:
            return int(fh.read() or 0)
    except (OSError, ValueError):
        return 0
def pause(mu):
    saves.append(1)
    deadline = time.monotonic() + 120
    while 2 <= len(saves) <= 13 and seen() < len(saves) - 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    return 0.0
problem = mf.Problem(mf.TeacherNetwork([1.0, -0.5], np.eye(4)[:2]), mf.Gaussian(4))
mf.simulate(problem, mf.init.sign_sphere(16, 4, seed=0), t_max=float(sys.argv[2]), dt=0.1, save_every=1,
            backend="numpy", path=sys.argv[1], observables={"pause": pause}).close()
print("writer done")
"""


def _start_writer(path, t_max):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(t_max)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not path.exists() and writer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), writer.communicate()
    return writer


def _tell_writer(path, count: int) -> None:
    tmp = path.with_name(path.name + ".seen.tmp")
    tmp.write_text(str(count))
    os.replace(tmp, path.with_name(path.name + ".seen"))


def _read_lines(process, path, into: list) -> None:
    """Collect a watcher's lines, telling the writer how many "running" ones have come."""
    for line in process.stdout:
        into.append(line.rstrip("\n"))
        if path is not None:
            _tell_writer(path, sum(x.endswith("  running") for x in into))


def _watch(path, *extra):
    return subprocess.Popen([sys.executable, "-m", "meanfield", "watch", str(path), "--interval", "0.1", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_watch_follows_a_running_writer_and_ends_with_it(tmp_path):
    """Two watchers at once, one of them rewriting a figure at each refresh (~1 s each on a loaded machine)."""
    path, live = tmp_path / "run.h5", tmp_path / "live.png"
    writer = _start_writer(path, 4.0)
    watcher, plotter = _watch(path), _watch(path, "--plot", str(live))
    lines, p_lines = [], []
    readers = [threading.Thread(target=_read_lines, args=(watcher, path, lines)),
               threading.Thread(target=_read_lines, args=(plotter, None, p_lines))]
    for reader in readers:
        reader.start()
    w_out, w_err = writer.communicate(timeout=300)
    for reader, process in zip(readers, (watcher, plotter)):
        process.wait(timeout=60)
        reader.join(timeout=60)
    err, p_err = watcher.stderr.read(), plotter.stderr.read()
    assert writer.returncode == 0 and "writer done" in w_out, w_err
    assert watcher.returncode == 0 and plotter.returncode == 0, err + p_err
    out = "\n".join(lines)
    running = [line for line in lines if line.endswith("  running")]
    assert len(running) >= 10, out                            # refreshes while the writer went on
    seen = [float(line.split()[2]) for line in running if line.startswith("t = ")]
    assert seen == sorted(seen) and len(set(seen)) >= 5      # t advancing from refresh to refresh
    assert any(" left ? " not in line for line in running)    # an estimate of the time left once t moved
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.5], np.eye(4)[:2]), mf.Gaussian(4))
    memory = mf.simulate(problem, mf.init.sign_sphere(16, 4, seed=0), t_max=4.0, dt=0.1, save_every=1,
                         backend="numpy")
    rate = -(memory.risk[-1] - memory.risk[-2]) / (memory.times[-1] - memory.times[-2])
    for said in (lines, p_lines):
        assert said[-1] == f"{path}: the run ended: completed"
        assert said[-2] == (f"t = 4 / 4 (100%)  risk {memory.risk[-1]:.3e}  −dF/dt {rate:.2e}  41 saves  left 0 s  "
                            "completed")
    assert Image.open(live).size[0] > 500 and not list(tmp_path.glob(".live*"))   # the figure; no temporary left
    # The file is the run's, untouched: the same snapshots as the same run in memory, status completed.
    with mf.load(path) as traj:
        assert traj.status == "completed" and len(traj) == 41
        np.testing.assert_array_equal(traj.times, memory.times)
        np.testing.assert_array_equal(traj.risk, memory.risk)
        np.testing.assert_array_equal(traj.b[:], memory.b)
        np.testing.assert_array_equal(traj.a[:], memory.a)
    assert not (tmp_path / "run.h5.lock").exists()


def test_watch_says_when_the_writer_was_killed(tmp_path):
    path = tmp_path / "killed.h5"
    writer = _start_writer(path, 100.0)
    watcher = _watch(path)
    first = watcher.stdout.readline()
    _tell_writer(path, 10**6)          # no more waiting: let it run
    time.sleep(1.0)
    assert writer.poll() is None
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    out, err = watcher.communicate(timeout=60)
    out = first + out
    assert watcher.returncode == 130, err
    assert out.splitlines()[-1] == f"{path}: the run ended: interrupted"


def test_watch_refuses_a_missing_file_in_one_line(tmp_path, capsys):
    from meanfield.cli import main

    assert main(["watch", str(tmp_path / "nothing.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nothing.h5" in err


def test_progress_line_rate_and_time_left():
    run = type("Run", (), {})()
    run.times, run.risk = np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.6, 0.5])
    run.status, run.kind, run.config = "running", "particle_flow", {"t_max": 3.0}
    progress = RunProgress(t_max=3.0)
    progress.observe(10.0, 0.5)
    progress.observe(10.0, 0.5)           # no progress: not recorded
    progress.observe(14.0, 1.0)           # 0.5 of t in 4 s: 2 left take 16 s
    assert progress.seconds_left(1.0) == pytest.approx(16.0)
    assert progress_line(run, progress) == ("t = 1 / 3 (33%)  risk 5.000e-01  −dF/dt 2.00e-01  3 saves  left 16 s  "
                                            "running")
