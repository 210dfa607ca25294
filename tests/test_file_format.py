"""docs/file-format.md against real files: a small file of every kind of run, checked both ways against the page's
tables (each row that applies to a run is in its file with that shape and dtype; each attribute and dataset of the
file is a row). The tables are read from the page, so that the page and this test cannot drift apart; what this test
knows by itself is which kind of run each file is (its tags, in the page's vocabulary) and its dimensions."""

import re
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest

import meanfield as mf
from meanfield.data import DataSet
from meanfield.dynamics import BirthDeath, Conic, Langevin
from meanfield.reduced import LowDimReducedProblem
from meanfield.weights.mlp import train_mlp

PAGE = Path(__file__).resolve().parents[1] / "docs" / "file-format.md"
D, M, K_TEACHER = 4, 6, 2


def _cells(line: str) -> list[str]:
    return [cell.strip().replace(r"\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def page_table(header: list[str]) -> list[dict]:
    """The rows of the page's table with these column names."""
    lines = PAGE.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and _cells(line) == header:
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(header, _cells(row))))
            return rows
    raise AssertionError(f"docs/file-format.md has no table with the columns {header}")


def _code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _applies(cell: str, tags: set) -> bool:
    """Whether a row's runs (alternatives separated by commas, ``A + B`` for both) include a run of these tags."""
    return any({tag.strip() for tag in alternative.split("+")} <= tags for alternative in cell.split(","))


ATTRIBUTES = page_table(["object", "attribute", "runs", "content"])
DATASETS = page_table(["path", "runs", "shape", "dtype", "content"])


@dataclass
class Run:
    """A file of one kind of run: its tags (the page's vocabulary), its dimensions and its caller's observables."""

    path: Path
    tags: set
    sizes: dict
    user: tuple = ()
    placeholders: dict = field(default_factory=dict)


def _teacher(**options):
    return mf.Problem(mf.TeacherNetwork(np.ones(K_TEACHER), np.eye(D)[:K_TEACHER]), mf.Gaussian(D), **options)


NEURONS = {"particles", "flow", "scalar output", "neurons"}
FLOW = dict(t_max=0.2, dt=0.1, save_every=1, backend="numpy")


def _data_set(classes: int, split: bool):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, D))
    y = np.arange(20) % classes if classes > 2 else np.where(np.arange(20) % 2, 1.0, -1.0)
    return DataSet(x, y, x[:5], y[:5]) if split else DataSet(x, y)


def write_runs(folder: Path) -> dict[str, Run]:
    """Every kind of run, small: flows (fixed and adaptive steps, Langevin, conic, birth–death, biased neurons,
    the cross-entropy and the logistic loss on data sets, the reduced ring flow, odd targets with a penalty), SGD and
    an MLP."""
    mu0 = mf.init.sign_sphere(M, D, seed=0)
    user = {"w_norm": lambda mu: float(np.linalg.norm(mu.b))}
    teacher = _teacher()
    base = {"T": 3, "m": M, "d": D, "k": K_TEACHER}
    runs = {}

    def flow(name, problem, measure, tags, sizes=None, **options):
        path = folder / f"{name}.h5"
        mf.simulate(problem, measure, path=path, **{**FLOW, **options}).close()
        runs[name] = Run(path, {"all", *tags}, {**base, **(sizes or {})}, tuple(options.get("observables", {})))

    flow("flow", teacher, mu0, NEURONS | {"teacher", "hidden subspace"}, observables=user)
    flow("adaptive", teacher, mu0, NEURONS | {"teacher", "hidden subspace"}, solver="dopri5")
    flow("langevin", teacher, mu0, NEURONS | {"teacher", "hidden subspace", "Langevin", "random"},
         dynamics=Langevin(1e-3, 1e-2, seed=0))
    flow("conic", teacher, mu0, NEURONS | {"teacher", "hidden subspace", "conic"}, dynamics=Conic(1.0, 1.0))
    flow("birth_death", teacher, mu0, NEURONS | {"teacher", "hidden subspace", "birth–death", "random"},
         dynamics=BirthDeath(1.0, seed=0))
    flow("biased", _teacher(bias=True), mf.init.gaussian(M, D, seed=0, bias_std=0.5),
         {"particles", "flow", "scalar output", "biases", "teacher", "hidden subspace"})
    flow("cross_entropy", mf.EmpiricalProblem(_data_set(3, split=True), loss="cross_entropy"),
         mf.init.gaussian(M, D, seed=0, outputs=3),
         {"particles", "flow", "K outputs", "neurons", "data set", "held-out split", "classification"},
         {"K": 3, "n": 20, "n_test": 5})
    flow("logistic", mf.EmpiricalProblem(_data_set(2, split=False), loss="logistic"), mu0,
         NEURONS | {"data set", "classification", "logistic"}, {"n": 20})
    inputs = mf.Gaussian(D)
    multi_index = mf.Problem(mf.MultiIndexTarget(lambda xh: np.abs(xh[:, 0]) + xh[:, 1] ** 2, np.eye(D)[:, :2]),
                             inputs)
    reduced = LowDimReducedProblem(multi_index)
    flow("rings", reduced, reduced.reduce(mu0), {"particles", "flow", "scalar output", "rings", "multi-index"},
         {"d_H": 2})
    cubic = mf.Problem(mf.CubicTarget.normalized(np.ones(D) / 2, inputs), inputs, penalty=("weight_decay", 1e-3),
                       output_scale=2.0)
    flow("cubic_penalised", cubic, mu0, NEURONS | {"cubic", "penalty", "output scale"})
    flow("linear", mf.Problem(mf.LinearTarget(np.ones(D)), inputs), mu0, NEURONS | {"linear", "hidden subspace"})

    path = folder / "sgd.h5"
    mf.sgd.train(teacher, mu0, t_max=0.02, eta=0.01, batch_size=8, save_every=1, observables=user,
                 risk_backend="numpy", path=path).close()
    runs["sgd"] = Run(path, {"all", "particles", "sgd", "scalar output", "neurons", "teacher", "hidden subspace",
                             "random"}, base, tuple(user))
    path = folder / "mlp.h5"
    train_mlp(width=4, depth=2, epochs=1, path=path).close()
    L = 3   # depth 2: W0, W1, W2
    runs["mlp"] = Run(path, {"all", "mlp"}, {"T": 2, "width": 4, "n_in": 64, "n_out": 10},
                      placeholders={"<l>": [str(i) for i in range(1, L - 1)], "<L−1>": [str(L - 1)],
                                    "<k>": [str(i) for i in range(L)]})
    return runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return write_runs(tmp_path_factory.mktemp("file_format"))


