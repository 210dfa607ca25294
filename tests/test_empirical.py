"""Finite data sets, losses, penalties, the output scale and the linearised (NTK) flow (issue 14).

Every check is against an independent computation: autograd of the finite network's loss (torch), central
differences of the objective, matrix exponentials of the tangent kernel, quadrature-free closed forms against Monte
Carlo with its standard error, the population flow, and SGD of the finite network."""

import re

import numpy as np
import pytest
import torch
from conftest import assert_mc_close

import meanfield as mf
from meanfield.data import DataSet, digits, from_sklearn, sample
from meanfield.dynamics import OutputLayer
from meanfield.lazy import LinearizedProblem, ntk_gram, ntk_limit
from meanfield.penalties import VariationNorm, WeightDecay

UNITS = {"relu": mf.ReLU(), "tanh": mf.activations.Tanh(), "erf": mf.activations.Erf()}
PENALTIES = {"none": None, "weight_decay": WeightDecay(0.03), "variation_norm": VariationNorm(0.02)}


def classification_data(n=120, d=3, seed=0, test=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n + test, d))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] ** 2 > 0.3, 1.0, -1.0)
    return DataSet(x[:n], y[:n], *((x[n:], y[n:]) if test else ()))


def autograd_velocity(problem, mu):
    """−(1/w_j) ∂/∂θ_j of the finite network's loss plus penalty, by torch autograd."""
    state = torch.tensor(mu.state(), requires_grad=True)
    w = torch.tensor(mu.weights)
    x = torch.tensor(problem.features)
    y = torch.tensor(problem.data.y)
    alpha, k = problem.output_scale, problem.output_columns
    a, neurons = state[:, :k], state[:, k:]
    f = alpha * (problem.unit.torch(x @ neurons.T) @ (w[:, None] * a))      # (n, K)
    if problem.loss.name == "squared":
        loss = (0.5 * (f[:, 0] - y) ** 2).mean()
    elif problem.loss.name == "logistic":
        loss = torch.nn.functional.softplus(-y * f[:, 0]).mean()
    else:
        loss = torch.nn.functional.cross_entropy(f, y.long())
    loss = loss / alpha**2
    if problem.penalty is not None:
        r = (0.5 * (state**2).sum(1) if isinstance(problem.penalty, WeightDecay)
             else torch.linalg.vector_norm(a, dim=1) * torch.linalg.vector_norm(neurons, dim=1))
        loss = loss + problem.penalty.strength * (w * r).sum()
    (grad,) = torch.autograd.grad(loss, state)
    return float(loss.detach()), -(grad / w[:, None]).numpy()


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("unit", sorted(UNITS))
@pytest.mark.parametrize("penalty", sorted(PENALTIES))
def test_velocity_matches_autograd_of_the_finite_network(loss, bias, unit, penalty):
    """The exact empirical velocity is −(1/w_j)∇_θj of the finite network's loss (fp64 round-off: 1e-10)."""
    problem = mf.EmpiricalProblem(classification_data(), loss=loss, activation=UNITS[unit], bias=bias,
                                  penalty=PENALTIES[penalty], output_scale=1.0 if penalty == "none" else 2.5,
                                  tile_elements=700)    # several tiles of data columns
    mu = mf.init.gaussian(23, 3, seed=1, bias_std=0.7 if bias else None)
    risk, velocity = autograd_velocity(problem, mu)
    da, db = problem.velocity(mu, backend="numpy")
    np.testing.assert_allclose(problem.risk(mu, backend="numpy"), risk, rtol=1e-12)
    np.testing.assert_allclose(np.column_stack([da, db]), velocity, rtol=0, atol=1e-10)


def multiclass_data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    return DataSet(x, np.argmax(x @ rng.standard_normal((3, 4)), axis=1).astype(float))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("penalty", sorted(PENALTIES))
def test_cross_entropy_velocity_matches_autograd(bias, penalty):
    """The vector-output (K = 4 classes) velocity against autograd of torch's cross_entropy (1e-10)."""
    problem = mf.EmpiricalProblem(multiclass_data(), loss="cross_entropy", bias=bias, penalty=PENALTIES[penalty],
                                  output_scale=1.0 if penalty == "none" else 1.7, tile_elements=600)
    mu = mf.init.gaussian(19, 3, seed=2, bias_std=0.5 if bias else None, outputs=4)
    risk, velocity = autograd_velocity(problem, mu)
    da, db = problem.velocity(mu, backend="numpy")
    np.testing.assert_allclose(problem.risk(mu, backend="numpy"), risk, rtol=1e-12)
    np.testing.assert_allclose(np.column_stack([da, db]), velocity, rtol=0, atol=1e-10)
    for backend in ("numba", "torch"):
        np.testing.assert_allclose(np.column_stack(problem.velocity(mu, backend)), velocity, rtol=0, atol=1e-10)


