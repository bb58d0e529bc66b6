"""Measure concrete-python on this host for the TFHE model: the latency of one programmable
bootstrap per precision (1..8 bits), the bootstrap key size per precision, and the cost of a
linear (PBS-free) encrypted operation. Server-side run time, best of a few runs."""
from __future__ import annotations

import datetime
import platform
import time
from typing import Callable

import numpy as np

from gatesim.costs.config import SCHEMA_VERSION

PRECISIONS = tuple(range(1, 9))
LOOKUPS = 8  # table lookups per measured circuit
LINEAR = 64  # vector length of the PBS-free circuit


def _best_run(circuit, args, repeats: int = 3) -> float:
    encrypted = circuit.encrypt(*args)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        circuit.run(encrypted)
        best = min(best, time.perf_counter() - start)
    return best


def pbs_seconds(bits: int) -> tuple[float, float, list[dict]]:
    """(seconds per PBS, bootstrap key bytes, the crypto parameters Concrete chose) for table
    lookups on `bits`-bit values."""
    from concrete import fhe

    top = 2**bits - 1

    @fhe.compiler({"x": "encrypted"})
    def lookup(x):
        return fhe.univariate(lambda v: (v * 3 + 1) % (top + 1))(x)

    inputs = [np.full(LOOKUPS, v) for v in (0, top)] + [np.random.default_rng(0).integers(0, top + 1, LOOKUPS)]
    circuit = lookup.compile(inputs)
    circuit.keygen()
    seconds = _best_run(circuit, (inputs[-1],)) / LOOKUPS
    return seconds, float(circuit.statistics["size_of_bootstrap_keys"]), pbs_parameters(circuit)


def pbs_parameters(circuit) -> list[dict]:
    """The bootstrap parameter sets of a compiled circuit and how many PBS use each."""
    return [{"polynomial_size": q.polynomial_size(), "glwe_dimension": q.glwe_dimension(),
             "input_lwe_dimension": q.input_lwe_dimension(), "level": q.level(), "count": int(n)}
            for q, n in circuit.statistics["programmable_bootstrap_count_per_parameter"].items()]


def fit_work(points: list[tuple[float, float]]) -> dict[str, float]:
    """seconds = per_unit x blind-rotation work + fixed, least squares over the calibration."""
    work, seconds = np.array(points).T
    per_unit, fixed = np.polyfit(work, seconds, 1)
    return {"per_unit": float(max(per_unit, 1e-18)), "fixed": float(max(fixed, 0.0))}


def linear_op_seconds() -> float:
    """An encrypted x clear product and an encrypted addition, per element, no PBS."""
    from concrete import fhe

    @fhe.compiler({"x": "encrypted", "y": "encrypted"})
    def linear(x, y):
        return x * 3 + y

    inputs = [(np.full(LINEAR, v), np.full(LINEAR, v)) for v in (0, 7)]
    circuit = linear.compile(inputs)
    circuit.keygen()
    return _best_run(circuit, inputs[-1]) / (2 * LINEAR)


STEPS = len(PRECISIONS) + 1


def measure(progress: Callable[[], None] = lambda: None, max_bits: int = PRECISIONS[-1]) -> dict:
    from gatesim.costs.tfhe import blind_rotation_work

    pbs, keys, points = {}, {}, []
    for bits in range(1, max_bits + 1):
        pbs[bits], keys[bits], params = pbs_seconds(bits)
        points += [(blind_rotation_work(p), pbs[bits]) for p in params]
        progress()
    linear = linear_op_seconds()
    progress()
    return {"schema_version": SCHEMA_VERSION, "target": "tfhe",
            "host": {"machine": platform.machine(), "python": platform.python_version(),
                     "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
            "pbs_s": pbs, "linear_op_s": linear, "bootstrap_key_bytes": keys,
            "pbs_work_fit": fit_work(points) if len(points) > 1 else None}
