"""Start-up: what a command costs before it does anything (issue 17).

Times, each the median of 5 fresh processes (the commands taken in turn): `gatesim --help`, `gatesim count gru -i 4 -H 8
--json` (a whole small command, Brevitas and the trace included), and its peer measured in
the same run, `python -c "import brevitas.nn"` (the import every Brevitas-based tool pays;
most of it is torch._dynamo, which Brevitas pulls in). Targets: help under 1 s; count at most
1.3x the Brevitas import.

Last line, a JSON object: {"help_s", "count_s", "brevitas_import_s", "count_vs_brevitas"}.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

RUNS = 5
COMMANDS = {
    "help_s": [sys.executable, "-m", "gatesim", "--help"],
    "count_s": [sys.executable, "-m", "gatesim", "count", "gru", "-i", "4", "-H", "8", "--json"],
    "brevitas_import_s": [sys.executable, "-c", "import brevitas.nn"],
}


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    # round robin, so that a machine slowing down or speeding up weighs on every command alike
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(RUNS):
        for name, command in COMMANDS.items():
            times[name].append(seconds(command))
    figures = {name: round(statistics.median(t), 3) for name, t in times.items()}
    figures["count_vs_brevitas"] = round(figures["count_s"] / figures["brevitas_import_s"], 2)
    print(f"gatesim --help {figures['help_s']:.2f} s (target < 1 s); count {figures['count_s']:.2f} s = "
          f"{figures['count_vs_brevitas']:.2f}x `import brevitas.nn` ({figures['brevitas_import_s']:.2f} s; target <= 1.3x)")
    print(json.dumps(figures))


if __name__ == "__main__":
    sys.exit(main())
