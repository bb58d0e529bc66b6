"""The ranges a compiler sizes its tables by: a cell step run on clear integers over an input
set, as concrete-python measures its input set when it compiles (not the proven worst case).

The input set is the states a cell really visits: random input sequences (seeded, spread over
the input quantizer's range) run through the integer simulator, every step's (x, *states)
one sample. `gatesim estimate --target tfhe` (bounds: observed) and `gatesim validate tfhe`
use the same samples, so the bits the model prices are the bits the compiler chose.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from gatesim.cells import CellConfig, build_cell
from gatesim.fixedpoint.qtype import bits_for
from gatesim.errors import GatesimError
from gatesim.he.concrete_export import (clear_ranges, constant_tables, rounding_overflows, rounding_plan,
                                        table_input_bits)
from gatesim.he.noise import table_noise

Distribution = Literal["uniform", "normal"]


@dataclass(frozen=True)
class InputSet:
    """`sequences` random sequences of `steps` steps; the cell's weights and the inputs are
    drawn from `seed`. uniform: x over the input quantizer's whole range; normal: mean 0,
    standard deviation a third of that range, clipped to it."""

    sequences: int = 16
    steps: int = 20
    seed: int = 0
    distribution: Distribution = "uniform"

    def inputs(self, input_size: int, config: CellConfig) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        shape, span = (self.sequences, self.steps, input_size), config.input_range
        if self.distribution == "uniform":
            return rng.uniform(-span, span, shape)
        return np.clip(rng.normal(0.0, span / 3, shape), -span, span)

    def runs(self, sim, input_size: int, config: CellConfig):
        return runs_over(sim, self.inputs(input_size, config))

    def samples(self, sim, input_size: int, config: CellConfig) -> list[tuple[np.ndarray, ...]]:
        return samples_over(sim, self.inputs(input_size, config))


def runs_over(sim, x: np.ndarray):
    """Per group of `sim.batch` sequences of `x` (sequences, steps, inputs): its inputs as
    whole numbers (x, *zero states, torch's convention) and the states the cell computes at
    every step. A last, short group repeats its rows (ranges are unchanged)."""
    for first in range(0, len(x), sim.batch):
        rows = x[first:first + sim.batch]
        if len(rows) < sim.batch:
            rows = np.concatenate([rows, rows[np.arange(sim.batch - len(rows)) % len(rows)]])
        zeros = tuple(np.zeros((sim.batch, *sim.static[n].shape[1:])) for n in sim.placeholders[1:])
        ints = sim.quantize_inputs(rows, zeros, strict=False)
        yield ints, sim.run(ints[0], ints[1:])[0]


def samples_over(sim, x: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """(x_t, *states_t) as whole numbers for every step of every sequence of `x`, `sim.batch`
    rows a sample: what a compiler's input set holds for one step of the cell."""
    out = []
    for ints, states in runs_over(sim, x):
        for t in range(x.shape[1]):
            before = ints[1:] if t == 0 else tuple(s[:, t - 1] for s in states)
            out.append((ints[0][:, t].astype(np.int64), *(np.asarray(s).astype(np.int64) for s in before)))
    return out


def rounding_plan_over(module, x: np.ndarray, bits: int) -> tuple[tuple[str, int], ...]:
    """(table node, lsbs) rounding every table input of `module` (a cell, e.g. a trained one)
    to its `bits` most significant bits, widths as its inputs take them over the sequences `x`
    (e.g. a task's training sequences)."""
    import torch

    from gatesim.simulate import SimOptions, Simulator

    example = (torch.zeros(len(x), x.shape[2]), *module.initial_state(len(x)))
    sim = Simulator(module, example, SimOptions())
    return rounding_plan(sim, clear_ranges(sim, samples_over(sim, np.asarray(x, dtype=np.float64))), bits)


def simulator(cell: str, input_size: int, hidden_size: int, config: CellConfig, seed: int, batch: int = 1):
    """The cell with its seeded weights, compiled for integer simulation at `batch` rows."""
    import torch

    from gatesim.simulate import SimOptions, Simulator

    torch.manual_seed(seed)
    module = build_cell(cell, input_size, hidden_size, config)
    example = (torch.zeros(batch, input_size), *(s[:batch] for s in module.initial_state(batch)))
    return Simulator(module, example, SimOptions())


@dataclass(frozen=True)
class Bounds:
    ranges: dict[str, tuple[int, int]]  # fx node -> [min, max] of its value over the input set
    constant: frozenset[str]  # tables that give one value over their input's whole type
    rounding: tuple[tuple[str, int], ...] = ()  # (table node, lsbs its input loses first)
    noise: dict[str, float] = field(default_factory=dict)  # node looking up -> its input's noise figure
    clear_bits: dict[str, int] = field(default_factory=dict)  # linear node -> bits of its clear weights and bias
    table_inputs: dict[str, int] = field(default_factory=dict)  # table node -> bits its input takes
    rounding_error: dict[str, int] | None = None  # what the rounding changes in the outputs (rounding_error)
    rounding_overflows: frozenset[str] = frozenset()  # rounded tables whose input rounds past its type's top

    @property
    def bits(self) -> dict[str, int]:
        """Bits per fx node over the input set; a linear layer's value also counts its clear
        weights and bias, which Concrete encodes at the width of the values they combine with."""
        out = {name: bits_for(lo, hi) for name, (lo, hi) in self.ranges.items()}
        for name, bits in self.clear_bits.items():
            out[name] = max(out.get(name, 0), bits)
        return out


def bounds_of(sim, samples: list[tuple[np.ndarray, ...]]) -> Bounds:
    ranges = clear_ranges(sim, samples)
    return Bounds({k: (int(lo), int(hi)) for k, (lo, hi) in ranges.items()}, constant_tables(sim, ranges),
                  sim.options.rounding, table_noise(sim), clear_bits(sim), table_input_bits(sim, ranges),
                  rounding_overflows=rounding_overflows(sim, ranges))


def clear_bits(sim) -> dict[str, int]:
    """Bits of each linear layer's clear integer weights and bias, as Concrete types them."""
    out = {}
    for name, compiled in sim.compiled.items():
        if "affine" in compiled.info:
            weights_t, bias = compiled.info["affine"]
            values = np.concatenate([np.ravel(weights_t), np.ravel(bias)])
            out[name] = bits_for(int(values.min()), int(values.max()))
    return out


def rounded(sim, input_size: int, config: CellConfig, inputset: InputSet, bits: int | None):
    """The simulator and the input set's samples, with every table input wider than `bits`
    rounded to its `bits` most significant bits (widths as the unrounded cell takes them over
    the input set); the samples are the states the rounded cell visits."""
    from gatesim.simulate import SimOptions

    samples = inputset.samples(sim, input_size, config)
    if bits is None:
        return sim, samples
    ranges = clear_ranges(sim, samples)
    plan = rounding_plan(sim, ranges, bits)
    if not plan:
        widths = table_input_bits(sim, ranges)
        name, widest = max(widths.items(), key=lambda item: item[1], default=("-", 0))
        raise GatesimError(f"rounding_bits={bits}: no table input is wider than that (the widest, node {name!r}, "
                           f"takes {widest} bits over the input set): nothing to round")
    sim = sim.with_options(SimOptions(rounding=plan))
    return sim, inputset.samples(sim, input_size, config)


def rounding_error(wide, narrow, input_size: int, config: CellConfig, inputset: InputSet) -> dict[str, Any]:
    """What rounding changes in the outputs over the input set's sequences: elements that
    differ and the largest difference, in LSBs of each output's grid."""
    diffs = []
    for ints, exact in inputset.runs(wide, input_size, config):
        rounded_out, _ = narrow.run(ints[0], ints[1:])
        diffs += [np.abs(np.asarray(a, dtype=np.int64) - np.asarray(b, dtype=np.int64)) for a, b in zip(exact, rounded_out)]
    return {"mismatched_elements": int(sum(np.count_nonzero(d) for d in diffs)),
            "elements_compared": int(sum(d.size for d in diffs)),
            "max_lsb": int(max((d.max(initial=0) for d in diffs), default=0))}


@lru_cache(maxsize=256)
def observed(cell: Any, input_size: int, hidden_size: int, config: CellConfig, inputset: InputSet,
             rounding_bits: int | None = None) -> Bounds:
    """The bounds of a cell design over an input set (cached: a sweep asks once per design)."""
    sim = simulator(cell, input_size, hidden_size, config, inputset.seed, batch=inputset.sequences)
    narrow, samples = rounded(sim, input_size, config, inputset, rounding_bits)
    found = bounds_of(narrow, samples)
    if rounding_bits is None:
        return found
    return replace(found, rounding_error=rounding_error(sim, narrow, input_size, config, inputset))
