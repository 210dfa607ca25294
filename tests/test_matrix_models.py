"""Permutation-invariant Gaussian matrix models: decomposition, invariance, fits, W₂ against brute force."""

import itertools

import numpy as np
import pytest
from scipy.linalg import sqrtm

from meanfield.weights.analysis import (
    RECTANGULAR_INVARIANTS,
    SQUARE_INVARIANTS,
    Invariant,
    RectangularMatrixModel,
    SquareMatrixModel,
    compare_invariants,
)


def random_psd(k, rng, scale=1.0):
    A = rng.standard_normal((k, k))
    return scale * (A @ A.T / k + 0.3 * np.eye(k))


def random_square(D, rng):
    return SquareMatrixModel(D, rng.standard_normal(2), random_psd(2, rng), random_psd(3, rng),
                             rng.uniform(0.3, 2.0), rng.uniform(0.3, 2.0))


def random_rect(shape, rng):
    return RectangularMatrixModel(shape, rng.standard_normal(), *rng.uniform(0.3, 2.0, size=4))


def brute_force_w2(A, B):
    """W₂ between N(vec mean_A, C_A) and N(vec mean_B, C_B) with dense matrix square roots."""
    Ca, Cb = A.covariance(), B.covariance()
    ra = np.real(sqrtm(Ca))
    cross = np.real(sqrtm(ra @ Cb @ ra))
    dm = A.mean_matrix() - B.mean_matrix()
    return float(np.sqrt(np.sum(dm**2) + np.trace(Ca) + np.trace(Cb) - 2 * np.trace(cross)))


@pytest.mark.parametrize("model", [SquareMatrixModel.iid(6), RectangularMatrixModel.iid((4, 7))])
def test_decomposition_is_orthogonal_and_complete(model):
    rng = np.random.default_rng(0)
    M = rng.standard_normal((5,) + model.shape)
    comps = model._components(M)
    rebuilt = sum(model._embed(name, Y) for name, Y in comps.items())
    np.testing.assert_allclose(rebuilt, M, atol=1e-13)
    energy = sum(np.sum(Y**2, axis=(1, 2)) for Y in comps.values())
    np.testing.assert_allclose(energy, np.sum(M**2, axis=(1, 2)), rtol=1e-13)  # an isometry: Parseval
    total_dim = sum(dim * mult for dim, mult in model.irreps.values())
    assert total_dim == np.prod(model.shape)


def test_square_model_has_13_parameters_and_rectangular_5():
    assert SquareMatrixModel.iid(7).n_parameters == 13
    assert RectangularMatrixModel.iid((5, 3)).n_parameters == 5


def test_covariance_is_permutation_invariant():
    rng = np.random.default_rng(1)
    sq = random_square(5, rng)
    C = sq.covariance()
    for perm in [rng.permutation(5) for _ in range(3)]:
        P = np.eye(5)[perm]
        K = np.kron(P, P)  # vec(P M Pᵀ) = (P ⊗ P) vec M for row-major vec
        np.testing.assert_allclose(K @ C @ K.T, C, atol=1e-12)
        np.testing.assert_allclose(P @ sq.mean_matrix() @ P.T, sq.mean_matrix(), atol=1e-12)
    rect = random_rect((3, 4), rng)
    C = rect.covariance()
    P, Q = np.eye(3)[[2, 0, 1]], np.eye(4)[[1, 3, 0, 2]]
    K = np.kron(P, Q)
    np.testing.assert_allclose(K @ C @ K.T, C, atol=1e-12)


def test_iid_gaussian_ensemble_fits_the_iid_model():
    """Independent check of the normalisation: plain numpy i.i.d. N(0.3, 1.5²) matrices fit every block to 1.5²·I."""
    rng = np.random.default_rng(2)
    D, N, sd = 6, 20000, 1.5
    fit = SquareMatrixModel.fit(0.3 + sd * rng.standard_normal((N, D, D)))
    expected = SquareMatrixModel.iid(D, variance=sd**2, mean=0.3)
    np.testing.assert_allclose(fit.mean, expected.mean, atol=5 * sd / np.sqrt(N))
    for name, (dim, _) in fit.irreps.items():
        se = sd**2 * np.sqrt(2.0 / (N * dim))
        np.testing.assert_allclose(fit.blocks[name], expected.blocks[name], atol=5 * se, err_msg=name)
    assert fit.n_samples == N and fit.is_valid


