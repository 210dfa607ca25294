"""Conic (Wasserstein–Fisher–Rao) flows, birth–death and mean-field Langevin dynamics (meanfield.dynamics).

Tolerances: two fp64 evaluations of the same velocity agree to 1e-12 (relative; round-off of a few hundred
operations); energy identities are checked against central differences of the exact risk along the velocity, whose
truncation error is O(ε²) ≈ 1e-10 relative at ε = 1e-5; Monte-Carlo comparisons use Z_TOL standard errors.
"""

import numpy as np
import pytest
from conftest import Z_TOL

import meanfield as mf
from meanfield.controllers import ConstantStep
from meanfield.dynamics import BirthDeath, Conic, Langevin, kernel_stein_discrepancy, langevin_step
from meanfield.io import recorder_for
from meanfield.kernels import relu_kernel
from meanfield.loop import run_loop
from meanfield.saving import SaveAt

BACKENDS = ["numpy", "numba", "torch"]


def rule_for(problem, mu0, dynamics, solver="heun", backend="numpy"):
    return dynamics.rule(problem.bind(backend), mu0, mf.get_solver(solver), 1e6, None)


def directional_risk_derivative(problem, mu, velocity, eps=1e-5):
    """dF/dt along a velocity field of the particles, by a central difference of the exact risk."""
    state = mu.state()
    plus = mf.ParticleMeasure.from_state(state + eps * velocity, mu.weights)
    minus = mf.ParticleMeasure.from_state(state - eps * velocity, mu.weights)
    return (problem.risk(plus, "numpy") - problem.risk(minus, "numpy")) / (2 * eps)


# ---------------------------------------------------------------------------------------------------- conic flow

@pytest.mark.parametrize("alpha,beta,conserve", [(1.0, 1.0, False), (4.0, 1.0, False), (0.5, 2.0, True),
                                                 (10.0, 1.0, True)])
def test_conic_energy_identity_with_the_wfr_dissipation(small_problem, alpha, beta, conserve):
    mu = mf.init.gaussian(40, 5, seed=1)
    rule = rule_for(small_problem, mu, Conic(alpha, beta, conserve))
    state = rule.init(None)
    v = rule.velocity(state.y, state.evaluation)
    da, db = small_problem.velocity(mu, "numpy")
    g = -np.column_stack([da, db])
    u, w = mu.state(), mu.weights
    r2 = (u * u).sum(axis=1)
    radial = (u * g).sum(axis=1) / np.sqrt(r2)                       # ⟨θ, g⟩
    c_bar = (w @ (u * g).sum(axis=1)) / (2 * (w @ r2)) if conserve else 0.0
    tangential = g - (radial / np.sqrt(r2))[:, None] * u
    dissipation = w @ (alpha * (radial - 2 * np.sqrt(r2) * c_bar) ** 2 + beta * (tangential**2).sum(axis=1))
    dF = directional_risk_derivative(small_problem, mu, v)
    assert dF < 0
    assert abs(dF + dissipation) <= 1e-8 * dissipation