def test_cross_entropy_sgd_flow_files_and_resume(tmp_path):
    """Full-batch SGD of the K-output network is the Euler flow (5e-13); a run stores a (T, m, K) and resumes
    bit-identically."""
    problem = mf.EmpiricalProblem(multiclass_data(), loss="cross_entropy", bias=True, penalty=VariationNorm(0.01))
    mu0 = mf.init.gaussian(16, 3, seed=0, bias_std=0.5, outputs=4)
    flow = mf.simulate(problem, mu0, t_max=1.0, dt=0.02, solver="euler", save_every=10, backend="numpy")
    sgd = mf.sgd.train(problem, mu0, t_max=1.0, eta=0.02, mode="full", save_every=10)
    np.testing.assert_allclose(sgd.final.state(), flow.final.state(), rtol=0, atol=5e-13)
    path = tmp_path / "ce.h5"
    mf.simulate(problem, mu0, t_max=0.5, dt=0.02, solver="euler", save_every=10, backend="numpy", path=path)
    resumed = mf.simulate(problem, mu0, t_max=1.0, dt=0.02, solver="euler", save_every=10, backend="numpy",
                          path=path, resume=True)
    assert np.array_equal(resumed.final.state(), flow.final.state())
    stored = mf.load(path)
    assert stored.a.shape == (len(stored), 16, 4) and np.array_equal(stored.measure(0).state(), mu0.state())
    assert flow.observables["train_accuracy"][-1] > flow.observables["train_accuracy"][0]


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_backends_agree_with_numpy(backend):
    problem = mf.EmpiricalProblem(classification_data(), loss="logistic", bias=True, penalty=VariationNorm(0.01),
                                  tile_elements=500)
    mu = mf.init.gaussian(31, 3, seed=2, bias_std=1.0)
    reference = problem.evaluate(mu, backend="numpy")
    other = problem.evaluate(mu, backend=backend)
    np.testing.assert_allclose(other.psi, reference.psi, rtol=0, atol=1e-13)
    np.testing.assert_allclose(other.grad_psi, reference.grad_psi, rtol=0, atol=1e-13)
    np.testing.assert_allclose(other.risk, reference.risk, rtol=1e-13)
    np.testing.assert_allclose(np.column_stack(problem.velocity(mu, backend)),
                               np.column_stack(problem.velocity(mu, "numpy")), rtol=0, atol=1e-13)


def objective_along(problem, mu, direction, eps):
    state = mu.state()
    def at(s):
        return problem.risk(type(mu).from_state(state + s * direction, mu.weights), backend="numpy")
    return (at(eps) - at(-eps)) / (2 * eps)


@pytest.mark.parametrize("penalty", ["weight_decay", "variation_norm"])
@pytest.mark.parametrize("kind", ["data", "population"])
def test_regularised_energy_identity(penalty, kind):
    """d/dt [F + λ∫r dμ] = −∫|v|² dμ along the flow, against central differences of the objective (step 1e-5:
    truncation ~1e-10 relative, round-off ~1e-11 / 1e-5)."""
    if kind == "data":
        problem = mf.EmpiricalProblem(classification_data(), loss="logistic", bias=True,
                                      penalty=PENALTIES[penalty], output_scale=2.0)
        mu = mf.init.gaussian(20, 3, seed=3, bias_std=0.5)
    else:
        teacher = mf.TeacherNetwork([1.0, -0.7], np.eye(4)[:2])
        problem = mf.Problem(teacher, mf.Gaussian(4), penalty=PENALTIES[penalty], output_scale=2.0)
        mu = mf.init.gaussian(20, 4, seed=3)
    da, db = problem.velocity(mu, "numpy")
    velocity = np.column_stack([da, db])
    slope = objective_along(problem, mu, velocity, 1e-5)
    np.testing.assert_allclose(slope, -problem.dissipation(mu, "numpy"), rtol=1e-6)