def _concrete(pattern: str, run: Run) -> list[str]:
    """A documented path with its placeholders filled in for this run (``<name>``: the caller's observables)."""
    found = re.search(r"<[^>]+>", pattern)
    if not found:
        return [pattern]
    values = list(run.user) if found.group() == "<name>" else run.placeholders.get(found.group())
    assert values is not None, f"the test does not know the placeholder {found.group()} of {pattern}"
    return [path for value in values for path in _concrete(pattern.replace(found.group(), value, 1), run)]


def _shape_matches(documented: str, shape: tuple, sizes: dict) -> bool:
    entries = [entry.strip() for entry in documented.strip("()").split(",") if entry.strip()]
    if entries and entries[-1] == "…":
        entries = entries[:-1]
        shape = shape[:len(entries)]
    # an entry is a sum of sizes and integers: "T", "30", "d + 1"
    expected = tuple(sum(int(term) if term.strip().isdigit() else sizes[term.strip()] for term in entry.split("+"))
                     for entry in entries)
    return shape == expected


def documented_datasets(run: Run) -> dict[str, tuple[str, str]]:
    """path → (shape, dtype) of every dataset row that applies to this run."""
    out = {}
    for row in DATASETS:
        if not _applies(row["runs"], run.tags):
            continue
        paths = _code(row["path"])
        shapes = re.findall(r"\([^()]*\)", row["shape"])
        assert len(shapes) in (0, 1, len(paths)), f"row {row['path']}: one shape, or one per path"
        for i, pattern in enumerate(paths):
            for path in _concrete(pattern, run):
                assert path not in out, f"{path} documented twice for a {sorted(run.tags)} run"
                out[path] = (shapes[i if len(shapes) > 1 else 0] if shapes else "", row["dtype"])
    return out


KINDS = ["flow", "adaptive", "sgd", "mlp", "langevin", "conic", "birth_death", "biased", "cross_entropy", "logistic",
         "rings", "cubic_penalised", "linear"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_documented_dataset_is_in_the_file_with_its_shape(runs, kind):
    run = runs[kind]
    documented = documented_datasets(run)
    with h5py.File(run.path, "r") as f:
        sizes = dict(run.sizes, T=len(f["series/time"]))
        for path, (shape, dtype) in documented.items():
            if path.endswith("/…"):
                assert path[:-2].lstrip("/") in f, f"{kind}: {path[:-2]} missing"
                continue
            assert path in f, f"{kind}: {path} is documented but not in the file"
            dataset = f[path]
            assert _shape_matches(shape, dataset.shape, sizes), f"{kind}: {path} has shape {dataset.shape}, " \
                                                                  f"the page says {shape} with {sizes}"
            assert dataset.dtype == np.dtype(dtype), f"{kind}: {path} is {dataset.dtype}, the page says {dtype}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_dataset_of_the_file_is_documented(runs, kind):
    run = runs[kind]
    documented = documented_datasets(run)
    backup = "/checkpoint/previous/"
    stored = []
    with h5py.File(run.path, "r") as f:
        f.visititems(lambda name, obj: stored.append((f"/{name}", obj.shape)) if isinstance(obj, h5py.Dataset)
                     else None)
        sizes = dict(run.sizes, T=len(f["series/time"]))
    assert any(path.startswith(backup) for path, _ in stored), f"{kind}: no backup checkpoint"
    for path, shape in stored:
        if path.startswith(backup):   # "the same datasets": the backup's rows are the checkpoint's
            assert backup + "…" in documented, f"{kind}: {backup} is not documented"
            path = "/checkpoint/" + path[len(backup):]
        assert path in documented, f"{kind}: {path} is in the file but not on the page"
        assert _shape_matches(documented[path][0], shape, sizes), f"{kind}: {path} {shape} vs {documented[path][0]}"


@pytest.mark.parametrize("kind", KINDS)
def test_the_attributes_are_those_documented(runs, kind):
    run = runs[kind]
    documented = {}
    for row in ATTRIBUTES:
        if _applies(row["runs"], run.tags):
            for obj in _code(row["object"]):
                documented.setdefault(obj, {})[_code(row["attribute"])[0]] = row["content"]
    with h5py.File(run.path, "r") as f:
        stored = {"/": dict(f.attrs)}
        f.visititems(lambda name, obj: stored.update({f"/{name}": dict(obj.attrs)}) if obj.attrs else None)
    assert {obj: set(attrs) for obj, attrs in stored.items()} == \
        {obj: set(attrs) for obj, attrs in documented.items()}, f"{kind}: attributes differ from the page"
    # the values the page lists are the values files hold
    for name in ("format", "kind", "status"):
        assert str(stored["/"][name]) in _code(documented["/"][name]), (kind, name, stored["/"][name])
    assert str(stored["/"]["format_version"]) in documented["/"]["format_version"]
