"""Sweep configs (configs/sweeps/*.yaml): axes of a design space and the targets to cost it
on, validated into typed objects; every error names the file, the field and what is allowed."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gatesim.cells import CellConfig, check_name
from gatesim.costs import TARGETS
from gatesim.costs.config import SCHEMA_VERSION, read_mapping, resolve_profile
from gatesim.errors import GatesimError

MAX_POINTS = 2_000_000  # a grid beyond this is almost surely a typo in a range


class Range(BaseModel):
    """An integer axis written as a range: start..stop inclusive, by `step` or by `factor`."""

    model_config = ConfigDict(extra="forbid")
    start: int = Field(ge=1)
    stop: int = Field(ge=1)
    step: int | None = Field(None, ge=1)
    factor: int | None = Field(None, ge=2)

    def values(self) -> list[int]:
        if (self.step is None) == (self.factor is None):
            raise ValueError("give exactly one of step or factor")
        if self.stop < self.start:
            raise ValueError(f"stop {self.stop} is below start {self.start}")
        if self.step is not None:
            return list(range(self.start, self.stop + 1, self.step))
        out, v = [], self.start
        while v <= self.stop:
            out.append(v)
            v *= self.factor
        return out


def _int_axis(v: Any) -> Any:
    return Range.model_validate(v).values() if isinstance(v, dict) else v


Size = Field(min_length=1)
BitsList = list[int | None]


class Axes(BaseModel):
    """The design axes; each is a non-empty list (integer axes may also be a Range)."""

    model_config = ConfigDict(extra="forbid")
    cell: list[str] = Field(min_length=1)
    input_size: list[int] = Field([32], min_length=1)
    hidden_size: list[int] = Field(min_length=1)
    steps: list[int] = Field([1], min_length=1)
    batch: list[int] = Field([1], min_length=1)
    weight_bits: BitsList = Field([8], min_length=1)
    act_bits: BitsList = Field([8], min_length=1)
    gate_bits: BitsList = Field([None], min_length=1)
    acc_bits: BitsList = Field([None], min_length=1)
    inhibit: list[Literal["signed", "unsigned"]] = Field(["signed"], min_length=1)
    candidate_act: list[Literal["hardtanh", "relu", "identity"]] = Field(["hardtanh"], min_length=1)
    theta: list[float] = Field([1.0], min_length=1)

    _ranges = field_validator("input_size", "hidden_size", "steps", "batch", mode="before")(_int_axis)

    @field_validator("input_size", "hidden_size", "steps", "batch")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        bad = [x for x in v if x < 1]
        if bad:
            raise ValueError(f"{bad[0]} is not allowed; sizes are whole numbers >= 1")
        return v

    @field_validator("weight_bits", "act_bits", "gate_bits", "acc_bits")
    @classmethod
    def _bits(cls, v: BitsList) -> BitsList:
        bad = [x for x in v if x is not None and not 2 <= x <= 32]
        if bad:
            raise ValueError(f"{bad[0]} is not allowed; widths are 2..32, or null for float")
        return v

    @field_validator("cell")
    @classmethod
    def _cells(cls, v: list[str]) -> list[str]:
        return [check_name(c) for c in v]


class Sampling(BaseModel):
    """grid: every combination. random: `samples` combinations of the non-cell axes, each
    costed for every cell, so every add-gated point keeps its multiply-gated twin."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["grid", "random"] = "grid"
    samples: int | None = Field(None, ge=1)
    seed: int = 0


class Accuracy(BaseModel):
    """Train every design on a task (quantization-aware, one run per seed) and add its test
    metric, from the bit-accurate simulator, to the design's rows. The sequence length is the
    `steps` axis; the input size is the task's."""

    model_config = ConfigDict(extra="forbid")
    task: Literal["adding", "digits"]
    seeds: list[int] = Field([0], min_length=1)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-3, gt=0)
    train_size: int | None = Field(None, ge=1)  # None: the task's default (adding 10,000; digits all 1,437)
    test_size: int | None = Field(None, ge=1)  # None: the task's default (adding 1,000; digits all 360)
    out: str | None = None  # checkpoints and results; default <sweep out>/train


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    sampling: Sampling = Sampling()
    axes: Axes
    targets: dict[str, dict[str, list[Any]]] = Field(min_length=1)
    accuracy: Accuracy | None = None
    path: Path | None = Field(None, exclude=True)  # the file it came from, for relative paths and errors


