"""Measure TenSEAL on this host for the CKKS model: ct x ct products (with relinearization and
rescale), ct x plain products, additions, vector-matrix products per input element and a
degree-3 polynomial evaluation, at ring sizes 8192, 16384 and 32768, each on its longest
chain at 128-bit security and on a short one."""
from __future__ import annotations

import datetime
import platform
from typing import Callable

import numpy as np

from gatesim.calibrate.cpu import best_seconds
from gatesim.costs.ckks import CkksCosts, ring_for
from gatesim.costs.config import SCHEMA_VERSION, load

RINGS = (8192, 16384, 32768)
MM_INPUTS = 16
SHORT_CHAIN = 2  # levels of the short chain every ring is also measured on
STEPS = 2 * len(RINGS)


def _best(fn: Callable[[], object], repeats: int = 5) -> float:
    return best_seconds(fn, inner=1, repeats=repeats, warmup=1)  # one slow HE op per timing


def longest_chain(n: int, costs: CkksCosts) -> int:
    depth = 1
    while ring_for(depth + 1, costs) is not None and ring_for(depth + 1, costs) <= n:
        depth += 1
    return depth


def ops_at(n: int, depth: int) -> dict[str, float]:
    import tenseal as ts

    ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=n, coeff_mod_bit_sizes=[60] + [40] * depth + [60])
    ctx.global_scale = 2**40
    ctx.generate_galois_keys()
    rng = np.random.default_rng(0)
    v = ts.ckks_vector(ctx, list(rng.uniform(-1, 1, MM_INPUTS)))
    matrix = rng.uniform(-1, 1, (MM_INPUTS, MM_INPUTS)).tolist()
    coeffs = [0.5, 0.25, 0.0, -0.02]  # a degree-3 polynomial, as the activations use
    return {"ct_ct": _best(lambda: v * v), "ct_pt": _best(lambda: v * 0.5), "add": _best(lambda: v + v),
            "mm_inputs": _best(lambda: v.mm(matrix), repeats=3) / MM_INPUTS,
            "poly3": _best(lambda: v.polyval(coeffs), repeats=3)}


def measure(progress: Callable[[], None] = lambda: None) -> dict:
    costs = load(CkksCosts, "ckks")
    ops, primes, short = {}, {}, {}
    for n in RINGS:
        depth = longest_chain(n, costs)
        ops[n], primes[n] = ops_at(n, depth), depth + 2
        progress()
        short[n] = ops_at(n, SHORT_CHAIN)
        progress()
    return {"schema_version": SCHEMA_VERSION, "target": "ckks",
            "host": {"machine": platform.machine(), "python": platform.python_version(),
                     "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
            "primes": primes, "ops_s": ops, "short_primes": SHORT_CHAIN + 2, "short_ops_s": short}


def spot_check(profile: dict) -> dict:
    """One quick measurement (ciphertext products at the smallest ring, its longest chain)
    beside the profile's figure for it: does the profile describe this host now?"""
    costs = load(CkksCosts, "ckks")
    n = RINGS[0]
    measured = _best(lambda v=ops_probe(n, longest_chain(n, costs)): v * v)
    predicted = profile["ops_s"].get(n, profile["ops_s"].get(str(n), {})).get("ct_ct", float("nan"))
    return {"what": f"seconds per ciphertext product at N = {n}", "measured": measured, "predicted": predicted}


def ops_probe(n: int, depth: int):
    import tenseal as ts

    ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=n, coeff_mod_bit_sizes=[60] + [40] * depth + [60])
    ctx.global_scale = 2**40
    return ts.ckks_vector(ctx, list(np.random.default_rng(0).uniform(-1, 1, MM_INPUTS)))
