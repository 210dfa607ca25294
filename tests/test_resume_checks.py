"""A resumed run is the same run or is refused: every setting stored in the file is compared (absent ones as their
default), a target function by what it computes, the time already reached; and bad arguments are refused up front
with one line naming them."""

import hashlib
import json
import re

import h5py
import numpy as np
import pytest

import meanfield as mf
from meanfield.data import DataSet
from meanfield.dynamics import BirthDeath, Conic, Langevin
from meanfield.flow import RESUMABLE_CHANGES
from meanfield.losses import CrossEntropy
from meanfield.reduced import OddReducedProblem
from meanfield.weights.mlp import train_mlp


def _digest(path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _teacher():
    return mf.Problem(mf.TeacherNetwork([1.0, 0.5], np.eye(3)[:2]), mf.Gaussian(3))


def _data_problem(**kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    return mf.EmpiricalProblem(DataSet(x, np.abs(x[:, 0])), **kwargs)


MU0 = mf.init.sign_sphere(8, 3, seed=1)

#: One short run of every kind, as a function of its settings: (run(t_max, **settings), settings of the stored run,
#: the keys that may change on resume).
KINDS = {
    "flow": (lambda t, **kw: mf.simulate(_teacher(), MU0, t_max=t, dt=0.1, backend="numpy", **kw), {},
             RESUMABLE_CHANGES),
    "adaptive": (lambda t, **kw: mf.simulate(_teacher(), MU0, t_max=t, dt=0.1, solver="bosh3", backend="numpy",
                                             **kw), {}, RESUMABLE_CHANGES),
    "langevin": (lambda t, **kw: mf.simulate(_teacher(), MU0, t_max=t, dt=0.1, backend="numpy", **kw),
                 {"dynamics": Langevin(1e-3, seed=2, diagnostic_particles=8)}, RESUMABLE_CHANGES),
    "conic": (lambda t, **kw: mf.simulate(_teacher(), MU0, t_max=t, dt=0.1, backend="numpy", **kw),
              {"dynamics": Conic(alpha=0.5)}, RESUMABLE_CHANGES),
    "birth_death": (lambda t, **kw: mf.simulate(_teacher(), MU0, t_max=t, dt=0.1, backend="numpy", **kw),
                    {"dynamics": BirthDeath(rate=2.0, seed=3)}, RESUMABLE_CHANGES),
    "data_set": (lambda t, **kw: mf.simulate(_data_problem(), MU0, t_max=t, dt=0.1, backend="numpy", **kw), {},
                 RESUMABLE_CHANGES),
    "sgd": (lambda t, **kw: mf.sgd.train(_teacher(), MU0, t_max=t, eta=0.1, batch_size=16, seed=4, **kw), {},
            ("t_max", "user")),
    "mlp": (lambda t, **kw: train_mlp(width=4, depth=2, epochs=int(t), batch_size=500, **kw), {},
            ("epochs", "user")),
}


def _leaves(value, prefix=""):
    """The dotted name of every leaf of a JSON configuration."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix


def _set(config: dict, dotted: str, value) -> dict:
    out = node = json.loads(json.dumps(config))
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return out


def _rewrite_config(path, config: dict) -> None:
    with h5py.File(path, "r+") as f:
        f.attrs["config"] = json.dumps(config)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_stored_setting_is_compared_on_resume(tmp_path, kind):
    """For each run kind, every entry of the stored configuration (nested ones included) that may not change is
    compared: a file whose entry differs is refused with a line naming it, and left as it is."""
    run, settings, resumable = KINDS[kind]
    path = tmp_path / "run.h5"
    run(2, path=path, **settings).close()
    with h5py.File(path, "r") as f:
        stored = json.loads(f.attrs["config"])
    names = [name for name in _leaves(stored) if name.split(".")[0] not in resumable]
    assert len(names) >= 10
    for name in names:
        _rewrite_config(path, _set(stored, name, "changed"))
        before = _digest(path)
        with pytest.raises(ValueError, match=f"cannot resume .*{re.escape(name)}: file has \"changed\""):
            run(4, path=path, resume=True, **settings)
        assert _digest(path) == before
    _rewrite_config(path, stored)
    resumed = run(4, path=path, resume=True, **settings)  # the untouched file resumes
    assert resumed.status == "completed" and np.isclose(float(resumed.times[-1]), 4.0, rtol=1e-12)
    resumed.close()


@pytest.mark.parametrize("change", [{"diagnostic": False}, {"diagnostic_particles": 4}])
def test_langevin_diagnostic_settings_are_compared(tmp_path, change):
    """A Langevin run with the Stein diagnostic resumed without it (or on another number of particles) is refused:
    the file's observables would be cut short (readers take the shortest series) or computed differently."""
    path = tmp_path / "langevin.h5"
    mf.simulate(_teacher(), MU0, t_max=0.5, dt=0.1, backend="numpy", path=path,
                dynamics=Langevin(1e-3, seed=2, diagnostic_particles=8)).close()
    before = _digest(path)
    other = Langevin(1e-3, seed=2, **{"diagnostic_particles": 8, **change})
    key = next(iter(change))
    with pytest.raises(ValueError, match=f"dynamics[.]{key}: file has"):
        mf.simulate(_teacher(), MU0, t_max=1.0, dt=0.1, backend="numpy", path=path, resume=True, dynamics=other)
    assert _digest(path) == before
    reverse = tmp_path / "without.h5"
    mf.simulate(_teacher(), MU0, t_max=0.5, dt=0.1, backend="numpy", path=reverse, dynamics=other).close()
    with pytest.raises(ValueError, match=f"dynamics[.]{key}: file has"):
        mf.simulate(_teacher(), MU0, t_max=1.0, dt=0.1, backend="numpy", path=reverse, resume=True,
                    dynamics=Langevin(1e-3, seed=2, diagnostic_particles=8))


@pytest.mark.parametrize("stored, now", [({}, {"temperature": 1e-3}), ({"temperature": 1e-3}, {}),
                                         ({}, {"weight_decay": 0.1}), ({"weight_decay": 0.1}, {}),
                                         ({}, {"max_risk_factor": 10.0})])
def test_sgd_settings_added_or_removed_are_compared(tmp_path, stored, now):
    path = tmp_path / "sgd.h5"
    mf.sgd.train(_teacher(), MU0, t_max=0.5, eta=0.1, batch_size=16, seed=4, path=path, **stored).close()
    before = _digest(path)
    key = next(iter({**stored, **now}))
    with pytest.raises(ValueError, match=f"{key}: file has"):
        mf.sgd.train(_teacher(), MU0, t_max=1.0, eta=0.1, batch_size=16, seed=4, path=path, resume=True, **now)
    assert _digest(path) == before


def test_a_file_without_an_entry_is_compared_with_its_default(tmp_path):
    """A file written before an entry was recorded (here: plain SGD without ``temperature``, a Langevin run
    without ``diagnostic``) resumes a run at the default, bit-identically, and refuses any other value."""
    straight = mf.sgd.train(_teacher(), MU0, t_max=1.0, eta=0.1, batch_size=16, seed=4)
    path = tmp_path / "old.h5"
    mf.sgd.train(_teacher(), MU0, t_max=0.5, eta=0.1, batch_size=16, seed=4, path=path).close()
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["config"])
    _rewrite_config(path, {k: v for k, v in config.items() if k not in ("temperature", "weight_decay")})
    with pytest.raises(ValueError, match="temperature: file has 0.0, now 0.01"):
        mf.sgd.train(_teacher(), MU0, t_max=1.0, eta=0.1, batch_size=16, seed=4, path=path, resume=True,
                     temperature=0.01)
    resumed = mf.sgd.train(_teacher(), MU0, t_max=1.0, eta=0.1, batch_size=16, seed=4, path=path, resume=True)
    assert np.array_equal(resumed.b[-1], straight.b[-1]) and np.array_equal(resumed.a[-1], straight.a[-1])
    resumed.close()

    path = tmp_path / "langevin.h5"
    mf.simulate(_teacher(), MU0, t_max=0.5, dt=0.1, backend="numpy", path=path, dynamics=Langevin(1e-3)).close()
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["config"])
    del config["dynamics"]["diagnostic"], config["dynamics"]["diagnostic_particles"]
    _rewrite_config(path, config)
    with pytest.raises(ValueError, match="dynamics.diagnostic: file has true, now false"):
        mf.simulate(_teacher(), MU0, t_max=1.0, dt=0.1, backend="numpy", path=path, resume=True,
                    dynamics=Langevin(1e-3, diagnostic=False))
    mf.simulate(_teacher(), MU0, t_max=1.0, dt=0.1, backend="numpy", path=path, resume=True,
                dynamics=Langevin(1e-3)).close()


