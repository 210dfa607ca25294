"""Docstrings that agree with the code: the choices a parameter documents are the registry's, and every parameter of
a public function is documented.

A documented choice set is the first ``{"a", "b", ...}`` of a numpydoc Parameters entry (its type or description);
it must equal the names the code accepts, read from the registry that the code itself dispatches on.
"""

import inspect
import re
import sys
from pathlib import Path

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc

import meanfield as mf
from meanfield import activations, losses, sgd, solvers
from meanfield.dynamics import langevin
from meanfield.kernels import available_backends, get_backend
from meanfield.weights import mlp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

import apigen  # noqa: E402


def _parameters(obj):
    doc = ClassDoc(obj, config={"show_class_members": False}) if inspect.isclass(obj) else FunctionDoc(obj)
    return doc["Parameters"]


def documented_choices(obj, parameter: str) -> set[str]:
    """The quoted names of the first {...} set in the Parameters entry of ``parameter``."""
    for entry in _parameters(obj):
        if parameter in (name.strip() for name in entry.name.split(",")):
            text = entry.type + " " + " ".join(entry.desc)
            found = re.search(r"\{([^{}]*)\}", text)
            assert found, f"{obj.__qualname__}: the entry of {parameter!r} names no {{...}} set of choices"
            return set(re.findall(r'"([^"]+)"', found.group(1)))
    raise AssertionError(f"{obj.__qualname__} documents no parameter {parameter!r}")


def _unit_names() -> set[str]:
    names = {"relu", "leaky_relu", *activations.ACTIVATIONS}   # what as_activation dispatches on
    for name in names:
        activations.as_activation(name)
    return names


def _backend_names() -> set[str]:
    return {"auto", *available_backends()}


CHOICES = {
    "Problem.activation": (mf.Problem, "activation", _unit_names),
    "EmpiricalProblem.activation": (mf.EmpiricalProblem, "activation", _unit_names),
    "TeacherNetwork.activation": (mf.TeacherNetwork, "activation", _unit_names),
    "EmpiricalProblem.loss": (mf.EmpiricalProblem, "loss", lambda: set(losses.LOSSES)),
    "simulate.backend": (mf.simulate, "backend", _backend_names),
    "simulate.solver": (mf.simulate, "solver", lambda: set(solvers.SOLVERS)),
    "sgd.train.mode": (sgd.train, "mode", lambda: set(sgd.MODES)),
    "langevin_step.scheme": (langevin.langevin_step, "scheme", lambda: set(langevin.SCHEMES)),
    "train_mlp.dataset": (mlp.train_mlp, "dataset", lambda: set(mlp.DATASETS)),
    "train_mlp.init": (mlp.train_mlp, "init", lambda: set(mlp.INITS)),
    "train_mlp.optimizer": (mlp.train_mlp, "optimizer", lambda: set(mlp.OPTIMIZERS)),
}


@pytest.mark.parametrize("case", sorted(CHOICES))
def test_documented_choices_are_the_registry(case):
    obj, parameter, registry = CHOICES[case]
    assert documented_choices(obj, parameter) == registry(), f"{case}: the docstring's choices differ from the code's"


def test_every_backend_name_documented_is_accepted():
    # the other direction for backends on a machine lacking one: a documented name is known to get_backend
    for name in documented_choices(mf.simulate, "backend") - {"auto"}:
        try:
            get_backend(name)
        except ImportError:
            pass


def test_hermite_units_show_their_options():
    # Tanh(tol, **options) hid max_order and nodes: the signature names them, with HermiteActivation's defaults
    base = inspect.signature(activations.HermiteActivation).parameters
    for factory in (activations.GELU, activations.Tanh, activations.SiLU, activations.Softplus):
        parameters = inspect.signature(factory).parameters
        assert list(parameters) == ["tol", "max_order", "nodes"], factory.__name__
        for name in parameters:
            assert parameters[name].default == base[name].default, (factory.__name__, name)
        assert factory(max_order=40).max_order == 40


def test_sgd_train_documents_the_empirical_problem():
    entry = next(p for p in _parameters(sgd.train) if p.name == "problem")
    assert "EmpiricalProblem" in entry.type


def _undocumented(obj) -> list[str]:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    documented = {name.strip().lstrip("*") for entry in _parameters(obj) for name in entry.name.split(",")}
    return [name for name in signature.parameters if name not in ("self", "cls") and name not in documented]


DOCUMENTED = {name: obj for name, obj in apigen.public_objects().items() if _parameters(obj)}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_every_parameter_is_documented(name):
    """A docstring with a Parameters section names every parameter of the signature (``**options`` included)."""
    missing = _undocumented(DOCUMENTED[name])
    assert not missing, f"{name}: parameters missing from its docstring: {missing}"
