"""The accuracy objective of a sweep: one training run per design and seed (cached as
checkpoints by their settings and training code), summarized into columns of the design's
rows. A row's design is what it costs: CKKS rows are the float cell, so that is what trains."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gatesim.sweep.config import SweepConfig, resolve_path
from gatesim.pipeline import cell_config


def checkpoint_dir(cfg: SweepConfig, out: Path) -> Path:
    return resolve_path(cfg, cfg.accuracy.out) if cfg.accuracy.out else out / "train"


def runs_of(cfg: SweepConfig, point: dict[str, Any]) -> list[dict[str, Any]]:
    """train() arguments of each seed's run for the point's design."""
    a = cfg.accuracy
    return [{"cell": point["cell"], "task": a.task, "hidden_size": point["hidden_size"], "seq_len": point["steps"],
             "config": cell_config(point), "epochs": a.epochs, "seed": seed, "batch_size": a.batch_size,
             "lr": a.lr, "train_size": a.train_size, "test_size": a.test_size} for seed in a.seeds]


def run_id(arguments: dict[str, Any]) -> str:
    return json.dumps({**arguments, "config": arguments["config"].model_dump()}, sort_keys=True)


def train_job(job: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """One training run in a worker (one thread: workers already fill the cores)."""
    import torch

    from gatesim.train.run import train_cached

    out, arguments = job
    torch.set_num_threads(1)
    result = train_cached(out, **arguments)
    return run_id(arguments), {k: result[k] for k in ("metric", "value_brevitas", "value_simulator", "agree",
                                                      "baseline", "checkpoint", "cached")}


def rounding_of(point: dict[str, Any]) -> int | None:
    """The bits a point's TFHE tables are rounded to (its target's rounding_bits), if any."""
    return dict(point.get("params", {})).get("rounding_bits") if point.get("target") == "tfhe" else None


def rounded_id(arguments: dict[str, Any], bits: int) -> str:
    return f"{run_id(arguments)}|round{bits}"


def rounded_job(job: tuple[str, dict[str, Any], int]) -> tuple[str, dict[str, Any]]:
    """One trained run scored with its tables rounded, in a worker (one thread)."""
    import torch

    from gatesim.sweep.rounded import rounded_score

    folder, arguments, bits = job
    torch.set_num_threads(1)
    return rounded_id(arguments, bits), rounded_score(folder, arguments, bits)


def columns(runs: list[list[dict[str, Any]]], results: dict[str, dict[str, Any]], task: str,
            roundings: list[int | None] | None = None) -> pd.DataFrame:
    """Per row: the metric over its seeds (mean, std), from the simulator when the design has an
    integer datapath (else Brevitas) and with the row's TFHE rounding when it has one, whether
    simulator and Brevitas agreed on every seed (unrounded), and what learning nothing scores."""
    rows = []
    roundings = roundings or [None] * len(runs)
    for row_runs, bits in zip(runs, roundings):
        got = [results[run_id(r)] for r in row_runs]
        if bits is None:
            values = [g["value_simulator"] if g["value_simulator"] is not None else g["value_brevitas"] for g in got]
        else:
            values = [results[rounded_id(r, bits)]["value"] for r in row_runs]
        agree = [g["agree"] for g in got]
        rows.append({"accuracy_task": task, "accuracy_metric": got[0]["metric"], "accuracy": float(np.mean(values)),
                     "accuracy_std": float(np.std(values)),
                     "accuracy_per_seed": ", ".join(f"{v:.4g}" for v in values), "accuracy_brevitas": float(np.mean([g["value_brevitas"]
                                                                                              for g in got])),
                     "accuracy_agree": None if None in agree else all(agree), "accuracy_seeds": len(got),
                     "accuracy_baseline": float(np.mean([g["baseline"] for g in got])),
                     "accuracy_rounding_bits": bits})
    return pd.DataFrame(rows)


def jobs(cfg: SweepConfig, points: list[dict[str, Any]], out: Path) -> tuple[list[list[dict]], list[tuple]]:
    """Each point's runs, and the distinct runs as jobs (a saved run comes back from its file)."""
    folder = str(checkpoint_dir(cfg, out))
    per_point = [runs_of(cfg, p) for p in points]
    distinct = {run_id(r): r for runs in per_point for r in runs}
    return per_point, [(folder, r) for r in distinct.values()]


def rounded_jobs(cfg: SweepConfig, points: list[dict[str, Any]], out: Path) -> list[tuple]:
    """The distinct (run, rounding) scorings the points with TFHE rounding need."""
    folder = str(checkpoint_dir(cfg, out))
    distinct = {rounded_id(r, bits): (folder, r, bits) for p in points if (bits := rounding_of(p)) is not None
                for r in runs_of(cfg, p)}
    return list(distinct.values())

