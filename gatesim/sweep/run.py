"""`gatesim.sweep(config)`: expand the design space, cost what the cache lacks on a local
process pool or a Dask cluster, write the results table, then the report."""
from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from gatesim.errors import GatesimError
from gatesim.pipeline import CONFIG_FIELDS
from gatesim.results import read_results, to_frame, write_results
from gatesim.sweep import accuracy
from gatesim.sweep.cache import ResultCache, code_fingerprint, point_key
from gatesim.sweep.config import SweepConfig, load_sweep, parse, profile_path
from gatesim.sweep.evaluate import evaluate, ignore_interrupts
from gatesim.sweep.points import points as expand

CACHE_NAME = ".gatesim-cache.sqlite"
CLAIM_POLL_S = 0.5  # how often a sweep looks for rows another sweep is computing
TEMPLATE_FIELDS = ("cell", "batch", *CONFIG_FIELDS)  # points that share these share a traced template
Progress = Callable[[int, int, str], None]  # (done, in all, what is being done)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep, with what was saved: re-running the sweep resumes."""


@dataclass
class SweepResult:
    table: pd.DataFrame
    files: dict[str, Path]
    points: int
    computed: int
    cached: int
    seconds: dict[str, float] = field(default_factory=dict)


def default_out() -> Path:
    return Path("reports")


