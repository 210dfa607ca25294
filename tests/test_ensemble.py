"""Ensembles streamed from HDF5: the streamed statistics equal the in-memory ones; kernels; fits; sweeps."""

import json

import numpy as np
import pytest

import meanfield as mf
from meanfield.weights.analysis import (
    Ensemble,
    EnsembleMoments,
    RowPermutationTest,
    SquareMatrixModel,
    probe_pairs,
    row_permutation_test,
    scaled_covariance,
)
from meanfield.weights.mlp import train_mlp

D, M, SEEDS = 5, 48, 7


@pytest.fixture(scope="module")
def flow_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    problem = mf.Problem(mf.TeacherNetwork([2.0], np.eye(D)[:1]), mf.Gaussian(D))
    paths = []
    for s in range(SEEDS):
        path = root / f"seed{s}.h5"
        mf.simulate(problem, mf.init.sign_sphere(M, D, seed=s), t_max=8.0, dt=0.1, save_every=40, path=path).close()
        paths.append(path)
    return paths


def _stack(paths, name, index):
    out = []
    for p in paths:
        with mf.load(p) as t:
            out.append(np.concatenate([t.a[index][:, None], t.b[index]], axis=1) if name == "neurons"
                       else np.asarray(t.b[index]))
    return np.array(out)


def test_streamed_statistics_equal_in_memory(flow_runs):
    with Ensemble(flow_runs, progress=False, chunk=3) as ens:  # 3 batches of seeds
        stats = ens.statistics("neurons")
        assert len(ens) == SEEDS and np.allclose(stats["time"], [0.0, 4.0, 8.0])
        for i in range(len(ens.times)):
            ref = scaled_covariance(_stack(flow_runs, "neurons", i))
            for key in ("c_row", "c_col", "variance", "row_scaled", "column_scaled"):
                assert stats[key][i] == pytest.approx(ref[key], rel=1e-10, abs=1e-14), key
        p_stream = ens.permutation_test("neurons", -1, n_permutations=99, seed=4)
    p_memory = row_permutation_test(_stack(flow_runs, "neurons", -1), 99, seed=4)
    assert p_stream[1] == p_memory[1] and p_stream[0] == pytest.approx(p_memory[0], rel=1e-12)


def test_ensemble_moments_merge_batches_exactly():
    W = np.random.default_rng(0).standard_normal((40, 6, 3)) * 3 + 100.0  # offset: merging must not lose precision
    acc = EnsembleMoments()
    for i0 in range(0, 40, 7):
        acc.add(W[i0:i0 + 7])
    np.testing.assert_allclose(acc.variance, W.var(axis=0, ddof=1), rtol=1e-10)
    brute = np.mean([np.cov(W[:, i, :].T)[~np.eye(3, dtype=bool)].mean() for i in range(6)])
    assert acc.c_row == pytest.approx(brute, rel=1e-9)
    pooled = W.reshape(-1, 3)
    sigma = pooled.T @ pooled / len(pooled)
    level = np.trace(sigma) / 3
    assert acc.anisotropy == pytest.approx(np.linalg.norm(sigma - level * np.eye(3)) / level, rel=1e-10)
    a = RowPermutationTest(49, seed=1).add(W[:13]).add(W[13:]).result()
    b = RowPermutationTest(49, seed=1).add(W).result()
    assert a[1] == b[1] and a[0] == pytest.approx(b[0], rel=1e-12)


def test_layer_kernel_at_initialisation_is_the_arccos_kernel_and_drifts_with_training(flow_runs):
    x, y = probe_pairs(D, np.linspace(0.2, 3.0, 5), "zero_sum", seed=1)
    with Ensemble(flow_runs, progress=False) as ens:
        k = ens.layer_kernel(x, y)
    # initial neurons are uniform on the sphere (rotation invariant): within 5 standard errors of the closed form
    assert np.all(np.abs(k["mean"][0] - k["closed_form"][0]) <= 5 * k["se"][0])
    assert k["second_moment"][0] == pytest.approx(1.0, rel=1e-12)
    # a single-neuron teacher pulls the neurons towards e_1: the kernel is no longer the arc-cosine one
    drift = np.abs(k["mean"][-1] - k["closed_form"][-1]) / k["se"][-1]
    assert drift.max() > 5
    np.testing.assert_allclose(k["cosine_closed_form"][0], k["cosine_closed_form"][-1], rtol=1e-12)


@pytest.fixture(scope="module")
def mlp_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlp_ensemble")
    paths = []
    for s in range(4):
        train_mlp(width=6, depth=2, epochs=2, seed=s, path=root / f"s{s}.h5").close()
        paths.append(root / f"s{s}.h5")
    return paths


def test_matrix_model_fit_streams_from_files(mlp_runs):
    with Ensemble(mlp_runs, progress=False, chunk=3) as ens:
        fits = ens.fit_over_time(SquareMatrixModel, "W1")
        stacked = np.array([np.asarray(mf.load(p).observables["W1"][-1]) for p in mlp_runs])
        ref = SquareMatrixModel.fit(stacked)
        rows = ens.compare_invariants(fits[-1], "W1", n_model=500, seed=0)
    assert len(fits) == 3 and len(rows) > 0
    for name in ref.blocks:
        np.testing.assert_allclose(fits[-1].blocks[name], ref.blocks[name], rtol=1e-10)
    with pytest.raises(KeyError, match="no array 'W9'.*observables"):
        with Ensemble(mlp_runs, progress=False) as ens:
            ens.statistics("W9")


def test_errors(flow_runs, mlp_runs):
    with pytest.raises(ValueError, match="at least 2 runs"):
        Ensemble(flow_runs[:1])
    with pytest.raises(ValueError, match="different times"):
        Ensemble([flow_runs[0], mlp_runs[0]])
    with pytest.raises(mf.io.TrajectoryFileError):
        Ensemble([flow_runs[0], __file__])


def test_from_sweep_selects_completed_runs(tmp_path):
    from meanfield.sweep import run_sweep

    cfg = {"name": "digits", "run": {"kind": "mlp"}, "mlp": {"depth": 2, "epochs": 1},
           "sweep": {"output_dir": str(tmp_path / "sw"), "grid": {"mlp.width": [4, 5], "mlp.seed": [0, 1, 2]}}}
    manifest = run_sweep(cfg, n_workers=2, progress=False)
    assert all(r["status"] == "completed" for r in manifest["runs"]), manifest
    with Ensemble.from_sweep(tmp_path / "sw", progress=False, width=5) as ens:
        assert len(ens) == 3 and ens.kind == "mlp"
        assert ens.array("W1", 0, -1).shape == (5, 5)
    data = json.loads((tmp_path / "sw" / "manifest.json").read_text())
    assert len(data["runs"]) == 6
    with pytest.raises(ValueError, match="fewer than 2"):
        Ensemble.from_sweep(tmp_path / "sw", width=7)
