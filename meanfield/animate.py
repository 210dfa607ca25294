"""Animations of a run: its particles moving, beside its risk curve with a marker at the frame's time.

Each frame is :func:`meanfield.frames.snapshot_figure` of one snapshot; the snapshots are read from the file one at a
time and each frame is written out before the next is drawn, so the memory stays that of one snapshot and one frame
whatever the number of snapshots. GIF files are written by Pillow (always available); MP4 files by ffmpeg, when it
is installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .frames import ParticleView, new_figure, render, snapshot_figure

__all__ = ["animate", "animation", "GifWriter", "frame_indices"]

FORMATS = (".gif", ".mp4")


def frame_indices(n_snapshots: int, stride: int = 1) -> list[int]:
    """The snapshots drawn with one frame every ``stride`` snapshots: 0, stride, 2·stride, … and always the last.

    Examples
    --------
    >>> frame_indices(10, 4)
    [0, 4, 8, 9]
    """
    if not isinstance(stride, (int, np.integer)) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride must be a positive integer (one frame every `stride` snapshots), got {stride!r}")
    indices = list(range(0, n_snapshots, int(stride)))
    if indices and indices[-1] != n_snapshots - 1:
        indices.append(n_snapshots - 1)
    return indices


class GifWriter:
    """Writes an animated GIF frame by frame (nothing but the current frame is held in memory).

    The palette is that of the first frame (256 colours, median cut), shared by every frame; each frame is mapped
    to it without dithering, so that a colour of the figure comes out the same in every frame.

    Parameters
    ----------
    path : path-like
    fps : float
        Frames per second (a GIF stores the delay in hundredths of a second: 1/fps is rounded to them).
    loop : int
        Times to play (0: forever).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "two.gif"
    >>> with GifWriter(path, fps=5) as gif:
    ...     gif.write(np.zeros((4, 6, 3), np.uint8))
    ...     gif.write(np.full((4, 6, 3), 255, np.uint8))
    >>> Image.open(path).n_frames
    2
    """

    def __init__(self, path, fps: float = 10.0, loop: int = 0):
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.path, self.duration, self.loop = Path(path), max(10, int(round(100.0 / fps)) * 10), int(loop)
        self._file, self._palette, self.frames = None, None, 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close()

    def write(self, rgb: np.ndarray) -> None:
        """Append one frame, an (height, width, 3) uint8 array (all frames of one file have the same size)."""
        from PIL import GifImagePlugin, Image

        image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
        if self._file is None:
            self._palette = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            self.size = image.size
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
            header, _ = GifImagePlugin.getheader(self._palette.copy(), info={"loop": self.loop})
            self._file.write(b"".join(header))
        elif image.size != self.size:
            raise ValueError(f"frame {self.frames} is {image.size[0]}×{image.size[1]} pixels, the first was "
                             f"{self.size[0]}×{self.size[1]}")
        frame = image.quantize(palette=self._palette, dither=Image.Dither.NONE)
        self._file.write(b"".join(GifImagePlugin.getdata(frame, duration=self.duration, disposal=1)))
        self.frames += 1

    def close(self) -> None:
        """Write the trailer and close the file."""
        if self._file is not None:
            self._file.write(b";")
            self._file.close()
            self._file = None


class _FFmpegWriter:
    """MP4 through matplotlib's pipe to ffmpeg (frames streamed to the process as they are drawn)."""

    def __init__(self, path, fig, fps: float, dpi: float):
        from matplotlib import animation as mpl_animation

        # yuv420p (what players read) needs even dimensions: pad odd ones by a pixel
        self.writer = mpl_animation.FFMpegWriter(fps=fps, codec="h264", extra_args=[
            "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p"])
        self.context = self.writer.saving(fig, str(path), dpi)
        self.context.__enter__()
        self.frames = 0

    def write(self, rgb) -> None:
        self.writer.grab_frame()
        self.frames += 1

    def close(self, failed: bool = False) -> None:
        import subprocess

        try:
            self.context.__exit__(*((RuntimeError, RuntimeError("failed"), None) if failed else (None, None, None)))
        except subprocess.CalledProcessError as err:
            said = (err.stderr or b"").decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"ffmpeg failed (exit {err.returncode}) writing the MP4"
                               + (f": {said[-1]}" if said else "")) from None


