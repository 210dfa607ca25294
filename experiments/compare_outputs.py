"""Compare the JSON summaries of the results folders with those of a git revision, number by number.

For every ``results/<experiment>/*.json`` that differs from the revision, prints the largest relative difference of
a number present in both (and where it is), the numbers present on one side only (e.g. wall times, which the
summaries no longer hold), and the entries whose type changed. A rerun of an unchanged computation moves a
summary's numbers by its rounding at most (4 significant digits: a relative difference ≤ 5e-4, or 1 in the last
digit of a rounded-away small number).

Usage::

    python experiments/compare_outputs.py                  # against HEAD
    python experiments/compare_outputs.py --rev 0f87707 results/soft_committee
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def leaves(value, where=""):
    """(dotted path, leaf) for every number, string, boolean or None in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, f"{where}[{i}]")
    else:
        yield where, value


def relative(a: float, b: float) -> float:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def compare(old, new) -> dict:
    """Largest relative difference of shared numbers, and the entries on one side only or of another type."""
    old_leaves, new_leaves = dict(leaves(old)), dict(leaves(new))
    worst, where, changed = 0.0, None, []
    for key in old_leaves.keys() & new_leaves.keys():
        a, b = old_leaves[key], new_leaves[key]
        numeric = [isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)]
        if all(numeric):
            r = relative(float(a), float(b))
            if r > worst:
                worst, where = r, key
        elif a != b:
            changed.append(key)
    return {"largest_relative_difference": worst, "at": where,
            "only_in_revision": sorted(old_leaves.keys() - new_leaves.keys()),
            "only_now": sorted(new_leaves.keys() - old_leaves.keys()), "other_changes": sorted(changed)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="results folders (default: every one)")
    parser.add_argument("--rev", default="HEAD", help="git revision to compare with (default HEAD)")
    args = parser.parse_args(argv)
    folders = args.folders or sorted(p for p in (ROOT / "results").iterdir() if p.is_dir())
    for folder in folders:
        for path in sorted(Path(folder).resolve().glob("*.json")):
            rel = path.relative_to(ROOT).as_posix()
            shown = subprocess.run(["git", "show", f"{args.rev}:{rel}"], cwd=ROOT, capture_output=True, text=True)
            if shown.returncode != 0:
                print(f"{rel}: new (not in {args.rev})")
                continue
            if shown.stdout == path.read_text():
                continue
            out = compare(json.loads(shown.stdout), json.loads(path.read_text()))
            print(f"{rel}: largest relative difference {out['largest_relative_difference']:.3g}"
                  f"{' at ' + out['at'] if out['at'] else ''}")
            for label in ("only_in_revision", "only_now", "other_changes"):
                if out[label]:
                    items = out[label]
                    shown_items = ", ".join(items[:6]) + (f", … ({len(items)} in all)" if len(items) > 6 else "")
                    print(f"    {label.replace('_', ' ')}: {shown_items}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
