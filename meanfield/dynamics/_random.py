"""Random stepping rules: a flow rule with a seeded numpy generator whose state is in its checkpoint (uint8 bytes of
its JSON, padded to a fixed length: a checkpoint's arrays keep their shapes), so that resumes are bit-identical."""

from __future__ import annotations

import json

import numpy as np

from ..flow import FlowState, ParticleFlow

LENGTH = 1024


def generator_bytes(rng: np.random.Generator) -> np.ndarray:
    text = json.dumps(rng.bit_generator.state).encode()
    if len(text) > LENGTH:
        raise ValueError(f"a generator state of {len(text)} bytes does not fit the checkpoint's {LENGTH}")
    return np.frombuffer(text.ljust(LENGTH), dtype=np.uint8).copy()


def generator_from_bytes(data) -> np.random.Generator:
    state = json.loads(bytes(np.asarray(data, dtype=np.uint8)).decode())
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


class SeededFlow(ParticleFlow):
    """A flow rule that draws from ``self.rng`` (seeded by ``seed``; restored on resume); its steps add noise or jumps,
    so the risk may rise between steps (``monotone = False``)."""

    monotone = False

    def __init__(self, bound, mu0, solver, seed: int, max_risk_factor: float = 1e6, stop_risk=None):
        super().__init__(bound, mu0, solver, max_risk_factor, stop_risk)
        self.rng = np.random.default_rng(seed)

    def init(self, start) -> FlowState:
        state = super().init(start)
        if start is not None:
            self.rng = generator_from_bytes(start.arrays["rng"])
        return state

    def checkpoint(self, state: FlowState, snapshot) -> dict:
        return dict(super().checkpoint(state, snapshot), rng=generator_bytes(self.rng))