SECTIONS: dict[str, type[BaseModel]] = {"axes": Axes, "sampling": Sampling, "accuracy": Accuracy}


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"] if not isinstance(p, int) or len(err["loc"]) == 1)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parent = SweepConfig if len(err["loc"]) == 1 else SECTIONS.get(err["loc"][0], SweepConfig)
            msg = f"unknown field; allowed: {', '.join(f for f in parent.model_fields if f != 'path')}"
        elif err["type"] == "too_short":
            msg = "empty; give at least one value"
        elif err["type"] == "missing":
            msg = "required field missing"
        parts.append(f"{field or '(top level)'}: {msg}")
    return "; ".join(parts[:4]) + (f"; and {len(parts) - 4} more" if len(parts) > 4 else "")


def _check_targets(cfg: SweepConfig, where: str) -> None:
    """Each target and parameter is known, each value valid, and each target can take the axes."""
    for name, axes in cfg.targets.items():
        if name not in TARGETS:
            raise GatesimError(f"{where}: targets.{name}: unknown target; allowed: {', '.join(TARGETS)}")
        target = TARGETS[name]
        allowed = sorted(target.sweep_params)
        for param, values in axes.items():
            field = f"targets.{name}.{param}"
            if param not in allowed:
                raise GatesimError(f"{where}: {field}: unknown parameter; allowed: {', '.join(allowed)}")
            if not isinstance(values, list) or not values:
                raise GatesimError(f"{where}: {field}: give a non-empty list of values")
            for value in values:
                if param == "profile" and value is not None:
                    value = profile_path(cfg, value, f"{where}: {field}")
                try:
                    target.params(**{param: value})
                except ValidationError as exc:
                    err = exc.errors()[0]
                    raise GatesimError(f"{where}: {field}: {value!r}: {err['msg']}") from exc
        if target.check_sweep is not None:
            try:
                target.check_sweep(cfg.axes, axes)
            except ValueError as exc:
                raise GatesimError(f"{where}: {exc}") from exc


def _check_accuracy(cfg: SweepConfig, where: str) -> None:
    """The task sets the input size; each `steps` value is a sequence length it must take."""
    from gatesim.train.tasks import TASKS

    task = TASKS[cfg.accuracy.task]
    if "input_size" not in cfg.axes.model_fields_set:
        cfg.axes.input_size = [task.input_size]
    elif cfg.axes.input_size != [task.input_size]:
        raise GatesimError(f"{where}: axes.input_size: {cfg.axes.input_size} with accuracy task {task.name}, "
                           f"which feeds {task.input_size} feature(s) per step; use [{task.input_size}]")
    try:
        task.sizes(cfg.accuracy.train_size, cfg.accuracy.test_size)
    except GatesimError as exc:
        raise GatesimError(f"{where}: accuracy.{exc}") from None
    lo, hi = task.seq_lens
    bad = [t for t in cfg.axes.steps if not lo <= t <= hi]
    if bad:
        allowed = f"{lo}" if lo == hi else f"{lo}..{hi}"
        raise GatesimError(f"{where}: axes.steps: {bad[0]} with accuracy task {task.name}, whose sequences "
                           f"take {allowed} steps")


def resolve_path(cfg: SweepConfig, value: str | Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() or cfg.path is None else cfg.path.parent / path


def profile_path(cfg: SweepConfig, value: str | Path, where: str = "") -> Path:
    """A profile file relative to the sweep file, or a shipped profile by name (e.g. cpu-vm)."""
    path = resolve_path(cfg, value)
    if not path.exists():
        try:
            path = Path(resolve_profile(Path(value)))
        except ValueError as exc:
            raise GatesimError(f"{where}: {path}: {exc} (paths are relative to the sweep file)") from exc
    if not path.is_file():
        raise GatesimError(f"{where}: {path}: no such file (paths are relative to the sweep file)")
    return path.resolve()


def parse(data: dict[str, Any], where: str = "sweep config", path: Path | None = None) -> SweepConfig:
    """A sweep config from a mapping (as read from YAML), fully checked."""
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise GatesimError(f"{where}: schema_version {version!r}; this gatesim reads version {SCHEMA_VERSION}")
    try:
        cfg = SweepConfig.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise GatesimError(f"{where}: {_describe(exc)}") from exc
    if cfg.sampling.method == "random" and cfg.sampling.samples is None:
        raise GatesimError(f"{where}: sampling.samples: required with method random")
    _check_targets(cfg, where)
    if cfg.accuracy is not None:
        _check_accuracy(cfg, where)
    try:  # every combination of cell options must make a CellConfig
        for bits in ("weight_bits", "act_bits", "gate_bits", "acc_bits"):
            for v in getattr(cfg.axes, bits):
                CellConfig(**{bits: v})
    except ValidationError as exc:
        raise GatesimError(f"{where}: axes: {exc.errors()[0]['msg']}") from exc
    return cfg


def load_sweep(path: str | Path) -> SweepConfig:
    """configs/sweeps/<name>.yaml (or any path) as a checked SweepConfig."""
    path = Path(path)
    return parse(read_mapping(path), str(path), path.resolve())