def test_penalised_flow_decreases_its_objective_and_records_the_penalty():
    problem = mf.EmpiricalProblem(classification_data(test=40), loss="logistic", penalty=WeightDecay(0.01))
    traj = mf.simulate(problem, mf.init.gaussian(32, 3, seed=0), t_max=20.0, dt=0.1, solver="rk4", save_every=10)
    assert np.all(np.diff(traj.risk) <= 1e-14)
    penalty, train = traj.observables["penalty"], traj.observables["train_loss"]
    np.testing.assert_allclose(penalty + train, traj.risk, rtol=1e-12)
    assert {"test_loss", "train_accuracy", "test_accuracy", "margin"} <= set(traj.observables)


@pytest.mark.parametrize("penalty", [None, WeightDecay(0.02), VariationNorm(0.02)])
@pytest.mark.parametrize("bias", [False, True])
def test_full_batch_sgd_is_the_euler_scheme_of_the_flow(penalty, bias):
    """Full-batch SGD of the finite network (torch autograd) and the Euler scheme of the exact flow take the same
    steps: identical to round-off over 100 steps (5e-13)."""
    problem = mf.EmpiricalProblem(classification_data(), loss="logistic", bias=bias, penalty=penalty,
                                  output_scale=1.5)
    mu0 = mf.init.gaussian(24, 3, seed=4, bias_std=0.5 if bias else None)
    flow = mf.simulate(problem, mu0, t_max=1.0, dt=0.01, solver="euler", save_every=100, backend="numpy")
    sgd = mf.sgd.train(problem, mu0, t_max=1.0, eta=0.01, mode="full", save_every=100)
    np.testing.assert_allclose(sgd.final.state(), flow.final.state(), rtol=0, atol=5e-13)
    np.testing.assert_allclose(sgd.risk, flow.risk, rtol=1e-12)


def test_population_sgd_with_penalty_and_scale_follows_the_flow():
    """Online SGD with large batches on a population problem with a penalty and an output scale tracks the exact
    flow (the SGD noise at batch 4096, η = 0.01 is ~1e-2 relative on the risk; 10 % allowed)."""
    problem = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(4)[:2]), mf.Gaussian(4),
                         penalty=("weight_decay", 0.01), output_scale=2.0)
    mu0 = mf.init.doubled(mf.init.gaussian(32, 4, seed=0))
    flow = mf.simulate(problem, mu0, t_max=3.0, dt=0.05)
    sgd = mf.sgd.train(problem, mu0, t_max=3.0, eta=0.01, batch_size=4096, seed=1, save_every=100)
    assert abs(sgd.risk[-1] - flow.risk[-1]) < 0.1 * flow.risk[-1]
    # f(μ0) = 0: the predictor's risk starts at ½ E f*²
    assert flow.observables["predictor_risk"][0] == pytest.approx(0.5 * problem.target_energy, rel=1e-12)


def test_output_scale_is_the_risk_of_the_scaled_predictor():
    """F_α(μ) = ½E(f − f*/α)²: the predictor α f(μ) has the risk α² F_α, checked by Monte Carlo."""
    teacher = mf.TeacherNetwork([1.0, -0.5], np.eye(3)[:2])
    problem = mf.Problem(teacher, mf.Gaussian(3), output_scale=4.0)
    mu = mf.init.gaussian(16, 3, seed=5)
    x = mf.Gaussian(3).sample(400_000, np.random.default_rng(0))
    values = 0.5 * (4.0 * mu.predict(x) - teacher(x)) ** 2
    assert_mc_close(problem.predictor_risk(mu, "numpy"), values)
    np.testing.assert_allclose(problem.risk(mu, "numpy") * 16.0, problem.predictor_risk(mu, "numpy"), rtol=1e-12)