def test_conic_with_equal_rates_is_the_wasserstein_flow(small_problem):
    mu0 = mf.init.sign_sphere(24, 5, seed=2)
    plain = mf.simulate(small_problem, mu0, t_max=3.0, dt=0.05, solver="rk4", backend="numpy")
    conic = mf.simulate(small_problem, mu0, t_max=3.0, dt=0.05, solver="rk4", backend="numpy",
                        dynamics=Conic(1.0, 1.0))
    np.testing.assert_allclose(conic.b[-1], plain.b[-1], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(conic.risk, plain.risk, rtol=1e-11)


def test_conic_mass_conserved_over_a_long_run_and_rate_of_the_unbalanced_mass(small_problem):
    mu0 = mf.init.sign_sphere(24, 5, seed=3)
    run = mf.simulate(small_problem, mu0, t_max=50.0, dt=0.05, backend="numpy", dynamics=Conic(5.0, 1.0, True))
    mass = run.observables["total_mass"]
    np.testing.assert_allclose(mass, mass[0], rtol=1e-12)             # 1000 steps, each rescaled to the start mass
    assert np.all(np.diff(run.risk) <= 1e-12 * run.risk[0])           # the risk still decreases
    # unbalanced: d/dt Σ w|u|² = −4α Σ w F'(u), against a central difference of the mass along the velocity
    rule = rule_for(small_problem, mu0, Conic(3.0, 1.0, False))
    state = rule.init(None)
    v = rule.velocity(state.y, state.evaluation)
    u, w, eps = mu0.state(), mu0.weights, 1e-6
    numeric = (w @ ((u + eps * v) ** 2).sum(axis=1) - w @ ((u - eps * v) ** 2).sum(axis=1)) / (2 * eps)
    first_variation = mu0.a * state.evaluation.psi
    np.testing.assert_allclose(numeric, -4 * 3.0 * (w @ first_variation), rtol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS[1:])
@pytest.mark.parametrize("dynamics", [Conic(3.0, 0.5, True), BirthDeath(4.0, seed=5),
                                      Langevin(1e-2, 0.1, seed=5, diagnostic=False)], ids=["conic", "bd", "langevin"])
def test_dynamics_on_every_backend_match_numpy(small_problem, backend, dynamics):
    mu0 = mf.init.sign_sphere(32, 5, seed=4)
    ref = mf.simulate(small_problem, mu0, t_max=1.0, dt=0.05, backend="numpy", dynamics=dynamics)
    other = mf.simulate(small_problem, mu0, t_max=1.0, dt=0.05, backend=backend, dynamics=dynamics)
    np.testing.assert_allclose(other.b[-1], ref.b[-1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(other.risk, ref.risk, rtol=1e-10)


def test_conic_refuses_a_step_that_empties_a_mass_and_other_units(small_problem):
    with pytest.raises(mf.FlowDivergedError, match="mass to zero"):
        mf.simulate(small_problem, mf.init.sign_sphere(8, 5, seed=0), t_max=5.0, dt=1.0, solver="euler",
                    backend="numpy", dynamics=Conic(alpha=50.0))
    for problem in (mf.Problem(small_problem.target, mf.Gaussian(5), activation="erf"),
                    mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0, 0, 0, 0]]), mf.Gaussian(5), bias=True)):
        with pytest.raises(ValueError, match="2-homogeneous"):
            mf.simulate(problem, mf.init.sign_sphere(8, 5, seed=0, bias_std=0.1 if problem.bias else None),
                        t_max=1.0, dt=0.1, dynamics=Conic(2.0))
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        Conic(alpha=-1.0)


# ---------------------------------------------------------------------------------------------------- birth–death

def relu_objective_terms(problem, mu):
    """(A, g, E f*²) of the exact risk of a ReLU student against the problem's ReLU teacher on standard Gaussian
    inputs, written from the arc-cosine kernel alone: for masses w, F(w) = ½ wᵀAw − wᵀg + ½ E f*², with
    A_jk = a_j a_k K(b_j, b_k), g_j = a_j Σ_t c_t K(b_j, u_t)."""
    teacher = problem.target
    b, a = mu.b, mu.a
    A = a[:, None] * a[None, :] * relu_kernel(b[:, None, :], b[None, :, :])
    g = a * (relu_kernel(b[:, None, :], teacher.U[None, :, :]) @ teacher.c)
    energy = teacher.c @ relu_kernel(teacher.U[:, None, :], teacher.U[None, :, :]) @ teacher.c
    return A, g, energy


def masses_after_jumps(mu, y):
    """The masses that the jumped state y puts on the particles of mu (its rows are copies of mu's rows, told apart
    by their output weights, distinct for a Gaussian initialisation)."""
    order = np.argsort(mu.a)
    source = order[np.searchsorted(mu.a[order], y[:, 0])]
    assert np.array_equal(y, mu.state()[source])
    return np.bincount(source, minlength=mu.m) / mu.m


