"""Trajectory files under real faults: a full disk (a file-size limit in a child process), cut copies, a writer
killed while marking its file, a reader process following a live writer, SIGKILL during a resume's copy, and plain
h5py opening a file that a trajectory of the same process holds."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import meanfield as mf
from meanfield.config import build_init, build_problem, load_config, run_options
from meanfield.io import TrajectoryFileError, recover

#: A teacher flow of 61 saves on the numpy backend, each with 12 KiB of particles: about a second of computing.
CONFIG = """
[inputs]
law = "gaussian"
d = 6
[target]
kind = "teacher"
k = 2
[init]
kind = "sign_sphere"
m = 256
seed = 3
[run]
t_max = {t_max}
dt = 0.02
save_every = 1
backend = "numpy"
output = "{output}"
"""


def _config(tmp_path, t_max=1.2, name="run"):
    cfg_path = tmp_path / f"{name}.toml"
    out = tmp_path / f"{name}.h5"
    cfg_path.write_text(CONFIG.format(output=out, t_max=t_max))
    return cfg_path, out


def _reference(cfg_path, **changes):
    """The run of a configuration, uninterrupted and in memory."""
    cfg = load_config(cfg_path)
    return mf.simulate(build_problem(cfg), build_init(cfg), **dict(run_options(cfg), **changes))


def _assert_prefix_of(traj, reference, n=None):
    """The first n (default: all) saves of ``traj`` are bit-equal to those of ``reference``."""
    n = len(traj) if n is None else n
    np.testing.assert_array_equal(traj.times[:n], reference.times[:n])
    np.testing.assert_array_equal(traj.risk[:n], reference.risk[:n])
    np.testing.assert_array_equal(np.asarray(traj.b)[:n], reference.b[:n])
    np.testing.assert_array_equal(np.asarray(traj.a)[:n], reference.a[:n])


def _child(code: str, *args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


#: A child process whose files may not grow past argv[1] bytes; SIGXFSZ ignored, so that a write past the limit
#: fails with EFBIG as on a full disk (instead of killing the process).
LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
"""

CLI_RUN = LIMITED + """
from meanfield.cli import main
sys.exit(main(["run", sys.argv[2], "--no-progress"]))
"""

BACKGROUND_RUN = LIMITED + """
import meanfield as mf
from meanfield.config import build_init, build_problem, load_config, run_options
cfg = load_config(sys.argv[2])
try:
    mf.simulate(build_problem(cfg), build_init(cfg), path=cfg["run"]["output"], background_saves=True,
                **run_options(cfg))
except OSError as err:  # meanfield.io.DiskFullError
    print(f"error: {err}", file=sys.stderr)
    sys.exit(1)
"""


def _can_mount_a_tmpfs() -> bool:
    """Whether this process may mount a tmpfs in a user and mount namespace of its own (``unshare -rm``)."""
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _run_on_a_small_tmpfs(cfg_path, size: int, out) -> subprocess.Popen:
    """``meanfield run`` writing to a tmpfs of ``size`` bytes (a namespace of its own); the file is copied to ``out``
    when the run ends, before the tmpfs goes away with the namespace."""
    mnt = out.parent / "mnt"
    mnt.mkdir()
    script = (f"mount -t tmpfs -o size={size} tmpfs {mnt} && {sys.executable} -m meanfield run {cfg_path} "
              f"--no-progress --output {mnt / out.name}; rc=$?; cp {mnt / out.name} {out}; exit $rc")
    return subprocess.Popen(["unshare", "-rm", "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.parametrize("saves, medium", [("synchronous", "file-size limit"), ("background", "file-size limit"),
                                           ("synchronous", "small tmpfs")])
