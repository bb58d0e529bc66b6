"""Design-space sweeps: configs, points, cached and resumable execution, results tables."""
from gatesim.sweep.config import SweepConfig, load_sweep, parse
from gatesim.sweep.results import read_results
from gatesim.sweep.run import Interrupted, SweepResult, sweep

__all__ = ["SweepConfig", "SweepResult", "Interrupted", "load_sweep", "parse", "read_results", "sweep"]
