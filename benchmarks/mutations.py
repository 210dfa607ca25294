"""Mutation check: plausible one-line bugs put into the numerical code one at a time, each against the tests that
should catch it.

Each mutation replaces one exact snippet of a package file (it must occur exactly once) and names the test files
and the ``-k`` expression of the tests that should fail with it. The script copies the repository's package and
tests to a scratch directory (the working tree is never modified), checks that the selected tests pass there
unmutated, then applies each mutation in turn, runs its tests (``pytest -x``) and restores the file. A mutation
whose tests still pass *survives*: the suite would not notice that bug.

Usage::

    python benchmarks/mutations.py                    # every mutation; a report on stdout
    python benchmarks/mutations.py --list             # the mutations and their tests
    python benchmarks/mutations.py --only sgd-noise   # one (or several, comma-separated)
    python benchmarks/mutations.py --tests-at 7cfeba4 # the tests of another commit (the same selections)
    python benchmarks/mutations.py --json results/benchmarks/mutations.json   # merged in, by test revision

It takes minutes (each mutation runs its tests; numba recompiles the kernels a mutation touches), so it is not
part of the default test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str          # relative to the repository root
    old: str           # exact snippet, found once in the file
    new: str
    tests: tuple       # test files, relative to the repository root
    select: str = ""   # pytest -k expression ("" = the whole files)
    doc: str = ""

    def pytest_args(self) -> list[str]:
        return [*self.tests, *(["-k", self.select] if self.select else [])]


MUTATIONS = [
    # -- closed-form kernels ------------------------------------------------------------------------------------
    Mutation("arccos-kernel", "meanfield/kernels/closed_form.py",
             "return np.sin(theta) + (np.pi - theta) * np.cos(theta)",
             "return np.sin(theta) + np.pi * np.cos(theta)",
             ("tests/test_kernels_closed_form.py",), doc="J(θ) without the −θ cos θ term"),
    Mutation("arccos-gradient", "meanfield/kernels/closed_form.py",
             "g = scale * ((np.pi - theta) * b2 + n2 * np.sin(theta) * u1) / (2 * np.pi)",
             "g = scale * ((np.pi - theta) * b2 + n2 * np.sin(theta) * u1) / np.pi",
             ("tests/test_kernels_closed_form.py",), doc="∇K twice too large"),
    # -- conic (Wasserstein–Fisher–Rao) flow ---------------------------------------------------------------------
    Mutation("conic-mass-restoring", "meanfield/dynamics/conic.py",
             "return -self.alpha * radial - self.beta * (gradient - radial) + (2.0 * self.alpha * c_bar) * y",
             "return -self.alpha * radial - self.beta * (gradient - radial) + (self.alpha * c_bar) * y",
             ("tests/test_dynamics.py",), "conic", doc="the mass-conserving term halved"),
    Mutation("conic-tangential", "meanfield/dynamics/conic.py",
             "return -self.alpha * radial - self.beta * (gradient - radial) + (2.0 * self.alpha * c_bar) * y",
             "return -self.alpha * radial - self.beta * gradient + (2.0 * self.alpha * c_bar) * y",
             ("tests/test_dynamics.py",), "conic", doc="the transport term not projected off the radial one"),
    # -- Langevin ----------------------------------------------------------------------------------------------------
    Mutation("langevin-noise", "meanfield/dynamics/langevin.py",
             "kick = math.sqrt(2.0 * temperature * h) * noise",
             "kick = math.sqrt(temperature * h) * noise",
             ("tests/test_dynamics.py",), "langevin", doc="noise √(τh) instead of √(2τh)"),
    Mutation("langevin-heun", "meanfield/dynamics/langevin.py",
             "return y + (0.5 * h) * (b0 + drift(predictor)) + kick",
             "return y + h * drift(predictor) + kick",
             ("tests/test_dynamics.py",), "langevin", doc="Heun's corrector uses the predicted drift only"),
    Mutation("langevin-weight-decay", "meanfield/dynamics/langevin.py",
             "return self.bound.velocity_from(y, evaluation) - self.weight_decay * y",
             "return self.bound.velocity_from(y, evaluation) - 0.5 * self.weight_decay * y",
             ("tests/test_dynamics.py",), "langevin", doc="the drift's weight decay λ → λ/2"),
    # -- Stein discrepancy ---------------------------------------------------------------------------------------
    Mutation("stein-kernel", "meanfield/dynamics/stein.py",
             "trace = -2.0 * beta * (2.0 * (beta - 1) * q ** (beta - 2) * r2 + dim * q ** (beta - 1))",
             "trace = -2.0 * beta * ((beta - 1) * q ** (beta - 2) * r2 + dim * q ** (beta - 1))",
             ("tests/test_dynamics.py",), "stein or langevin", doc="∇_x·∇_y k: a factor 2 lost"),
    Mutation("stein-standard-error", "meanfield/dynamics/stein.py",
             "return ksd2, float(2.0 * rows.std(ddof=1) / np.sqrt(n))",
             "return ksd2, float(rows.std(ddof=1) / np.sqrt(n))",
             ("tests/test_dynamics.py",), "stein or langevin", doc="ksd2_se without the U-statistic's factor 2"),
    # -- birth–death ---------------------------------------------------------------------------------------------
    Mutation("birth-death-probability", "meanfield/dynamics/birth_death.py",
             "probability = -np.expm1(-self.rate * h * np.abs(excess))",
             "probability = -np.expm1(-self.rate * h * excess)",
             ("tests/test_dynamics.py",), "birth_death", doc="|Λ| → Λ: particles with Λ < 0 never duplicate"),
    Mutation("birth-death-penalty", "meanfield/dynamics/birth_death.py",
             "first_variation = first_variation + penalty.strength * penalty.per_particle(y, nx)",
             "first_variation = first_variation",
             ("tests/test_dynamics.py",), "birth_death", doc="the rates ignore the penalty in F′"),
    # -- output layer --------------------------------------------------------------------------------------------
    Mutation("output-layer-rate", "meanfield/dynamics/output_layer.py",
             "return self.mask * super().velocity(y, evaluation)",
             "return 0.5 * self.mask * super().velocity(y, evaluation)",
             ("tests/test_empirical.py", "tests/test_dynamics.py"), "output_layer", doc="the flow of a at half rate"),
    # -- losses, penalties, output scale, records on data -----------------------------------------------------------
    Mutation("cross-entropy-gradient", "meanfield/losses.py",
             "return e / e.sum(axis=1)[:, None] - y",
             "return e - y",
             ("tests/test_empirical.py",), "cross_entropy", doc="softmax not normalised"),
    Mutation("weight-decay-gradient", "meanfield/penalties.py",
             "return self.strength * state",
             "return 0.5 * self.strength * state",
             ("tests/test_empirical.py",), "penalty or regularised or weight_decay", doc="∇(λ|θ|²/2) = λθ/2"),
    Mutation("output-scale", "meanfield/problem.py",
             "inverse = 1.0 / self.output_scale",
             "inverse = self.output_scale",
             ("tests/test_empirical.py", "tests/test_scale.py"), "scale", doc="f*/α → α f*"),
    Mutation("test-loss-split", "meanfield/empirical.py",
             'out["test_loss"] = lambda mu: float(np.mean(self.losses(mu, "test")))',
             'out["test_loss"] = lambda mu: float(np.mean(self.losses(mu, "train")))',
             ("tests/test_empirical.py",), "recorded or run_on_data or digits", doc="test_loss on the training split"),
    Mutation("margin-scale", "meanfield/empirical.py",
             "return float(np.min(self.data.y * self.predict(mu, self.data.x))) / (self.output_scale * norm)",
             "return float(np.min(self.data.y * self.predict(mu, self.data.x))) / norm",
             ("tests/test_empirical.py",), "margin or recorded", doc="the margin not divided by α"),
    # -- Hermite coefficients --------------------------------------------------------------------------------------
    Mutation("truncated-power-tail", "meanfield/hermite.py",
             "out[:, k] = fact_n * h * density * np.exp(0.5 * (log_fact[j] - log_fact[k]))",
             "out[:, k] = fact_n * h * density * np.exp(0.5 * (log_fact[j + 1] - log_fact[k]))",
             ("tests/test_hermite.py", "tests/test_mixed.py", "tests/test_pair_kernels.py"),
             doc="√((k−n−1)!/k!) off by one"),
    Mutation("truncated-power-head", "meanfield/hermite.py",
             "/ math.sqrt(math.factorial(k))",
             "/ math.factorial(k)",
             ("tests/test_hermite.py", "tests/test_mixed.py", "tests/test_pair_kernels.py"),
             doc="c_k = E[σ He_k]/k! instead of /√k! (relu² and relu³)"),
    Mutation("mixed-curvature", "meanfield/mixed.py",
             "curvature[live, :-1] = np.sqrt(k[1:]) * slopes[live, 1:] / s[live, None]",
             "curvature[live, :-1] = k[1:] * slopes[live, 1:] / s[live, None]",
             ("tests/test_mixed.py",), doc="σ'' coefficients with k instead of √k"),
    # -- fp32 repair (numba) -------------------------------------------------------------------------------------
    Mutation("fp32-repair", "meanfield/kernels/numba_backend.py",
             "return (pt > near) & (pt < pi - near)",
             "return pt > near",
             ("tests/test_numba_blas.py", "tests/test_precision.py"), "fp32 or float32",
             doc="nearly opposite pairs not repaired in fp64"),
    # -- noisy SGD -------------------------------------------------------------------------------------------------
    Mutation("sgd-noise", "meanfield/sgd.py",
             "parameter += math.sqrt(2.0 * self.temperature * h) * noise.to(parameter.device)",
             "parameter += math.sqrt(self.temperature * h) * noise.to(parameter.device)",
             ("tests/test_dynamics.py", "tests/test_sgd.py"), "noisy_sgd or sgd", doc="noise √(τη) instead of √(2τη)"),
    Mutation("sgd-weight-decay", "meanfield/sgd.py",
             "parameter -= (h * self.weight_decay) * parameter",
             "parameter -= (0.5 * h * self.weight_decay) * parameter",
             ("tests/test_dynamics.py", "tests/test_sgd.py"), "noisy_sgd or sgd", doc="weight decay λ → λ/2"),
    # -- background saves ----------------------------------------------------------------------------------------
    Mutation("background-abort", "meanfield/background.py",
             "            self.wait()\n        except Exception:  # noqa: BLE001 - the run's error is the one that "
             "propagates\n            pass\n        finally:\n            self._writer.shutdown()\n",
             "            pass\n        except Exception:\n            pass\n        finally:\n"
             "            self._writer.shutdown(wait=False)\n",
             ("tests/test_background_saves.py",), doc="abort closes the file without waiting for the save in flight"),
    # -- exchangeable weights ------------------------------------------------------------------------------------
    Mutation("transition-default-level", "meanfield/weights/analysis/exchangeable_kernel.py",
             "def transition_covariance(x, y, v: float = 1.0, activation=0.0, level: float = 0.5) -> float:",
             "def transition_covariance(x, y, v: float = 1.0, activation=0.0, level: float = 0.25) -> float:",
             ("tests/test_exchangeable_kernel.py",), "transition", doc="the half-way point at a quarter"),
    Mutation("transition-level", "meanfield/weights/analysis/exchangeable_kernel.py",
             "goal = start + level * (1.0 - start)",
             "goal = start + (1.0 - level) * (1.0 - start)",
             ("tests/test_exchangeable_kernel.py",), "transition", doc="the level measured from the limit"),
    Mutation("stein-subsample", "meanfield/dynamics/langevin.py",
             "max_points=self.dynamics.diagnostic_particles)",
             "max_points=None)",
             ("tests/test_dynamics.py",), "stein or langevin", doc="diagnostic_particles ignored"),
    # -- documented behaviours that had no test -------------------------------------------------------------------
    Mutation("background-default", "meanfield/flow.py",
             'background_saves = path is not None and getattr(device, "type", None) == "cuda"',
             "background_saves = False",
             ("tests/test_background_saves.py",), "default", doc="CUDA runs to a file save synchronously"),
    Mutation("blas-policy-all", "meanfield/threads.py",
             '    if policy == "all":\n        yield None\n        return\n',
             '    if policy == "all":\n        policy = "auto"\n',
             ("tests/test_new_user.py",), "thread_policy", doc='"all" limits BLAS like "auto"'),
    Mutation("idle-cores", "meanfield/threads.py",
             "return max(1, n - busy)",
             "return n",
             ("tests/test_new_user.py",), "thread_policy", doc='"auto" blind to busy cores'),
    Mutation("sklearn-standardise", "meanfield/data.py",
             "mean, std = x[train].mean(axis=0), x[train].std(axis=0)",
             "mean, std = x.mean(axis=0), x.std(axis=0)",
             ("tests/test_empirical.py",), "from_sklearn", doc="standardised on the whole data set"),
    Mutation("cross-entropy-classes", "meanfield/losses.py",
             "return self.classes or int(y.max()) + 1",
             "return int(y.max()) + 1",
             ("tests/test_empirical.py",), "cross_entropy", doc="classes=K ignored"),
    Mutation("proximal-gibbs-decay", "meanfield/dynamics/stein.py",
             "return (velocity - weight_decay * state) / temperature",
             "return (velocity - 0.5 * weight_decay * state) / temperature",
             ("tests/test_dynamics.py",), "proximal_gibbs or stein", doc="the score's decay λ → λ/2"),
    Mutation("exchangeable-fit-covariance", "meanfield/weights/analysis/exchangeable_kernel.py",
             'return cls(stats["variance"], stats["c_row"], int(moments.mean.shape[1]))',
             'return cls(stats["variance"], stats["c_col"], int(moments.mean.shape[1]))',
             ("tests/test_exchangeable_kernel.py",), "fit", doc="the within-column covariance for the within-row"),
    Mutation("ring-to-ring-distance", "meanfield/reduced/lowdim.py",
             "neurons = bk.to_numpy(self.ring_field(bound, reduced, reduced, v)[0])",
             "neurons = bk.to_numpy(self.ring_field(bound, reduced, rings, v)[0])",
             ("tests/test_reduced.py",), "distance", doc="‖f_μ‖² of rings μ paired with ν's rings"),
]


def scratch_copy(tests_at: str | None) -> Path:
    """The package, tests and pytest configuration in a temporary directory (tests from ``tests_at`` if given)."""
    scratch = Path(tempfile.mkdtemp(prefix="meanfield-mutations-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    shutil.copytree(ROOT / "meanfield", scratch / "meanfield", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", scratch / "pyproject.toml")
    if tests_at is None:
        shutil.copytree(ROOT / "tests", scratch / "tests", ignore=ignore)
    else:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", tests_at, "tests"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive, check=True)
    return scratch


def scratch_environment(scratch: Path) -> dict:
    """The scratch copy's package first on the path; no bytecode caches (a mutated file and its restored original
    may share a size and an mtime second, which a .pyc cannot tell apart)."""
    return dict(os.environ, PYTHONPATH=str(scratch), PYTHONDONTWRITEBYTECODE="1")


def run_tests(scratch: Path, args: list[str], timeout: float) -> tuple[int, float, str]:
    """pytest -x on ``args`` in the scratch copy, importing its package: (exit code, seconds, last output line)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *args]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=scratch, env=scratch_environment(scratch), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, time.perf_counter() - start, f"timed out after {timeout:.0f} s"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, time.perf_counter() - start, lines[-1] if lines else done.stderr.strip()[-200:]