def test_mlp_loss_guard_is_compared(tmp_path):
    path = tmp_path / "mlp.h5"
    train_mlp(width=4, epochs=1, batch_size=500, path=path).close()
    with pytest.raises(ValueError, match="max_loss_factor: file has 100.0, now 5.0"):
        train_mlp(width=4, epochs=2, batch_size=500, path=path, resume=True, max_loss_factor=5.0)


def test_tile_elements_are_compared(tmp_path):
    """The data tile orders the sums of a data-set run: another tile is not the same run (its risk differs in the
    last bits), so it is refused, whether set on the problem or on the backend."""
    tiles = {}
    for tile in (16, 64):
        tiles[tile] = mf.simulate(_data_problem(tile_elements=tile), MU0, t_max=1.0, dt=0.1, backend="numpy")
    assert not np.array_equal(tiles[16].risk, tiles[64].risk)   # the tile does change the run (round-off)
    path = tmp_path / "data.h5"
    mf.simulate(_data_problem(tile_elements=16), MU0, t_max=0.5, dt=0.1, backend="numpy", path=path).close()
    with pytest.raises(ValueError, match="problem.tile_elements: file has 16, now 64"):
        mf.simulate(_data_problem(tile_elements=64), MU0, t_max=1.0, dt=0.1, backend="numpy", path=path,
                    resume=True)
    path = tmp_path / "backend.h5"
    mf.simulate(_teacher(), MU0, t_max=0.5, dt=0.1, backend="numpy", path=path).close()
    with pytest.raises(ValueError, match="tile_elements: file has null, now 4096"):
        mf.simulate(_teacher(), MU0, t_max=1.0, dt=0.1, backend="numpy", path=path, resume=True,
                    backend_options={"tile_elements": 4096})


