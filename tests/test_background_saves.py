"""Saves written on a background thread (issue 16: saves streamed to HDF5 without stalling the device): the same file
as synchronous saves, the run really goes on while a save is written, the writer's errors reach the caller, and an
interruption waits for the save in flight so that the run resumes bit-identically."""

import threading
import time

import h5py
import numpy as np
import pytest

import meanfield as mf
from meanfield.io import TrajectoryWriter
from meanfield.runguard import RunInterruptedWarning


def problem_and_start():
    problem = mf.Problem(mf.TeacherNetwork([1.0, -0.7], np.eye(5)[:2]), mf.Gaussian(5))
    return problem, mf.init.sign_sphere(24, 5, seed=3)


def contents(path):
    """Every dataset of a run's file except wall-clock entries, as arrays."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and "wall" not in name and "checksum" not in name:
                out[name] = obj[()]
        f.visititems(visit)
    return out


def test_background_saves_write_the_same_file(tmp_path):
    problem, mu0 = problem_and_start()
    plain = mf.simulate(problem, mu0, t_max=2.0, dt=0.1, save_every=3, path=tmp_path / "plain.h5")
    background = mf.simulate(problem, mu0, t_max=2.0, dt=0.1, save_every=3, path=tmp_path / "background.h5",
                             background_saves=True)
    assert background.status == plain.status == "completed"
    plain.close()
    background.close()
    a, b = contents(tmp_path / "plain.h5"), contents(tmp_path / "background.h5")
    assert sorted(a) == sorted(b)
    for name in a:
        if a[name].dtype.kind in "fiu":
            keep = slice(0, 4) if name.endswith("/clock") else ...   # a clock's last entry is the wall time
            np.testing.assert_array_equal(a[name][keep], b[name][keep], err_msg=name)


def test_the_run_goes_on_while_a_save_is_written(tmp_path, monkeypatch):
    """The writer of the second save waits until the run has reached its third save, which only a run that does not
    wait for its writer can do (synchronous saves would wait here until the timeout and fail)."""
    reached_third = threading.Event()
    writer_waited = []
    append = TrajectoryWriter.append

    def slow_append(self, *args, **kwargs):
        if self.n_saved == 1:
            writer_waited.append(reached_third.wait(timeout=20))
        return append(self, *args, **kwargs)

    monkeypatch.setattr(TrajectoryWriter, "append", slow_append)
    calls = []

    def marker(mu):
        calls.append(threading.current_thread() is threading.main_thread())
        if len(calls) == 3:
            reached_third.set()
        return 0.0

    problem, mu0 = problem_and_start()
    traj = mf.simulate(problem, mu0, t_max=1.0, dt=0.1, save_every=2, observables={"marker": marker},
                       path=tmp_path / "run.h5", background_saves=True)
    assert writer_waited == [True] and all(calls)
    assert traj.status == "completed" and len(traj.times) == 6


def test_a_writer_error_reaches_the_caller_and_fails_the_file(tmp_path, monkeypatch):
    append = TrajectoryWriter.append

    def failing_append(self, *args, **kwargs):
        if self.n_saved == 2:
            raise OSError("disk full (simulated)")
        return append(self, *args, **kwargs)

    monkeypatch.setattr(TrajectoryWriter, "append", failing_append)
    problem, mu0 = problem_and_start()
    with pytest.raises(OSError, match="disk full"):
        mf.simulate(problem, mu0, t_max=2.0, dt=0.1, save_every=2, path=tmp_path / "run.h5", background_saves=True)
    saved = mf.load(tmp_path / "run.h5")
    assert saved.status == "failed" and len(saved.times) == 2


def test_an_interruption_waits_for_the_save_in_flight_and_resumes_bit_identically(tmp_path, monkeypatch):
    """Ctrl-C (raised in the run's thread at the fourth save) while the third save is still being written: the run
    returns "interrupted" with three saves complete, and the resumed run equals an uninterrupted one."""
    release = threading.Event()
    append = TrajectoryWriter.append

    def slow_append(self, *args, **kwargs):
        if self.n_saved == 2:
            release.wait(timeout=20)
        return append(self, *args, **kwargs)

    count = []

    def interrupt_at_fourth_save(mu):
        count.append(1)
        if len(count) == 4:
            release.set()            # the writer of the third save finishes while the run is being interrupted
            raise KeyboardInterrupt
        return 0.0

    problem, mu0 = problem_and_start()
    path = tmp_path / "run.h5"
    monkeypatch.setattr(TrajectoryWriter, "append", slow_append)
    with pytest.warns(RunInterruptedWarning):
        traj = mf.simulate(problem, mu0, t_max=2.0, dt=0.1, save_every=2, path=path, background_saves=True,
                           observables={"tick": interrupt_at_fourth_save})
    assert traj.status == "interrupted" and len(traj.times) == 3
    monkeypatch.setattr(TrajectoryWriter, "append", append)
    resumed = mf.simulate(problem, mu0, t_max=2.0, dt=0.1, save_every=2, path=path, resume=True,
                          background_saves=True, observables={"tick": lambda mu: 0.0})
    whole = mf.simulate(problem, mu0, t_max=2.0, dt=0.1, save_every=2, observables={"tick": lambda mu: 0.0})
    assert resumed.status == "completed"
    np.testing.assert_array_equal(resumed.times, whole.times)
    np.testing.assert_array_equal(resumed.final.state(), whole.final.state())
    np.testing.assert_array_equal(resumed.risk, whole.risk)


def test_a_failing_run_waits_for_the_save_in_flight_before_closing_the_file(tmp_path, monkeypatch):
    """An error in the run's thread (an observable failing at the fourth save) while the third save is still being
    written: the file is closed as failed only after that save is complete, so it holds three saves, not two."""
    release = threading.Event()
    append = TrajectoryWriter.append

    def slow_append(self, *args, **kwargs):
        if self.n_saved == 2:
            release.wait(timeout=20)
            time.sleep(0.3)          # still writing when the run's thread has already failed
        return append(self, *args, **kwargs)

    count = []

    def fail_at_fourth_save(mu):
        count.append(1)
        if len(count) == 4:
            release.set()
            raise RuntimeError("observable failed (simulated)")
        return 0.0

    problem, mu0 = problem_and_start()
    path = tmp_path / "run.h5"
    monkeypatch.setattr(TrajectoryWriter, "append", slow_append)
    with pytest.raises(RuntimeError, match="observable failed"):
        mf.simulate(problem, mu0, t_max=2.0, dt=0.1, save_every=2, path=path, background_saves=True,
                    observables={"tick": fail_at_fourth_save})
    saved = mf.load(path)
    assert saved.status == "failed" and len(saved.times) == 3
    np.testing.assert_allclose(saved.times, [0.0, 0.2, 0.4])


def test_background_saves_are_on_by_default_for_a_file_run_on_a_cuda_device_only(tmp_path, monkeypatch):
    """By default the saves of a run to a file are written on the writer thread when the backend computes on a
    CUDA device (here a numpy backend that reports one: only the choice is tested, not a GPU), and in the run's
    thread otherwise; background_saves=False turns them off for the CUDA device too."""
    import torch

    from meanfield.kernels.numpy_backend import NumpyBackend

    class ReportsCuda(NumpyBackend):
        device = torch.device("cuda")

    threads_of_saves = []
    append = TrajectoryWriter.append

    def recording_append(self, *args, **kwargs):
        threads_of_saves.append(threading.current_thread() is threading.main_thread())
        return append(self, *args, **kwargs)

    monkeypatch.setattr(TrajectoryWriter, "append", recording_append)
    problem, mu0 = problem_and_start()

    def saves_in_main_thread(backend, name, **options):
        threads_of_saves.clear()
        mf.simulate(problem, mu0, t_max=0.4, dt=0.1, save_every=2, backend=backend, path=tmp_path / f"{name}.h5",
                    **options).close()
        assert len(threads_of_saves) == 3
        return set(threads_of_saves)

    assert saves_in_main_thread(ReportsCuda(), "cuda") == {False}
    assert saves_in_main_thread(NumpyBackend(), "cpu") == {True}
    assert saves_in_main_thread(ReportsCuda(), "cuda_off", background_saves=False) == {True}
