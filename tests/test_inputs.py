import numpy as np
import pytest
from conftest import assert_mc_close

import meanfield as mf


def test_covariance_and_coordinate_moments_match_samples(law_and_sample):
    law, x = law_and_sample
    for i, j in [(0, 0), (1, 1), (0, 1), (2, 4)]:
        assert_mc_close(law.covariance()[i, j], x[:, i] * x[:, j])
    for p in (1, 2, 3):
        assert_mc_close(law.coordinate_moment(p), x[:, 0] ** (2 * p))


def test_sphere_samples_have_unit_norm():
    x = mf.Sphere(d=7).sample(100, 0)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-14)


def test_sampling_is_seeded():
    law = mf.Gaussian(d=3)
    np.testing.assert_array_equal(law.sample(5, 7), law.sample(5, 7))
    assert not np.array_equal(law.sample(5, 7), law.sample(5, 8))


def test_radial_moment_matches_chi_samples():
    law = mf.Sphere(d=6)
    g = np.random.default_rng(0).standard_normal((1_000_000, 6))
    for q in (1.0, 2.0, 3.0):
        assert_mc_close(law.radial_moment_gaussian(q), np.linalg.norm(g, axis=1) ** q)


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_dimension_is_rejected(bad):
    with pytest.raises(ValueError, match="d must be >= 1"):
        mf.Gaussian(d=bad)


def test_bad_variance_and_sphere_dimension():
    with pytest.raises(ValueError, match="variance"):
        mf.Gaussian(d=3, variance=-1.0)
    with pytest.raises(ValueError, match="d >= 2"):
        mf.Sphere(d=1)
    with pytest.raises(TypeError, match="integer"):
        mf.Gaussian(d=2.5)


def test_spec_roundtrip():
    from meanfield.inputs import input_law_from_spec

    for law in (mf.Gaussian(4, 0.5), mf.Sphere(3)):
        assert input_law_from_spec(law.spec()) == law
