"""The graph ONNX Runtime really runs for a cell (the cpu target's int8 mode): the cell
exported from Brevitas as QCDQ ONNX, then optimized by ONNX Runtime as a session would
(quantize/dequantize pairs folded into QGemm, signed activations moved to unsigned where the
graph allows). What the cost model takes from it: the number of nodes a run executes, and
which GEMMs keep signed activations (MLAS' s8s8 kernel) or stay in float.

The structure does not depend on the sizes, so a built-in cell is exported once per
configuration at a small size."""
from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from gatesim.errors import GatesimError

EXPORT_SIZE = 8  # input and hidden size a built-in cell is exported at


def engine_graph(cell: Any, config: Any, input_size: int = EXPORT_SIZE, hidden_size: int = EXPORT_SIZE) -> dict:
    """{"nodes", "ops", "signed_gemms", "float_gemms"} of the optimized ONNX Runtime graph."""
    from gatesim.cells import CELLS

    if isinstance(cell, str) and cell in CELLS:
        input_size = hidden_size = EXPORT_SIZE
    return dict(_engine_graph(cell, config, input_size, hidden_size))


@lru_cache(maxsize=64)
def _engine_graph(cell: Any, config: Any, input_size: int, hidden_size: int) -> tuple:
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        exported, optimized = Path(tmp) / "cell.onnx", Path(tmp) / "optimized.onnx"
        export(cell, config, input_size, hidden_size, exported)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(optimized)
        options.log_severity_level = 3
        ort.InferenceSession(str(exported), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(str(optimized)).graph
    produced_by = {out: node for node in graph.node for out in node.output}
    signed, floating = [], []
    for node in graph.node:
        if node.op_type in ("QGemm", "MatMulInteger", "QLinearMatMul"):
            if _is_signed(graph, produced_by, node.input[0]):
                signed.append(fx_name(node.name))
        elif node.op_type in ("Gemm", "MatMul"):
            floating.append(fx_name(node.name))
    return (("nodes", len(graph.node)), ("ops", dict(Counter(n.op_type for n in graph.node))),
            ("signed_gemms", tuple(signed)), ("float_gemms", tuple(floating)))


def _is_signed(graph, produced_by: dict, name: str) -> bool:
    """Whether a tensor is int8 (else uint8): from its initializer or the zero point of the
    QuantizeLinear that makes it."""
    import onnx

    inits = {i.name: i for i in graph.initializer}
    source = produced_by.get(name)
    if name in inits:
        return inits[name].data_type == onnx.TensorProto.INT8
    if source is not None and source.op_type == "QuantizeLinear" and len(source.input) > 2:
        zero = inits.get(source.input[2])
        return zero is not None and zero.data_type == onnx.TensorProto.INT8
    return False


def fx_name(onnx_name: str) -> str:
    """'/hidden_linear/Gemm' -> 'hidden_linear': the fx node of the module the export names."""
    parts = [p for p in onnx_name.split("/") if p]
    return "_".join(parts[:-1]) if len(parts) > 1 else onnx_name


def export(cell: Any, config: Any, input_size: int, hidden_size: int, path: Path, batch: int = 1):
    """The cell (seeded weights) as QCDQ ONNX at `path`; returns the module exported."""
    import torch

    from gatesim.cells import build_cell

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Brevitas' import-time notes on optional packages
        from brevitas.export import export_onnx_qcdq

    torch.manual_seed(0)
    module = build_cell(cell, input_size, hidden_size, config).eval()
    example = (torch.zeros(batch, input_size), *module.initial_state(batch))
    try:
        with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            export_onnx_qcdq(module, example, export_path=str(path), dynamo=False)
    except Exception as exc:
        raise GatesimError(f"cpu mode int8: Brevitas could not export the cell to ONNX ({type(exc).__name__}: "
                           f"{exc})") from exc
    return module
