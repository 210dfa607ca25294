"""The network description (meanfield.network): its layout, its one forward pass, the public velocity split by the
layout, fixed output weights (soft committee machines) and the one weight decay.

Every check is against an independent computation: torch autograd of the finite network's loss, central differences
of the closed-form risk, Monte Carlo of the risk with its standard error, and the same run written another way."""

import numpy as np
import pytest
import torch

import meanfield as mf
from meanfield.data import DataSet
from meanfield.network import Layout, Network, particle_type


def multiclass_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    return DataSet(x, np.argmax(x @ rng.standard_normal((3, 4)), axis=1).astype(float))


@pytest.mark.parametrize("bias", [False, True])
def test_cross_entropy_public_velocity_is_split_by_the_layout(bias):
    """velocity(mu) of a K-output problem returns ȧ of shape (m, K) and ẇ = [ḃ (| ċ)] of shape (m, d + bias), each
    equal to −(1/w_j)∂/∂ of torch's cross-entropy of the finite network in those parameters (1e-10: fp64 round-off
    of sums of 60 terms of order 1)."""
    problem = mf.EmpiricalProblem(multiclass_data(), loss="cross_entropy", bias=bias)
    mu = mf.init.gaussian(7, 3, seed=1, bias_std=0.4 if bias else None, outputs=4)
    a = torch.tensor(mu.a, requires_grad=True)
    w = torch.tensor(np.column_stack([mu.b] + ([mu.c] if bias else [])), requires_grad=True)
    masses = torch.tensor(mu.weights)
    f = problem.unit.torch(torch.tensor(problem.features) @ w.T) @ (masses[:, None] * a)
    loss = torch.nn.functional.cross_entropy(f, torch.tensor(problem.data.y).long())
    grad_a, grad_w = torch.autograd.grad(loss, (a, w))
    da, dw = problem.velocity(mu, backend="numpy")
    assert da.shape == (7, 4) and dw.shape == (7, 3 + bias)
    np.testing.assert_allclose(da, -(grad_a / masses[:, None]).numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dw, -(grad_w / masses[:, None]).numpy(), rtol=0, atol=1e-10)


# -- fixed output weights: the soft committee machine -------------------------------------------------------------
D = 4


def committee(**options):
    """A student erf committee machine (output weights fixed at 1) learning a teacher erf committee machine."""
    teacher = mf.TeacherNetwork([1.0, 1.0], np.eye(D)[:2], activation="erf")
    return mf.Problem(teacher, mf.Gaussian(D), activation="erf", output="fixed", **options)


def committee_start(m=5, seed=0, **options):
    mu = mf.init.gaussian(m, D, seed=seed, **options)
    return mu.replaced(a=np.ones(m))


def test_fixed_outputs_velocity_is_minus_the_b_gradient_of_the_risk_by_central_differences():
    """ȧ = 0 exactly; ḃ_j = −(1/w_j) ∂F/∂b_j by central differences of the closed-form risk (step 1e-5: truncation
    ~1e-10 and round-off 1e-16/1e-5 = 1e-11, so 1e-8). A velocity that kept its a-part, or lost the masses, fails."""
    problem, mu = committee(), committee_start()
    da, db = problem.velocity(mu, backend="numpy")
    assert np.all(da == 0)
    h, numeric = 1e-5, np.zeros_like(mu.b)
    for j in range(mu.m):
        for i in range(D):
            shifted = [mu.b.copy(), mu.b.copy()]
            shifted[0][j, i] += h
            shifted[1][j, i] -= h
            up, down = (problem.risk(mu.replaced(b=b), backend="numpy") for b in shifted)
            numeric[j, i] = -(up - down) / (2 * h) / mu.weights[j]
    np.testing.assert_allclose(db, numeric, rtol=0, atol=1e-8)


def test_fixed_outputs_risk_and_a_flow_that_keeps_a_against_monte_carlo():
    """The closed-form risk of the committee machine, before and after a flow, against ½ mean (f(μ; x) − f*(x))² over
    4·10⁵ Gaussian inputs (within 4 standard errors); the flow keeps every output weight at 1 bit for bit and
    lowers the risk."""
    from conftest import assert_mc_close

    problem, mu0 = committee(), committee_start(m=8, seed=3)
    traj = mf.simulate(problem, mu0, t_max=2.0, dt=0.1, backend="numpy")
    assert np.array_equal(traj.final.a, mu0.a) and not np.array_equal(traj.final.b, mu0.b)
    assert traj.risk[-1] < 0.5 * traj.risk[0]
    x = np.random.default_rng(7).standard_normal((400_000, D))
    for mu, risk in ((mu0, traj.risk[0]), (traj.final, traj.risk[-1])):
        assert_mc_close(risk, 0.5 * (problem.predict(mu, x) - problem.target(x)) ** 2)