@pytest.mark.parametrize("penalty", [None, 1.0], ids=["plain", "weight_decay"])
def test_birth_death_jumps_dissipate_the_fisher_rao_energy_in_expectation(small_problem, penalty):
    """E[G(after the jumps) − G(before)] = −γh Σ_j w_j Λ_j² + O((γh)²), G the objective F + λ∫r dμ and Λ = G' − its
    mean, G' = a ψ(b) + λ|θ|²/2: Monte Carlo over draws, G and G' from the arc-cosine kernel (a quadratic form in the
    masses, so each draw costs a matrix-vector product, not a risk evaluation). With the penalty the rates must be
    those of G', not of F': a rule that leaves the penalty out dissipates another amount."""
    problem = (small_problem if penalty is None else
               mf.Problem(small_problem.target, small_problem.inputs, penalty=("weight_decay", penalty)))
    mu = mf.init.gaussian(400, 5, seed=6)
    rate, h = 2.0, 0.01
    rule = rule_for(problem, mu, BirthDeath(rate, seed=0))
    state = rule.init(None)
    A, g, energy = relu_objective_terms(problem, mu)
    r = 0.5 * (mu.state() ** 2).sum(axis=1) if penalty else np.zeros(mu.m)
    lam = penalty or 0.0

    def objective(w):
        return 0.5 * w @ A @ w - w @ g + 0.5 * energy + lam * (w @ r)

    w0 = mu.weights
    assert objective(w0) == pytest.approx(problem.risk(mu, "numpy"), rel=1e-12)
    first_variation = A @ w0 - g + lam * r
    excess = first_variation - w0 @ first_variation
    predicted = -rate * h * (w0 @ excess**2)
    changes = [objective(masses_after_jumps(mu, rule.jump(state.y, state.evaluation, h))) - objective(w0)
               for _ in range(3000)]
    mean, se = np.mean(changes), np.std(changes, ddof=1) / np.sqrt(len(changes))
    # second-order terms: the jumps' quadratic effect, O(E[#jumps²]/m²) = O((γ h |Λ|)²) relative, ≈ 2 % here
    assert abs(mean - predicted) <= Z_TOL * se + 0.03 * abs(predicted), (mean, se, predicted)
    assert predicted < 0


def test_birth_death_jump_counts_follow_the_rates(small_problem):
    """Each particle jumps (dies if Λ_j > 0, is duplicated if Λ_j < 0) with probability 1 − e^{−γh|Λ_j|}: the number
    of jumps per step, counted by the rule over 2000 steps from one state, has mean Σ_j (1 − e^{−γh|Λ_j|}) (Λ from
    the arc-cosine kernel), at two small rates whose counts differ by their ratio. At γ = 0 nothing jumps."""
    mu = mf.init.gaussian(200, 5, seed=12)
    A, g, _ = relu_objective_terms(small_problem, mu)
    first_variation = A @ mu.weights - g
    excess = first_variation - mu.weights @ first_variation
    h, steps = 0.01, 2000
    for rate in (0.5, 2.0):
        rule = rule_for(small_problem, mu, BirthDeath(rate, seed=3))
        state = rule.init(None)
        counts = []
        for _ in range(steps):
            before = rule.jumps
            rule.jump(state.y, state.evaluation, h)
            counts.append(rule.jumps - before)
        expected = np.sum(-np.expm1(-rate * h * np.abs(excess)))
        mean, se = np.mean(counts), np.std(counts, ddof=1) / np.sqrt(steps)
        assert abs(mean - expected) <= Z_TOL * se, (rate, mean, se, expected)
    still = mf.simulate(small_problem, mu, t_max=0.5, dt=0.05, backend="numpy", dynamics=BirthDeath(0.0, seed=1))
    assert still.observables["jumps"][-1] == 0