def _assert_recovers(true, fit, N):
    """Each fitted entry within 5 standard errors of a sample covariance of N·dim Gaussian vectors."""
    for name, (dim, _) in true.irreps.items():
        L = true.blocks[name]
        se = np.sqrt((np.outer(np.diag(L), np.diag(L)) + L**2) / (N * dim))
        assert np.all(np.abs(fit.blocks[name] - L) <= 5 * se), (name, fit.blocks[name], L)
    se_mean = np.sqrt(np.diag(next(iter(true.blocks.values()))) / N)
    assert np.all(np.abs(fit.mean - true.mean) <= 5 * se_mean)


@pytest.mark.parametrize("D", [4, 7])
def test_fit_recovers_a_known_square_model(D):
    rng = np.random.default_rng(D)
    true = random_square(D, rng)
    N = 20000
    _assert_recovers(true, SquareMatrixModel.fit(true.sample(N, seed=3)), N)


def test_fit_recovers_a_known_rectangular_model():
    rng = np.random.default_rng(4)
    true = random_rect((6, 9), rng)
    N = 20000
    _assert_recovers(true, RectangularMatrixModel.fit(true.sample(N, seed=5)), N)


def test_streaming_fit_equals_in_memory_fit():
    rng = np.random.default_rng(6)
    X = random_square(5, rng).sample(999, seed=7)
    a = SquareMatrixModel.fit(X)
    b = SquareMatrixModel.fit(iter(X))  # one matrix at a time, as from a file
    c = SquareMatrixModel.fit(X, batch_size=17)
    for other in (b, c):
        np.testing.assert_allclose(other.mean, a.mean, rtol=1e-12)
        for name in a.blocks:
            np.testing.assert_allclose(other.blocks[name], a.blocks[name], rtol=1e-10)


def test_fit_is_invariant_under_relabelling():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((50, 5, 5)) + np.triu(np.ones((5, 5)))  # not invariant data; the fit is its projection
    perm = rng.permutation(5)
    a, b = SquareMatrixModel.fit(X), SquareMatrixModel.fit(X[:, perm][:, :, perm])
    for name in a.blocks:
        np.testing.assert_allclose(a.blocks[name], b.blocks[name], rtol=1e-10)


@pytest.mark.parametrize("D", [4, 5])
def test_w2_by_irrep_matches_brute_force(D):
    rng = np.random.default_rng(10 + D)
    for _ in range(3):
        A, B = random_square(D, rng), random_square(D, rng)
        assert A.wasserstein(B) == pytest.approx(brute_force_w2(A, B), rel=1e-8)
    A = random_square(D, rng)
    assert A.wasserstein(A) == pytest.approx(0.0, abs=1e-7)
    iid = SquareMatrixModel.iid(D, 0.7)
    assert A.wasserstein(iid) == pytest.approx(brute_force_w2(A, iid), rel=1e-8)


def test_rectangular_w2_matches_brute_force():
    rng = np.random.default_rng(12)
    for shape in [(3, 4), (5, 2)]:
        A, B = random_rect(shape, rng), random_rect(shape, rng)
        assert A.wasserstein(B) == pytest.approx(brute_force_w2(A, B), rel=1e-8)


def test_w2_is_symmetric_and_triangular():
    rng = np.random.default_rng(13)
    A, B, C = (random_square(6, rng) for _ in range(3))
    assert A.wasserstein(B) == pytest.approx(B.wasserstein(A), rel=1e-9)
    assert A.wasserstein(C) <= A.wasserstein(B) + B.wasserstein(C) + 1e-12


