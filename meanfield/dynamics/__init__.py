"""Dynamics of particles beyond the Wasserstein gradient flow, each a stepping rule with the exact velocity as drift.

- :class:`Conic` — the conic (Wasserstein–Fisher–Rao) flow of Chizat (2019): masses follow the reaction
  ẇ = −4α w F'(μ) while positions move at rate β, for 2-homogeneous neurons (lifted form: uniform weights, the mass
  in the norm of each particle);
- :class:`BirthDeath` — the flow with birth and death of particles at rates from F'(μ) relative to its mean
  (Rotskoff, Jelassi, Bruna & Vanden-Eijnden 2019), m fixed by resampling;
- :class:`Langevin` — mean-field Langevin dynamics dθ = −∇[F'(μ)(θ) + (λ/2)|θ|²] dt + √(2τ) dW (Mei, Montanari &
  Nguyen 2018; Nitanda, Wu & Suzuki 2022; Chizat 2022), Euler–Maruyama or the stochastic Heun scheme;
- :class:`OutputLayer` — the flow of the output weights alone (random features, the kernel regime's classifier);
- :func:`kernel_stein_discrepancy` — how far particles are from their proximal Gibbs measure (Langevin's
  convergence diagnostic), with its standard error.

Pass one to :func:`meanfield.simulate` as ``dynamics=``; the runs use the same loop, save policies, files and
backends as the plain flow, and the random ones resume bit-identically (the generator's state is in the checkpoint).
"""

from .birth_death import BirthDeath, BirthDeathFlow
from .conic import Conic, ConicFlow
from .langevin import Langevin, LangevinFlow, langevin_step
from .output_layer import OutputLayer, OutputLayerFlow
from .stein import kernel_stein_discrepancy, proximal_gibbs_score

__all__ = ["Conic", "ConicFlow", "BirthDeath", "BirthDeathFlow", "Langevin", "LangevinFlow", "langevin_step",
           "OutputLayer", "OutputLayerFlow",
           "kernel_stein_discrepancy", "proximal_gibbs_score"]
