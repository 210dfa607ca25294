"""Wall time to reach the odd target's minimum risk (within 1 %): the exact flow against Monte-Carlo SGD.

Problem (Hajjar & Chizat 2023, §5): f*(x) = C Σ_k z_k x_k³ with x ~ N(0, I/d), d = 60, C chosen so that
½ E f*² = 1. ReLU features carry no odd Hermite component above degree one, so the best bias-free ReLU network
is the linear projection w* = Σ⁻¹ E[f* x] and the minimal risk is ½(E f*² − ⟨w*, Σ w*⟩) = ½(2 − 18/15) = 0.4,
whatever z. Both runs start from the same ``sign_sphere`` measure with m = 1024 and stop once the exact
population risk is ≤ 1.01 × 0.4.

* exact flow: ``mf.simulate`` (risk computed with every step, in closed form);
* SGD: the same network in torch, f(x) = (1/m) Σ a_j relu(b_j·x), fresh batches of 512 inputs per step,
  lr = m·η (so t = steps·η), fp32 on the CPU; its exact risk is checked after every step (``--check``) with
  the clock stopped (monitoring is not charged to SGD). Several η and solver steps are tried; the fastest
  of each that reaches the goal is reported. Goals: 1 % above the minimum (the yardstick) and 0.1 %.

    python benchmarks/time_to_risk.py        # writes results/benchmarks/time_to_risk.json
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from _common import machine, write_json  # noqa: E402

import meanfield as mf  # noqa: E402

D, M, BATCH = 60, 1024, 512


def odd_problem():
    inputs = mf.Gaussian(D, variance=1.0 / D)
    z = np.random.default_rng(0).standard_normal(D)
    target = mf.CubicTarget.normalized(z / np.linalg.norm(z), inputs)
    w_star = np.linalg.solve(inputs.covariance(), target.linear_moment(inputs))
    minimum = 0.5 * (target.second_moment(inputs) - w_star @ inputs.covariance() @ w_star)
    return mf.Problem(target, inputs), minimum


def run_flow(problem, mu0, goal, solver, dt, backend, t_cap):
    """Integrate until the risk first drops to ``goal``; returns (wall s, t reached or None, steps, last risk)."""
    start = time.perf_counter()
    traj = mf.simulate(problem, mu0, t_max=t_cap, dt=dt, solver=solver, save_every=mf.SaveAt(100, particles=False),
                       backend=backend, max_risk_factor=1e3, stop_risk=goal)
    wall = time.perf_counter() - start
    t_hit = float(traj.times[-1]) if traj.status == "converged" else None
    return wall, t_hit, traj.info["n_steps"], float(traj.risk[-1])


def run_sgd(problem, mu0, goal, eta, t_cap, check_every, seed=0):
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    a = torch.tensor(mu0.a, dtype=torch.float32)
    b = torch.tensor(mu0.b, dtype=torch.float32)
    z = torch.tensor(problem.target.z, dtype=torch.float32)
    scale, std = problem.target.scale, float(np.sqrt(problem.inputs.variance))
    wall, steps, t = 0.0, 0, 0.0
    while t < t_cap:
        start = time.perf_counter()
        for _ in range(check_every):
            x = std * torch.randn(BATCH, D, generator=gen)
            y = scale * (x**3 @ z)
            h = x @ b.T
            act = torch.relu(h)
            res = act @ a / M - y
            # lr = m·η on ½ mean(res²): each particle moves by η times its own (Monte-Carlo) velocity.
            grad_a = act.T @ res / BATCH
            grad_b = ((h > 0) * res[:, None]).T @ x * (a / BATCH)[:, None]
            a -= eta * grad_a
            b -= eta * grad_b
        wall += time.perf_counter() - start
        steps += check_every
        t = steps * eta
        risk = problem.risk(mf.ParticleMeasure(a.double().numpy(), b.double().numpy()), backend="numba")
        if not np.isfinite(risk) or risk > 1e3:
            return wall, None, steps, risk
        if risk <= goal:
            return wall, t, steps, risk
    return wall, None, steps, risk


def race(problem, mu0, goal, t_cap, check):
    flows = []
    for solver, dt in [("euler", 4.0), ("heun", 4.0), ("heun", 8.0), ("rk4", 8.0), ("rk4", 16.0), ("dopri5", 4.0)]:
        wall, t_hit, steps, last = run_flow(problem, mu0, goal, solver, dt, "numba", t_cap)
        flows.append({"solver": solver, "dt": dt, "wall_s": wall, "t_reached": t_hit, "steps": steps,
                      "final_risk": last})
        print(f"  flow  {solver:6s} dt={dt:4.1f}: t={t_hit}, {steps} steps, {wall:.3f} s")
    sgds = []
    for eta in (0.25, 0.5, 1.0, 2.0):
        wall, t_hit, steps, last = run_sgd(problem, mu0, goal, eta, t_cap, check)
        sgds.append({"eta": eta, "batch": BATCH, "wall_s": wall, "t_reached": t_hit, "steps": steps,
                     "final_risk": last})
        print(f"  SGD   eta={eta:4.2f}: t={t_hit}, {steps} steps, {wall:.3f} s (risk {last:.5f})")
    ok_flow = [f for f in flows if f["t_reached"] is not None]
    ok_sgd = [g for g in sgds if g["t_reached"] is not None]
    best_flow = min(ok_flow, key=lambda f: f["wall_s"]) if ok_flow else None
    best_sgd = min(ok_sgd, key=lambda g: g["wall_s"]) if ok_sgd else None
    ratio = best_sgd["wall_s"] / best_flow["wall_s"] if best_sgd and best_flow else None
    return {"goal": goal, "flow": flows, "sgd": sgds, "best_flow": best_flow, "best_sgd": best_sgd,
            "sgd_over_flow": ratio}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--t-cap", type=float, default=1000.0)
    parser.add_argument("--check", type=int, default=1, help="SGD steps between exact risk checks")
    args = parser.parse_args(argv)
    problem, minimum = odd_problem()
    mu0 = mf.init.sign_sphere(M, D, seed=1)
    print(f"odd target, d={D}, m={M}: initial risk {problem.risk(mu0):.4f}, minimum {minimum:.4f}")
    mf.simulate(problem, mu0, t_max=1.0, dt=0.5, backend="numba")  # compile outside the timings
    races = {}
    for tol in (0.01, 0.001):
        print(f"goal: risk <= (1 + {tol}) x minimum = {(1 + tol) * minimum:.5f}")
        races[str(tol)] = result = race(problem, mu0, (1 + tol) * minimum, args.t_cap, args.check)
        bf, bs = result["best_flow"], result["best_sgd"]
        print(f"  best flow {bf['wall_s'] if bf else float('nan'):.3f} s, best SGD "
              f"{bs['wall_s'] if bs else float('nan'):.3f} s: SGD / flow = {result['sgd_over_flow']}")
    path = write_json("time_to_risk", {"machine": machine(), "d": D, "m": M, "batch": BATCH, "minimum": minimum,
                                       "races": races})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