def test_higher_invariants_of_model_samples_agree_and_non_gaussian_ones_do_not():
    rng = np.random.default_rng(14)
    true = random_square(6, rng)
    rows = compare_invariants(true.sample(4000, seed=15), SquareMatrixModel.fit(true.sample(4000, seed=15)),
                              n_model=20000, seed=16)
    # SE of a deviation ≈ √(1/4000 + 1/20000) ≈ 0.017; the fit's own parameter noise adds a little more
    assert max(abs(r["deviation"]) for r in rows) < 0.12, rows
    assert {r["degree"] for r in rows} == {3, 4}
    # i.i.d. uniform entries: the fit is the i.i.d. Gaussian, but E x⁴ = 9/5 σ⁴ (not 3σ⁴) shows in Σ M_ij⁴
    U = rng.uniform(-np.sqrt(3), np.sqrt(3), size=(4000, 6, 6))
    rows = {r["name"]: r for r in compare_invariants(U, SquareMatrixModel.fit(U), n_model=20000, seed=17)}
    assert rows["Σ M_ij⁴"]["deviation"] < -2.0
    assert abs(rows["Σ M_ij³"]["deviation"]) < 0.12


def test_rectangular_invariants_compare():
    true = random_rect((5, 8), np.random.default_rng(18))
    X = true.sample(3000, seed=19)
    rows = compare_invariants(X, RectangularMatrixModel.fit(X), n_model=20000, seed=20)
    assert max(abs(r["deviation"]) for r in rows) < 0.12


def test_validity_checks_and_errors():
    rng = np.random.default_rng(21)
    with pytest.raises(ValueError, match="V2.*not positive semi-definite"):
        SquareMatrixModel(5, [0, 0], np.eye(2), np.eye(3), -1.0, 1.0)
    with pytest.raises(ValueError, match="VH"):
        SquareMatrixModel(5, [0, 0], np.eye(2), np.eye(2), 1.0, 1.0)
    with pytest.raises(ValueError, match="D >= 4"):
        SquareMatrixModel.iid(3)
    # symmetric data: V3 and the antisymmetric V_H copy are empty, so the fit is valid but singular
    X = rng.standard_normal((200, 5, 5))
    fit = SquareMatrixModel.fit(X + X.transpose(0, 2, 1))
    assert fit.lam3 == pytest.approx(0.0, abs=1e-20) and not fit.is_valid
    with pytest.raises(ValueError, match="VH.*singular"):
        fit.check()
    fit.check(strict=False)
    assert np.allclose(fit.sample(3, seed=0), fit.sample(3, seed=0).transpose(0, 2, 1))
    with pytest.raises(ValueError, match="shape"):
        SquareMatrixModel.fit(rng.standard_normal((10, 5, 6)))
    with pytest.raises(ValueError, match="shape"):
        compare_invariants(rng.standard_normal((10, 4, 4)), SquareMatrixModel.iid(5))
    with pytest.raises(ValueError, match="same kind and shape"):
        SquareMatrixModel.iid(5).wasserstein(SquareMatrixModel.iid(6))
    with pytest.raises(ValueError, match="NaN"):
        SquareMatrixModel.fit(np.full((3, 4, 4), np.nan))


def test_invariants_match_fit_moments():
    """The fit matches the means of the 13 linear and quadratic invariants (μ, Λ₀ up to N/(N−1), Λ_H, λ₂, λ₃)."""
    rng = np.random.default_rng(22)
    X = random_square(5, rng).sample(500, seed=23)
    fit = SquareMatrixModel.fit(X)
    inv = SquareMatrixModel.iid(5).invariants(X)
    assert len(inv) == 2 + 3 + 6 + 1 + 1
    assert np.mean(inv["V0_1"]) == pytest.approx(fit.mean[0], rel=1e-12)
    for (k, l) in itertools.combinations_with_replacement(range(3), 2):
        assert np.mean(inv[f"VH_{k + 1}{l + 1}"]) / 4 == pytest.approx(fit.cov_h[k, l], rel=1e-10)
    assert np.mean(inv["V2_11"]) / 5 == pytest.approx(fit.lam2, rel=1e-12)  # dim V2 = D(D-3)/2 = 5


@pytest.mark.parametrize("shape, invariants", [((5, 5), SQUARE_INVARIANTS), ((4, 6), RECTANGULAR_INVARIANTS)])
def test_fast_evaluators_are_their_contractions(shape, invariants):
    M = np.random.default_rng(30).standard_normal((7,) + shape)
    for name, inv in invariants.items():
        np.testing.assert_allclose(inv(M), inv.contract(M), rtol=1e-11, err_msg=name)


