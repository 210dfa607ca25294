"""The ``meanfield`` command: run, info, plot, watch, recover, sweep."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _cmd_run(args) -> int:
    import warnings

    from .config import load_config, run_config
    from .runguard import FlowDivergedError, RunInterruptedWarning
    from .status import Status

    cfg = load_config(args.config)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunInterruptedWarning)  # said below, with the command that resumes
            traj = run_config(cfg, output=args.output, overwrite=args.overwrite, resume=args.resume,
                              progress=not args.no_progress, backend=args.backend)
    except FlowDivergedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    with traj:
        if traj.status == Status.INTERRUPTED:
            by = traj.info.get("interrupted_by", "SIGINT")
            output = f" --output {args.output}" if args.output else ""
            print(f"{traj.path}: interrupted ({by}) at t = {traj.times[-1]:.6g} after {len(traj)} snapshots; "
                  f"continue it with: meanfield run {args.config}{output} --resume", file=sys.stderr)
            return 143 if by == "SIGTERM" else 130
        print(f"{traj.path}: {traj.status}, t = {traj.times[-1]:.6g}, risk = {traj.risk[-1]:.6e}, "
              f"{len(traj)} snapshots")
    return 0


def _cmd_recover(args) -> int:
    from .io import recover

    out = recover(args.file, args.out)
    print(f"wrote {out}")
    return 0


def _cmd_info(args) -> int:
    from .io import load

    with load(args.file) as traj:
        attrs = traj.file_attributes
        print(f"file:       {args.file} ({Path(args.file).stat().st_size / 2**20:.2f} MiB)")
        print(f"format:     {attrs.get('format', '?')} v{attrs.get('format_version', '?')} "
              f"(meanfield {attrs.get('package_version', '?')})")
        print(f"kind:       {traj.kind}, created {attrs.get('created', '?')}, status {traj.status}")
        print(f"problem:    {json.dumps(traj.problem_spec)}")
        if traj.final is not None:
            m, d = traj.final.m, traj.final.d
            print(f"particles:  m = {m}, d = {d}; snapshots kept: {'yes' if traj.a is not None else 'no'}")
        if len(traj):
            print(f"time:       {len(traj)} saves, t = {traj.times[0]:.6g} .. {traj.times[-1]:.6g}")
            print(f"risk:       {traj.risk[0]:.6e} -> {traj.risk[-1]:.6e}")
        if traj.observables:
            print("observables: " + ", ".join(f"{k} {v.shape}" for k, v in traj.observables.items()))
        if "solver" in traj.config:
            run = traj.config.get("solver"), traj.config.get("dt"), traj.config.get("backend")
            print(f"solver:     {run[0]}, dt = {run[1]}, backend {run[2]}")
        if traj.info:
            print(f"info:       {json.dumps(traj.info)}")
    return 0


def _cmd_plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .figures import run_figures, sweep_figure, write_figures
    from .io import load

    if Path(args.file).is_dir() or Path(args.file).name == "manifest.json":  # a sweep: its grid's final risks
        folder = Path(args.out or (Path(args.file) if Path(args.file).is_dir() else Path(args.file).parent))
        made = write_figures({"final_risk.png": sweep_figure(args.file)}, folder)
        print(f"wrote {', '.join(map(str, made))}")
        return 0
    out = Path(args.out or Path(args.file).with_suffix(""))
    with load(args.file) as traj:
        if args.animate:
            from .animate import animate

            written = animate(traj, args.animate, fps=args.fps, stride=args.stride, size=args.size, dpi=args.dpi,
                              progress=not args.no_progress)
            print(f"wrote {written}")
            return 0
        reference = load(args.reference) if args.reference else None
        try:
            made = write_figures(run_figures(traj, reference, name=Path(args.file).name), out)
        finally:
            if reference is not None:
                reference.close()
    print(f"wrote {', '.join(map(str, made))}")
    return 0


def _cmd_watch(args) -> int:
    from .watch import exit_code, watch

    try:
        return exit_code(watch(args.file, interval=args.interval, plot=args.plot))
    except KeyboardInterrupt:
        print(f"\nstopped watching {args.file} (the run, if it is running, goes on)", file=sys.stderr)
        return 130


def _cmd_sweep(args) -> int:
    from .config import load_config
    from .sweep import run_sweep

    cfg = load_config(args.config)
    if args.job_script:
        from .sweep import jobqueue_cluster

        cluster = jobqueue_cluster(cfg, args.jobqueue)
        try:
            print(cluster.job_script())
        finally:
            cluster.close()
        return 0
    manifest = run_sweep(cfg, scheduler=args.scheduler, n_workers=args.workers, overwrite=args.overwrite,
                         retry_failed=args.retry_failed, progress=not args.no_progress, jobqueue=args.jobqueue)
    counts: dict[str, int] = {}
    for run in manifest["runs"]:
        counts[run["status"]] = counts.get(run["status"], 0) + 1
    print(f"{len(manifest['runs'])} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for run in manifest["runs"]:
        if run["status"] == "failed":
            print(f"  failed {run['id']}: {run.get('error')}")
    return 1 if counts.get("failed") else 0


def _names_epilog() -> str:
    """The names a configuration file may use, by registry (meanfield.registry), one line each."""
    import textwrap

    from .registry import REGISTRIES

    lines = ["names a configuration may use (meanfield.registry; a registered component of your own joins them):"]
    for plural, registry in REGISTRIES.items():
        lines += textwrap.wrap(f"{plural}: {', '.join(registry.names())}", 100, initial_indent="  ",
                               subsequent_indent="      ")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``meanfield`` command: subcommands run, info, plot, watch, recover and sweep.

    Examples
    --------
    >>> from meanfield.cli import build_parser
    >>> args = build_parser().parse_args(["run", "experiments/student_teacher.toml", "--overwrite"])
    >>> args.command, args.overwrite
    ('run', True)
    """
    from . import __version__
    from .registry import BACKENDS

    parser = argparse.ArgumentParser(prog="meanfield", description="Mean-field dynamics of two-layer ReLU networks.")
    parser.add_argument("--version", action="version", version=f"meanfield {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the simulation a TOML/YAML configuration describes",
                         epilog=_names_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("config")
    run.add_argument("--output", help="HDF5 output (default: [run] output of the configuration)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    run.add_argument("--resume", action="store_true", help="continue an existing output file from its checkpoint")
    run.add_argument("--backend", choices=["auto", *sorted(BACKENDS.names())], help="override [run] backend")
    run.add_argument("--no-progress", action="store_true")
    run.set_defaults(func=_cmd_run)
    recover = sub.add_parser("recover", help="keep the intact snapshots of a damaged trajectory file in a new file")
    recover.add_argument("file")
    recover.add_argument("--out", help="the new file (default: <file stem>.recovered.h5; never an existing file)")
    recover.set_defaults(func=_cmd_recover)
    info = sub.add_parser("info", help="describe a trajectory file")
    info.add_argument("file")
    info.set_defaults(func=_cmd_info)
    plot = sub.add_parser("plot", help="the figures of a run (chosen from what it holds) or of a sweep, or an "
                                       "animation of its particles")
    plot.add_argument("file", help="a trajectory file, or a sweep's output folder (or its manifest.json)")
    plot.add_argument("--out", help="output folder (default: next to the file, named after it)")
    plot.add_argument("--reference", help="another run drawn beside this one (e.g. the flow of an SGD run)")
    plot.add_argument("--animate", metavar="OUT.gif|OUT.mp4",
                      help="write an animation of the particles instead (GIF by Pillow; MP4 needs ffmpeg)")
    plot.add_argument("--fps", type=float, default=10.0, help="animation: frames per second")
    plot.add_argument("--stride", type=int, default=1, help="animation: one frame every STRIDE snapshots")
    plot.add_argument("--size", type=float, nargs=2, default=(9.0, 4.0), metavar=("WIDTH", "HEIGHT"),
                      help="animation: frame size in inches")
    plot.add_argument("--dpi", type=float, default=100.0, help="animation: pixels per inch")
    plot.add_argument("--no-progress", action="store_true", help="animation: no progress bar")
    plot.set_defaults(func=_cmd_plot)
    watch = sub.add_parser("watch", help="follow a run another process is writing, until it ends")
    watch.add_argument("file")
    watch.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes")
    watch.add_argument("--plot", metavar="OUT.png", help="rewrite this figure (risk and particles) at each refresh")
    watch.set_defaults(func=_cmd_watch)
    sweep = sub.add_parser("sweep", help="run a grid of configurations on Dask")
    sweep.add_argument("config")
    sweep.add_argument("--scheduler", help="address of an existing Dask scheduler (default: a LocalCluster)")
    sweep.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    sweep.add_argument("--jobqueue", metavar="KIND",
                       help="run on Dask workers submitted as jobs by dask-jobqueue: slurm, pbs or another of its "
                            "batch systems, with the options of the configuration's [cluster] table")
    sweep.add_argument("--job-script", action="store_true",
                       help="print the job script that --jobqueue (or [cluster] jobqueue) would submit, and exit")
    sweep.add_argument("--overwrite", action="store_true")
    sweep.add_argument("--retry-failed", action="store_true")
    sweep.add_argument("--no-progress", action="store_true")
    sweep.set_defaults(func=_cmd_sweep)
    return parser


def main(argv=None) -> int:
    """The ``meanfield`` command (``argv`` the arguments, the process's when None); returns the exit status.

    Examples
    --------
    >>> import meanfield as mf, tempfile, pathlib
    >>> from meanfield.cli import main
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "teacher.h5"
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[0.0, 1.0]]), mf.Sphere(2))
    >>> mf.simulate(problem, mf.init.gaussian(4, 2, seed=0), t_max=0.5, dt=0.1, path=path).close()
    >>> main(["info", str(path)])    # doctest: +ELLIPSIS
    file: ...
    0
    """
    import signal

    from ._signals import stop_signals, take_pending_signal

    args = build_parser().parse_args(argv)
    with stop_signals():  # SIGINT and SIGTERM are noted, and end a run between two of its steps
        code = _dispatch(args)
        late = take_pending_signal()  # arrived after the last point that checks for one
    if late is None or code in (130, 143):
        return code
    print(f"received signal {signal.Signals(late).name} as the command ended (what it reported above is complete)",
          file=sys.stderr)
    return 128 + late


def _dispatch(args) -> int:
    from ._room import TrajectoryWriteError
    from ._signals import Terminated

    try:
        return args.func(args)
    except TrajectoryWriteError as err:  # a full disk or quota: the file keeps what was saved before
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:  # a sweep, or Ctrl-C pressed twice
        print(str(err) or "interrupted", file=sys.stderr)
        return 143 if isinstance(err, Terminated) or "SIGTERM" in str(err) else 130
    except BrokenPipeError:  # output piped into a reader that closed early (`meanfield info f.h5 | head`)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (FileExistsError, FileNotFoundError, ValueError, RuntimeError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyError as err:  # a trajectory file without a dataset or attribute every file has
        what = (str(err.args[0]) if err.args else str(err)).strip("'")
        where = getattr(args, "file", None) or getattr(args, "config", "")
        print(f"error: {where}: the file is damaged, it lacks an entry every trajectory has ({what}); "
              "`meanfield recover` keeps what is intact", file=sys.stderr)
        return 2
    except OSError as err:  # a read-only or full output directory, a path that is a directory, ...
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2


def _one_line(err: OSError) -> str:
    """An OS error in one line, naming the path and what to do."""
    import errno

    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and err.filename:
        return (f"cannot write {err.filename}: {err.strerror} (a read-only directory?); choose a writable output "
                "(--output, --out) or fix the permissions")
    return " ".join(str(err).split())


if __name__ == "__main__":
    sys.exit(main())
