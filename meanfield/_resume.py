"""Continuing a trajectory file: check that a resumed run is the same run, copy what is intact into a fresh file, and
recover what is intact of a damaged one (:mod:`meanfield.io` for the layout)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import h5py
import numpy as np

from . import checkpoint as ckpt_format
from ._files import (
    SharedRead,
    TrajectoryFileError,
    acquire_lock,
    close_attr,
    intact_prefix,
    open_read,
    release_lock,
    series_length,
    snapshot_names,
)
from ._hdf5 import new_file
from ._room import TrajectoryWriteError
from ._schema import RunDescription, array_checksum, canonical
from ._writer import TrajectoryWriter
from .checkpoint import Checkpoint
from .status import Status

__all__ = ["resume", "recover", "copy_prefix"]


def resume(path, config: dict, resumable=(), *, kind: str | None = None, problem_arrays: dict | None = None,
           weights=None, defaults: dict | None = None,
           t_end: float | None = None) -> tuple[TrajectoryWriter, Checkpoint]:
    """Reopen ``path`` to continue it: returns the writer and the last checkpoint.

    The run must be the same run: ``config`` must match the stored configuration in every entry, nested ones
    included, except the top-level keys in ``resumable``; an entry that one side lacks (a file written by an
    older version, or a setting it left out) stands for its value in ``defaults`` (dotted names, ``None`` when
    not there). When given, ``kind``, every target array in ``problem_arrays`` (compared by checksum with
    ``/problem/target``) and the particle masses ``weights`` must equal the file's, and the time ``t_end`` the
    run ends at may not be before the time its checkpoint reached. Anything else is refused with one line
    naming every difference, and the file is left as it was. The snapshots up to the checkpoint are copied to a
    fresh file that replaces the old one when complete (this also clears the open-for-write flag a crash leaves
    behind); the copy has no name until then, so a process killed meanwhile leaves the old file as it was and
    nothing else.
    """
    path = Path(path)
    lock = acquire_lock(path)
    try:
        with SharedRead(path) as f:
            stored = json.loads(f.attrs["config"])
            if close_attr(f, "status", "unknown") == Status.DIVERGED:
                t_last = float(f["series/time"][series_length(f) - 1])
                raise ValueError(f"cannot resume {path}: the run diverged after t = {t_last:.6g}, and resuming "
                                 "would take the same steps again; start a new run with a smaller step "
                                 "(overwrite=True, --overwrite)")
            diffs = _problem_differences(f, stored, config, resumable, kind, problem_arrays, weights,
                                         defaults or {})
            if diffs:
                raise ValueError(f"cannot resume {path}: the configuration differs from the stored run "
                                 f"({'; '.join(diffs)}); "
                                 f"only {', '.join(k for k in resumable if k != 'user')} may change on resume: "
                                 "use a new output file, or --overwrite (overwrite=True) to replace this one")
            lacking = [f"observables/{name}" for name in config.get("observables") or ()
                       if f"observables/{name}" not in f]
            if lacking:  # the run would fail at its first save, after the file was rewritten
                raise KeyError(", ".join(lacking))
            ckpt = ckpt_format.latest_intact(f)
            if ckpt is None:
                raise TrajectoryFileError(
                    f"cannot resume {path}: it holds no intact checkpoint (none was written, or the process was "
                    "killed while writing it); load() still reads its snapshots; start a new run "
                    "(overwrite=True) to recompute it")
            if t_end is not None and ckpt.t > t_end:
                raise ValueError(f"cannot resume {path} to end at t = {t_end:.6g}: the run already reached "
                                 f"t = {ckpt.t:.6g}; give a t_max of at least {ckpt.t:.6g} (or load() the file "
                                 "to read it)")
            writer = TrajectoryWriter(path, RunDescription.from_file(f), lock)
            n = min(ckpt.n_saved, series_length(f))
            if n != ckpt.n_saved:
                raise TrajectoryFileError(f"cannot resume {path}: its checkpoint refers to snapshot "
                                          f"{ckpt.n_saved} but only {n} are stored; the file is corrupt")
            copy_prefix(f, writer.description, n, ckpt, path, path)
        writer.continue_file(n, ckpt)
    except KeyError as err:  # a dataset or attribute the file should hold is missing: damaged, left as it is
        release_lock(lock, path)
        raise TrajectoryFileError(f"cannot resume {path}: the file is damaged, it lacks an entry every "
                                  f"trajectory has ({_missing(err)}); it was left as it is; "
                                  f"`meanfield recover {path}` keeps what is intact") from None
    except BaseException:
        release_lock(lock, path)
        raise
    return writer, ckpt


def copy_prefix(f: h5py.File, description: RunDescription, n: int, ckpt: Checkpoint | None, out: Path,
                source: Path, attrs: dict | None = None) -> None:
    """Write the first ``n`` snapshots of ``f`` and the checkpoint ``ckpt`` (None: none) to ``out``, a fresh file
    (of the current format version, created from ``description``, root attributes ``attrs`` added; ``f`` is the
    file at ``source``), which replaces ``out`` only once complete. Unreadable snapshots (a truncated or damaged
    file) raise a one-line :class:`TrajectoryFileError` that says how many are intact and how to keep them."""
    observables = {name: ds[0] for name, ds in f["observables"].items()} if "observables" in f else {}
    particles = (*f["particles/b"].shape[1:], *f["particles/a"].shape[2:]) if "particles/b" in f else None
    try:
        with new_file(out) as new:
            description.create_datasets(new, observables, particles, ckpt)
            _copy_rows(f, new, n, ckpt, source)
            new.attrs["created"] = f.attrs["created"]
            new.attrs.update(attrs or {})
    except OSError as err:  # a full disk or a read-only folder: the new file never appears, the old one is as it was
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):  # the user's to fix: a one-line error (exit 2)
            raise PermissionError(err.errno, f"{out}: cannot write a copy of {source} in its folder "
                                  f"({err.strerror}); {source} is as it was; make the folder writable or copy "
                                  "the file to one that is") from None
        raise TrajectoryWriteError(err.errno, f"{out}: writing a copy of {source} failed ({err}); {source} "
                                   "is as it was; the copy needs about as much free space as the file") from None


def _copy_rows(f: h5py.File, new: h5py.File, n: int, ckpt: Checkpoint | None, path: Path) -> None:
    """The first ``n`` snapshots of ``f`` (the file at ``path``) and the checkpoint ``ckpt`` into ``new``."""
    names = snapshot_names(f)
    for i0 in range(0, n, 64):
        i1 = min(n, i0 + 64)
        try:
            rows = {name: f[name][i0:i1] for name in names}
        except (OSError, RuntimeError, KeyError, ValueError):
            intact = intact_prefix(f, n)
            raise TrajectoryFileError(
                f"cannot resume {path}: the file is damaged (truncated?): snapshots {intact} to {n - 1} cannot be "
                f"read, the {intact} before are intact; `meanfield recover {path}` (io.recover) keeps them in a new "
                "file") from None
        for name, value in rows.items():
            new[name].resize(i1, axis=0)
            new[name][i0:i1] = value
    if ckpt is not None:
        for slot in ckpt_format.SLOTS:
            ckpt_format.write(new, slot, ckpt)


def recover(path, out=None) -> Path:
    """Keep what is intact of a damaged trajectory file (truncated, or its writer killed mid-write) in a new file.

    The new file ``out`` (default ``<stem>.recovered.h5`` beside ``path``; never an existing file) holds every
    snapshot whose bytes are intact: the longest prefix whose chunks lie wholly within the file and decode, in every
    dataset (snapshots are laid out in the order they were saved, so a file cut at byte c keeps every snapshot that
    was complete when the file was c bytes long). When an intact checkpoint (the latest or its backup) belongs to
    that prefix, it is kept too, and the new file resumes bit-identically from it (status ``interrupted``);
    otherwise the new file only loads (status ``failed``; ``final`` is the last particle snapshot if particles were
    saved). ``path`` is left as it is.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    TrajectoryFileError
        If ``path`` cannot be opened at all, or not even the first snapshot is intact.

    Examples
    --------
    >>> import numpy as np, meanfield as mf, tempfile, pathlib
    >>> from meanfield.io import recover
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "run.h5"
    >>> problem = mf.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(d=3))
    >>> mf.simulate(problem, mf.init.sign_sphere(8, 3, seed=0), t_max=1.0, dt=0.1, path=run).close()
    >>> recover(run).name
    'run.recovered.h5'
    """
    path = Path(path)
    out = Path(out) if out is not None else path.with_name(path.stem + ".recovered.h5")
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another output for the recovered run")
    with open_read(path, allow_truncated=True) as f:
        total = series_length(f)
        intact = intact_prefix(f, total)
        if intact == 0:
            raise TrajectoryFileError(f"{path}: not even the first snapshot can be read; nothing to recover")
        usable = [c for c in (ckpt_format.read(f, slot) for slot in ckpt_format.SLOTS)
                  if c is not None and c.consistent and c.n_saved <= intact]
        ckpt = max(usable, key=lambda c: c.n_saved) if usable else None
        n = intact
        status = Status.INTERRUPTED if ckpt is not None else Status.FAILED
        info = {"recovered_from": str(path), "snapshots_kept": n, "snapshots_lost": total - n}
        attrs = {"status": status.value, "info": json.dumps(info)}
        copy_prefix(f, RunDescription.from_file(f), n, ckpt, out, path, attrs)
    return out


def _problem_differences(f: h5py.File, stored: dict, config: dict, resumable, kind, problem_arrays, weights,
                         defaults: dict) -> list[str]:
    """Every way the run described by the arguments differs from the run stored in ``f``, one phrase each."""
    diffs = []
    if kind is not None and str(f.attrs.get("kind")) != kind:
        diffs.append(f"the file holds a run of kind {str(f.attrs.get('kind'))!r}, this is a {kind!r} run")
    for key in sorted((set(stored) | set(config)) - set(resumable)):
        now = canonical(config[key]) if key in config else _ABSENT
        diffs += _value_differences(key, stored.get(key, _ABSENT), now, canonical(defaults))
    if problem_arrays is not None:
        held = {name: array_checksum(ds[()]) for name, ds in f["problem/target"].items()}
        now = {name: array_checksum(np.asarray(value)) for name, value in problem_arrays.items()}
        for name in sorted(set(held) | set(now)):
            if name not in held or name not in now:
                diffs.append(f"target array {name} is {'new' if name not in held else 'missing'}")
            elif held[name] != now[name]:
                diffs.append(f"target array {name} differs (checksum {held[name][:10]} in the file, "
                             f"{now[name][:10]} now)")
    if weights is not None:
        stored_w = f["particles/weights"][:]
        weights = np.asarray(weights, dtype=np.float64)
        if stored_w.shape != weights.shape or not np.array_equal(stored_w, weights):
            diffs.append(f"particle masses differ ({stored_w.shape[0]} stored, {weights.shape[0]} now)"
                         if stored_w.shape != weights.shape else "particle masses differ")
    return diffs


#: An entry one side of a comparison lacks (it then stands for its default).
_ABSENT = object()


def _value_differences(key: str, held, now, defaults: dict) -> list[str]:
    """Dotted names of the entries where two JSON values differ, with both values (short). An absent entry (an older
    file, or a setting left out) is compared as its value in ``defaults`` (dotted name → value; None otherwise)."""
    held = defaults.get(key) if held is _ABSENT else held
    now = defaults.get(key) if now is _ABSENT else now
    if isinstance(held, dict) and isinstance(now, dict):
        out = []
        for k in sorted(set(held) | set(now)):
            out += _value_differences(f"{key}.{k}", held.get(k, _ABSENT), now.get(k, _ABSENT), defaults)
        return out
    if held == now:
        return []
    return [f"{key}: file has {_short(held)}, now {_short(now)}"]


def _missing(err: KeyError) -> str:
    """What a KeyError of h5py says is missing, in a few words."""
    text = str(err.args[0]) if err.args else str(err)
    return text.strip("'\"")


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
