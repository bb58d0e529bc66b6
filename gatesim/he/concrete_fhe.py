"""concrete-python's `fhe`, loaded so that it leaves the process's exit status alone."""
from __future__ import annotations

import atexit
from types import ModuleType


def load_fhe() -> ModuleType:
    """concrete.fhe. concrete-python (2.11) registers an exit handler that ends its dataflow
    runtime, and once a circuit has run that handler ends the process with status 0
    (concrete.compiler.terminate_df_parallelization): a failing test run, or a command that
    refused its input, would report success. gatesim never asks for dataflow parallelism,
    so the handler is removed (the process exits cleanly without it)."""
    import concrete.compiler
    from concrete import fhe

    atexit.unregister(concrete.compiler._terminate_df_parallelization)
    return fhe