def test_function_targets_are_compared_by_what_they_compute(tmp_path):
    """Two lambdas share a name; what they compute on a fixed probe set tells them apart. The same function (a
    new object) resumes bit-identically; another one is refused."""
    def problem(fn):
        return mf.Problem(mf.MonteCarloTarget(fn, d=3, n_samples=512, seed=0), mf.Gaussian(3))

    straight = mf.simulate(problem(lambda x: np.abs(x[:, 0])), MU0, t_max=1.0, dt=0.1, backend="numpy")
    path = tmp_path / "mc.h5"
    mf.simulate(problem(lambda x: np.abs(x[:, 0])), MU0, t_max=0.5, dt=0.1, backend="numpy", path=path).close()
    before = _digest(path)
    with pytest.raises(ValueError, match="problem.target.fn_checksum: file has"):
        mf.simulate(problem(lambda x: np.abs(x[:, 1])), MU0, t_max=1.0, dt=0.1, backend="numpy", path=path,
                    resume=True)
    assert _digest(path) == before
    resumed = mf.simulate(problem(lambda z: abs(z[:, 0])), MU0, t_max=1.0, dt=0.1, backend="numpy", path=path,
                          resume=True)
    assert np.array_equal(resumed.b[-1], straight.b[-1])
    resumed.close()

    Q = np.eye(3)[:, :2]
    path = tmp_path / "multi_index.h5"
    mf.simulate(mf.Problem(mf.MultiIndexTarget(lambda h: np.abs(h[:, 0] * h[:, 1]), Q, max_nodes=64), mf.Gaussian(3)),
                MU0, t_max=0.5, dt=0.1, backend="numpy", path=path).close()
    with pytest.raises(ValueError, match="problem.target.g_checksum: file has"):
        mf.simulate(mf.Problem(mf.MultiIndexTarget(lambda h: np.abs(h[:, 0] + h[:, 1]), Q, max_nodes=64),
                               mf.Gaussian(3)), MU0, t_max=1.0, dt=0.1, backend="numpy", path=path, resume=True)


@pytest.mark.parametrize("kind", ["flow", "sgd", "mlp"])
def test_a_resume_before_the_time_reached_is_refused(tmp_path, kind):
    """A resume to a t_max the run has already passed would return "completed" with t_end beyond t_max: refused,
    the file left as it is; the same t_max is accepted (nothing to do)."""
    run, settings, _ = KINDS[kind]
    path = tmp_path / "run.h5"
    run(3, path=path, **settings).close()
    before = _digest(path)
    with pytest.raises(ValueError, match="already reached t = 3"):
        run(2, path=path, resume=True, **settings)
    assert _digest(path) == before
    with run(3, path=path, resume=True, **settings) as again:
        assert again.status == "completed" and np.isclose(float(again.times[-1]), 3.0, rtol=1e-12)


def test_sgd_whose_last_step_passes_t_max_resumes_to_the_same_t_max(tmp_path):
    path = tmp_path / "sgd.h5"
    mf.sgd.train(_teacher(), MU0, t_max=1.0, eta=0.3, batch_size=16, path=path).close()   # ends at t = 1.2
    with mf.sgd.train(_teacher(), MU0, t_max=1.0, eta=0.3, batch_size=16, path=path, resume=True) as again:
        assert again.status == "completed" and np.isclose(float(again.times[-1]), 1.2, rtol=1e-12)
    with pytest.raises(ValueError, match="already reached t = 1.2"):
        mf.sgd.train(_teacher(), MU0, t_max=0.5, eta=0.3, batch_size=16, path=path, resume=True)