def test_birth_death_and_langevin_resume_bit_identically(small_problem, tmp_path):
    mu0 = mf.init.sign_sphere(16, 5, seed=7)
    for dynamics in (BirthDeath(3.0, seed=2), Langevin(1e-2, 0.05, seed=2)):
        straight = mf.simulate(small_problem, mu0, t_max=2.0, dt=0.05, backend="numpy", dynamics=dynamics)
        path = tmp_path / f"{type(dynamics).__name__}.h5"
        mf.simulate(small_problem, mu0, t_max=1.0, dt=0.05, backend="numpy", dynamics=dynamics, path=path).close()
        resumed = mf.simulate(small_problem, mu0, t_max=2.0, dt=0.05, backend="numpy", dynamics=dynamics, path=path,
                              resume=True)
        assert np.array_equal(resumed.b[-1], straight.b[-1]) and np.array_equal(resumed.a[-1], straight.a[-1])
        resumed.close()
        with pytest.raises(ValueError, match="dynamics"):       # another dynamics is another problem
            mf.simulate(small_problem, mu0, t_max=3.0, dt=0.05, backend="numpy", path=path, resume=True,
                        dynamics=type(dynamics)(5.0, seed=2) if isinstance(dynamics, BirthDeath) else None)


def test_birth_death_needs_uniform_masses(small_problem):
    mu = mf.ParticleMeasure(np.ones(3), np.eye(5)[:3], weights=[0.5, 0.25, 0.25])
    with pytest.raises(ValueError, match="uniform"):
        mf.simulate(small_problem, mu, t_max=1.0, dt=0.1, dynamics=BirthDeath(1.0))
    with pytest.raises(ValueError, match="rate must be >= 0"):
        BirthDeath(-1.0)


# ---------------------------------------------------------------------------------------------------- Langevin

def one_step_map(scheme, h, a=1.0, tau=1.0):
    """(A, B) with y' = A y + B ξ for the scheme on dy = −a y dt + √(2τ) dW, read off the code by linearity."""
    step = lambda y, xi: langevin_step(lambda z: -a * z, np.array([y]), h, np.array([xi]), tau, scheme)[0]  # noqa: E731
    return step(1.0, 0.0), step(0.0, 1.0)


@pytest.mark.parametrize("scheme,order", [("euler", 1), ("heun", 2)])
def test_langevin_weak_order_on_the_ornstein_uhlenbeck_process(scheme, order):
    """E[y_T²] of the scheme, exactly (its law is Gaussian: m' = A² m + B²), against the process's
    e^{−2aT} y0² + τ(1 − e^{−2aT})/a."""
    a, tau, T, y0 = 1.5, 0.7, 1.0, 1.2
    exact = np.exp(-2 * a * T) * y0**2 + tau * (1 - np.exp(-2 * a * T)) / a
    errors = []
    for n in (10, 20, 40, 80):
        A, B = one_step_map(scheme, T / n, a, tau)
        moment = y0**2
        for _ in range(n):
            moment = A * A * moment + B * B
        errors.append(abs(moment - exact))
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(rates - order) < 0.15), rates


@pytest.mark.parametrize("scheme", ["euler", "heun"])
def test_langevin_strong_order_one_on_the_ornstein_uhlenbeck_process(scheme):
    """E|y_T^h − y_T| on shared Brownian paths, the reference the same scheme at h/64 (additive noise: order 1)."""
    rng = np.random.default_rng(0)
    a, tau, T, n_paths, fine = 1.0, 0.5, 1.0, 4000, 64 * 64
    dW = rng.standard_normal((fine, n_paths)) * np.sqrt(T / fine)

    def run(n):
        h, y, k = T / n, np.ones(n_paths), fine // n
        for i in range(n):
            xi = dW[i * k:(i + 1) * k].sum(axis=0) / np.sqrt(h)
            y = langevin_step(lambda z: -a * z, y, h, xi, tau, scheme)
        return y

    reference = run(fine)
    errors = [np.mean(np.abs(run(n) - reference)) for n in (8, 16, 32, 64)]
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(rates - 1.0) < 0.25), rates


