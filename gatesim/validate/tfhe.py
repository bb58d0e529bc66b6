"""The TFHE model against concrete-python: one step of each cell compiled and run encrypted.

For each cell, hidden size and bit width: (a) the model's PBS count beside the compiler's
`programmable_bootstrap_count`, (b) predicted vs measured encrypted run time (server side:
`circuit.run`, keys and encryption excluded), (c) the decrypted outputs beside the integer
simulator's outputs for the same integers.

The circuit is compiled on the input set `gatesim estimate --target tfhe --bounds observed`
observes its bounds on (gatesim.he.bounds: the states the cell visits over seeded random
sequences), and `predicted_s` is computed exactly as that estimate computes it
(`predicted_from` says from what). `predicted_with_compiler_parameters_s` is the same model given the crypto parameters
the compiler chose, which no estimate has: it shows how much of the error is parameter choice.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from gatesim.calibrate.tfhe import pbs_parameters
from gatesim.cells import CELLS, CellConfig, pairs, variant_axes_of
from gatesim.costs import estimate as estimate_graph
from gatesim.errors import GatesimError
from gatesim.he.bounds import InputSet, bounds_of, rounded, rounding_error, simulator
from gatesim.he.concrete_export import compile_step
from gatesim.pipeline import estimate

HIDDEN = (4, 8, 16)
BITS = (3,)  # the design notes' setting; 2-bit cells fold more tables than the model's rule finds
INPUT_SIZE = 4
PREDICTED_FROM = ("gatesim estimate --target tfhe --bounds observed: PBS per table and encrypted product, each "
                  "at the precision Concrete assigns it over the input set, each precision's crypto parameters "
                  "from the profile's noise grid for its noisiest table, seconds per PBS from the profile's time "
                  "fit on those parameters")


def design(cell: str, bits: int, inhibit: str) -> tuple[CellConfig, str | None]:
    """The row's cell config, and its inhibit (None for a cell the axis does not shape)."""
    shaped = inhibit if "inhibit" in variant_axes_of(cell) else None
    return CellConfig(weight_bits=bits, act_bits=bits, inhibit=shaped or "signed"), shaped


def predict(cell: str, hidden: int, bits: int, profile, rounding_bits: int | None = None,
            inputset: InputSet = InputSet(), inhibit: str = "signed"):
    """The estimate a row checks, exactly as `gatesim estimate --target tfhe --bounds observed`
    (and a sweep with bounds: [observed]) computes it for this cell."""
    _, predicted = estimate(cell, INPUT_SIZE, hidden, "tfhe", 1, design(cell, bits, inhibit)[0],
                            profile=profile, bounds="observed", inputset_sequences=inputset.sequences,
                            inputset_steps=inputset.steps, inputset_seed=inputset.seed,
                            inputset_distribution=inputset.distribution, rounding_bits=rounding_bits)
    return predicted


def one(cell: str, hidden: int, bits: int, profile, rounding_bits: int | None = None,
        inputset: InputSet = InputSet(), inhibit: str = "signed") -> dict:
    config, shaped = design(cell, bits, inhibit)
    exact = simulator(cell, INPUT_SIZE, hidden, config, inputset.seed)
    sim, samples = rounded(exact, INPUT_SIZE, config, inputset, rounding_bits)
    circuit = compile_step(sim, samples)
    circuit.keygen()
    bounds = bounds_of(sim, samples)
    sample = samples[-1]  # within the bounds the circuit was compiled for
    expected, _ = sim.run(sample[0][:, None, :].astype(np.float64), tuple(s.astype(np.float64) for s in sample[1:]))
    encrypted = circuit.encrypt(*sample)
    best, result = float("inf"), None
    for _ in range(2):
        start = time.perf_counter()
        result = circuit.run(encrypted)
        best = min(best, time.perf_counter() - start)
    decrypted = circuit.decrypt(result)
    decrypted = decrypted if isinstance(decrypted, tuple) else (decrypted,)
    matches = all(np.array_equal(np.asarray(d).reshape(-1), e[:, 0].reshape(-1)) for d, e in zip(decrypted, expected))
    predicted = predict(cell, hidden, bits, profile, rounding_bits, inputset, inhibit)
    compiler_parameters = pbs_parameters(circuit)
    with_parameters = estimate_graph(sim.opgraph, "tfhe", profile=profile, constant_nodes=bounds.constant,
                                     observed_bits=bounds.bits, rounding=dict(bounds.rounding),
                                     rounding_overflows=bounds.rounding_overflows,
                                     pbs_parameters=compiler_parameters)
    return {"cell": cell, "hidden_size": hidden, "bits": bits, "inhibit": shaped, "rounding_bits": rounding_bits,
            "pbs_predicted": predicted.resources["pbs_per_step"],
            "pbs_compiler": int(circuit.statistics["programmable_bootstrap_count"]),
            "max_precision_bits": predicted.resources["max_precision_bits"],
            "predicted_s": predicted.latency_s, "predicted_from": PREDICTED_FROM, "measured_s": best,
            "predicted_with_compiler_parameters_s": with_parameters.latency_s,
            "pbs_parameters_predicted": predicted.details["pbs_parameters"],
            "pbs_parameters_compiler": sorted(compiler_parameters, key=lambda q: -q["count"]),
            "output_matches_simulator": bool(matches), "constant_tables": sorted(bounds.constant),
            "rounded_tables": dict(bounds.rounding),
            "rounding_output_error": rounding_error(exact, sim, INPUT_SIZE, config, inputset) if rounding_bits else None}


