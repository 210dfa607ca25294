"""A long biased ReLU teacher–student flow: does its risk ever rise (a RiskIncreaseWarning, which the exact flow
cannot produce beyond round-off)?

Teacher f*(x) = Σ_{i ≤ 3} c_i relu(⟨u_i, x⟩ + β_i), c = (1, −0.8, 0.6), β = (0.5, −0.3, 0.2), unit u_i, x ~ N(0, I_d);
student of m biased neurons from a Gaussian start (b ~ N(0, I/d), c ~ N(0, 0.25)), Heun with dt, on numba. The flow
converges and its risk falls towards round-off, where an inexact self-interaction (ρ = 1 − 1 ulp for a neuron with
itself) shows as a rise. Prints the final risk, the first rise (if any) and the wall time; writes
results/biased_relu/long_flow.json (through experiments/outputs.py: 4 significant digits, no wall time).

    python experiments/biased_relu_long_flow.py                 # m = 32, d = 4, t = 3000, dt = 0.1
    python experiments/biased_relu_long_flow.py --t-max 200     # a short check
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from outputs import write_summary

import meanfield as mf
from meanfield.flow import RiskIncreaseWarning

OUT = Path(__file__).resolve().parents[1] / "results" / "biased_relu"
COEF, BETA = np.array([1.0, -0.8, 0.6]), np.array([0.5, -0.3, 0.2])


def run(m: int, d: int, t_max: float, dt: float, backend: str, seed: int) -> dict:
    U = np.random.default_rng(0).standard_normal((3, d))
    teacher = mf.TeacherNetwork(COEF, U / np.linalg.norm(U, axis=1, keepdims=True), bias=BETA)
    problem = mf.Problem(teacher, mf.Gaussian(d), bias=True)
    mu0 = mf.init.gaussian(m, d, seed=seed, bias_std=0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RiskIncreaseWarning)
        traj = mf.simulate(problem, mu0, t_max=t_max, dt=dt, solver="heun", save_every=max(1, int(10 / dt)),
                           backend=backend)
    rises = [str(w.message) for w in caught if issubclass(w.category, RiskIncreaseWarning)]
    return {"m": m, "d": d, "t_max": t_max, "dt": dt, "backend": backend, "seed": seed,
            "risk_start": float(traj.risk[0]),
            "risk_end": float(traj.risk[-1]), "risk_scale": float(problem.risk_scale),
            "risk_increase_warnings": rises}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--d", type=int, default=4)
    parser.add_argument("--t-max", type=float, default=3000.0)
    parser.add_argument("--dt", type=float, default=0.1)
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = run(args.m, args.d, args.t_max, args.dt, args.backend, args.seed)
    print(json.dumps(out, indent=2))
    print(f"{time.perf_counter() - start:.0f} s")
    write_summary(OUT / "long_flow.json", out)


if __name__ == "__main__":
    main()
