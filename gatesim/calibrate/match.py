"""Is a profile this host's? A profile is matched to a machine by what it measures, not by
the machine's name (every VM here is called `vm`): `validate` runs the target's quick spot
check against the profile it is about to predict with, and recalibrates this host when the
two disagree by more than TOLERANCE."""
from __future__ import annotations

import importlib
import json
import math
import os
import platform
from pathlib import Path
from typing import Callable

TOLERANCE = 1.25  # measured / predicted outside 1/1.25 .. 1.25: the profile is another machine's


def spot_check(calibrator: str, profile: Path) -> dict | None:
    """{"what", "measured", "predicted", "ratio", "agrees"} for `profile`, or None when the
    target has no spot check. It agrees when the ratio is within TOLERANCE, widened by the
    spread the profile recorded, and the profile (where it says) was measured on this CPU."""
    module = importlib.import_module(calibrator)
    if not hasattr(module, "spot_check"):
        return None
    data = json.loads(Path(profile).read_text())
    found = module.spot_check(data)
    ratio = found["predicted"] / found["measured"] if found["measured"] > 0 else math.nan
    tolerance = TOLERANCE * (1 + 2 * data.get("spread", {}).get("median_relative_iqr", 0.0))
    cpu = same_cpu(data)
    out = {**found, "profile": str(profile), "ratio": ratio, "tolerance": tolerance,
           "agrees": bool(1 / tolerance <= ratio <= tolerance) and cpu is not False}
    if cpu is False:
        out["other_cpu"] = data["host"]["cpu"]["model"]
    return out


def host_cpu() -> dict:
    """What identifies this machine's CPU: model name, logical cores and the instruction-set
    flags the kernels dispatch on (read from /proc/cpuinfo where there is one)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    wanted = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
              "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags]}


def cache_bytes(level: int) -> int | None:
    """The cache of `level` seen by the first core, in bytes, as the kernel reports it (sysfs);
    None where it does not say."""
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() != str(level):
                continue
            size = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
    return None


def l2_cache_bytes() -> int | None:
    """One core's level-2 cache in bytes (sysfs); None where the kernel does not say."""
    return cache_bytes(2)


def same_cpu(profile: dict, here: dict | None = None) -> bool | None:
    """Whether a profile was measured on a CPU like this one (model and flags); None when the
    profile does not say."""
    cpu = profile.get("host", {}).get("cpu")
    if not cpu:
        return None
    here = here or host_cpu()
    return cpu.get("model") == here["model"] and set(cpu.get("flags", ())) == set(here["flags"])


def host_profile(target: str, own: Path, shipped: list[Path]) -> tuple[Path | None, str]:
    """The profile to cost this host with when none is given, and why: this host's own
    calibration (`own`) when it exists, else a shipped one measured on the same CPU model with
    the same instruction-set flags; None when neither is there."""
    here = host_cpu()
    if own.is_file():
        return own, f"profile {own} (this host's calibration)"
    for path in shipped:
        try:
            profile = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if same_cpu(profile, here):
            return path, (f"profile {path.stem} (shipped; measured on this CPU model, {here['model']}, with the "
                          "same instruction-set flags)")
    return None, (f"no profile measured on this CPU ({here['model']}): the cost file's own figures; "
                  f"`gatesim calibrate {target}` measures this host")


def matched_profile(calibrator: str, profile: Path, recalibrate: Callable[[], Path]) -> tuple[Path, dict | None]:
    """The profile to predict with and the spot check that chose it: `profile` when it agrees
    with this host, else the one `recalibrate()` writes (checked again, and reported)."""
    first = spot_check(calibrator, profile)
    if first is None or first["agrees"]:
        return profile, first
    fresh = recalibrate()
    second = spot_check(calibrator, fresh)
    return fresh, {**second, "recalibrated_because": first}