@pytest.mark.parametrize("shape, invariants", [((3, 3), SQUARE_INVARIANTS), ((2, 3), RECTANGULAR_INVARIANTS)])
def test_wick_expectations_of_a_general_gaussian_match_monte_carlo(shape, invariants):
    """Any Gaussian (here with no symmetry at all): Wick's theorem against 10⁶ draws of numpy's multivariate normal,
    within 5 Monte-Carlo standard errors per invariant."""
    rng = np.random.default_rng(31)
    P = int(np.prod(shape))
    A = rng.standard_normal((P, P)) / np.sqrt(P)
    cov, mean = A @ A.T, 0.5 * rng.standard_normal(P)
    Y = rng.multivariate_normal(mean, cov, size=1_000_000).reshape((-1,) + shape)
    for name, inv in invariants.items():
        values = inv(Y)
        exact = inv.expectation(mean.reshape(shape), cov.reshape(shape * 2))
        assert abs(values.mean() - exact) < 5 * values.std() / np.sqrt(len(values)), name


def test_wick_expectations_of_iid_entries_match_closed_forms():
    D, mu, var = 7, 0.3, 0.7
    model = SquareMatrixModel.iid(D, variance=var, mean=mu)
    assert model.expectation(SQUARE_INVARIANTS["Σ M_ij⁴"]) == pytest.approx(
        D**2 * (mu**4 + 6 * mu**2 * var + 3 * var**2), rel=1e-12)
    assert model.expectation(SQUARE_INVARIANTS["(Σ M_ij²)²"]) == pytest.approx(
        (D**2 * (var + mu**2)) ** 2 + D**2 * (2 * var**2 + 4 * mu**2 * var), rel=1e-12)
    # zero mean: the pairings of tr M⁴ force i = j = k = l (twice) or i = k, j = l
    centred = SquareMatrixModel.iid(D, variance=var)
    assert centred.expectation(SQUARE_INVARIANTS["tr M⁴"]) == pytest.approx(var**2 * (D**2 + 2 * D), rel=1e-12)
    assert abs(centred.expectation(SQUARE_INVARIANTS["tr M³"])) < 1e-12


def test_model_predictions_are_exact_for_contractions_and_sampled_otherwise():
    rng = np.random.default_rng(32)
    model = random_square(5, rng)
    draws = model.sample(400_000, seed=33)
    quartic = SQUARE_INVARIANTS["tr M² Mᵀ²"]
    predicted = model.predict({"exact": quartic, "sampled": lambda M: quartic(M)}, n_samples=100_000, seed=34)
    (exact, se0), (sampled, se) = predicted["exact"], predicted["sampled"]
    assert se0 == 0.0 and exact == model.expectation(quartic)
    assert abs(sampled - exact) < 5 * se
    values = quartic(draws)  # the model's own sampler, independent of its covariance matrix
    assert abs(values.mean() - exact) < 5 * values.std() / np.sqrt(len(values))


def test_invariant_specs_are_checked():
    with pytest.raises(ValueError, match="index pairs"):
        Invariant("ijk,jk")
    assert Invariant("ij, jk ,ki").degree == 3


@pytest.mark.parametrize("shape, cls, specs", [
    ((5, 5), SquareMatrixModel, ["ij,ij", "ij,ji", "ii,ii", "ii,jj", "ij,jk", "ii,ij", "ij,kj", "ij,kl", "ij,ik",
                                 "ii,jk"]),
    ((4, 6), RectangularMatrixModel, ["ij,ij", "ij,ik", "ij,kj", "ij,kl"]),
])
def test_the_fit_reproduces_every_quadratic_invariant_of_any_data(shape, cls, specs):
    """Moment matching projects the data's second moments on the invariant ones, so the fitted model's exact
    expectation of every quadratic invariant equals the data mean, even for data with no symmetry; only the
    (N − 1) divisor of the V₀ covariance leaves an O(1/N) = 2e-4 gap (in units of the data's sd)."""
    rng = np.random.default_rng(35)
    P = int(np.prod(shape))
    A = rng.standard_normal((P, P)) / np.sqrt(P)
    X = (rng.standard_normal((5000, P)) @ A.T + rng.standard_normal(P)).reshape((-1,) + shape)
    fit = cls.fit(X)
    for spec in specs:
        values = Invariant(spec)(X)
        assert abs(values.mean() - fit.expectation(Invariant(spec))) < 1e-3 * values.std(), spec