@pytest.mark.parametrize("name", ["loss/train", "", ".", "a\0b"])
def test_observable_names_that_cannot_be_datasets_are_refused_up_front(tmp_path, name):
    path = tmp_path / "run.h5"
    with pytest.raises(ValueError, match="observable name .* cannot name a dataset"):
        mf.simulate(_teacher(), MU0, t_max=0.2, dt=0.1, path=path, observables={name: lambda mu: 1.0})
    with pytest.raises(ValueError, match="observable name .* cannot name a dataset"):
        mf.sgd.train(_teacher(), MU0, t_max=0.2, eta=0.1, path=path, observables={name: lambda mu: 1.0})
    assert not path.exists()


def test_sgd_refuses_problems_whose_particles_stand_for_another_network():
    """The odd reduction's m particles stand for the 2m-neuron symmetrised network: SGD of the m neurons would
    record the risk of the symmetrisation (the wrong network); refused as the other variants are."""
    with pytest.raises(ValueError, match="SGD trains the network of the particles.*OddReducedProblem"):
        mf.sgd.train(OddReducedProblem(mf.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(3))), MU0, t_max=0.2,
                     eta=0.1)
    from meanfield.symmetry import SymmetricProblem, sign_flip

    cubic = mf.Problem(mf.CubicTarget(np.ones(3)), mf.Gaussian(3))
    with pytest.raises(ValueError, match="SGD trains the network of the particles.*SymmetricProblem"):
        mf.sgd.train(SymmetricProblem(cubic, sign_flip(3)), MU0, t_max=0.2, eta=0.1)


def _sgd(**kwargs):
    return lambda: mf.sgd.train(_teacher(), MU0, **{"t_max": 0.2, "eta": 0.1, "batch_size": 8, **kwargs})


def _flow(**kwargs):
    return lambda: mf.simulate(_teacher(), MU0, **{"t_max": 0.2, "dt": 0.1, "backend": "numpy", **kwargs})


def _classes(y, y_test):
    x = np.random.default_rng(0).standard_normal((len(y), 2))
    return lambda: mf.EmpiricalProblem(DataSet(x, np.asarray(y, float), x[:len(y_test)], np.asarray(y_test, float)),
                                       loss="cross_entropy")


BAD_ARGUMENTS = [
    (_sgd(max_risk_factor=float("nan")), "max_risk_factor"),
    (_sgd(max_risk_factor=-1.0), "max_risk_factor"),
    (_flow(max_risk_factor=float("nan")), "max_risk_factor"),
    (lambda: train_mlp(width=4, epochs=1, max_loss_factor=float("nan")), "max_loss_factor"),
    (lambda: train_mlp(width=4, epochs=1, max_loss_factor=-2.0), "max_loss_factor"),
    (_flow(stop_risk=float("nan")), "stop_risk"),
    (_flow(stop_risk="0.1"), "stop_risk"),
    (_flow(t_max=True), "t_max"),
    (_sgd(t_max=True), "t_max"),
    (_sgd(seed=1.5), "seed"),
    (_sgd(seed=-1), "seed"),
    (_sgd(temperature="0.1"), "temperature"),
    (lambda: train_mlp(width=4, epochs=1, seed=-3), "seed"),
    (lambda: mf.init.sign_sphere(4, 3, seed=-1), "seed"),
    (lambda: mf.init.gaussian(4, 3, seed=0.5), "seed"),
    (lambda: Langevin(temperature="0.1"), "temperature"),
    (lambda: Langevin(0.1, diagnostic_particles=-5), "diagnostic_particles"),
    (lambda: Langevin(0.1, seed=-2), "seed"),
    (lambda: BirthDeath(seed=2.5), "seed"),
    (lambda: mf.MonteCarloTarget(lambda x: x[:, 0], d=2, seed=-1), "seed"),
    (lambda: mf.Problem(mf.TeacherNetwork([1.0], [[1.0, 0.0, 0.0]]), mf.Gaussian(3), bias="no"), "bias"),
    (lambda: mf.Problem(mf.LinearTarget(np.ones(3)), mf.Gaussian(3), output_scale=1e300), "output_scale"),
    (lambda: _data_problem(output_scale=1e-300), "output_scale"),
    (lambda: CrossEntropy(classes=0), "classes"),
    (lambda: CrossEntropy(classes=1), "classes"),
    (lambda: mf.ParticleMeasure(np.ones(3), np.ones((3, 0))), "b"),
    (lambda: mf.init.gaussian(3, 2, outputs=0), "outputs"),
    (_classes([0, 1, 2, 0, 1, 2], [0, 3]), "y_test"),
    (_classes([0, 0, 0, 0], [0, 0]), "one class"),
]


@pytest.mark.parametrize("call, name", BAD_ARGUMENTS, ids=[f"{i}-{n}" for i, (_, n) in enumerate(BAD_ARGUMENTS)])
def test_bad_arguments_get_one_line_naming_them(call, name):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    assert name in message and "\n" not in message