def test_a_full_disk_stops_the_run_in_one_line_and_the_file_resumes(tmp_path, saves, medium):
    """Where no tmpfs can be mounted (no user namespaces), the "small tmpfs" case runs under the file-size limit."""
    cfg_path, out = _config(tmp_path)
    reference = _reference(cfg_path)
    full = tmp_path / "full.h5"
    mf.simulate(build_problem(load_config(cfg_path)), build_init(load_config(cfg_path)), path=full,
                **run_options(load_config(cfg_path))).close()
    limit = full.stat().st_size // 2  # the run cannot finish: its file would be twice as large
    if medium == "small tmpfs" and _can_mount_a_tmpfs():
        proc, reason = _run_on_a_small_tmpfs(cfg_path, limit, out), "no space left on device"
    else:
        proc, reason = _child(CLI_RUN if saves == "synchronous" else BACKGROUND_RUN, limit, cfg_path), "file-size limit"
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr  # neither a crash (-11: segfault) nor a run that goes on
    assert stderr.strip().count("\n") == 0 and stderr.startswith("error: ") and "no room" in stderr, stderr
    assert out.stat().st_size <= limit and not (tmp_path / "run.h5.lock").exists()
    with h5py.File(out, "r") as h:  # closed properly: plain h5py opens it
        assert h.attrs["status"] == "failed"
    with mf.load(out) as stopped:  # every save before the full disk, bit-equal to the uninterrupted run
        assert stopped.status == "failed" and reason in stopped.info["error"]
        assert 1 <= len(stopped) < len(reference.times)
        _assert_prefix_of(stopped, reference)
    # Space is free again: the run continues from its last checkpoint, bit-identical to the uninterrupted run.
    resumed = subprocess.run([sys.executable, "-m", "meanfield", "run", str(cfg_path), "--no-progress", "--resume"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    with mf.load(out) as done:
        assert done.status == "completed" and len(done) == len(reference.times)
        _assert_prefix_of(done, reference)
        np.testing.assert_array_equal(done.final.state(), reference.final.state())


def test_lookup3_is_the_checksum_of_hdf5_superblocks(tmp_path):
    """The checksum that clearing a superblock flag rewrites: lookup3 of the first 44 bytes, as libhdf5 stored it."""
    from meanfield._hdf5 import lookup3

    path = tmp_path / "r.h5"
    with h5py.File(path, "w", libver="latest") as h:
        h["x"] = np.arange(3)
    for file in (path, *sorted((os.path.dirname(__file__) + "/data/" + name)
                               for name in os.listdir(os.path.dirname(__file__) + "/data") if name.endswith(".h5"))):
        head = open(file, "rb").read(48)
        assert int.from_bytes(head[44:48], "little") == lookup3(head[:44]), file


KILLED_WHILE_MARKED = """
import os, signal, sys, h5py
h = h5py.File(sys.argv[1], "r+")  # marks the superblock open for (non-SWMR) writing, as the old writers' close did
h.attrs["status"] = "completed"
h.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_file_left_marked_open_for_writing_opens_loads_recovers_and_resumes(tmp_path):
    cfg_path, out = _config(tmp_path, t_max=0.2)
    reference = _reference(cfg_path, t_max=0.4)
    ran = subprocess.run([sys.executable, "-m", "meanfield", "run", str(cfg_path), "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert _child(KILLED_WHILE_MARKED, out).wait(timeout=120) == -signal.SIGKILL
    assert open(out, "rb").read(12)[11] & 1  # the mark is set: libhdf5 refuses every reader
    with pytest.raises(OSError):
        h5py.File(out, "r", swmr=True)
    info = subprocess.run([sys.executable, "-m", "meanfield", "info", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert info.returncode == 0 and "status completed" in info.stdout, info.stderr
    with mf.load(out) as traj:
        _assert_prefix_of(traj, reference, len(traj))
        assert len(traj) == 11
    with h5py.File(out, "r") as h:  # the mark was cleared: plain h5py opens it too
        assert h["series/risk"].shape == (11,)
    assert recover(out, tmp_path / "copy.h5").exists()
    cfg = load_config(cfg_path)
    with mf.simulate(build_problem(cfg), build_init(cfg), path=out, resume=True,
                     **dict(run_options(cfg), t_max=0.4)) as longer:
        _assert_prefix_of(longer, reference)
        assert len(longer) == len(reference.times)


def test_a_cut_copy_keeps_every_snapshot_whose_bytes_survive(tmp_path):
    """A file cut at byte c keeps every save that was complete when the file was c bytes long (the sizes are
    measured by an observable, before each save), bit-equal to the uninterrupted run; no more than the saves whose
    chunks (h5py's chunk map of the intact file) lie before c; and a cut at a fraction x of the file keeps about x
    of its saves."""
    from meanfield._room import CLOSE_SPARE  # kept allocated past the data while the file is written

    problem = mf.Problem(mf.TeacherNetwork([1.0, 0.5], np.eye(8)[:2]), mf.Gaussian(8))
    mu0 = mf.init.sign_sphere(256, 8, seed=0)
    path = tmp_path / "run.h5"
    size = {"size_before": lambda mu: os.path.getsize(path) - CLOSE_SPARE if path.exists() else 0}
    angles = {"moments": lambda mu: np.array([np.mean(mu.b ** k) for k in range(1, 6)])}
    # With the alignment observables (two 30-bin histograms, four scalars), as runs of configuration files save.
    options = dict(t_max=0.3, dt=0.02, save_every=1, alignment=True)
    reference = mf.simulate(problem, mu0, observables=angles, **options)
    mf.simulate(problem, mu0, observables={**size, **angles}, path=path, **options).close()
    data = path.read_bytes()
    with h5py.File(path, "r") as h:
        n = h["series/time"].shape[0]
        before = h["observables/size_before"][:]
        complete_at = np.append(before[1:], len(data))  # the file size once save i was written (an upper bound)
        chunk_ends = []  # per dataset: end byte of the chunk holding each row
        for name in ("series/time", "series/risk", *(f"observables/{name}" for name in h["observables"]),
                     "particles/a", "particles/b"):
            ds, ends = h[name], np.zeros(n)
            for k in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(k)
                start = info.chunk_offset[0]
                ends[start:start + ds.chunks[0]] = info.byte_offset + info.size
            chunk_ends.append(ends)
        last_byte = np.max(chunk_ends, axis=0)
    assert n == 16
    kept_by_cut = []
    for cut in np.linspace(0.02, 0.98, 25) * len(data):
        cut = int(cut)
        damaged = tmp_path / f"cut{cut}.h5"
        damaged.write_bytes(data[:cut])
        try:
            with mf.load(recover(damaged)) as kept:
                k = len(kept)
                np.testing.assert_array_equal(kept.times, reference.times[:k])
                np.testing.assert_array_equal(kept.risk, reference.risk[:k])
                np.testing.assert_array_equal(np.asarray(kept.b), reference.b[:k])
                np.testing.assert_array_equal(np.asarray(kept.a), reference.a[:k])
                np.testing.assert_array_equal(kept.observables["moments"][:], reference.observables["moments"][:k])
        except TrajectoryFileError as err:
            assert "nothing to recover" in str(err) or "description" in str(err), err
            k = 0
        kept_by_cut.append(k)
        assert k >= np.sum(complete_at <= cut), (cut, k)
        assert k <= np.sum(np.maximum.accumulate(last_byte) <= cut), (cut, k)
        # What precedes the first save's particles (object headers, both checkpoint slots, one 512-B chunk per
        # series) is about 3 saves' bytes here; with the 8-32 KiB series chunks of earlier files, about 6.
        assert k >= n * cut / len(data) - 4, (cut / len(data), k)
    assert kept_by_cut == sorted(kept_by_cut) and kept_by_cut[-1] >= n - 1


READER = """
import json, sys, time
import meanfield as mf
from meanfield.io import TrajectoryFileError
path, start = sys.argv[1], time.time()
while True:
    try:
        traj = mf.load(path)
        break
    except (TrajectoryFileError, OSError):  # not written yet
        time.sleep(0.01)
seen, errors = set(), []
while traj.status == "running" and time.time() - start < 240:
    seen.add(len(traj))
    time.sleep(0.005)
    try:
        traj.refresh()
    except Exception as err:  # counted, so that the writer's fate is told apart from the reader's
        errors.append(repr(err))
print(json.dumps({"lengths_seen_running": len(seen), "status": traj.status, "length": len(traj),
                  "errors": errors[:3]}))
traj.close()
"""


def test_a_reader_following_a_live_file_never_breaks_its_writer(tmp_path):
    cfg_path, out = _config(tmp_path, t_max=2.0)
    writer = subprocess.Popen([sys.executable, "-m", "meanfield", "run", str(cfg_path), "--no-progress"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = _child(READER, out)
    w_out, w_err = writer.communicate(timeout=300)
    r_out, r_err = reader.communicate(timeout=300)
    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_err
    seen = json.loads(r_out)
    # The reader followed the writer (it saw several lengths while the run went on) and held the file open when the
    # writer closed it; both ended with the completed file.
    assert seen["lengths_seen_running"] >= 2 and seen["status"] == "completed" and seen["length"] == 101, seen
    assert not seen["errors"], seen  # refresh() rides over libhdf5's transient failures while the writer extends
    assert not (tmp_path / "run.h5.lock").exists()
    with mf.load(out) as done:
        assert done.status == "completed" and len(done) == 101


RESUMER = """
import sys
import meanfield as mf
from meanfield.config import build_init, build_problem, load_config, run_options
cfg = load_config(sys.argv[1])
problem, mu0, options = build_problem(cfg), build_init(cfg), run_options(cfg)
print("ready", flush=True)
sys.stdin.readline()
mf.simulate(problem, mu0, path=cfg["run"]["output"], resume=True, **dict(options, t_max=2 * options["t_max"]))
"""


def test_sigkill_during_a_resume_copy_leaves_the_file_and_nothing_else(tmp_path):
    cfg_path, out = _config(tmp_path, t_max=4.0)
    reference = _reference(cfg_path)
    cfg = load_config(cfg_path)
    mf.simulate(build_problem(cfg), build_init(cfg), path=out, **run_options(cfg)).close()
    start = time.perf_counter()
    recover(out, tmp_path / "probe.h5")  # the same copy as a resume's: how long it takes on this machine
    copy_time = time.perf_counter() - start
    (tmp_path / "probe.h5").unlink()
    rng = np.random.default_rng(0)
    copies_cut = 0
    for _ in range(4):
        before = os.stat(out).st_ino
        proc = _child(RESUMER, cfg_path, stdin=subprocess.PIPE)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(rng.uniform(0.0, copy_time))  # within the copy of the 201 saves (or just after it)
        proc.kill()
        proc.communicate()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5", "run.h5.lock", "run.toml"] or \
            sorted(p.name for p in tmp_path.iterdir()) == ["run.h5", "run.toml"]
        copies_cut += os.stat(out).st_ino == before
        with mf.load(out) as kept:  # the old file (killed before the replace) or the new one, never a half copy
            assert len(kept) >= len(reference.times)
            _assert_prefix_of(kept, reference, len(reference.times))
    assert copies_cut >= 1


def test_plain_h5py_opens_a_file_that_a_returned_trajectory_holds(tmp_path):
    path = tmp_path / "r.h5"
    problem = mf.Problem(mf.TeacherNetwork([1.0], np.eye(3)[:1]), mf.Gaussian(3))
    with mf.simulate(problem, mf.init.sign_sphere(6, 3, seed=0), t_max=0.5, dt=0.1, path=path) as traj:
        with h5py.File(path, "r") as h:  # what docs/file-format.md tells users to do
            np.testing.assert_array_equal(h["series/risk"][:], traj.risk)
            np.testing.assert_array_equal(h["particles/b"][-1], traj.b[-1])
        np.testing.assert_array_equal(traj.b[-1], traj.final.b)  # the trajectory still reads
        with mf.load(path) as again, h5py.File(path, "r") as h:
            np.testing.assert_array_equal(again.risk, h["series/risk"][:])
