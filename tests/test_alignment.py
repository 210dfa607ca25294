import numpy as np
from scipy.special import gamma

import meanfield as mf
from meanfield.symmetry import alignment_observables, neuron_alignment, output_masses
from meanfield.symmetry.alignment import positive_mass_limit


def test_alignment_of_known_configurations():
    Q = np.eye(4)[:, :2]
    b = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [1.0, 0, 1.0, 0], [0, 0, 0, 0]])
    mu = mf.ParticleMeasure(np.array([2.0, -1.0, 1.0, 1.0]), b)
    np.testing.assert_allclose(neuron_alignment(mu, Q), [0.0, np.pi / 2, np.pi / 4, np.pi / 2])
    pos, neg = output_masses(mu)
    np.testing.assert_allclose([pos, neg], [(2.0 + np.sqrt(2)) / 4, 1.0 / 4])
    obs = alignment_observables(Q, bins=4)
    hist = obs["angle_hist_pos"](mu)
    np.testing.assert_allclose(hist.sum(), pos)
    np.testing.assert_allclose(hist[0], 0.5)  # the aligned neuron (mass 2/4) in the first bin
    np.testing.assert_allclose(obs["misaligned_pos"](mu), np.sqrt(2) / 4 * np.sin(np.pi / 4))


def test_positive_mass_limit_formula():
    for d_h in (1, 2, 5):
        np.testing.assert_allclose(positive_mass_limit(d_h), 2 * np.sqrt(np.pi) * gamma((d_h + 1) / 2) / gamma(d_h / 2))
    # d_H = 1: α = 2√π Γ(1) / Γ(1/2) = 2.
    np.testing.assert_allclose(positive_mass_limit(1), 2.0)
