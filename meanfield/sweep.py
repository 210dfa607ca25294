"""Parameter sweeps on Dask distributed: one HDF5 file per run and a manifest of what ran, what failed and why.

A sweep configuration is a run configuration with a [sweep] table::

    [sweep]
    output_dir = "results/sweeps/width"
    [sweep.grid]                      # the cartesian product of these settings
    "init.m" = [64, 256, 1024]
    "init.seed" = [0, 1, 2]
    [sweep.zip]                       # optional: settings varied together (equal-length lists), times the grid
    "init.seed" = [0, 1, 2]
    "run.seed" = [10, 11, 12]

On a batch scheduler the runs go to Dask workers started as jobs by dask-jobqueue (``--jobqueue slurm`` or
``pbs``, or ``jobqueue`` in [cluster]); the [cluster] table holds the options of that kind's cluster (cores, memory,
walltime, queue, account, ...) and ``jobs``, the number of jobs to submit::

    [cluster]
    jobqueue = "slurm"
    cores = 4
    memory = "8GB"
    walltime = "02:00:00"
    jobs = 10

Rerunning a sweep skips finished runs (status completed or converged), resumes interrupted ones from their
checkpoints and reruns nothing that failed unless ``retry_failed``. The manifest ``<output_dir>/manifest.json`` is
rewritten atomically after every run.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import itertools
import json
import os
import signal
import threading
import traceback
import warnings
from pathlib import Path

from tqdm.auto import tqdm

from ._signals import Terminated, check_stop, stop_signals
from ._validation import check_positive_int
from .config import set_key, validate_config
from .status import Status

__all__ = ["expand_sweep", "run_sweep", "check_scheduler", "jobqueue_kinds", "jobqueue_cluster", "SweepInterrupted"]

#: Seconds to wait for a Dask scheduler that accepted the connection to answer (Dask's own default is 30).
CONNECT_TIMEOUT = 10.0


def expand_sweep(cfg: dict) -> list[dict]:
    """The runs of a sweep: dicts with id, overrides, config and path.

    Examples
    --------
    >>> import tempfile
    >>> from meanfield.sweep import expand_sweep
    >>> cfg = {"inputs": {"law": "gaussian", "d": 4}, "target": {"kind": "teacher", "k": 2, "seed": 0},
    ...        "init": {"kind": "sign_sphere", "m": 8, "seed": 0},
    ...        "run": {"t_max": 0.5, "dt": 0.1, "solver": "heun", "backend": "numpy"},
    ...        "sweep": {"output_dir": tempfile.mkdtemp(), "grid": {"init.m": [8, 16], "init.seed": [0, 1]}}}
    >>> runs = expand_sweep(cfg)
    >>> len(runs), runs[0]["overrides"]
    (4, {'init.m': 8, 'init.seed': 0})
    """
    validate_config(cfg, "sweep configuration")
    sweep = cfg.get("sweep")
    if not sweep or "output_dir" not in sweep:
        raise ValueError("a sweep configuration needs a [sweep] table with output_dir and a [sweep.grid] table")
    grid = sweep.get("grid", {})
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"[sweep.grid] {key} must be a non-empty list of values")
    zipped = sweep.get("zip", {})
    lengths = {len(v) if isinstance(v, list) else -1 for v in zipped.values()}
    if zipped and (len(lengths) != 1 or min(lengths) < 1):
        raise ValueError(f"[sweep.zip] needs non-empty lists of one common length, got lengths "
                         f"{ {k: len(v) if isinstance(v, list) else None for k, v in zipped.items()} }")
    if set(zipped) & set(grid):
        raise ValueError(f"keys {sorted(set(zipped) & set(grid))} are in both [sweep.grid] and [sweep.zip]")
    zip_rows = [dict(zip(zipped, values)) for values in zip(*zipped.values())] if zipped else [{}]
    base = {k: v for k, v in cfg.items() if k not in ("sweep", "cluster")}  # where runs run is not part of a run
    out_dir = Path(sweep["output_dir"])
    runs = []
    keys = sorted(grid)
    for values, zrow in itertools.product(itertools.product(*(grid[k] for k in keys)), zip_rows):
        overrides = dict(zip(keys, values), **zrow)
        run_cfg = base
        for key, value in overrides.items():
            run_cfg = set_key(run_cfg, key, value)
        run_id = "_".join(f"{k.split('.')[-1]}-{v}" for k, v in overrides.items()) or "run"
        path = out_dir / f"{run_id}.h5"
        run_cfg = set_key(run_cfg, "run.output", str(path))
        validate_config(run_cfg, f"sweep run {run_id}")
        runs.append({"id": run_id, "overrides": overrides, "config": run_cfg, "path": str(path)})
    return runs


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped a sweep; the manifest records which runs were interrupted.

    Examples
    --------
    :func:`run_sweep` raises it after Ctrl-C, once the manifest is written; rerunning the sweep redoes only the
    runs that did not complete:

    >>> from meanfield.sweep import SweepInterrupted
    >>> issubclass(SweepInterrupted, KeyboardInterrupt)
    True
    """


