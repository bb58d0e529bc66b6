"""One record per target: its cost model, parameters, CLI options, report objective, the
rules that shape what it costs, and its calibrate / validate entry points. The CLI, the
sweep, the pipeline and the report read these records; a target is one module that
registers its record (see gatesim/costs/cpu.py) plus one line in gatesim/costs/__init__.py."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel

from gatesim.costs.base import CostModel
from gatesim.errors import GatesimError

# Parameters every model takes that are not sweep axes of a target: a sweep's `steps` is a
# design axis.
COMMON_PARAMS = frozenset({"steps"})


@dataclass(frozen=True)
class Option:
    """One `gatesim estimate` option that becomes the target's parameter `name`."""

    name: str
    flag: str
    help: str
    type: type = str


@dataclass(frozen=True)
class Target:
    name: str
    model: CostModel
    params: type[BaseModel]  # the model's keyword parameters, validated
    summary: str  # one line: what the model captures
    options: tuple[Option, ...] = ()
    # the report's second objective beside latency: (results column, axis label); one that
    # varies between designs of the same size, or the report's Pareto fronts hold one point
    second_objective: tuple[str, str] = ("energy_pj", "energy (pJ)")
    quantized: bool = True  # False: costs the cell without quantizers (it computes on reals)
    validation_only: frozenset[str] = frozenset()  # parameters that are no sweep axes
    # extra checks of a sweep's design axes and this target's parameter lists: raise ValueError
    check_sweep: Callable[[Any, dict[str, list]], None] | None = None
    # parameters the target derives from the design itself, not its graph alone:
    # (cell, input_size, hidden_size, config, params) -> more params (e.g. TFHE's observed bounds)
    derived_params: Callable[..., dict[str, Any]] | None = None
    calibrate: str | None = None  # module with STEPS and measure(progress, **options) -> profile
    validate: str | None = None  # module with validate(profile, cells, hidden_sizes, ...) -> rows
    calibrate_options: frozenset[str] = field(default_factory=frozenset)  # `gatesim calibrate` options it takes

    @property
    def sweep_params(self) -> list[str]:
        return [f for f in self.params.model_fields if f not in COMMON_PARAMS | self.validation_only]

    def design(self, bits: dict[str, Any]) -> dict[str, Any]:
        """The bit widths this target costs: none at all when it computes on reals."""
        return bits if self.quantized else dict.fromkeys(bits)


# The option every target with calibrated profiles shares.
PROFILE_OPTION = Option("profile", "--profile", "a profile from `gatesim calibrate TARGET`: a path, or the "
                                                "name of a shipped one (e.g. cpu-vm, ckks-vm, tfhe-vm)", Path)

TARGETS: dict[str, Target] = {}


def register(target: Target) -> Target:
    if target.name in TARGETS:
        raise ValueError(f"target {target.name!r} is registered twice")
    TARGETS[target.name] = target
    return target


def get(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise GatesimError(f"unknown target {name!r}; allowed: {', '.join(TARGETS)}") from None


def swept_params() -> list[str]:
    """Every target's sweep parameters, in registration order (results table columns)."""
    return list(dict.fromkeys(p for t in TARGETS.values() for p in t.sweep_params))
