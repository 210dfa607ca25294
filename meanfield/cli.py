"""The ``meanfield`` command: run, info, plot, sweep."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

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
    import matplotlib.pyplot as plt

    from . import plot
    from .io import load

    out = Path(args.out or Path(args.file).with_suffix(""))
    with load(args.file) as traj:
        if traj.final is None:  # an MLP run: losses and accuracies over epochs
            obs = {k: np.asarray(v) for k, v in traj.observables.items()}
            losses = {"train": (traj.times, traj.risk), "test": (traj.times, obs["test_loss"])}
            plot.savefig(plot.ensemble_curves(losses, logy=True, xlabel="epoch", ylabel="cross-entropy"),
                         out / "loss.png")
            plot.savefig(plot.ensemble_curves({"train": (traj.times, obs["train_accuracy"]),
                                               "test": (traj.times, obs["test_accuracy"])},
                                              xlabel="epoch", ylabel="accuracy"), out / "accuracy.png")
            print(f"wrote {out / 'loss.png'}, {out / 'accuracy.png'}")
            return 0
        ax = plot.risk_curve(traj)
        ax.set_title(f"{traj.kind.replace('_', ' ')}: {Path(args.file).name} ({traj.status})")
        plot.savefig(ax, out / "risk.png")
        made = ["risk.png"]
        H = traj.hidden_subspace()
        if traj.final is not None:
            arrays = traj.target_arrays
            teacher = arrays["c"][:, None] * arrays["U"] if "U" in arrays else None
            plot.savefig(plot.particle_cloud(traj.final, subspace=H, t=float(traj.times[-1]), teacher=teacher),
                         out / "particles.png")
            made.append("particles.png")
        if H is not None and traj.b is not None:
            axes = plot.alignment_histograms(traj, H)
            plot.savefig(axes[0], out / "alignment.png")
            made.append("alignment.png")
        plt.close("all")
    print(f"wrote {', '.join(str(out / name) for name in made)}")
    return 0


def _cmd_sweep(args) -> int:
    from .config import load_config
    from .sweep import run_sweep

    manifest = run_sweep(load_config(args.config), scheduler=args.scheduler, n_workers=args.workers,
                         overwrite=args.overwrite, retry_failed=args.retry_failed, progress=not args.no_progress)
    counts: dict[str, int] = {}
    for run in manifest["runs"]:
        counts[run["status"]] = counts.get(run["status"], 0) + 1
    print(f"{len(manifest['runs'])} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for run in manifest["runs"]:
        if run["status"] == "failed":
            print(f"  failed {run['id']}: {run.get('error')}")
    return 1 if counts.get("failed") else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``meanfield`` command: subcommands run, info, plot, recover and sweep.

    Examples
    --------
    >>> from meanfield.cli import build_parser
    >>> args = build_parser().parse_args(["run", "experiments/student_teacher.toml", "--overwrite"])
    >>> args.command, args.overwrite
    ('run', True)
    """
    from . import __version__

    parser = argparse.ArgumentParser(prog="meanfield", description="Mean-field dynamics of two-layer ReLU networks.")
    parser.add_argument("--version", action="version", version=f"meanfield {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the simulation a TOML/YAML configuration describes")
    run.add_argument("config")
    run.add_argument("--output", help="HDF5 output (default: [run] output of the configuration)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    run.add_argument("--resume", action="store_true", help="continue an existing output file from its checkpoint")
    run.add_argument("--backend", choices=["auto", "numpy", "numba", "torch"], help="override [run] backend")
    run.add_argument("--no-progress", action="store_true")
    run.set_defaults(func=_cmd_run)
    recover = sub.add_parser("recover", help="keep the intact snapshots of a damaged trajectory file in a new file")
    recover.add_argument("file")
    recover.add_argument("--out", help="the new file (default: <file stem>.recovered.h5; never an existing file)")
    recover.set_defaults(func=_cmd_recover)
    info = sub.add_parser("info", help="describe a trajectory file")
    info.add_argument("file")
    info.set_defaults(func=_cmd_info)
    plot = sub.add_parser("plot", help="risk curve, particle cloud and (if a subspace is known) alignment")
    plot.add_argument("file")
    plot.add_argument("--out", help="output folder (default: next to the file, named after it)")
    plot.set_defaults(func=_cmd_plot)
    sweep = sub.add_parser("sweep", help="run a grid of configurations on Dask")
    sweep.add_argument("config")
    sweep.add_argument("--scheduler", help="address of an existing Dask scheduler (default: a LocalCluster)")
    sweep.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
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
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt as err:  # a sweep, or a run interrupted before its loop started
        print(str(err) or "interrupted", file=sys.stderr)
        return 143 if "SIGTERM" in str(err) else 130
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
