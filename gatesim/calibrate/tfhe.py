"""Measure concrete-python on this host for the TFHE model: the latency of one programmable
bootstrap per precision (1..8 bits), the bootstrap key size per precision, the cost of a
linear (PBS-free) encrypted operation (server-side run time, best of a few runs), and the
crypto parameters Concrete's optimizer picks for a table per precision and input noise
(compiled, not run: the noise grid the estimate prices bootstraps with)."""
from __future__ import annotations

import datetime
import math
import platform
import time
from importlib.metadata import version
from typing import Callable

import numpy as np

from gatesim.costs.config import SCHEMA_VERSION
from gatesim.he.concrete_fhe import load_fhe

PRECISIONS = tuple(range(1, 9))
# The noise grid: precisions where a table is one classic bootstrap (from 12 bits on,
# concrete-python 2.11 switches to a different scheme whose cost is not one PBS), and the
# squared 2-norm of the coefficients feeding the table, 2^0 .. 2^24.
NOISE_PRECISIONS = tuple(range(1, 12))
NOISE_LOG2 = tuple(range(0, 25, 2))
# grid points whose circuits are also run: the levels and dimensions noise brings, timed
TIMED_NOISE = ((3, 16), (4, 12), (4, 20), (6, 12), (6, 24), (7, 12), (7, 20), (8, 12))
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
    fhe = load_fhe()

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


def _noisy_lookup(bits: int, log2_manp: int):
    """(circuit to compile, top of its range, c): z = id(x), then a `bits`-bit table of
    z0 + c (z1 - z2), whose input's noise norm is 1 + 2c^2 (about 2^log2_manp) while its
    range stays z0's."""
    fhe = load_fhe()

    top, c = 2**bits - 1, round(math.sqrt((2**log2_manp - 1) / 2))

    @fhe.compiler({"x": "encrypted"})
    def lookup(x):
        z = fhe.univariate(lambda v: v)(x)
        return fhe.univariate(lambda v: (v * 3 + 1) % (top + 1))(z[0] + c * (z[1] - z[2]))

    return lookup, top, c


def chosen_parameters(bits: int, log2_manp: int) -> dict | None:
    """The parameters Concrete picks for a `bits`-bit table whose input sums bootstrapped
    values with coefficients of squared 2-norm about 2^log2_manp: z = id(x), then a table of
    z0 + c (z1 - z2), whose norm is 1 + 2c^2 while its range stays z0's. None when the
    optimizer finds none."""
    lookup, top, c = _noisy_lookup(bits, log2_manp)
    try:
        circuit = lookup.compile([np.array([v, 0, 0]) for v in (0, top)])
    except RuntimeError:  # "NoParametersFound" and the like
        return None
    # at very high noise Concrete gives the table a partition of its own (and the bootstraps
    # feeding it cleaner outputs): keep the table's set, the one used once
    chosen = min(pbs_parameters(circuit), key=lambda q: q["count"])
    chosen.pop("count")
    return {"precision": bits, "manp": 1 + 2 * c * c, **chosen}


def noise_grid(progress: Callable[[], None] = lambda: None, max_bits: int = NOISE_PRECISIONS[-1]) -> list[dict]:
    grid = []
    for bits in NOISE_PRECISIONS[:max_bits]:
        grid += [q for k in NOISE_LOG2 if (q := chosen_parameters(bits, k))]
        progress()
    return grid


def fit_time(points: list[tuple[dict, float]]) -> dict[str, float]:
    """Seconds per PBS = the three terms of `pbs_time_terms` weighted, fitted by non-negative
    least squares over the calibration circuits (relative error, so small bootstraps count)."""
    from scipy.optimize import nnls

    from gatesim.costs.tfhe import pbs_time_terms

    names = list(pbs_time_terms(points[0][0]))
    terms = np.array([[pbs_time_terms(q)[k] for k in names] for q, _ in points])
    seconds = np.array([s for _, s in points])
    weights, _ = nnls(terms / seconds[:, None], np.ones(len(points)))
    return dict(zip(names, map(float, weights)))


def noisy_seconds(bits: int, log2_manp: int) -> tuple[dict, float] | None:
    """(parameters, seconds per PBS) of the noise grid's circuit at that point, run on
    LOOKUPS // 4 groups: the levels and GLWE dimensions high noise brings, measured."""
    (lookup, top, _), groups = _noisy_lookup(bits, log2_manp), LOOKUPS // 4
    high = np.zeros((3, groups), dtype=np.int64)
    high[0] = top
    circuit = lookup.compile([np.zeros((3, groups), dtype=np.int64), high])
    chosen = pbs_parameters(circuit)
    if len(chosen) != 1:
        return None
    circuit.keygen()
    return chosen[0], _best_run(circuit, (high,), repeats=2) / chosen[0]["count"]


def linear_op_seconds() -> float:
    """An encrypted x clear product and an encrypted addition, per element, no PBS."""
    fhe = load_fhe()

    @fhe.compiler({"x": "encrypted", "y": "encrypted"})
    def linear(x, y):
        return x * 3 + y

    inputs = [(np.full(LINEAR, v), np.full(LINEAR, v)) for v in (0, 7)]
    circuit = linear.compile(inputs)
    circuit.keygen()
    return _best_run(circuit, inputs[-1]) / (2 * LINEAR)


STEPS = len(PRECISIONS) + len(TIMED_NOISE) + 1 + len(NOISE_PRECISIONS)


def measure(progress: Callable[[], None] = lambda: None, max_bits: int = PRECISIONS[-1]) -> dict:
    pbs, keys, points = {}, {}, []
    for bits in range(1, max_bits + 1):
        pbs[bits], keys[bits], params = pbs_seconds(bits)
        points += [(p, pbs[bits]) for p in params]
        progress()
    for bits, log2_manp in TIMED_NOISE:
        if bits <= max_bits and (point := noisy_seconds(bits, log2_manp)):
            points.append(point)
        progress()
    linear = linear_op_seconds()
    progress()
    grid = noise_grid(progress, max_bits + 3)  # tables a few bits wider than the timed ones
    return {"schema_version": SCHEMA_VERSION, "target": "tfhe",
            "host": {"machine": platform.machine(), "python": platform.python_version(),
                     "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
            "pbs_s": pbs, "linear_op_s": linear, "bootstrap_key_bytes": keys,
            "pbs_time_fit": fit_time(points) if len(points) >= 2 else None,
            "compiler": {"concrete-python": version("concrete-python")}, "pbs_parameters_by_noise": grid}


SPOT_BITS = 4


def spot_check(profile: dict) -> dict:
    """One quick measurement (the profile's own 4-bit lookup circuit, about 2 s with
    compilation) beside the profile's figure for it: does the profile describe this host now?"""
    from gatesim.costs.tfhe import TfheProfile

    measured_bits = TfheProfile.model_validate(profile).pbs_s
    bits = SPOT_BITS if SPOT_BITS in measured_bits else max(measured_bits)  # a --max-bits profile
    seconds, _, _ = pbs_seconds(bits)
    return {"what": f"seconds per {bits}-bit PBS", "measured": seconds, "predicted": measured_bits[bits]}