def validate(profile, cells=tuple(CELLS), hidden_sizes=HIDDEN, bits=BITS, rounding_bits=(None,),
             inhibit=("signed",), *, progress: Callable[[], None] = lambda: None) -> dict:
    """{"rows": [...], "add_vs_mul": [...]} as `gatesim validate tfhe --json` prints it; a step
    concrete-python cannot compile is a row with its `error`, the others still run. A cell the
    inhibit axis does not shape runs once per other setting."""
    rows = []
    for rounding in rounding_bits:
        for b in bits:
            for hidden in hidden_sizes:
                for cell in cells:
                    for variant in dict.fromkeys(design(cell, b, i)[1] for i in inhibit):
                        try:
                            rows.append(one(cell, hidden, b, profile, rounding, inhibit=variant or "signed"))
                        except GatesimError as exc:
                            rows.append({"cell": cell, "hidden_size": hidden, "bits": b, "inhibit": variant,
                                         "rounding_bits": rounding, "error": str(exc)})
                        progress()
    return {"rows": rows, "add_vs_mul": ratios(rows)}


def ratios(rows: list[dict]) -> list[dict]:
    """Add-gated over multiply-gated PBS count and time, per hidden size, bits, inhibit and rounding."""
    index = {(r["cell"], r["hidden_size"], r["bits"], r["inhibit"], r["rounding_bits"]): r
             for r in rows if "error" not in r}
    out = []
    for add, mul in pairs():
        for (cell, hidden, bits, inhibit, rounding), a in index.items():
            m = index.get((mul, hidden, bits, None, rounding))
            if cell == add and m:
                out.append({"pair": f"{add}/{mul}", "hidden_size": hidden, "bits": bits, "inhibit": inhibit,
                            "rounding_bits": rounding,
                            "pbs_predicted_ratio": a["pbs_predicted"] / m["pbs_predicted"],
                            "pbs_compiler_ratio": a["pbs_compiler"] / m["pbs_compiler"],
                            "predicted_time_ratio": a["predicted_s"] / m["predicted_s"],
                            "predicted_with_compiler_parameters_time_ratio":
                                a["predicted_with_compiler_parameters_s"] / m["predicted_with_compiler_parameters_s"],
                            "measured_time_ratio": a["measured_s"] / m["measured_s"]})
    return out


# ----------------------------------------------------------------------------- the CLI's table


def show(r: dict) -> None:
    """The result as `gatesim validate tfhe` prints it without --json."""
    from gatesim.terminal import terminal
    from rich.table import Table

    console = terminal()
    rows = Table(title="TFHE model vs concrete-python, one cell step")
    for col in ("cell", "H", "bits", "rounding", "PBS model", "PBS compiler", "predicted s", "measured s", "ratio",
                "with compiler's parameters", "output = simulator"):
        rows.add_column(col, justify="left" if col == "cell" else "right")
    for row in r["rows"]:
        if "error" in row:
            rows.add_row(row["cell"], str(row["hidden_size"]), str(row["bits"]), str(row["rounding_bits"] or "-"),
                         "-", "-", "-", "-", "-", "-", row["error"][:60])
            continue
        rows.add_row(row["cell"], str(row["hidden_size"]), str(row["bits"]), str(row["rounding_bits"] or "-"),
                     str(row["pbs_predicted"]),
                     str(row["pbs_compiler"]), f"{row['predicted_s']:.3f}", f"{row['measured_s']:.3f}",
                     f"{row['predicted_s'] / row['measured_s']:.2f}",
                     f"{row['predicted_with_compiler_parameters_s'] / row['measured_s']:.2f}",
                     "yes" if row["output_matches_simulator"] else "NO")
    console.print(rows)
    console.print(f"predicted: {PREDICTED_FROM}")
    pairs = Table(title="add-gated / multiply-gated")
    for col in ("pair", "H", "bits", "rounding", "PBS model", "PBS compiler", "time predicted", "time measured"):
        pairs.add_column(col, justify="left" if col == "pair" else "right")
    for p in r["add_vs_mul"]:
        pairs.add_row(p["pair"], str(p["hidden_size"]), str(p["bits"]), str(p["rounding_bits"] or "-"),
                      f"{p['pbs_predicted_ratio']:.2f}",
                      f"{p['pbs_compiler_ratio']:.2f}", f"{p['predicted_time_ratio']:.2f}", f"{p['measured_time_ratio']:.2f}")
    console.print(pairs)