def test_langevin_stationary_law_is_the_gibbs_measure_of_a_double_well():
    """V(y) = y⁴/4 − y²/2 at τ = 0.5: E[y²] under e^{−V/τ} by quadrature, against 20 000 particles run to t = 40."""
    tau, h = 0.5, 0.01
    grid = np.linspace(-6, 6, 20001)
    density = np.exp(-(grid**4 / 4 - grid**2 / 2) / tau)
    exact = np.trapezoid(grid**2 * density, grid) / np.trapezoid(density, grid)
    rng = np.random.default_rng(1)
    y = rng.standard_normal(20000)
    for _ in range(int(40 / h)):
        y = langevin_step(lambda z: z - z**3, y, h, rng.standard_normal(y.shape), tau, "heun")
    mean, se = np.mean(y**2), np.std(y**2, ddof=1) / np.sqrt(y.size)
    # weak error of the Heun scheme O(h²) ≈ 1e-4 here, below the Monte-Carlo error (≈ 5e-3)
    assert abs(mean - exact) <= Z_TOL * se, (mean, se, exact)


def test_langevin_at_zero_temperature_and_decay_is_the_flow(small_problem):
    mu0 = mf.init.sign_sphere(16, 5, seed=8)
    for solver in ("euler", "heun"):
        plain = mf.simulate(small_problem, mu0, t_max=2.0, dt=0.05, solver=solver, backend="numpy")
        noiseless = mf.simulate(small_problem, mu0, t_max=2.0, dt=0.05, solver=solver, backend="numpy",
                                dynamics=Langevin(0.0, 0.0))
        np.testing.assert_allclose(noiseless.b[-1], plain.b[-1], rtol=1e-12, atol=1e-14)


def test_mean_field_langevin_reaches_its_proximal_gibbs_measure(small_problem):
    """The Stein discrepancy between the particles and p_μ ∝ exp(−(F'(μ) + λ|θ|²/2)/τ): 9 standard errors at the
    start (measured), within Z_TOL at t = 30 (what remains: finite m, O(1/m), and the scheme's O(h²))."""
    tau, lam = 0.05, 1.0
    run = mf.simulate(small_problem, mf.init.gaussian(600, 5, seed=9), t_max=30.0, dt=0.05, backend="numpy",
                      save_every=100, dynamics=Langevin(tau, lam, seed=3))
    ksd2, se = run.observables["ksd2"], run.observables["ksd2_se"]
    assert ksd2[0] > 5 * se[0]
    assert abs(ksd2[-1]) < Z_TOL * se[-1], (ksd2[-1], se[-1])
    regularized = run.observables["regularized_risk"]
    np.testing.assert_allclose(regularized, run.risk + 0.5 * lam * np.array(
        [run.measure(i).weights @ (run.measure(i).state() ** 2).sum(axis=1) for i in range(len(run.times))]),
        rtol=1e-12)