def test_sgd_keeps_fixed_output_weights_and_its_step_is_the_flows_euler_step():
    """SGD of a fixed-output network trains b (and c) only: after a run a is the initial a bit for bit; one full-batch
    step of a data set's network equals the Euler step of the empirical flow, whose velocity the data pass computes
    without autograd (1e-13: fp64 round-off of one step of size 0.05)."""
    mu0 = committee_start(m=6, seed=1, bias_std=0.3)
    population = mf.Problem(mf.TeacherNetwork([1.0, 1.0], np.eye(D)[:2], activation="erf", bias=[0.1, 0.0]),
                            mf.Gaussian(D), activation="erf", bias=True, output="fixed")
    run = mf.sgd.train(population, mu0, t_max=0.5, eta=0.01, batch_size=64, seed=0, temperature=1e-4,
                       weight_decay=0.1)
    assert np.array_equal(run.final.a, mu0.a) and not np.array_equal(run.final.b, mu0.b)
    x = np.random.default_rng(2).standard_normal((50, D))
    data = mf.EmpiricalProblem(DataSet(x, population.target(x)), activation="erf", bias=True, output="fixed")
    step = mf.sgd.train(data, mu0, t_max=0.05, eta=0.05, mode="full", seed=0).final
    da, dw = data.velocity(mu0, backend="numpy")
    assert np.all(da == 0) and np.array_equal(step.a, mu0.a)
    np.testing.assert_allclose(step.state()[:, 1:], mu0.state()[:, 1:] + 0.05 * dw, rtol=0, atol=1e-13)


def test_langevin_keeps_fixed_output_weights_and_the_others_refuse_them():
    """Langevin dynamics moves b only (no drift, decay or noise on a); conic, birth–death and output-layer dynamics
    refuse a fixed-output network at construction with one line."""
    from meanfield.dynamics import BirthDeath, Conic, Langevin, OutputLayer

    mu0 = committee_start(m=6)
    traj = mf.simulate(committee(), mu0, t_max=0.3, dt=0.05, solver="euler", backend="numpy",
                       dynamics=Langevin(temperature=1e-2, weight_decay=0.1, seed=0, diagnostic=False))
    assert np.array_equal(traj.final.a, mu0.a) and not np.array_equal(traj.final.b, mu0.b)
    relu = mf.Problem(mf.TeacherNetwork([1.0], np.eye(D)[:1]), mf.Gaussian(D), output="fixed")
    for dynamics, what in ((Conic(), "conic"), (BirthDeath(rate=1.0), "birth–death"),
                           (OutputLayer(), "output-layer")):
        with pytest.raises(ValueError, match=f"{what}.*fixed output weights|fixed output weights.*{what}") as error:
            mf.simulate(relu, mu0, t_max=0.1, dt=0.05, dynamics=dynamics)
        assert "\n" not in str(error.value)


def test_fixed_outputs_are_recorded_in_the_file_and_a_trained_resume_is_refused(tmp_path):
    """The description a file stores says output = "fixed"; resuming it with trained output weights is another run
    and is refused, resuming it as it is continues it."""
    path = tmp_path / "committee.h5"
    mu0 = committee_start()
    mf.simulate(committee(), mu0, t_max=0.2, dt=0.1, path=path).close()
    with mf.load(path) as traj:
        assert traj.problem_spec["output"] == "fixed" and np.array_equal(traj.final.a, mu0.a)
    trained = mf.Problem(committee().target, mf.Gaussian(D), activation="erf")
    with pytest.raises(ValueError, match="cannot resume"):
        mf.simulate(trained, mu0, t_max=0.4, dt=0.1, path=path, resume=True)
    with mf.simulate(committee(), mu0, t_max=0.4, dt=0.1, path=path, resume=True) as traj:
        assert traj.times[-1] == pytest.approx(0.4) and np.array_equal(traj.final.a, mu0.a)