def _execute(run_cfg: dict, overwrite: bool) -> dict:
    """Worker task: run (or resume) one configuration; failures are returned, not raised, with their reason."""
    from ._signals import StopRequested, check_stop
    from .config import run_config
    from .runguard import RunInterruptedWarning

    try:
        check_stop()  # the sweep is being stopped: do not start
    except StopRequested:
        return {"status": "pending"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunInterruptedWarning)  # the manifest records it
            traj = run_config(run_cfg, overwrite=overwrite, resume=not overwrite)
        result = {"status": traj.status, "final_risk": float(traj.risk[-1]), "t": float(traj.times[-1]),
                  "wall_time": traj.info.get("wall_time"), "error": None}
        traj.close()
        return result
    except Exception as err:  # noqa: BLE001 - the manifest records every failure
        return {"status": Status.FAILED.value, "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(limit=5)}


def _write_manifest(path: Path, manifest: dict) -> None:
    manifest["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def jobqueue_kinds() -> dict[str, type]:
    """The clusters of dask-jobqueue by the name of their batch system (``"slurm"`` → ``SLURMCluster``, ``"pbs"``,
    ...), read from the package.

    Examples
    --------
    >>> from meanfield.sweep import jobqueue_kinds
    >>> {"slurm", "pbs"} <= set(jobqueue_kinds())
    True
    """
    try:
        import dask_jobqueue
        from dask_jobqueue.core import JobQueueCluster
    except ModuleNotFoundError:
        raise ModuleNotFoundError("sweeps on a batch scheduler need dask-jobqueue: pip install dask-jobqueue") from None
    return {name[:-len("Cluster")].lower(): cls for name, cls in vars(dask_jobqueue).items()
            if isinstance(cls, type) and issubclass(cls, JobQueueCluster) and cls is not JobQueueCluster}


#: Arguments of a dask-jobqueue cluster and its jobs that the sweep sets itself, or that are not settings.
_NOT_CLUSTER_SETTINGS = {"self", "scheduler", "name", "config_name", "base_class_kwargs", "job_kwargs", "job_cls",
                         "loop", "asynchronous", "n_workers", "security", "scheduler_cls", "silence_logs",
                         "dashboard_address"}


def cluster_schema(spec: dict) -> dict:
    """The keys of a [cluster] table: ``jobqueue`` (a kind of :func:`jobqueue_kinds`), ``jobs`` (how many to
    submit) and the arguments of that kind's cluster and of its jobs."""
    import inspect

    from ._config_schema import ANY, INT, STR, Key

    kinds = jobqueue_kinds()
    keys = {"jobqueue": Key((STR,), names=lambda: tuple(kinds)), "jobs": Key((INT,))}
    chosen = [kinds[spec["jobqueue"]]] if spec.get("jobqueue") in kinds else list(kinds.values())
    for cls in chosen:
        for fn in (cls.__init__, *(klass.__init__ for klass in cls.job_cls.__mro__ if "__init__" in vars(klass))):
            for name, param in inspect.signature(fn).parameters.items():
                if name not in _NOT_CLUSTER_SETTINGS and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                    keys.setdefault(name, Key((ANY,)))
    return keys


def jobqueue_cluster(cfg: dict, kind: str | None = None):
    """The dask-jobqueue cluster a configuration's [cluster] table describes (no job submitted yet: its
    ``job_script()`` is the script each job runs; ``scale(jobs=n)`` submits them).

    Parameters
    ----------
    cfg : dict
        A configuration; its [cluster] table holds the cluster's options.
    kind : str, optional
        The batch system ("slurm", "pbs", ...; :func:`jobqueue_kinds`), instead of [cluster] ``jobqueue``.

    Examples
    --------
    >>> from meanfield.sweep import jobqueue_cluster
    >>> cluster = jobqueue_cluster({"cluster": {"cores": 2, "memory": "4GB", "walltime": "00:30:00"}}, "slurm")
    >>> "#SBATCH -t 00:30:00" in cluster.job_script()
    True
    >>> cluster.close()
    """
    from .config import ConfigError

    options = dict(cfg.get("cluster", {}))
    kind = kind or options.get("jobqueue")
    kinds = jobqueue_kinds()
    if kind not in kinds:
        raise ConfigError(f"[cluster] jobqueue must be one of {', '.join(map(repr, kinds))} (or pass --jobqueue), "
                          f"got {kind!r}")
    options.pop("jobqueue", None)
    options.pop("jobs", None)
    unknown = sorted(set(options) - set(cluster_schema({"jobqueue": kind})))
    if unknown:
        raise ConfigError(f"unknown keys {unknown} in [cluster] for jobqueue = {kind!r}")
    options["scheduler_options"] = {"dashboard_address": ":0", **options.get("scheduler_options", {})}
    options.setdefault("cores", 1)
    options.setdefault("memory", "2GB")
    try:
        return kinds[kind](**options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[cluster] {' '.join(str(err).split())}") from None


def run_sweep(cfg: dict, scheduler: str | None = None, n_workers: int = 2, overwrite: bool = False,
              retry_failed: bool = False, progress: bool = True, jobqueue: str | None = None) -> dict:
    """Run every configuration of a sweep on a Dask cluster and return the manifest.

    Parameters
    ----------
    cfg : dict
        Sweep configuration (see the module docstring).
    scheduler : str, optional
        Address of an existing Dask scheduler; by default a ``LocalCluster`` with ``n_workers`` processes.
    n_workers : int
        Worker processes of that local cluster.
    jobqueue : str, optional
        Run on workers submitted as jobs to this batch system ("slurm", "pbs", ...: :func:`jobqueue_cluster`, with
        the options of [cluster]); [cluster] ``jobqueue`` when not given.
    overwrite : bool
        Rerun everything from scratch.
    retry_failed : bool
        Rerun runs that the manifest records as failed.
    progress : bool
        Show a progress bar over the runs.

    Examples
    --------
    Two seeds of a small flow on a local Dask cluster with one worker:

    >>> import tempfile
    >>> from meanfield.sweep import run_sweep
    >>> cfg = {"inputs": {"law": "sphere", "d": 3}, "target": {"kind": "teacher", "k": 1, "seed": 0},
    ...        "init": {"kind": "gaussian", "m": 4}, "run": {"t_max": 0.2, "dt": 0.1, "backend": "numpy"},
    ...        "sweep": {"output_dir": tempfile.mkdtemp(), "grid": {"init.seed": [0, 1]}}}
    >>> manifest = run_sweep(cfg, n_workers=1, progress=False)
    >>> [run["status"] for run in manifest["runs"]]
    ['completed', 'completed']
    """
    from dask.distributed import Client, LocalCluster, as_completed

    from .io import TrajectoryFileError, file_status

    jobqueue = jobqueue or cfg.get("cluster", {}).get("jobqueue")
    if scheduler is not None and jobqueue is not None:
        raise ValueError("give either a scheduler address (--scheduler) or a batch system (--jobqueue), not both")
    if jobqueue is not None:
        _check_submit_command(jobqueue)
    elif scheduler is None:
        n_workers = check_positive_int(n_workers, "n_workers (--workers, the local cluster's worker processes)")
    else:
        check_scheduler(scheduler)
    runs = expand_sweep(cfg)
    out_dir = Path(cfg["sweep"]["output_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    previous = {}
    if manifest_path.exists() and not overwrite:
        previous = {r["id"]: r for r in json.loads(manifest_path.read_text()).get("runs", [])}
    manifest = {"sweep": cfg.get("name", out_dir.name), "grid": cfg["sweep"].get("grid", {}), "runs": []}
    todo = []
    for run in runs:
        entry = {"id": run["id"], "overrides": run["overrides"], "path": run["path"], "status": "pending"}
        path = Path(run["path"])
        if path.exists() and not overwrite:
            try:
                status = file_status(path)
            except TrajectoryFileError as err:
                status, entry["error"] = Status.FAILED.value, str(err)
            if Status(status).finished:
                entry.update(previous.get(run["id"], {}), status=status, skipped=True)
            elif status in (Status.DIVERGED, Status.FAILED) and not retry_failed:
                entry.update(previous.get(run["id"], {}), status=Status.FAILED.value, skipped=True)
                entry.setdefault("error", f"the stored run ended with status {status!r}")
        elif previous.get(run["id"], {}).get("status") == Status.FAILED and not retry_failed and not overwrite:
            entry.update(previous[run["id"]], skipped=True)
        manifest["runs"].append(entry)
        if not entry.get("skipped"):
            todo.append((run, entry))
    _write_manifest(manifest_path, manifest)
    if not todo:
        return manifest

    cluster = None
    if jobqueue is not None:
        cluster = jobqueue_cluster(cfg, jobqueue)
        cluster.scale(jobs=cfg.get("cluster", {}).get("jobs", 1))
        client = Client(cluster)
    elif scheduler is None:
        with _sigint_ignored():  # worker processes inherit it: Ctrl-C reaches the client only, which stops them
            # ":0": the dashboard on a free port (None still takes 8787 here, and warns when another cluster has it)
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")
        client = Client(cluster)
    else:
        client = _connect(scheduler)
    futures = {}
    try:
        with stop_signals():
            futures = {client.submit(_execute, run["config"], overwrite, key=f"meanfield-{run['id']}", pure=False):
                       entry for run, entry in todo}
            for entry in futures.values():
                entry["status"] = Status.RUNNING.value
            _write_manifest(manifest_path, manifest)
            with tqdm(total=len(futures), disable=not progress, desc="sweep") as bar:
                for future in _as_completed_or_stopped(as_completed(futures)):
                    _record(futures[future], future)
                    _write_manifest(manifest_path, manifest)
                    bar.update(1)
    except KeyboardInterrupt as err:
        by = "SIGTERM" if isinstance(err, Terminated) else "SIGINT"
        _stop_runs(client, futures)
        _write_manifest(manifest_path, manifest)
        counts = {}
        for entry in futures.values():
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        raise SweepInterrupted(f"sweep interrupted by {by} ({summary}); run the same command again to resume "
                               "it") from None
    finally:
        _close(client, cluster)
    return manifest


def _check_submit_command(kind: str) -> None:
    """A one-line error when the command that submits jobs to ``kind`` (sbatch, qsub, ...) is not on this machine."""
    import shutil

    kinds = jobqueue_kinds()
    if kind not in kinds:
        raise ValueError(f"jobqueue must be one of {', '.join(map(repr, kinds))}, got {kind!r}")
    command = kinds[kind].job_cls.submit_command
    if shutil.which(command) is None:
        raise RuntimeError(f"--jobqueue {kind} submits jobs with {command}, which is not on this machine's PATH: run "
                           f"the sweep where {command} works (a login node), or on a local cluster")


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise a one-line ``RuntimeError`` at once when nothing listens at the Dask scheduler ``address`` (a TCP or
    TLS address; others are left to Dask), instead of Dask's retries until its timeout and a traceback.

    Examples
    --------
    >>> import socket
    >>> from meanfield.sweep import check_scheduler
    >>> with socket.socket() as s:            # a port that was free a moment ago
    ...     s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    >>> try:
    ...     check_scheduler(f"tcp://127.0.0.1:{port}")
    ... except RuntimeError as err:
    ...     print(str(err).split(";")[0])  # doctest: +ELLIPSIS
    scheduler 'tcp://127.0.0.1:...': no Dask scheduler answers there (connection refused)
    """
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            return
        host, port = parse_host_port(location)
    except ValueError as err:
        raise ValueError(f"scheduler {address!r} is not a Dask address ({err}); give one like "
                         "tcp://HOST:PORT") from None
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err)).lower()
        raise RuntimeError(f"scheduler {address!r}: no Dask scheduler answers there ({reason}); start one "
                           "(dask scheduler) or leave --scheduler out to run on a local cluster") from None


def _connect(address: str):
    """A client of the scheduler at ``address``, or a one-line ``RuntimeError`` after CONNECT_TIMEOUT seconds."""
    from dask.distributed import Client

    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as err:
        raise RuntimeError(f"scheduler {address!r}: could not connect to a Dask scheduler there "
                           f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); check the address or "
                           "leave --scheduler out to run on a local cluster") from None


def _as_completed_or_stopped(futures, poll: float = 0.1):
    """The futures of a Dask ``as_completed`` as they finish; SIGINT or SIGTERM (noted by :func:`stop_signals`)
    raises here, between two polls, never inside Dask's code."""
    import time

    while not futures.is_empty():
        check_stop()
        batch = futures.next_batch(block=False)
        if not batch:
            time.sleep(poll)
        yield from batch


def _record(entry: dict, future) -> None:
    try:
        entry.update(future.result())
    except Exception as err:  # noqa: BLE001 - a lost worker is a failed run, recorded
        entry.update(status=Status.FAILED.value, error=f"{type(err).__name__}: {err}")


def _stop_runs(client, futures: dict, timeout: float = 60.0) -> None:
    """Ask every worker to stop its run at the next step (the runs close their files as interrupted) and collect
    what they return; runs that did not answer within ``timeout`` are recorded as interrupted."""
    from dask.distributed import wait

    from ._signals import clear_stop, request_stop

    try:
        client.run(request_stop)
        wait(list(futures), timeout=timeout)
    except Exception:  # noqa: BLE001 - a timeout or a lost worker: what did not answer is marked below
        pass
    for future, entry in futures.items():
        if future.done():
            _record(entry, future)
        if entry["status"] in (Status.RUNNING, Status.PENDING) and future.done():
            entry["status"] = (Status.INTERRUPTED if entry["status"] == Status.RUNNING else Status.PENDING).value
        elif not future.done():
            entry["status"] = Status.INTERRUPTED.value
    try:
        client.run(clear_stop)
    except Exception:  # noqa: BLE001 - the workers are going away anyway
        pass


def _close(client, cluster) -> None:
    """Close the client and the local cluster without Dask's shutdown chatter."""
    import logging

    quiet = [logging.getLogger(name) for name in ("distributed", "tornado")]
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.CRITICAL)
    try:
        client.close()
        if cluster is not None:
            cluster.close()
    finally:
        for log, level in zip(quiet, levels):
            log.setLevel(level)


@contextlib.contextmanager
def _sigint_ignored():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
