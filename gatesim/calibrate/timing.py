"""Timings a shared machine can be trusted with: many short samples spread over a stretch of
time, the median of the fastest third of them kept (the machine's undisturbed speed), and
the spread recorded beside it so a profile says how noisy the machine was when it was
measured.

Why the fastest third: a virtual machine here runs the same code at two speeds 1.5-1.9x
apart, flipping every few tens of milliseconds to seconds (another tenant on the host, not
this process: no steal time shows). A plain median lands on whichever speed held the
majority of that moment, so two timings of the same code, a calibration's and a
validation's, could differ by the whole gap. Disturbance only ever adds time, so the fast
samples are the machine's own speed; calibration and validation both read it the same way.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from gatesim.errors import GatesimError

NOISY = 0.10  # relative spread (interquartile range / median) above which a machine is too noisy
# a typical figure's passes (range / median) disagreeing by more than this: too noisy as well
NOISY_BETWEEN = 0.25
SPAN_S = 0.15  # least seconds a timing's samples are spread over: long enough to meet both speeds
ATTEMPTS = 3  # times a measurement is taken before its constant is declared lost in the noise
T = TypeVar("T")


class Unresolved(GatesimError):
    """A constant the timings could not resolve (its difference lost in the noise)."""

    def __init__(self, name: str, value: float, against: float, attempts: int = 1):
        self.name, self.value, self.against = name, value, against
        tries = f", {attempts} measurements in a row" if attempts > 1 else ""
        super().__init__(
            f"calibration: {name} could not be measured ({value:.3g} s against timings of {against:.3g} s: "
            f"the difference is lost in the noise{tries}); calibrate again on a quieter machine")


@dataclass(frozen=True)
class Timed:
    seconds: float  # per call: the median of the fastest third of the samples
    spread: float  # interquartile range / median of the kept repeats


def kept(samples: list[float]) -> list[float]:
    """The samples inside Tukey's fences (1.5 interquartile ranges beyond the quartiles)."""
    if len(samples) < 4:
        return samples
    q1, _, q3 = statistics.quantiles(samples, n=4)
    low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    return [s for s in samples if low <= s <= high] or samples


