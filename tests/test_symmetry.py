"""Symmetries: maps, detection, asymmetry, enforcement, preservation along the flow."""

import numpy as np
import pytest
from conftest import random_rotation

import meanfield as mf
from meanfield.symmetry import (
    SymmetricProblem,
    Symmetry,
    asymmetry,
    candidate_symmetries,
    detect_symmetries,
    hidden_subspace,
    orbit,
    orbit_measure,
    permutation,
    reflection,
    sign_flip,
    subspace_rotation,
)


def test_maps_are_orthogonal_with_the_right_orders():
    assert sign_flip(4).order() == 2
    assert permutation([1, 2, 0, 3]).order() == 3
    assert reflection(np.array([1.0, 2.0, 0.0])).order() == 2
    assert len(orbit(permutation([1, 2, 3, 0]))) == 4
    Q = np.eye(6)[:, :2]
    T = subspace_rotation(Q, 0)
    np.testing.assert_allclose(T.matrix @ Q, Q, atol=1e-12)  # identity on H
    with pytest.raises(ValueError, match="not orthogonal"):
        Symmetry(np.ones((3, 3)))
    with pytest.raises(ValueError, match="parity"):
        Symmetry(np.eye(3), 2)


def test_detection_finds_the_symmetries_of_known_targets():
    d = 6
    cubic = mf.CubicTarget(np.array([1.0, 1.0, 1.0, 2.0, 2.0, 3.0]))
    holds = {r.symmetry.name: r.parity for r in detect_symmetries(cubic, mf.Gaussian(d)) if r.holds}
    assert holds["-I"] == -1  # odd
    # Swapping coordinates with equal z is a symmetry (parity +1); swapping unequal ones or flipping one is not.
    for swap in ("perm[1, 0, 2, 3, 4, 5]", "perm[0, 2, 1, 3, 4, 5]", "perm[0, 1, 2, 4, 3, 5]"):
        assert holds[swap] == 1
    for broken in ("perm[0, 1, 3, 2, 4, 5]", "perm[0, 1, 2, 3, 5, 4]", "x0->-x0", "x5->-x5"):
        assert broken not in holds
    Q = random_rotation(d, np.random.default_rng(0))[:, :2]
    radial = mf.RadialTarget(lambda r: r, Q, degree=1)
    reports = detect_symmetries(radial, mf.Sphere(d), candidates=candidate_symmetries(d, Q=Q, n_random=3))
    by_kind = {}
    for rep in reports:
        by_kind.setdefault(rep.symmetry.name, []).append(rep)
    assert all(r.holds and r.parity == 1 for r in by_kind["O(H⊥)"])
    assert by_kind["-I"][0].holds and by_kind["-I"][0].parity == 1  # |x_H| is even
    assert not any(r.holds for r in by_kind["perm[1, 0, 2, 3, 4, 5]"])  # a random H has no coordinate symmetry


@pytest.mark.parametrize("kind", ["teacher", "radial"])
def test_hidden_subspace_is_recovered(kind):
    d, rng = 10, np.random.default_rng(1)
    Q = random_rotation(d, rng)[:, :3]
    if kind == "teacher":
        target = mf.TeacherNetwork([1.0, -1.0, 0.5], (Q @ rng.standard_normal((3, 3))).T)
    else:
        target = mf.RadialTarget(lambda r: np.sin(r) + r**2, Q)
    basis, eigenvalues = hidden_subspace(target, mf.Gaussian(d))
    assert basis.shape == (d, 3)
    # Same subspace: the projectors agree.
    # The gradient outer product uses central differences at step 1e-5 (error ~1e-10 relative) on 2000 samples;
    # the eigenvector error is that over the gap between the H and H^⊥ eigenvalues: well below 1e-6.
    np.testing.assert_allclose(basis @ basis.T, Q @ Q.T, atol=1e-6)
    assert eigenvalues[3] < 1e-8 * eigenvalues[0]


def test_asymmetry_in_closed_form_matches_monte_carlo():
    rng = np.random.default_rng(2)
    inputs = mf.Gaussian(5)
    mu = mf.ParticleMeasure(rng.standard_normal(7), rng.standard_normal((7, 5)))
    T = permutation([2, 0, 1, 3, 4], parity=-1)
    out = asymmetry(mu, T, inputs)
    x = inputs.sample(1_000_000, 3)
    diff = mu.predict(T.apply_inputs(x)) + mu.predict(x)  # f∘T − ε f with ε = −1
    mc, se = np.sqrt(np.mean(diff**2)), np.std(diff**2) / np.sqrt(len(x)) / (2 * np.sqrt(np.mean(diff**2)))
    assert abs(out["function"] - mc) < 5 * se
    symmetric = mf.init.paired(8, 5, seed=4)
    zero = asymmetry(symmetric, sign_flip(5), inputs)
    assert zero["function"] < 1e-7 and zero["measure"] < 1e-12


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_enforced_flow_equals_full_flow_from_the_orbit(backend):
    rng = np.random.default_rng(5)
    d = 6
    perm = permutation([1, 2, 0, 4, 5, 3])  # order 3
    # A target invariant under the permutation: a teacher made of the orbit of two neurons.
    U0 = rng.standard_normal((2, d))
    U = np.concatenate([U0 @ g.matrix.T for g in orbit(perm)])
    problem = mf.Problem(mf.TeacherNetwork(np.tile([1.0, -0.5], 3), U), mf.Gaussian(d))
    reps = mf.init.sign_sphere(12, d, seed=6)
    enforced = mf.simulate(SymmetricProblem(problem, perm), reps, t_max=3.0, dt=0.05, solver="rk4", backend=backend)
    full = mf.simulate(problem, orbit_measure(reps, perm), t_max=3.0, dt=0.05, solver="rk4", backend=backend)
    np.testing.assert_allclose(enforced.final.state(), full.final.state()[:12], atol=1e-12)
    np.testing.assert_allclose(enforced.risk, full.risk, rtol=1e-12)


def test_symmetric_start_stays_symmetric_over_a_long_full_run():
    """Hajjar & Chizat: invariance is preserved by the flow; here to round-off over 2000 Heun steps."""
    d = 8
    problem = mf.Problem(mf.CubicTarget.normalized(np.linspace(1, 2, d), mf.Gaussian(d)), mf.Gaussian(d))
    mu0 = mf.init.paired(64, d, seed=7)
    T = sign_flip(d)

    def asym(mu):
        return np.abs(mu.state()[:32] + mu.state()[32:]).max()

    traj = mf.simulate(problem, mu0, t_max=200.0, dt=0.1, save_every=500, backend="numba",
                       observables={"pair_error": asym})
    assert traj.observables["pair_error"].max() < 1e-12
    assert asymmetry(traj.final, T, problem.inputs)["relative"] < 1e-7
