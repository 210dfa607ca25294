"""Screenshots of the built site in headless Chromium, to check it as a reader sees it.

    make docs && python docs/screenshots.py          # writes results/docs/*.png

Chromium comes from the Debian packages (``apt-get install chromium``); the pages are read from docs/_build/html.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"landing": "index.html", "guide": "guide/problems-and-targets.html",
         "gallery": "auto_examples/plot_leaky_relu.html", "api": "api/meanfield.problem.html",
         "animation": "auto_examples/plot_animated_flow.html", "plots": "guide/plots-and-animations.html",
         # the widest code blocks, and the longest module names in both sidebars and the title
         "code_blocks": "guide/data-and-losses.html",
         "long_names": "api/meanfield.weights.analysis.exchangeable_kernel.html"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "docs/_build/html")
    parser.add_argument("--out", type=Path, default=ROOT / "results/docs")
    parser.add_argument("--size", default="1400,1800", help="window width,height in pixels")
    args = parser.parse_args(argv)
    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        sys.exit("no Chromium found: install it (apt-get install chromium), then rerun")
    if not (args.site / "index.html").exists():
        sys.exit(f"no site at {args.site}: run `make docs` first")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, page in PAGES.items():
        out = args.out / f"{name}.png"
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={args.size}", "--virtual-time-budget=5000", f"--screenshot={out}",
                        (args.site / page).as_uri()], check=True, capture_output=True, timeout=120)
        print(f"{page} -> {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