def test_empirical_flow_approaches_the_population_flow_at_rate_one_over_root_n():
    """The flow on n Gaussian samples labelled by a teacher approaches the exact population flow: the particles at
    t = 2 differ by C n^{−1/2} (fluctuations of the empirical velocity). Measured over n = 10³, 10⁴, 10⁵, the error at
    each n the root mean square over four independent data sets (so that one unlucky sample does not set the
    slope): the fitted exponent lies in [−0.75, −0.3] and the error at n = 10⁵ is below 1e-2 of the particles'
    scale (measured: 3e-3, 1e-3 extrapolated to n = 10⁶)."""
    teacher = mf.TeacherNetwork([1.0, 1.0, -0.5], np.eye(4)[:3])
    population = mf.Problem(teacher, mf.Gaussian(4))
    mu0 = mf.init.sign_sphere(16, 4, seed=0)
    reference = mf.simulate(population, mu0, t_max=2.0, dt=0.1, save_every=100, backend="numpy").final.state()
    ns = np.array([1_000, 10_000, 100_000])
    errors = []
    for n in ns:
        squares = []
        for replicate in range(4):
            problem = mf.EmpiricalProblem(sample(population, int(n), seed=int(n) + 7 * replicate))
            final = mf.simulate(problem, mu0, t_max=2.0, dt=0.1, save_every=100, backend="numpy").final.state()
            squares.append(np.mean((final - reference) ** 2))
        errors.append(np.sqrt(np.mean(squares)))
    slope = np.polyfit(np.log(ns), np.log(errors), 1)[0]
    assert -0.75 <= slope <= -0.3, (errors, slope)
    assert errors[-1] < 1e-2


