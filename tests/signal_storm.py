"""Many short runs in one process, each ended by a real signal from outside at a random moment: run by
test_signals.py.

``python tests/signal_storm.py OUT_DIR N`` runs N flows to files in OUT_DIR (numba, saving at every step, with a
horizon no run reaches, background saves in every other pair of runs). At the first save of each run it prints
``ready``; the parent then sends SIGTERM or SIGINT (alternately) from its own process after a random delay, so the
signal lands wherever the run is: in a compiled kernel, an HDF5 write, a checkpoint write, a background write. If the
run has not ended WATCHDOG seconds after its signal, the signal was lost: the parent then sends SIGUSR1, which stops
the run by a stop request (status "interrupted", interrupted_by "stop request"). After each run, one JSON line: its
signal, status, interrupted_by and the steps made.
"""

import json
import signal
import sys
import warnings
from pathlib import Path

import numpy as np

import meanfield as mf
from meanfield._signals import clear_stop, request_stop
from meanfield.runguard import RunInterruptedWarning

#: Seconds after its signal by which a run must have ended (a step and a save take milliseconds here).
WATCHDOG = 10.0
#: Signals are sent up to this many seconds after a run's first save (up to a few dozen steps and saves).
MAX_DELAY = 0.05

PROBLEM = mf.Problem(mf.TeacherNetwork([1.0, 0.5], np.eye(10)[:2]), mf.Gaussian(10))
MU0 = mf.init.sign_sphere(256, 10, seed=1)
#: numba: the signals were lost as a compiled kernel returned (the first Python code run was a weakref callback)
OPTIONS = dict(dt=0.01, save_every=1, backend="numba")


def run_options(i: int) -> dict:
    """The settings of run i (background saves in runs 2, 3, 6, 7, ...)."""
    return dict(OPTIONS, background_saves=(i // 2) % 2 == 1)


def signal_for(i: int) -> int:
    """The signal run i receives."""
    return (signal.SIGTERM, signal.SIGINT)[i % 2]


def interrupted_run(path: Path, i: int) -> dict:
    said_ready = []

    def ready(mu):  # an observable: called at every save, says "ready" at the first
        if not said_ready:
            said_ready.append(True)
            print("ready", flush=True)
        return 0.0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunInterruptedWarning)
        traj = mf.simulate(PROBLEM, MU0, t_max=1e6, path=path, observables={"ready": ready}, **run_options(i))
    clear_stop()
    result = {"run": i, "signal": signal.Signals(signal_for(i)).name, "status": str(traj.status),
              "interrupted_by": traj.info.get("interrupted_by"), "n_steps": int(traj.info["n_steps"])}
    traj.close()
    return result


def main(out_dir: str, n: int) -> None:
    signal.signal(signal.SIGUSR1, lambda signum, frame: request_stop())  # the parent's watchdog
    for i in range(n):
        print(json.dumps(interrupted_run(Path(out_dir) / f"run{i}.h5", i)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
