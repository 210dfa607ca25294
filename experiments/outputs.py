"""The tracked outputs of the experiments, written so that a rerun on the same machine rewrites the same bytes.

- Summaries (:func:`write_summary`, :func:`write_text`) hold no wall times, and their floats are rounded to
  ``DIGITS`` significant digits (:func:`rounded`): a rerun moves a result in its last digits only (the order of
  floating-point sums), far below that. A quantity at round-off level (the agreement of two computations of the
  same thing, ~1e-14) has no reproducible digits: it is reported as the power of ten above it (:func:`upper_bound`).
- Figures go through :func:`meanfield.plot.savefig`, which writes no software version or date into the file.
- Importing this module sets one BLAS thread for the runs (``MEANFIELD_BLAS_THREADS=1`` unless it is set): the
  default policy takes the cores idle when a run starts, and the summation order of a product, hence its last
  digits, changes with the number of threads.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("MEANFIELD_BLAS_THREADS", "1")

#: Significant digits of the floats in a summary.
DIGITS = 4


def rounded(value, digits: int = DIGITS):
    """``value`` with every float (also in dicts, lists, tuples and numpy arrays) rounded to ``digits`` significant
    digits; integers, strings, booleans, None and non-finite floats as they are.

    >>> rounded({"risk": 0.12345678, "n": [1, 2], "err": np.array([1e-3 / 3])})
    {'risk': 0.1235, 'n': [1, 2], 'err': [0.0003333]}
    """
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    if isinstance(value, np.ndarray):
        return rounded(value.tolist(), digits)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(f"{float(value):.{digits}g}") if math.isfinite(value) else float(value)
    return value


def upper_bound(value: float) -> float:
    """The power of ten at or above ``|value|`` (0 for 0): what a rerun reproduces of a round-off-level number.

    >>> upper_bound(4.2e-15), upper_bound(0.0)
    (1e-14, 0.0)
    """
    value = abs(float(value))
    return 0.0 if value == 0 else float(f"1e{math.ceil(math.log10(value))}")


def write_summary(path: Path, summary: dict, indent: int = 1) -> dict:
    """Write ``summary`` as JSON with its floats :func:`rounded` (creating the folder); returns what was written."""
    summary = rounded(summary)
    write_text(path, json.dumps(summary, indent=indent) + "\n")
    return summary


def write_text(path: Path, text: str) -> None:
    """Write a tracked text file (a table), creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