def test_langevin_without_a_target_reaches_the_gaussian_minimiser_of_the_free_energy():
    """With f* = 0, G(μ) = F(μ) + (λ/2)∫|θ|² dμ + τ∫μ log μ has the unique minimiser N(0, (τ/λ) I) (F ≥ 0 vanishes
    there, as a and b are independent and a is centred; the other two terms make the Gaussian). 600 particles run
    to t = 12 (relaxation rate 2λ for second moments); the mean of θ_i² over the particles, the 4 coordinates and the
    saves at t = 4 … 12 (2/λ apart: the squares' correlation e^{−4} is neglected) is τ/λ within Z_TOL standard errors
    (≈ 1.3 % each) plus 1 % for the Heun scheme's O((λh)²) bias (6e-4 here) and the O(1/m) interaction."""
    tau, lam = 0.1, 1.0
    problem = mf.Problem(mf.TeacherNetwork([0.0], [[1.0, 0.0, 0.0]]), mf.Gaussian(3))
    run = mf.simulate(problem, mf.init.sign_sphere(600, 3, seed=0), t_max=12.0, dt=0.05, backend="numpy",
                      save_every=40, dynamics=Langevin(tau, lam, seed=1, diagnostic=False))
    squares = np.concatenate([run.measure(i).state().ravel() ** 2 for i in range(len(run.times))
                              if run.times[i] >= 4.0])
    mean, se = squares.mean(), squares.std(ddof=1) / np.sqrt(squares.size)
    assert abs(mean - tau / lam) <= Z_TOL * se + 0.01 * tau / lam, (mean, se, tau / lam)


def test_stein_standard_error_is_the_spread_of_the_discrepancy_over_independent_samples():
    """ksd2_se, the U-statistic's leading-term standard error 2 sd(h̄_i)/√n, against the standard deviation of KSD²
    over 300 independent samples (n = 300 points of N(0, I₂) against N(0.5·1, I₂), where the statistic is not
    degenerate): the spread is known to ±4 % (1/√(2·300)), the leading term to O(1/n); 15 % covers both."""
    rng = np.random.default_rng(4)
    values, errors = [], []
    for _ in range(300):
        x = rng.standard_normal((300, 2))
        ksd2, se = kernel_stein_discrepancy(x, 0.5 - x)
        values.append(ksd2)
        errors.append(se)
    spread = np.std(values, ddof=1)
    assert abs(np.mean(errors) / spread - 1.0) <= 0.15, (np.mean(errors), spread)
    # max_points: the same estimate on a seeded subsample, which is what a run with more particles records
    x = rng.standard_normal((500, 2))
    keep = np.sort(np.random.default_rng(7).choice(500, size=200, replace=False))
    np.testing.assert_allclose(kernel_stein_discrepancy(x, 0.5 - x, max_points=200, seed=7),
                               kernel_stein_discrepancy(x[keep], 0.5 - x[keep]), rtol=1e-13)  # masses renormalised


def test_proximal_gibbs_score_against_differences_of_the_first_variation(small_problem):
    """∇ log p_μ = −∇_θ(F'(μ)(θ) + λ|θ|²/2)/τ at the particles, with F'(μ)(a, b) = a (Σ_k w_k a_k K(b, b_k)
    − Σ_t c_t K(b, u_t)) written from the arc-cosine kernel and differentiated by central differences (step 1e-6:
    truncation ~1e-12, round-off ~1e-10; compared at 1e-7 relative to the largest entry)."""
    from meanfield.dynamics import proximal_gibbs_score

    tau, lam = 0.2, 0.3
    mu = mf.init.gaussian(7, 5, seed=14)
    teacher = small_problem.target

    def first_variation(theta):
        a, b = theta[0], theta[1:]
        return a * (relu_kernel(b, mu.b) @ (mu.weights * mu.a) - relu_kernel(b, teacher.U) @ teacher.c)

    eps, basis = 1e-6, np.eye(6)
    expected = np.array([[-(first_variation(theta + eps * e) - first_variation(theta - eps * e)) / (2 * eps)
                          - lam * (theta @ e) for e in basis] for theta in mu.state()]) / tau
    score = proximal_gibbs_score(small_problem, mu, tau, lam)
    np.testing.assert_allclose(score, expected, rtol=0, atol=1e-7 * np.max(np.abs(expected)))
    with pytest.raises(ValueError, match="temperature > 0"):
        proximal_gibbs_score(small_problem, mu, 0.0)


