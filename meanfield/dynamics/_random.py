"""A numpy generator's state as a checkpoint array (uint8 bytes of its JSON, padded to a fixed length: a checkpoint's
arrays keep their shapes) and back, for bit-identical resumes."""

from __future__ import annotations

import json

import numpy as np

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