def fastest_third(samples: list[float]) -> list[int]:
    """The indices of the fastest third of `samples` (at least one)."""
    order = sorted(range(len(samples)), key=samples.__getitem__)
    return order[:max(1, len(samples) // 3)]


def undisturbed(samples: list[float]) -> float:
    """The median of the fastest third of `samples`: the machine's own speed, disturbance left
    out (it only ever adds time). Used alike by calibration and by validation."""
    return statistics.median(samples[i] for i in fastest_third(samples))


def timed(fn: Callable[[], object], inner: int = 200, repeats: int = 7, warmup: int = 10,
          span_s: float = SPAN_S) -> Timed:
    """Per-call seconds: timings of `inner` calls, at least `repeats` of them and for at least
    `span_s` seconds, read by `undisturbed`; the spread is that of all of them, outliers dropped."""
    for _ in range(warmup):
        fn()
    samples, begun = [], time.perf_counter()
    while len(samples) < repeats or time.perf_counter() - begun < span_s:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    good = kept(samples)
    middle = statistics.median(good)
    if len(good) >= 4:
        q1, _, q3 = statistics.quantiles(good, n=4)
        spread = (q3 - q1) / middle if middle > 0 else 0.0
    else:
        spread = (max(good) - min(good)) / middle if middle > 0 else 0.0
    return Timed(undisturbed(samples), spread)


def paired(fns: list[Callable[[], object]], inners: list[int], repeats: int = 9, warmup: int = 10,
           span_s: float = 0.0) -> list[list[float]]:
    """Per-call seconds of each function, timed in turn within every repeat (at least `repeats`
    of them, for at least `span_s` seconds), so that a drift of the machine's speed hits all of
    them alike (their differences are what is wanted)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    begun = time.perf_counter()
    while len(samples[0]) < repeats or time.perf_counter() - begun < span_s:
        for fn, inner, out in zip(fns, inners, samples):
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            out.append((time.perf_counter() - start) / inner)
    return samples


class Noise:
    """The spreads seen while calibrating, and a check that each derived constant stands
    above them: a constant the timings cannot resolve is an error, never a floor value."""

    def __init__(self) -> None:
        self.spreads: list[float] = []

    def time(self, fn: Callable[[], object], inner: int = 200, repeats: int = 7, warmup: int = 10) -> float:
        found = timed(fn, inner, repeats, warmup)
        self.spreads.append(found.spread)
        return found.seconds

    def again(self, measure: Callable[[], T]) -> T:
        """`measure()`, taken again (up to ATTEMPTS times in all) while a constant it derives is
        lost in the noise: a virtual machine's speed swings for seconds at a time, so one bad
        stretch is no verdict on the host; the last attempt's error is."""
        for _ in range(ATTEMPTS - 1):
            try:
                return measure()
            except Unresolved:
                pass
        try:
            return measure()
        except Unresolved as exc:
            raise Unresolved(exc.name, exc.value, exc.against, ATTEMPTS) from None

    def difference(self, name: str, minuend: Callable[[], object], subtrahend: Callable[[], object],
                   inners: tuple[int, int] = (200, 200), may_be_zero: bool = False) -> float:
        """Minuend's time less subtrahend's, the median over the pairs of repeats timed fastest
        (the fastest third by the pair's whole time: both taken at the machine's own speed),
        measured again while the noise swallows it (`again`). A difference it still swallows is
        an error naming the constant; one allowed to be zero (`may_be_zero`) is 0 when it lies
        within the timings' spread."""
        return self.again(lambda: self._difference(name, minuend, subtrahend, inners, may_be_zero))

    def _difference(self, name: str, minuend: Callable[[], object], subtrahend: Callable[[], object],
                    inners: tuple[int, int], may_be_zero: bool) -> float:
        big, small = paired([minuend, subtrahend], list(inners), span_s=SPAN_S)
        fast = fastest_third([b * inners[0] + s * inners[1] for b, s in zip(big, small)])
        value, against = statistics.median(big[i] - small[i] for i in fast), statistics.median(big[i] for i in fast)
        diffs = kept([b - s for b, s in zip(big, small)])
        q1, _, q3 = statistics.quantiles(diffs, n=4) if len(diffs) >= 4 else (min(diffs), 0, max(diffs))
        self.spreads.append((q3 - q1) / against if against > 0 else 0.0)
        if may_be_zero and value <= 0 and abs(value) <= max(q3 - q1, NOISY * against):
            return 0.0
        return self.positive(name, value, against)

    def positive(self, name: str, value: float, against: float) -> float:
        """`value` (a difference of timings) when it is above zero; else the constant `name`
        cannot be measured here: an error naming it."""
        if not value > 0:
            raise Unresolved(name, value, against)
        return value

    def nonnegative(self, name: str, value: float, against: float) -> float:
        """A constant that may be zero: `value` above zero, 0 when it lies below zero by no more
        than the noise allows (NOISY x `against`), else an error naming it."""
        if value > 0:
            return value
        if value >= -NOISY * against:
            return 0.0
        raise Unresolved(name, value, against)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.spreads) or [0.0]
        return {"median_relative_iqr": statistics.median(ordered), "max_relative_iqr": ordered[-1],
                "load_average_1m": os.getloadavg()[0]}

    @staticmethod
    def warning_for(s: dict) -> str | None:
        """One line when a calibration's spread says the machine was too noisy (within a
        timing, between the passes, or a pass lost to a figure it could not resolve), else None."""
        within, between = s.get("median_relative_iqr", 0.0), s.get("median_relative_range_between_rounds", 0.0)
        lost = s.get("lost_rounds", 0)
        how = []
        if within > NOISY:
            how.append(f"timings spread {within:.0%} around their median")
        if between > NOISY_BETWEEN:
            how.append(f"a figure's {s.get('rounds', 'several')} passes differ by {between:.0%} of it, typically")
        if lost:
            how.append(f"{lost} of {lost + s.get('rounds', 0)} passes lost a figure in the noise")
        if not how:
            return None
        return (f"warning: this machine is too noisy to calibrate well ({'; '.join(how)}; load average "
                f"{s.get('load_average_1m', 0):.1f}); the profile records it: calibrate again when the machine is quiet")