def _batches(todo: list[tuple[str, dict]], workers: int) -> list[list[tuple[str, dict]]]:
    """Batches that each need one cell template, so a template is traced by as few workers
    as can share its points; big groups are split to keep ~4 batches per worker and each
    saved transaction short. Largest first, for an even finish."""
    groups: dict[tuple, list[tuple[str, dict]]] = {}
    for key, point in todo:
        groups.setdefault(tuple(str(point[f]) for f in TEMPLATE_FIELDS), []).append((key, point))
    size = max(1, min(400, -(-len(todo) // (workers * 4))))
    batches = [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]
    return sorted(batches, key=len, reverse=True)


@contextmanager
def executor(workers: int, scheduler: str | None) -> Iterator[Executor]:
    """A Dask cluster's executor when a scheduler address is given, else a local process pool."""
    if scheduler:
        from distributed import Client

        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise GatesimError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({exc})") from exc
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    # forkserver: workers start from a clean process that has imported gatesim once
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["gatesim.sweep.evaluate"])
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=ignore_interrupts, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:  # Ctrl-C, SIGTERM: stop now; what is saved is saved, a running batch is redone
        stop_workers(pool)
        raise
    pool.shutdown(wait=True)


def stop_workers(pool: ProcessPoolExecutor, patience_s: float = 5.0) -> None:
    """End a local pool now: nothing new starts, running workers are terminated (then killed)
    and reaped. Workers still being started when the pool is stopped are caught too."""
    processes = dict(pool._processes or {})  # the pool forgets them on shutdown
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + patience_s
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1.0)


def run_jobs(fn: Callable[[Any], Any], jobs: list, workers: int, scheduler: str | None,
             on_result: Callable[[Any], None]) -> None:
    """fn(job) for every job, here (one worker, no scheduler) or on the pool / cluster;
    on_result sees each result as it arrives. Ctrl-C cancels what has not started."""
    if not jobs:
        return
    if workers == 1 and not scheduler:  # in-process: nothing to start, easiest to debug
        for job in jobs:
            on_result(fn(job))
        return
    with executor(workers, scheduler) as pool:
        futures = [pool.submit(fn, job) for job in jobs]
        pending = set(futures)
        try:
            while pending:
                # a short timeout: the main thread wakes to run Python's signal handlers even
                # when the kernel handed SIGINT/SIGTERM to one of the pool's threads
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for future in done:
                    on_result(future.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _with_accuracy(cfg: SweepConfig, table: pd.DataFrame, pts: list[dict], out: Path, workers: int,
                   scheduler: str | None, progress: Progress) -> pd.DataFrame:
    per_point, todo = accuracy.jobs(cfg, pts, out)
    results: dict[str, dict] = {}

    def collect(result: tuple[str, dict]) -> None:
        results[result[0]] = result[1]
        progress(len(results), len(todo), "training")

    progress(0, len(todo), "training")
    try:
        run_jobs(accuracy.train_job, todo, workers, scheduler, collect)
        rounded = accuracy.rounded_jobs(cfg, pts, out)
        done = len(results)

        def collect_rounded(result: tuple[str, dict]) -> None:
            results[result[0]] = result[1]
            progress(len(results) - done, len(rounded), "scoring rounded tables")

        run_jobs(accuracy.rounded_job, rounded, workers, scheduler, collect_rounded)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while training: {len(results)} of {len(todo)} runs are saved in "
                          f"{accuracy.checkpoint_dir(cfg, out)}; run the same command again to resume") from None
    roundings = [accuracy.rounding_of(p) for p in pts]
    return pd.concat([table, accuracy.columns(per_point, results, cfg.accuracy.task, roundings)], axis=1)


def run_sweep(config: SweepConfig | dict | str | Path, out: str | Path | None = None, workers: int | None = None,
              scheduler: str | None = None, progress: Progress | None = None) -> tuple[SweepConfig, SweepResult]:
    """Run a sweep (a YAML path, a mapping as in one, or a SweepConfig). Results go to `out`
    (default reports/) as <name>.parquet and <name>.csv; `workers` local processes (default
    one per core) or a Dask `scheduler` address. The report is the caller's (gatesim.api)."""
    t0 = time.perf_counter()
    cfg = (config if isinstance(config, SweepConfig) else parse(config) if isinstance(config, dict)
           else load_sweep(config))
    out = Path(out) if out is not None else default_out()
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise GatesimError(f"workers={workers}: must be >= 1")
    progress = progress or (lambda done, total, what: None)

    # 1. expand the design space; profiles resolve against the sweep file
    pts = expand(cfg)
    for p in pts:
        if p["params"].get("profile"):
            p["params"]["profile"] = str(profile_path(cfg, p["params"]["profile"]))
    # 2. key every point by content; the cache says which are already done
    fingerprint = code_fingerprint()
    keyed = [(point_key(p, fingerprint), p) for p in pts]
    cache = ResultCache(out / CACHE_NAME)
    try:
        have = cache.keys()
        todo = [(k, p) for k, p in keyed if k not in have]
        cached = len(keyed) - len(todo)
        progress(cached, len(keyed), "costing")
        t1 = time.perf_counter()
        # 3. cost the rest, saving each finished batch as it arrives
        done = [cached]

        def save(rows: list) -> None:
            cache.put(rows)
            done[0] += len(rows)
            progress(done[0], len(keyed), "costing")

        computed = 0
        try:
            # another sweep on the same folder computes what it has claimed; this one takes the
            # rest, then waits for those rows (or takes them over if that sweep dies)
            by_key = dict(todo)
            while todo:
                mine = cache.claim([k for k, _ in todo])
                if mine:
                    run_jobs(evaluate, _batches([(k, by_key[k]) for k in mine], workers), workers, scheduler, save)
                    computed += len(mine)
                else:
                    time.sleep(CLAIM_POLL_S)
                have = cache.keys()
                todo = [(k, p) for k, p in todo if k not in have]
                if done[0] < len(keyed) - len(todo):  # rows another sweep saved
                    done[0] = len(keyed) - len(todo)
                    progress(done[0], len(keyed), "costing (another sweep shares this folder)")
        except KeyboardInterrupt:
            saved = len(cache.keys() & {k for k, _ in keyed})
            raise Interrupted(f"interrupted: {saved} of {len(keyed)} points are saved in "
                              f"{cache.path}; run the same command again to resume") from None
        finally:
            cache.release()
        t2 = time.perf_counter()
        # 4. the table in sweep order
        table = to_frame(cache.get([k for k, _ in keyed]))
    finally:
        cache.close()
    # 5. the accuracy objective: train each design (runs are saved as they finish)
    if cfg.accuracy is not None:
        table = _with_accuracy(cfg, table, [p for _, p in keyed], out, workers, scheduler, progress)
    t2b = time.perf_counter()
    files = write_results(table, out, cfg.name)
    table = read_results(files["parquet"])  # the table as anyone reading the file sees it
    t3 = time.perf_counter()
    seconds = {"expand": t1 - t0, "compute": t2 - t1, "train": t2b - t2, "write": t3 - t2b}
    return cfg, SweepResult(table, files, len(keyed), computed, len(keyed) - computed, seconds)