def test_langevin_diagnostic_on_a_subsample_is_the_discrepancy_of_that_subsample(small_problem):
    """diagnostic_particles = 24 of 64: each save's (ksd2, ksd2_se) is the Stein discrepancy of the seeded subsample
    of 24 particles against the proximal Gibbs score of the whole state (1e-10: the same sums in another order);
    with all 64 particles it differs."""
    from meanfield.dynamics import proximal_gibbs_score

    tau, lam = 0.05, 0.5
    run = mf.simulate(small_problem, mf.init.gaussian(64, 5, seed=15), t_max=0.4, dt=0.1, backend="numpy",
                      save_every=2, dynamics=Langevin(tau, lam, seed=4, diagnostic_particles=24))
    for i in range(len(run.times)):
        mu = run.measure(i)
        score = proximal_gibbs_score(small_problem, mu, tau, lam)
        sub = kernel_stein_discrepancy(mu.state(), score, mu.weights, max_points=24)
        np.testing.assert_allclose([run.observables["ksd2"][i], run.observables["ksd2_se"][i]], sub, rtol=1e-10)
        assert not np.allclose(sub, kernel_stein_discrepancy(mu.state(), score, mu.weights), rtol=1e-3)


def test_stein_kernel_against_finite_differences_of_the_kernel():
    """k_p from the closed-form derivatives of the IMQ kernel, against central differences (two points)."""
    rng = np.random.default_rng(2)
    x, s = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    ksd2, _ = kernel_stein_discrepancy(x, s)          # two points: KSD² = k_p(x0, x1) (symmetric)

    def k(p, q):
        return (1.0 + np.sum((p - q) ** 2)) ** -0.5

    eps, e = 1e-4, np.eye(3)
    grad_x = np.array([(k(x[0] + eps * e[i], x[1]) - k(x[0] - eps * e[i], x[1])) / (2 * eps) for i in range(3)])
    grad_y = np.array([(k(x[0], x[1] + eps * e[i]) - k(x[0], x[1] - eps * e[i])) / (2 * eps) for i in range(3)])
    trace = sum((k(x[0] + eps * e[i], x[1] + eps * e[i]) - k(x[0] + eps * e[i], x[1] - eps * e[i])
                 - k(x[0] - eps * e[i], x[1] + eps * e[i]) + k(x[0] - eps * e[i], x[1] - eps * e[i])) / (4 * eps**2)
                for i in range(3))
    expected = s[0] @ s[1] * k(x[0], x[1]) + s[0] @ grad_y + s[1] @ grad_x + trace
    assert abs(ksd2 - expected) <= 1e-7 * abs(expected)          # central differences: O(ε²) ≈ 1e-8


def test_noisy_sgd_resumes_bit_identically_and_is_sgd_without_noise(small_problem, tmp_path):
    mu0 = mf.init.sign_sphere(16, 5, seed=10)
    plain = mf.sgd.train(small_problem, mu0, t_max=0.5, eta=0.05, batch_size=32, seed=1)
    zero = mf.sgd.train(small_problem, mu0, t_max=0.5, eta=0.05, batch_size=32, seed=1, temperature=0.0)
    assert np.array_equal(plain.b[-1], zero.b[-1])
    straight = mf.sgd.train(small_problem, mu0, t_max=1.0, eta=0.05, batch_size=32, seed=1, temperature=1e-2,
                            weight_decay=0.1)
    path = tmp_path / "noisy.h5"
    mf.sgd.train(small_problem, mu0, t_max=0.5, eta=0.05, batch_size=32, seed=1, temperature=1e-2, weight_decay=0.1,
                 path=path).close()
    resumed = mf.sgd.train(small_problem, mu0, t_max=1.0, eta=0.05, batch_size=32, seed=1, temperature=1e-2,
                           weight_decay=0.1, path=path, resume=True)
    assert np.array_equal(resumed.b[-1], straight.b[-1])
    assert not np.array_equal(straight.b[-1], mf.sgd.train(small_problem, mu0, t_max=1.0, eta=0.05, batch_size=32,
                                                           seed=1).b[-1])
    resumed.close()


