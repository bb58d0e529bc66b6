"""Design points of a sweep: the axes' combinations (grid or random), each paired with every
target and target-parameter combination, normalized so equivalent points are one point."""
from __future__ import annotations

import itertools
import math
from typing import Any, Iterator

import numpy as np

from gatesim.errors import GatesimError
from gatesim.pipeline import design_for
from gatesim.sweep.config import MAX_POINTS, SweepConfig


def _design_axes(cfg: SweepConfig) -> dict[str, list]:
    return {name: getattr(cfg.axes, name) for name in type(cfg.axes).model_fields}


def _target_params(cfg: SweepConfig) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for target, axes in cfg.targets.items():
        names = list(axes)
        for values in itertools.product(*(axes[n] for n in names)):
            out.append((target, dict(zip(names, values))))
    return out


def _designs(cfg: SweepConfig) -> Iterator[dict[str, Any]]:
    axes = _design_axes(cfg)
    names = list(axes)
    if cfg.sampling.method == "grid":
        for values in itertools.product(*axes.values()):
            yield dict(zip(names, values))
        return
    # random: draw combinations of every axis but the cell, then take each with every cell
    others = [n for n in names if n != "cell"]
    sizes = [len(axes[n]) for n in others]
    total = math.prod(sizes)
    rng = np.random.default_rng(cfg.sampling.seed)
    picks = rng.choice(total, size=min(cfg.sampling.samples, total), replace=False)
    for index in sorted(int(i) for i in picks):
        combo = {}
        for name, size in zip(reversed(others), reversed(sizes)):  # mixed-radix decode
            index, digit = divmod(index, size)
            combo[name] = axes[name][digit]
        for cell in axes["cell"]:
            yield {"cell": cell, **{n: combo[n] for n in others}}


def count_points(cfg: SweepConfig) -> int:
    """Points before de-duplication (an upper bound), without building them."""
    axes = _design_axes(cfg)
    if cfg.sampling.method == "grid":
        designs = math.prod(len(v) for v in axes.values())
    else:
        others = math.prod(len(v) for n, v in axes.items() if n != "cell")
        designs = min(cfg.sampling.samples, others) * len(axes["cell"])
    return designs * len(_target_params(cfg))


def points(cfg: SweepConfig) -> list[dict[str, Any]]:
    """Every (design, target, parameters) point of the sweep once, in a stable order."""
    upper = count_points(cfg)
    if upper > MAX_POINTS:
        raise GatesimError(f"{cfg.path or cfg.name}: the sweep has {upper:,} points, more than {MAX_POINTS:,}; "
                           f"narrow an axis or use sampling: {{method: random, samples: N}}")
    targets = _target_params(cfg)
    seen: set[tuple] = set()
    out = []
    for design in _designs(cfg):
        for target, params in targets:
            point = {**design_for(design, target), "target": target, "params": params}
            ident = (tuple(point[k] for k in design), target, tuple(sorted(params.items())))
            if ident not in seen:
                seen.add(ident)
                out.append(point)
    return out