# -- one weight decay ------------------------------------------------------------------------------------------------
def test_langevin_weight_decay_is_the_weight_decay_penalty():
    """Langevin(weight_decay=λ) drifts by −∇[F' + (λ/2)|θ|²]: the same states, bit for bit, as Langevin without decay
    on the problem with the penalty WeightDecay(λ) = (λ/2)∫(a² + |w|²) — a λ-versus-λ/2 slip doubles or halves the
    decay and fails — and its regularized_risk is that problem's risk (1e-14 relative: the same sum in another
    order)."""
    from meanfield.dynamics import Langevin
    from meanfield.penalties import WeightDecay

    teacher = mf.TeacherNetwork([1.0, -1.0], np.eye(D)[:2])
    plain = mf.Problem(teacher, mf.Gaussian(D))
    penalised = mf.Problem(teacher, mf.Gaussian(D), penalty=WeightDecay(0.3))
    mu0 = mf.init.gaussian(12, D, seed=4)
    common = dict(t_max=0.5, dt=0.05, backend="numpy", alignment=False)
    decayed = mf.simulate(plain, mu0, dynamics=Langevin(temperature=1e-3, weight_decay=0.3, seed=5), **common)
    penalty = mf.simulate(penalised, mu0, dynamics=Langevin(temperature=1e-3, seed=5), **common)
    assert np.array_equal(decayed.final.state(), penalty.final.state())
    np.testing.assert_allclose(decayed.observables["regularized_risk"], penalty.risk, rtol=1e-14, atol=0)


# -- the layout and the one forward pass ---------------------------------------------------------------------------
@pytest.mark.parametrize("outputs", [None, 3])
@pytest.mark.parametrize("bias", [False, True])
def test_one_forward_pass_on_numpy_and_torch_against_the_sum_over_neurons(outputs, bias):
    """f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩ + c_j) summed neuron by neuron, against the measure's predict, the problem's,
    the torch module SGD trains (1e-13: fp64 round-off of 9 terms) and, for a scalar output, the teacher network of
    the same neurons; the layout of the state and the particle type follow from (K, bias) and the spec."""
    unit = mf.activations.Tanh()
    mu = mf.init.gaussian(9, 3, seed=0, a_std=1.0, bias_std=0.5 if bias else None, outputs=outputs)
    x = np.random.default_rng(1).standard_normal((11, 3))
    c = mu.c if bias else np.zeros(mu.m)
    a = mu.a if outputs else mu.a[:, None]
    expected = sum(mu.weights[j] * np.outer(np.tanh(x @ mu.b[j] + c[j]), a[j]) for j in range(mu.m))
    expected = expected if outputs else expected[:, 0]
    network = Network(unit, 3, bias, outputs)
    np.testing.assert_allclose(mu.predict(x, unit), expected, rtol=0, atol=1e-13)
    module = network.module(mu)
    np.testing.assert_allclose(module(torch.tensor(x)).detach().numpy(), expected, rtol=0, atol=1e-13)
    if outputs is None:
        teacher = mf.TeacherNetwork(mu.weights * mu.a, mu.b, activation=unit, bias=mu.c if bias else None)
        np.testing.assert_allclose(teacher(x), expected, rtol=0, atol=1e-13)
        np.testing.assert_allclose(teacher.torch(torch.tensor(x)).numpy(), expected, rtol=0, atol=1e-13)
    layout = Layout.from_spec(network.spec())
    assert layout == network.layout == mu.layout and particle_type(outputs, bias) is type(mu)
    a_part, w_part = layout.split(mu.state())
    assert np.array_equal(a_part, mu.a) and np.array_equal(w_part, mu.state()[:, layout.output_columns:])
    assert type(module.to_measure()) is type(mu)


def test_problem_variants_delegate_to_their_base_and_say_what_they_accept():
    """A variant reads what it does not define from its base (target, input law, data set) through one mechanism, and
    ProblemVariant.accepts gives the one-line reason it refuses a base (here the linearised flow, written for a data
    set, refusing a population problem), None when it accepts it."""
    from meanfield.lazy import LinearizedProblem
    from meanfield.symmetry import SymmetricProblem, sign_flip

    base = mf.Problem(mf.CubicTarget(np.ones(D)), mf.Gaussian(D))
    symmetric = SymmetricProblem(base, sign_flip(D))
    assert symmetric.target is base.target and symmetric.scale == base.scale and symmetric.network is base.network
    assert SymmetricProblem.accepts(base) is None
    reason = LinearizedProblem.accepts(base)
    assert reason is not None and "EmpiricalProblem" in reason and "\n" not in reason
    data = mf.EmpiricalProblem(DataSet(np.eye(3), np.ones(3)))
    lin = LinearizedProblem(data, mf.init.doubled(mf.init.gaussian(2, 3, seed=0)))
    assert lin.data is data.data and lin.loss is data.loss and LinearizedProblem.accepts(data) is None
    with pytest.raises(AttributeError):
        assert lin.no_such_attribute is None
