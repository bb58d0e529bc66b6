"""Is a profile this host's? A profile is matched to a machine by what it measures, not by
the machine's name (every VM here is called `vm`): `validate` runs the target's quick spot
check against the profile it is about to predict with, and recalibrates this host when the
two disagree by more than TOLERANCE."""
from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from typing import Callable

TOLERANCE = 1.25  # measured / predicted outside 1/1.25 .. 1.25: the profile is another machine's


def spot_check(calibrator: str, profile: Path) -> dict | None:
    """{"what", "measured", "predicted", "ratio", "agrees"} for `profile`, or None when the
    target has no spot check."""
    module = importlib.import_module(calibrator)
    if not hasattr(module, "spot_check"):
        return None
    found = module.spot_check(json.loads(Path(profile).read_text()))
    ratio = found["predicted"] / found["measured"] if found["measured"] > 0 else math.nan
    return {**found, "profile": str(profile), "ratio": ratio,
            "agrees": bool(1 / TOLERANCE <= ratio <= TOLERANCE)}


def matched_profile(calibrator: str, profile: Path, recalibrate: Callable[[], Path]) -> tuple[Path, dict | None]:
    """The profile to predict with and the spot check that chose it: `profile` when it agrees
    with this host, else the one `recalibrate()` writes (checked again, and reported)."""
    first = spot_check(calibrator, profile)
    if first is None or first["agrees"]:
        return profile, first
    fresh = recalibrate()
    second = spot_check(calibrator, fresh)
    return fresh, {**second, "recalibrated_because": first}