def working_tree_label() -> str:
    """The commit of the working tree's tests ("<hash>", or "<hash> + changes" when tests/ differs from it)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    return head + (" + changes" if git("status", "--porcelain", "--", "tests") else "")


def without_timing(summary: str) -> str:
    """pytest's summary line without its wall time ("1 failed, 2 passed in 0.7s" → "1 failed, 2 passed"), so that
    a re-run on the same tests writes the same report."""
    return re.sub(r" in [0-9.]+s( \([0-9:]+\))?$", "", summary)


def verdict(code: int) -> str:
    return {0: "survived", 1: "caught", 5: "survived (no test selected)", -1: "timeout"}.get(code, f"error {code}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutations and their tests")
    parser.add_argument("--only", help="comma-separated names of the mutations to run")
    parser.add_argument("--tests-at", help="run the tests of this git revision (the same selections)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutation")
    parser.add_argument("--json", type=Path, help="also write the report to this JSON file")
    args = parser.parse_args(argv)
    chosen = MUTATIONS
    if args.only:
        names = args.only.split(",")
        unknown = sorted(set(names) - {m.name for m in MUTATIONS})
        if unknown:
            parser.error(f"unknown mutation(s) {', '.join(unknown)}; see --list")
        chosen = [m for m in MUTATIONS if m.name in names]
    for m in chosen:
        count = (ROOT / m.file).read_text().count(m.old)
        if count != 1:
            parser.error(f"mutation {m.name}: its snippet occurs {count} times in {m.file} (must be exactly once)")
    if args.list:
        for m in chosen:
            print(f"{m.name:26s} {m.file}: {m.doc}\n{'':26s} pytest {' '.join(m.pytest_args())}")
        return 0

    scratch = scratch_copy(args.tests_at)
    report = {"tests_at": args.tests_at or working_tree_label(), "mutations": []}
    try:
        where = subprocess.run([sys.executable, "-c", "import meanfield; print(meanfield.__file__)"], cwd=scratch,
                               env=scratch_environment(scratch), capture_output=True, text=True).stdout.strip()
        if not where.startswith(str(scratch)):
            print(f"the scratch copy's package is not the one imported ({where})", file=sys.stderr)
            return 2
        baseline_args = sorted({tuple(m.pytest_args()) for m in chosen})
        for selection in baseline_args:
            code, seconds, last = run_tests(scratch, list(selection), args.timeout)
            if code not in (0, 5):
                print(f"baseline fails: pytest {' '.join(selection)}: {last}", file=sys.stderr)
                return 2
        for m in chosen:
            path = scratch / m.file
            original = path.read_text()
            path.write_text(original.replace(m.old, m.new))
            try:
                code, seconds, last = run_tests(scratch, m.pytest_args(), args.timeout)
            finally:
                path.write_text(original)
            entry = {"name": m.name, "file": m.file, "doc": m.doc, "tests": " ".join(m.pytest_args()),
                     "verdict": verdict(code), "pytest": without_timing(last)}
            report["mutations"].append(entry)
            print(f"{entry['verdict']:28s} {m.name:26s} {seconds:6.1f} s  {last}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    survived = [e["name"] for e in report["mutations"] if e["verdict"] != "caught"]
    report["caught"] = len(report["mutations"]) - len(survived)
    report["survived"] = survived
    print(f"\ncaught {report['caught']} of {len(report['mutations'])}; not caught: {', '.join(survived) or 'none'}")
    if args.json:   # one report per test revision, so that the file holds the before and the after
        args.json.parent.mkdir(parents=True, exist_ok=True)
        reports = json.loads(args.json.read_text()) if args.json.exists() else {}
        reports[report["tests_at"]] = report
        args.json.write_text(json.dumps(reports, indent=1, ensure_ascii=False) + "\n")
    return 0 if not survived else 1


if __name__ == "__main__":
    sys.exit(main())
