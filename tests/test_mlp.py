"""Bias-free MLPs on the digits data set: initial laws, optimisers against torch's, learning, HDF5, resume, config."""

import math

import numpy as np
import pytest
import torch

import meanfield as mf
from meanfield.config import run_config, validate_config
from meanfield.weights.mlp import BiasFreeMLP, Optimizer, load_dataset, train_mlp


def test_dataset_split_and_standardisation():
    x_tr, y_tr, x_te, y_te = load_dataset("digits", n_test=297)
    assert x_tr.shape == (1500, 64) and x_te.shape == (297, 64)
    assert set(np.unique(y_tr)) == set(range(10))
    used = x_tr.std(axis=0) > 0
    np.testing.assert_allclose(x_tr.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(x_tr.std(axis=0)[used], 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="no training data"):
        load_dataset("digits", n_test=5000)


@pytest.mark.parametrize("init", ["gaussian", "uniform"])
def test_initial_weights_have_variance_gain2_over_fan_in(init):
    net = BiasFreeMLP(64, 400, 2, 10, init=init, generator=torch.Generator().manual_seed(0))
    W1 = net.layers[1].detach().numpy()
    n = W1.size  # 160 000 entries: the sample variance has relative SE √(2/n) (gaussian) or less (uniform)
    assert W1.var() == pytest.approx(2.0 / 400, rel=5 * math.sqrt(2.0 / n))
    assert abs(W1.mean()) < 5 * math.sqrt(2.0 / 400 / n)
    kurtosis = np.mean(W1**4) / np.mean(W1**2) ** 2
    # Sample kurtosis of 160 000 entries: SE ≈ √(24/n) ≈ 0.012 (Gaussian), smaller for the uniform; 0.05 ≈ 4 SE.
    assert kurtosis == pytest.approx(3.0 if init == "gaussian" else 1.8, abs=0.05)
    assert [tuple(w.shape) for w in net.layers] == [(400, 64), (400, 400), (10, 400)]


@pytest.mark.parametrize("kind,kwargs,reference", [
    ("sgd", {"lr": 0.1}, lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd", {"lr": 0.1, "momentum": 0.9}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    ("adam", {"lr": 1e-2}, lambda p: torch.optim.Adam(p, lr=1e-2)),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-2},
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2)),
    ("adam", {"lr": 1e-2, "weight_decay": 1e-2}, lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-2)),
])
def test_optimisers_match_torch(kind, kwargs, reference):
    """Our fixed-state optimisers take the same steps as torch.optim (independent implementation)."""
    x_tr, y_tr, _, _ = load_dataset()
    xt, yt = torch.as_tensor(x_tr[:256]), torch.as_tensor(y_tr[:256])
    nets = [BiasFreeMLP(64, 12, 2, 10, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    ours, theirs = Optimizer(kind, nets[0].parameters(), **kwargs), reference(nets[1].parameters())
    for step in range(20):
        idx = slice(16 * (step % 16), 16 * (step % 16 + 1))
        for net, opt in zip(nets, (ours, theirs)):
            net.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    for a, b in zip(nets[0].layers, nets[1].layers):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_training_learns_the_digits():
    traj = train_mlp(width=32, depth=2, epochs=15, seed=0, lr=0.05)
    assert traj.risk[-1] < 0.1 * traj.risk[0]
    assert traj.observables["test_accuracy"][-1] > 0.9
    assert traj.observables["test_accuracy"][0] < 0.3
    assert traj.observables["W1"].shape == (16, 32, 32) and traj.final is None


def test_runs_are_reproducible_and_seeds_differ():
    a = train_mlp(width=8, depth=2, epochs=2, seed=5)
    b = train_mlp(width=8, depth=2, epochs=2, seed=5)
    c = train_mlp(width=8, depth=2, epochs=2, seed=6)
    np.testing.assert_array_equal(a.observables["W1"], b.observables["W1"])
    assert not np.allclose(a.observables["W1"][-1], c.observables["W1"][-1])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_file_run_resumes_bit_identically(tmp_path, optimizer):
    lr = 0.05 if optimizer == "sgd" else 1e-3
    full = train_mlp(width=8, depth=3, epochs=6, seed=2, optimizer=optimizer, lr=lr, momentum=0.0,
                     path=tmp_path / "full.h5")
    part = tmp_path / "part.h5"
    train_mlp(width=8, depth=3, epochs=3, seed=2, optimizer=optimizer, lr=lr, path=part).close()
    resumed = train_mlp(width=8, depth=3, epochs=6, seed=2, optimizer=optimizer, lr=lr, path=part, resume=True)
    assert resumed.kind == "mlp" and len(resumed) == 7
    np.testing.assert_array_equal(resumed.times, full.times)
    for name in ("W0", "W1", "W2", "W3", "test_loss"):
        np.testing.assert_array_equal(np.asarray(resumed.observables[name]), np.asarray(full.observables[name]))
    np.testing.assert_array_equal(resumed.risk, full.risk)
    with pytest.raises(ValueError, match="configuration differs.*lr"):
        train_mlp(width=8, depth=3, epochs=7, seed=2, optimizer=optimizer, lr=2 * lr, path=part, resume=True)
    with pytest.raises(FileExistsError):
        train_mlp(width=8, depth=3, epochs=1, seed=2, path=part)
    loaded = mf.load(part)
    assert loaded.observables["W2"].shape == (7, 8, 8) and loaded.problem_spec["dataset"] == "digits"
    for t in (full, resumed, loaded):
        t.close()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="width"):
        train_mlp(width=0)
    with pytest.raises(ValueError, match="optimizer"):
        train_mlp(width=4, optimizer="rmsprop", epochs=1)
    with pytest.raises(ValueError, match="init"):
        train_mlp(width=4, init="orthogonal", epochs=1)
    with pytest.raises(ValueError, match="batch_size"):
        train_mlp(width=4, batch_size=10**6, epochs=1)
    with pytest.raises(mf.FlowDivergedError, match="reduce lr"):
        train_mlp(width=16, lr=1e3, epochs=3)


def test_mlp_config_runs_through_run_config(tmp_path):
    cfg = {"name": "digits", "run": {"kind": "mlp", "output": str(tmp_path / "r.h5")},
           "mlp": {"width": 8, "depth": 2, "epochs": 2, "seed": 1}}
    validate_config(cfg)
    traj = run_config(cfg)
    assert traj.status == "completed" and traj.observables["W1"].shape == (3, 8, 8)
    traj.close()
    with pytest.raises(ValueError, match="unknown keys.*widht"):
        validate_config({"run": {"kind": "mlp"}, "mlp": {"widht": 3}})
    with pytest.raises(ValueError, match="missing table \\[mlp\\]"):
        validate_config({"run": {"kind": "mlp"}})
    with pytest.raises(ValueError, match="do not apply to kind = 'mlp'"):
        run_config({"run": {"kind": "mlp", "output": str(tmp_path / "s.h5"), "eta": 1}, "mlp": {"width": 4}})


def test_cli_info_and_plot_of_an_mlp_run(tmp_path, capsys):
    from meanfield.cli import main

    path = tmp_path / "m.h5"
    train_mlp(width=6, depth=2, epochs=2, seed=0, path=path).close()
    assert main(["info", str(path)]) == 0
    assert "kind:       mlp" in capsys.readouterr().out
    assert main(["plot", str(path), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "loss.png").exists() and (tmp_path / "fig" / "accuracy.png").exists()


def test_ctrl_c_returns_the_epochs_saved_and_the_file_resumes(tmp_path, monkeypatch):
    path = tmp_path / "i.h5"
    calls = {"n": 0}
    step = Optimizer.step

    def step_then_interrupt(self):
        calls["n"] += 1
        if calls["n"] == 2 * (1500 // 32) + 3:  # in the third epoch
            raise KeyboardInterrupt
        step(self)

    monkeypatch.setattr(Optimizer, "step", step_then_interrupt)
    with pytest.warns(UserWarning, match="epoch 3: interrupted"):
        traj = train_mlp(width=6, depth=2, epochs=4, seed=0, path=path)
    assert traj.status == "interrupted" and len(traj) == 3
    traj.close()
    monkeypatch.setattr(Optimizer, "step", step)
    resumed = train_mlp(width=6, depth=2, epochs=4, seed=0, path=path, resume=True)
    full = train_mlp(width=6, depth=2, epochs=4, seed=0)
    np.testing.assert_array_equal(np.asarray(resumed.observables["W1"]), full.observables["W1"])
    resumed.close()