def test_noisy_sgd_step_is_the_decayed_plain_step_plus_gaussian_noise_of_variance_two_tau_eta(small_problem):
    """One full-batch step (a fixed data set: the gradient is the same in both runs) of noisy SGD against plain SGD
    from the same network: θ' − (1 − ηλ) θ'_plain must be i.i.d. N(0, 2τη) noise (decay applied after the gradient
    step, as the trainer does). On 4096 neurons × 6 coordinates: its mean is 0 and its variance 2τη within Z_TOL
    standard errors (≈ 0.9 % for the variance), and its regression on θ'_plain (what a wrong decay leaves) is 0
    within Z_TOL standard errors (≈ 1e-3 against an effect of ηλ/2 = 0.05)."""
    tau, lam, eta = 0.01, 2.0, 0.05
    mu0 = mf.init.gaussian(4096, 5, seed=13)
    common = dict(t_max=eta, eta=eta, mode="full", n_data=64, seed=2, save_every=1, alignment=False)
    plain = mf.sgd.train(small_problem, mu0, **common).final.state()
    noisy = mf.sgd.train(small_problem, mu0, temperature=tau, weight_decay=lam, **common).final.state()
    noise = (noisy - (1.0 - eta * lam) * plain).ravel()
    variance, n = 2.0 * tau * eta, noise.size
    assert abs(noise.mean()) <= Z_TOL * np.sqrt(variance / n)
    assert abs(noise.var() / variance - 1.0) <= Z_TOL * np.sqrt(2.0 / n), noise.var() / variance
    slope = (noise @ plain.ravel()) / (plain.ravel() @ plain.ravel())
    assert abs(slope) <= Z_TOL * np.sqrt(variance / (plain.ravel() @ plain.ravel())), slope


def test_bad_dynamics_arguments_are_refused(small_problem):
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        Langevin(-1e-3)
    with pytest.raises(ValueError, match="'euler'.*'heun'"):
        mf.simulate(small_problem, mf.init.sign_sphere(4, 5, seed=0), t_max=1.0, dt=0.1, solver="rk4",
                    dynamics=Langevin(1e-3))
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        mf.sgd.train(small_problem, mf.init.sign_sphere(4, 5, seed=0), t_max=0.1, eta=0.05, temperature=-1.0)


def test_a_dynamics_rule_runs_in_the_plain_loop(small_problem):
    """The rules are ordinary stepping rules: run_loop drives one directly."""
    mu0 = mf.init.sign_sphere(8, 5, seed=0)
    rule = rule_for(small_problem, mu0, Conic(2.0, 1.0, True))
    recorder, _ = recorder_for(None, rule.kind, {}, {}, {}, mu0.weights)
    traj = run_loop(rule, ConstantStep(0.1), SaveAt(5), 1.0, recorder)
    assert traj.status == "completed" and traj.times[-1] == 1.0


def test_birth_death_refuses_steps_whose_jump_probabilities_saturate(small_problem):
    with pytest.raises(mf.FlowDivergedError, match="birth–death step too large"):
        mf.simulate(small_problem, mf.init.gaussian(16, 5, seed=0), t_max=2.0, dt=0.5, backend="numpy",
                    dynamics=BirthDeath(100.0, seed=0))


def test_conic_without_reaction_keeps_every_mass(small_problem):
    """α = 0: no reaction, so each particle's mass |u_j|² stays put (to the RK4 step's local error, dt = 0.01)."""
    mu0 = mf.init.gaussian(16, 5, seed=11)
    run = mf.simulate(small_problem, mu0, t_max=2.0, dt=0.01, solver="rk4", backend="numpy",
                      dynamics=Conic(alpha=0.0, beta=1.0))
    start, end = (mu0.state() ** 2).sum(axis=1), (run.final.state() ** 2).sum(axis=1)
    np.testing.assert_allclose(end, start, rtol=1e-7)
    assert not np.allclose(run.final.b, mu0.b)                       # the directions moved
