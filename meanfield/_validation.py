"""Argument checks shared by the package; every error names the argument and what is wrong with it."""

from __future__ import annotations

import numbers

import numpy as np


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_positive(value, name: str) -> float:
    v = _number(value, name)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def check_nonnegative(value, name: str) -> float:
    v = _number(value, name)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be >= 0 (and finite), got {value!r}")
    return v


def as_float_array(x, name: str, ndim: int | None = None, shape: tuple | None = None) -> np.ndarray:
    """Convert to a finite float64 array, checking the number of dimensions and (parts of) the shape.

    ``shape`` may hold ``None`` for free axes.
    """
    arr = np.asarray(x, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = tuple("*" if s is None else s for s in shape)
            raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _number(value, name: str) -> float:
    """``value`` as a float; a string, a boolean or anything that is not a number is a TypeError naming ``name``."""
    if isinstance(value, (str, bytes, bool, np.bool_)) or not isinstance(value, (numbers.Real, np.ndarray)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None


def check_optional_finite(value, name: str) -> float | None:
    """None, or a finite number (a threshold such as ``stop_risk``: NaN would never be reached)."""
    if value is None:
        return None
    v = _number(value, name)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number (or None), got {value!r}")
    return v


def check_seed(value, name: str = "seed") -> int:
    """A seed: an integer >= 0 (what numpy's and torch's generators take)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {value!r}")
    if not 0 <= value < 2**63:
        raise ValueError(f"{name} must be a non-negative integer below 2**63, got {value}")
    return int(value)


def check_bool(value, name: str) -> bool:
    """A boolean (``bias="no"`` would otherwise be true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_scale(value, name: str) -> float:
    """A positive factor α whose square and inverse square are finite and non-zero (losses divide by α²)."""
    v = check_positive(value, name)
    if not (np.isfinite(v * v) and v * v > 0 and np.isfinite(1.0 / (v * v))):
        raise ValueError(f"{name} must be between 1e-150 and 1e150 (its square scales the loss), got {value!r}")
    return v


def check_dataset_name(name, what: str) -> str:
    """A name that can be an HDF5 dataset's name in a run's file (no '/', which would nest groups; not empty, '.'
    or '..'; no NUL character)."""
    if not isinstance(name, str):
        raise TypeError(f"{what} names must be strings, got {name!r}")
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"{what} name {name!r} cannot name a dataset in the run's file (it must be non-empty, not "
                         "'.' or '..', without '/' or NUL): rename it, e.g. "
                         f"{(name.replace('/', '_').replace(chr(0), '') or 'value').strip('.') or 'value'!r}")
    return name
