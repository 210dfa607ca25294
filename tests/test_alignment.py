import numpy as np

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
    """|x_H| = α E_θ[relu(⟨θ, x_H⟩)] for θ uniform on the unit sphere of H (the mass α spread over all directions of
    H represents the norm): α = 1 / E[relu(θ₁)], computed here by quadrature of the density of θ₁,
    ∝ (1 − t²)^{(d_H − 3)/2} on [−1, 1] — independent of the Gamma-function formula."""
    from scipy.integrate import quad

    def density(t, k):
        return (1 - t * t) ** ((k - 3) / 2)

    for d_h in (2, 3, 5, 10):
        total = quad(density, -1, 1, args=(d_h,))[0]
        positive_part = quad(lambda t, k: t * density(t, k), 0, 1, args=(d_h,))[0] / total
        np.testing.assert_allclose(positive_mass_limit(d_h), 1 / positive_part, rtol=1e-8)
    np.testing.assert_allclose(positive_mass_limit(1), 2.0)  # d_H = 1: |x| = relu(x) + relu(−x), mass 2