def _check_output(out: Path) -> str:
    from matplotlib import rcParams

    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"animation output {out}: the name must end in .gif (Pillow) or .mp4 (ffmpeg), "
                         f"not {out.suffix or 'nothing'!r}")
    if suffix == ".mp4" and shutil.which(rcParams["animation.ffmpeg_path"]) is None:
        raise RuntimeError(f"writing {out} needs ffmpeg, which is not installed (not found: "
                           f"{rcParams['animation.ffmpeg_path']!r}); install it, or write a GIF instead "
                           f"(--animate {out.with_suffix('.gif')})")
    return suffix


def animate(traj, out, fps: float = 10.0, stride: int = 1, size=(9.0, 4.0), dpi: float = 100,
            progress: bool = False) -> Path:
    """Write the animation of a run to ``out`` (.gif or .mp4): one frame per snapshot drawn, each the still figure
    :func:`meanfield.frames.snapshot_figure` of its snapshot (particles and risk curve with a moving marker).

    Snapshots are read one at a time and every frame is written before the next is drawn (memory: one snapshot and
    one frame). The file is written to ``<stem>.part.<suffix>`` and renamed at the end, so an animation that fails
    (or is interrupted) leaves no partial file.

    Parameters
    ----------
    traj : Trajectory
        A run with particle snapshots (in memory or :func:`meanfield.load`-ed).
    out : path-like
        ``*.gif`` (Pillow) or ``*.mp4`` (ffmpeg; a one-line error when it is not installed).
    fps : float
        Frames per second.
    stride : int
        One frame every ``stride`` snapshots (the last snapshot is always drawn).
    size : (float, float)
        Figure size in inches.
    dpi : float
        Pixels per inch.
    progress : bool
        A tqdm progress bar over the frames.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> import numpy as np, meanfield as mf, tempfile, pathlib
    >>> from PIL import Image
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(3)[:2]), mf.Gaussian(3))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(16, 3, seed=0), t_max=2.0, dt=0.1, save_every=4)
    >>> out = animate(traj, pathlib.Path(tempfile.mkdtemp()) / "flow.gif", size=(6, 3), dpi=50)
    >>> Image.open(out).n_frames == len(traj)
    True
    """
    from tqdm.auto import tqdm

    out = Path(out)
    suffix = _check_output(out)
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    if not dpi > 0 or len(size) != 2 or not all(s > 0 for s in size):
        raise ValueError(f"size must be two positive numbers of inches and dpi > 0, got size {size!r}, dpi {dpi!r}")
    indices = frame_indices(len(traj), stride)
    if not indices:
        raise ValueError("the run has no snapshots to animate")
    view = ParticleView(traj, indices)
    fig = new_figure(size, dpi)
    _, view, marker = snapshot_figure(traj, indices[0], view=view, fig=fig)
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f"{out.stem}.part{suffix}")  # ffmpeg chooses the container by the suffix
    writer = GifWriter(part, fps) if suffix == ".gif" else _FFmpegWriter(part, fig, fps, dpi)
    done = False
    try:
        for k, i in enumerate(tqdm(indices, desc=f"frames of {out.name}", unit="frame", disable=not progress)):
            if k:
                view.update(i)
                marker.update(i)
            writer.write(render(fig))
        done = True
    finally:
        writer.close() if suffix == ".gif" else writer.close(failed=not done)
        if not done:
            part.unlink(missing_ok=True)
    part.replace(out)
    return out


def animation(traj, stride: int = 1, fps: float = 10.0, size=(9.0, 4.0), dpi: float = 100):
    """A matplotlib ``FuncAnimation`` of a run, for a notebook (``anim.to_jshtml()``) or a documentation page: the
    frames of :func:`animate`, drawn on a pyplot figure when they are shown.

    Examples
    --------
    >>> import numpy as np, matplotlib, meanfield as mf
    >>> matplotlib.use("Agg")
    >>> problem = mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0, 0.0]]), mf.Gaussian(3))
    >>> traj = mf.simulate(problem, mf.init.sign_sphere(8, 3, seed=0), t_max=1.0, dt=0.1, save_every=5)
    >>> anim = animation(traj, size=(6, 3), dpi=50)
    >>> html = anim.to_jshtml()          # what a notebook or sphinx-gallery shows: the frames, with controls
    >>> html.count("data:image/png;base64")
    3
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    indices = frame_indices(len(traj), stride)
    fig = plt.figure(figsize=size, dpi=dpi)
    _, view, marker = snapshot_figure(traj, indices[0], view=ParticleView(traj, indices), fig=fig)

    def update(i):
        return view.update(i) + marker.update(i)

    return FuncAnimation(fig, update, frames=indices, interval=1000.0 / fps, blit=False, repeat=True)
