"""One velocity evaluation of the exact empirical flow (:class:`meanfield.EmpiricalProblem`) against two baselines
measured in the same run: (i) the machine's fp64 matmul rate — the evaluation is two GEMMs of 2 m n D flops each
(Z = W X̃ᵀ and (σ'(Z) ⊙ r) X̃) around an elementwise pass, so 4 m n D / time over the GEMM rate is its fraction of the
roofline — and (ii) what a researcher would otherwise write: torch autograd of the finite network's loss
(forward, backward, divided by the particle masses), on the same threads.

    python benchmarks/empirical.py            # writes results/benchmarks/empirical.json
    python benchmarks/empirical.py --quick    # the two smallest rows
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from _common import best_time, machine, matmul_rate, write_json  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield.data import DataSet  # noqa: E402

#: (m particles, n samples, d inputs, loss): MNIST-like and digits-like shapes among them.
ROWS = [(1024, 10_000, 10, "logistic"), (1024, 10_000, 100, "logistic"), (4096, 10_000, 100, "logistic"),
        (4096, 1_437, 64, "logistic"), (1024, 60_000, 784, "squared"), (4096, 1_437, 64, "cross_entropy")]


def make(m: int, n: int, d: int, loss: str):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d))
    if loss == "cross_entropy":
        y = rng.integers(0, 10, n).astype(float)
    else:
        y = np.sign(x[:, 0] + 0.1)
    problem = mf.EmpiricalProblem(DataSet(x, y), loss=loss, bias=True)
    mu = mf.init.gaussian(m, d, seed=1, bias_std=0.5, outputs=10 if loss == "cross_entropy" else None)
    return problem, mu


def time_exact(problem, mu, backend: str) -> float:
    bound = problem.bind(backend)
    bk = bound.backend
    state, weights = bk.asarray(mu.state()), bk.asarray(mu.weights)
    calls = [0]

    def run():
        calls[0] += 1
        bound.velocity(state * (1.0 + 1e-12 * calls[0]), weights)

    return best_time(run, min_total=0.5, max_repeats=3)


def time_autograd(problem, mu) -> float:
    """The same velocity by torch autograd of the finite network's loss (fp64, CPU)."""
    import torch

    net = mf.sgd.TwoLayerNetwork.from_measure(mu, activation=problem.unit)
    nx = mf.get_backend("torch")
    x, y = torch.tensor(problem.features), torch.tensor(problem.labels)
    inverse = 1.0 / net.weights

    def run():
        net.zero_grad(set_to_none=True)
        problem.batch_loss(net.predict_features(x), y, nx).backward()
        [p.grad * (inverse if p.ndim == 1 else inverse[:, None]) for p in net.neuron_parameters().values()]

    return best_time(run, min_total=0.5, max_repeats=3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rate = matmul_rate()
    print(f"fp64 matmul rate: {rate / 1e9:.1f} GFLOP/s")
    rows = []
    for m, n, d, loss in ROWS[:2] if args.quick else ROWS:
        problem, mu = make(m, n, d, loss)
        width = problem.features.shape[1]
        flops = 4.0 * m * n * width * (1 if loss != "cross_entropy" else 1)
        row = {"m": m, "n": n, "d": d, "loss": loss, "gemm_flops": flops}
        for backend in ("numpy", "numba", "torch"):
            t = time_exact(problem, mu, backend)
            row[f"{backend}_s"] = t
            row[f"{backend}_roofline"] = flops / t / rate
        row["autograd_s"] = time_autograd(problem, mu)
        best = min(row[f"{b}_s"] for b in ("numpy", "numba", "torch"))
        row["speedup_vs_autograd"] = row["autograd_s"] / best
        rows.append(row)
        print(f"m={m:5d} n={n:6d} d={d:4d} {loss:13s}  numpy {row['numpy_s'] * 1e3:8.1f} ms "
              f"({row['numpy_roofline']:.0%})  numba {row['numba_s'] * 1e3:8.1f} ms ({row['numba_roofline']:.0%})  "
              f"torch {row['torch_s'] * 1e3:8.1f} ms ({row['torch_roofline']:.0%})  autograd "
              f"{row['autograd_s'] * 1e3:8.1f} ms  → ×{row['speedup_vs_autograd']:.2f}", flush=True)
    path = write_json("empirical", {"machine": machine(), "matmul_gflops": rate / 1e9, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
