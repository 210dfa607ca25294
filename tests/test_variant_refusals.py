"""Problem variants refuse, at construction and in one line, an objective they cannot run (on main before this change
each was accepted and failed at the first evaluation: an AttributeError, or a bare NotImplementedError)."""

import numpy as np
import pytest

import meanfield as mf
from meanfield.data import DataSet
from meanfield.reduced import LowDimReducedProblem, OddReducedProblem
from meanfield.symmetry import SymmetricProblem, sign_flip


@pytest.fixture(scope="module")
def empirical():
    x = np.random.default_rng(0).standard_normal((40, 3))
    return mf.EmpiricalProblem(DataSet(x, x[:, 0] ** 3))


@pytest.mark.parametrize("variant", [lambda p: SymmetricProblem(p, sign_flip(3)), OddReducedProblem,
                                     LowDimReducedProblem], ids=["symmetric", "odd", "low_dim"])
def test_variants_of_a_population_problem_refuse_a_data_set(empirical, variant):
    with pytest.raises(ValueError, match="cannot wrap EmpiricalProblem: it is written for Problem objectives") as err:
        variant(empirical)
    assert "\n" not in str(err.value)


def test_the_low_dimensional_reduction_refuses_a_unit_without_a_dual_kernel():
    teacher = mf.TeacherNetwork([1.0], [[1.0, 0.0, 0.0, 0.0]], activation="erf")   # depends on x through e_1
    problem = mf.Problem(teacher, mf.Gaussian(4), activation="erf")
    with pytest.raises(ValueError, match="average the dual kernel of the ReLU family"):
        LowDimReducedProblem(problem, Q=np.eye(4)[:, :1])
    target = mf.RadialTarget.norm(np.eye(4)[:, :2])
    LowDimReducedProblem(mf.Problem(target, mf.Gaussian(4), activation="abs"))  # the ReLU family is accepted