def test_logistic_smoothed_margin_is_monotone_after_separation():
    """On separable data, a 2-homogeneous network (ReLU, no bias) under the logistic flow has a non-decreasing
    smoothed margin γ̃ = −log(e^{nL} − 1) / Σ_j w_j|θ_j|² once nL < log 2 (Lyu & Li 2020, Lemma 5.1); checked at every
    save to 1e-9 (RK4 error). The normalised margin min_i y_i f(x_i) / ∫|a||b| dμ grows from separation to the end."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 2))
    w = np.array([1.0, -0.5])
    keep = np.abs(x @ w) / np.linalg.norm(w) > 0.3
    x = x[keep]
    problem = mf.EmpiricalProblem(DataSet(x, np.sign(x @ w)), loss="logistic")
    traj = mf.simulate(problem, mf.init.sign_sphere(64, 2, seed=0, radius=0.5, a_scale=0.5), t_max=200.0, dt=0.05,
                       solver="rk4", save_every=20)
    n = problem.data.n
    total_loss = n * traj.observables["train_loss"]
    norms = np.array([traj.weights @ (traj.a[i] ** 2 + (traj.b[i] ** 2).sum(axis=1)) for i in range(len(traj))])
    after = total_loss < np.log(2)
    assert after.sum() > 10
    smoothed = -np.log(np.expm1(total_loss[after])) / norms[after]
    assert np.all(np.diff(smoothed) >= -1e-9 * np.abs(smoothed[1:])), np.diff(smoothed).min()
    margin = traj.observables["margin"]
    separated = np.argmax(traj.observables["train_accuracy"] == 1.0)
    assert margin[-1] > margin[separated] > 0


def test_output_layer_training_keeps_the_features():
    problem = mf.EmpiricalProblem(classification_data(), loss="logistic", bias=True)
    mu0 = mf.init.gaussian(32, 3, seed=0, bias_std=1.0)
    traj = mf.simulate(problem, mu0, t_max=5.0, dt=0.1, dynamics=OutputLayer(), backend="numpy")
    assert np.array_equal(traj.final.b, mu0.b) and np.array_equal(traj.final.c, mu0.c)
    assert np.all(np.diff(traj.risk) <= 0)


# -- the lazy regime -------------------------------------------------------------------------------------------------
def test_ntk_gram_matches_autograd_jacobians():
    """Θ = Σ_j (1/w_j) J_j J_jᵀ with J_j = ∂f/∂θ_j by autograd (1e-12)."""
    data = classification_data(n=7)
    mu = mf.init.gaussian(9, 3, seed=0, bias_std=0.5)
    unit = mf.activations.Tanh()
    state = torch.tensor(mu.state(), requires_grad=True)
    x = torch.tensor(data.x)
    def f(s):
        return (unit.torch(x @ s[:, 1:-1].T + s[:, -1]) * (torch.tensor(mu.weights) * s[:, 0])).sum(1)
    jac = torch.autograd.functional.jacobian(f, state).numpy()        # (n, m, D)
    expected = np.einsum("imk,lmk->il", jac / mu.weights[None, :, None], jac)
    np.testing.assert_allclose(ntk_gram(mu, data.x, unit), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("unit", ["relu", "erf"])
@pytest.mark.parametrize("bias_std", [None, 0.8])
def test_ntk_limit_against_monte_carlo(unit, bias_std):
    """The closed-form infinite-width tangent kernel against the tangent kernel of 200 000 Gaussian neurons, entry by
    entry within Z standard errors of the per-neuron terms."""
    x = np.array([[1.0, 0.0, 0.5], [0.3, -1.2, 0.1], [-0.4, 0.6, 0.9]])
    m, a_std, b_std = 200_000, 0.7, 1.3
    mu = mf.init.gaussian(m, 3, seed=11, a_std=a_std, b_std=b_std, bias_std=bias_std)
    features = np.column_stack([x, np.ones(3)]) if bias_std is not None else x
    state = mu.state()
    z = state[:, 1:] @ features.T
    values, slopes = UNITS[unit](z), UNITS[unit].derivative(z)
    per_neuron = (values[:, :, None] * values[:, None, :]
                  + (state[:, 0] ** 2)[:, None, None] * slopes[:, :, None] * slopes[:, None, :]
                  * (features @ features.T)[None])
    exact = ntk_limit(x, UNITS[unit], b_std=b_std, a_second_moment=a_std**2, bias_std=bias_std)
    assert_mc_close(exact.ravel(), per_neuron.reshape(m, -1))


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_linearised_flow_is_kernel_gradient_descent(loss):
    """The linearised flow's predictor on the training set solves ḟ = −(1/n) Θ ℓ'(f) (Θ of μ0): against scipy's
    solve_ivp of that n-dimensional ODE (rtol 1e-11) and, for the squared loss, the closed form (I − e^{−tΘ/n}) y."""
    from scipy.integrate import solve_ivp

    data = classification_data(n=30)
    base = mf.EmpiricalProblem(data, loss=loss, bias=True)
    mu0 = mf.init.doubled(mf.init.gaussian(20, 3, seed=0, bias_std=0.5))
    lin = LinearizedProblem(base, mu0)
    traj = mf.simulate(lin, lin.start(), t_max=3.0, dt=0.01, solver="rk4", save_every=300)
    theta = ntk_gram(mu0, data.x, base.unit)
    nx = mf.get_backend("numpy")
    ode = solve_ivp(lambda t, f: -theta @ base.loss.derivative(f, data.y, nx) / data.n, (0, 3.0), np.zeros(data.n),
                    rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(lin.predict(traj.final, data.x), ode.y[:, -1], atol=1e-8)
    if loss == "squared":
        vals, vecs = np.linalg.eigh(theta / data.n)
        np.testing.assert_allclose(lin.predict(traj.final, data.x),
                                   vecs @ ((1 - np.exp(-3.0 * vals)) * (vecs.T @ data.y)), atol=1e-8)


def test_scaled_flow_tends_to_the_linearised_flow():
    """With output scale α from f(μ0) = 0 (a smooth unit, tanh): the particles move by O(1/α), α(θ_α(t) − θ0) → u(t),
    the linearised flow, with an error O(1/α), and the predictors agree to O(1/α²) (the model's second-order term
    enters the predictor only through the change of the tangent). Fitted exponents over α = 30 … 1000 (measured
    −1.00, −1.00, −2.00) asserted within 0.15."""
    data = classification_data(n=50)
    unit = mf.activations.Tanh()
    mu0 = mf.init.doubled(mf.init.gaussian(16, 3, seed=0, bias_std=0.5))
    base = mf.EmpiricalProblem(data, loss="logistic", bias=True, activation=unit)
    lin = LinearizedProblem(base, mu0)
    u = mf.simulate(lin, lin.start(), t_max=2.0, dt=0.01, solver="rk4", save_every=200).final
    alphas = np.array([30.0, 100.0, 300.0, 1000.0])
    errors, moves, predictors = [], [], []
    for alpha in alphas:
        scaled = mf.EmpiricalProblem(data, loss="logistic", bias=True, activation=unit, output_scale=alpha)
        final = mf.simulate(scaled, mu0, t_max=2.0, dt=0.01, solver="rk4", save_every=200).final
        errors.append(np.abs(alpha * (final.state() - mu0.state()) - u.state()).max())
        moves.append(np.abs(final.state() - mu0.state()).max())
        predictors.append(np.abs(scaled.predict(final, data.x) - lin.predict(u, data.x)).max())
    def exponent(values):
        return np.polyfit(np.log(alphas), np.log(values), 1)[0]
    assert abs(exponent(errors) + 1) < 0.15, errors
    assert abs(exponent(moves) + 1) < 0.15, moves
    assert abs(exponent(predictors) + 2) < 0.15, predictors


# -- data, files and bad input -----------------------------------------------------------------------------------------
def test_run_on_data_is_stored_and_resumed(tmp_path):
    data = classification_data(test=20)
    problem = mf.EmpiricalProblem(data, loss="logistic", bias=True, penalty=("variation_norm", 0.01))
    mu0 = mf.init.gaussian(16, 3, seed=0, bias_std=0.5)
    straight = mf.simulate(problem, mu0, t_max=4.0, dt=0.1, save_every=5, backend="numpy")
    path = tmp_path / "run.h5"
    mf.simulate(problem, mu0, t_max=2.0, dt=0.1, save_every=5, path=path, backend="numpy")
    resumed = mf.simulate(problem, mu0, t_max=4.0, dt=0.1, save_every=5, path=path, resume=True, backend="numpy")
    assert np.array_equal(resumed.final.state(), straight.final.state())
    stored = mf.load(path)
    assert np.array_equal(stored.target_arrays["x"], data.x) and np.array_equal(stored.target_arrays["y_test"],
                                                                                data.y_test)
    other = DataSet(data.x, -data.y, data.x_test, data.y_test)
    with pytest.raises(ValueError, match="differ"):
        mf.simulate(mf.EmpiricalProblem(other, loss="logistic", bias=True, penalty=("variation_norm", 0.01)), mu0,
                    t_max=6.0, dt=0.1, save_every=5, path=path, resume=True, backend="numpy")
    assert np.array_equal(mf.load(path).final.state(), resumed.final.state())   # the refused resume wrote nothing


def test_digits_flow_and_sgd_on_the_same_problem():
    data = digits(classes=((3,), (8,)), n_test=60)
    problem = mf.EmpiricalProblem(data, loss="logistic", bias=True)
    mu0 = mf.init.gaussian(64, data.d, seed=0, bias_std=0.1)
    flow = mf.simulate(problem, mu0, t_max=5.0, dt=0.1)
    sgd = mf.sgd.train(problem, mu0, t_max=5.0, eta=0.05, batch_size=32, mode="minibatch", seed=0, save_every=20)
    assert flow.observables["test_accuracy"][-1] > 0.9 and sgd.observables["test_accuracy"][-1] > 0.9


@pytest.mark.parametrize("make, message", [
    (lambda: DataSet(np.zeros((3, 2)), np.zeros(4)), "x has 3 samples but y has 4 labels"),
    (lambda: DataSet([[0.0, np.nan]], [1.0]), r"x contains NaN .* row 0, column 1"),
    (lambda: DataSet(np.zeros((2, 2)), [1.0, np.inf]), "y contains NaN"),
    (lambda: DataSet(np.zeros((2, 2)), [1.0, 1.0], x_test=np.zeros((1, 2))), "both x_test and y_test"),
    (lambda: DataSet(np.zeros((2, 2)), [1.0, 1.0], np.zeros((1, 3)), [1.0]), "x_test has 3 features"),
    (lambda: mf.EmpiricalProblem(DataSet(np.zeros((2, 2)), [1.0, 0.0]), loss="logistic"), r"labels ±1, found \[0.0\]"),
    (lambda: mf.EmpiricalProblem(DataSet(np.zeros((2, 2)), [1.0, 1.0]), loss="hinge"), "unknown loss 'hinge'"),
    (lambda: mf.EmpiricalProblem(DataSet(np.zeros((2, 2)), [1.0, 0.5]), loss="cross_entropy"),
     r"class indices 0, 1, 2, …, found 0.5"),
    (lambda: mf.EmpiricalProblem(DataSet(np.zeros((2, 2)), [1.0, 0.0]), loss="cross_entropy").check_measure(
        mf.init.gaussian(3, 2)), "the problem has 2 outputs: give neurons with 2 output weights"),
    (lambda: mf.EmpiricalProblem(DataSet(np.zeros((2, 2)), [1.0, 0.0])).check_measure(
        mf.init.gaussian(3, 2, outputs=2)), "scalar output but the neurons have 2 output weights"),
    (lambda: mf.EmpiricalProblem(np.zeros((2, 2)), loss="squared"), "must be a meanfield.data.DataSet"),
    (lambda: mf.Problem(mf.LinearTarget(np.ones(2)), mf.Gaussian(2), penalty=("l3", 1.0)), "unknown penalty"),
    (lambda: from_sklearn("nope"), "no data set loader load_nope"),
    (lambda: from_sklearn("iris", n_test=150), r"n_test = 150 must lie in \[0, 150\)"),
    (lambda: mf.Problem(mf.LinearTarget(np.ones(2)), mf.Gaussian(2), output_scale=0.0), "output_scale"),
    (lambda: LinearizedProblem(mf.Problem(mf.LinearTarget(np.ones(2)), mf.Gaussian(2)), mf.init.gaussian(2, 2)),
     "written for an EmpiricalProblem"),
])
def test_bad_input_is_one_clear_error(make, message):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    assert len(str(info.value).splitlines()) == 1
    assert re.search(message, str(info.value)), str(info.value)


def test_a_data_set_too_large_for_memory_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    problem = mf.EmpiricalProblem(classification_data())
    backend = mf.get_backend("numpy", tile_elements=1 << 10)
    monkeypatch.setattr(type(backend), "free_memory", lambda self: 1000)
    path = tmp_path / "run.h5"
    with pytest.raises(MemoryError, match="GiB are free: use fewer samples"):
        mf.simulate(problem, mf.init.gaussian(8, 3, seed=0), t_max=1.0, dt=0.1, path=path, backend=backend)
    assert not path.exists() or mf.load(path).status == "failed"


def test_sgd_refuses_another_data_size():
    problem = mf.EmpiricalProblem(classification_data())
    with pytest.raises(ValueError, match="leave n_data out"):
        mf.sgd.train(problem, mf.init.gaussian(8, 3, seed=0), t_max=1.0, eta=0.1, mode="full", n_data=7)


# -- what a run on data records, against hand computations ---------------------------------------------------------
def hand_network(mu, x):
    """f(μ; x) = Σ_j w_j a_j relu(⟨b_j, x⟩ + c_j), written out in numpy."""
    pre = x @ mu.b.T + (mu.c if getattr(mu, "c", None) is not None else 0.0)
    return np.maximum(pre, 0.0) @ (mu.weights * mu.a)


def test_recorded_losses_accuracies_and_margin_at_an_output_scale_are_the_hand_computed_ones():
    """At α = 3, every save's train_loss and test_loss are (1/n) Σ log(1 + e^{−y α f(x)}) on their own split, the
    accuracies the fractions with y α f(x) > 0, and the margin min_i y_i f(x_i) / Σ_j w_j |a_j| |(b_j, c_j)| on the
    training split (α cancels: f, not α f, over the norm) — fp64 round-off, 1e-12."""
    alpha = 3.0
    problem = mf.EmpiricalProblem(classification_data(n=80, test=40, seed=4), loss="logistic", bias=True,
                                  output_scale=alpha)
    traj = mf.simulate(problem, mf.init.gaussian(24, 3, seed=2, bias_std=0.5), t_max=2.0, dt=0.1, save_every=10,
                       backend="numpy")
    data = problem.data
    for i in range(len(traj.times)):
        mu = traj.measure(i)
        for split, x, y in (("train", data.x, data.y), ("test", data.x_test, data.y_test)):
            yf = y * alpha * hand_network(mu, x)
            np.testing.assert_allclose(traj.observables[f"{split}_loss"][i], np.mean(np.log1p(np.exp(-yf))),
                                       rtol=1e-12)
            assert traj.observables[f"{split}_accuracy"][i] == np.mean(yf > 0)
        norm = mu.weights @ (np.abs(mu.a) * np.linalg.norm(np.column_stack([mu.b, mu.c]), axis=1))
        np.testing.assert_allclose(traj.observables["margin"][i], np.min(data.y * hand_network(mu, data.x)) / norm,
                                   rtol=1e-12)
    assert not np.allclose(traj.observables["train_loss"], traj.observables["test_loss"])


def test_output_layer_flow_is_the_closed_form_linear_ode_of_the_output_weights():
    """With the features frozen, the squared loss at output scale α makes the output weights a linear ODE,
    ȧ = −(1/n) Φᵀ(Φ W a − y/α) with Φ_ij = relu(⟨b_j, x_i⟩), W = diag(w): its solution by the matrix exponential of
    the affine system against the RK4 run (dt = 0.02, error O(dt⁴) ≈ 1e-8 relative; 1e-7)."""
    from scipy.linalg import expm

    alpha, t = 2.0, 2.0
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 3))
    problem = mf.EmpiricalProblem(DataSet(x, np.sin(x[:, 0]) + x[:, 1]), output_scale=alpha)
    mu0 = mf.init.gaussian(12, 3, seed=3)
    run = mf.simulate(problem, mu0, t_max=t, dt=0.02, solver="rk4", backend="numpy", dynamics=OutputLayer())
    phi = np.maximum(x @ mu0.b.T, 0.0)
    n, m = phi.shape
    system = np.zeros((m + 1, m + 1))
    system[:m, :m] = -phi.T @ phi * mu0.weights / n
    system[:m, m] = phi.T @ problem.data.y / (alpha * n)
    expected = (expm(system * t) @ np.append(mu0.a, 1.0))[:m]
    np.testing.assert_allclose(run.final.a, expected, rtol=1e-7, atol=1e-9)
    assert np.array_equal(run.final.b, mu0.b)


def test_cross_entropy_with_more_classes_than_the_labels_show():
    """CrossEntropy(classes=K): K outputs even when the training labels use fewer classes (here 0 … 2 of K = 5), the
    zero predictor's loss log K, the velocity that of torch's cross_entropy over K logits (1e-10), and labels ≥ K
    refused in either split with the split named."""
    from meanfield.losses import CrossEntropy

    rng = np.random.default_rng(6)
    x = rng.standard_normal((60, 3))
    y = np.argmax(x @ rng.standard_normal((3, 3)), axis=1).astype(float)
    problem = mf.EmpiricalProblem(DataSet(x, y), loss=CrossEntropy(classes=5))
    assert problem.outputs == 5 and problem.spec()["classes"] == 5
    assert problem.risk_scale == pytest.approx(np.log(5), rel=1e-15)
    mu = mf.init.gaussian(11, 3, seed=4, outputs=5)
    risk, velocity = autograd_velocity(problem, mu)
    np.testing.assert_allclose(problem.risk(mu, backend="numpy"), risk, rtol=1e-12)
    np.testing.assert_allclose(np.column_stack(problem.velocity(mu, "numpy")), velocity, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match=r"y: the cross-entropy loss takes class indices 0 … 4, found 5\.0"):
        mf.EmpiricalProblem(DataSet(x, np.where(y == 0, 5.0, y)), loss=CrossEntropy(classes=5))
    with pytest.raises(ValueError, match="y_test: the cross-entropy loss takes class indices 0 … 2"):
        mf.EmpiricalProblem(DataSet(x[:40], y[:40] % 3, x[40:], np.full(20, 3.0)), loss=CrossEntropy(classes=3))


@pytest.mark.parametrize("classes", [None, ((0,), (1, 2))], ids=["labels", "two_groups"])
def test_from_sklearn_splits_once_and_standardises_on_the_training_split(classes):
    """iris by scikit-learn's own loader: the training and held-out rows together are the data set (labels carried
    with their rows, or ±1 for two groups), each row once; the training features have mean 0 and standard deviation
    1, the held-out ones are mapped by the same affine map (recovered from the union) — all to 1e-12; the split is
    seeded. The digits' blank pixels (constant features) stay 0."""
    from sklearn.datasets import load_digits, load_iris

    raw, labels = load_iris(return_X_y=True)
    if classes is not None:
        labels = np.where(labels == 0, 1.0, -1.0)
    data = from_sklearn("iris", classes=classes, n_test=30, seed=5)
    assert (data.n, data.x_test.shape[0], data.d) == (120, 30, 4)
    np.testing.assert_allclose(data.x.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(data.x.std(axis=0), 1.0, rtol=1e-12)
    both = np.vstack([data.x, data.x_test])
    scale = raw.std(axis=0) / both.std(axis=0)
    shift = raw.mean(axis=0) - scale * both.mean(axis=0)
    rows = np.column_stack([both * scale + shift, np.concatenate([data.y, data.y_test])])
    expected = np.column_stack([raw, labels])
    order = lambda table: table[np.lexsort(np.round(table, 8).T[::-1])]  # noqa: E731 - rows sorted lexicographically
    np.testing.assert_allclose(order(rows), order(expected), rtol=0, atol=1e-12)
    assert not np.allclose(np.abs(data.x_test.mean(axis=0)), 0.0, atol=1e-3)  # held out: not standardised on itself
    again, other = (from_sklearn("iris", classes=classes, n_test=30, seed=s) for s in (5, 6))
    assert np.array_equal(again.x_test, data.x_test) and not np.array_equal(other.x_test, data.x_test)
    digits_raw = load_digits().data
    blank = np.all(digits_raw == digits_raw[0], axis=0)
    assert blank.any() and np.all(from_sklearn("digits", n_test=100).x[:, blank] == 0.0)
