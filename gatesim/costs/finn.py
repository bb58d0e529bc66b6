"""FINN-L's folded recurrent layer (Rybalkin et al., "FINN-L: Library extensions and design
trade-off analysis for variable precision LSTM networks on FPGAs", FPL 2018; its HLS library
in Xilinx/LSTM-PYNQ and RNN-PYNQ), as a second FPGA architecture beside hls4ml's
(`--architecture finn`).

One hidden unit's gates are computed together, PE units at a time; the loop over the H / PE
unit groups is pipelined at an interval of the fold (n_in / SIMD cycles), and the two
directions of a bidirectional layer take turns on the same datapath. As Vivado HLS builds it,
the fold loop sits unrolled inside that pipelined loop, so every weight of a unit's row gets
its multiplier (and a lane of the gate's adder tree) whatever SIMD is: the published builds'
LUTs grow with bit widths, not with SIMD. Each gate's weights are a ROM a row wide and
directions x H / PE words deep; the activations are FINN-L's 256-entry tables in distributed
ROM, one per lookup.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gatesim.costs.fpga import Built, FpgaCosts, FpgaParams, Hardware
from gatesim.errors import GatesimError

if TYPE_CHECKING:
    from gatesim.ops import Op


class Folded(Hardware):
    def __init__(self, costs: FpgaCosts, p: FpgaParams, sizes: dict[str, int]):
        super().__init__(costs, p)
        hls4ml_only = {"reuse_factor": p.reuse_factor != 1, "recurrent_reuse_factor": p.recurrent_reuse_factor,
                       "strategy": p.strategy != "latency", "activation": p.activation != "table",
                       "pipeline_steps": p.pipeline_steps}
        for name, given in hls4ml_only.items():
            if given:
                raise GatesimError(f"fpga: {name} applies to architecture hls4ml; a finn layer is shaped by pe, "
                                   f"simd_input and simd_recurrent")
        self.h, self.i = sizes["hidden_size"], sizes["input_size"]
        self.simd_i, self.simd_r = p.simd_input or self.i, p.simd_recurrent or self.h
        for name, value, whole in (("pe", p.pe, self.h), ("simd_input", self.simd_i, self.i),
                                   ("simd_recurrent", self.simd_r, self.h)):
            if whole % value:
                raise GatesimError(f"fpga: {name}={value} must divide {whole} (FINN-L folds the layer evenly)")
        self.fold = max(self.i // self.simd_i, self.h // self.simd_r)  # cycles per group of PE units
        self.f = costs.finn

    def sharing(self, component: str, o: Op) -> int:
        return self.simd_r if component == "recurrent_matrix" else self.simd_i

    def effective(self, o: Op, simd: int) -> int:
        return simd

    def per_group(self, o: Op) -> int:
        """Elements of an op one group of PE hidden units computes (an op covers H units, or
        several gates' worth: count / H of them each)."""
        return math.ceil(o.count / self.h * self.p.pe)

    def dense(self, o: Op, simd: int, lookups: int) -> Built:
        gates = max(1, o.count // ((o.reduction or 1) * self.h))
        x_bits, w_bits = (o.operand_bits + (o.bits, o.bits))[:2]
        tree_bits = x_bits + w_bits + math.ceil(math.log2(max(o.reduction, 2)))  # the adder tree's widest sums
        unit = self.multiplier(x_bits, w_bits)
        unit["lut"] = unit.get("lut", 0) + tree_bits * self.r.lut_per_adder_bit.value
        accumulators = {"lut": gates * self.p.pe * o.out_bits * self.r.lut_per_adder_bit.value}
        # HLS unrolls the fold loop inside the unit loop pipelined at II = fold and keeps a
        # multiplier per weight of the unit's row: every lane of n_in is built
        lanes = o.reduction or simd
        # every unit group of every direction enters the pipeline once per fold; the last one's
        # adder tree drains
        groups = self.p.directions * (self.h // self.p.pe)
        cycles = groups * self.fold + math.ceil(self.chained(math.log2(max(lanes, 2))))
        return gates * self.p.pe * lanes, unit, accumulators, cycles

    def weights(self, o: Op, simd: int, kernel: Op) -> dict[str, float]:
        """One ROM per gate: a row of n_in x PE weights wide, directions x H / PE words deep."""
        r, p = self.r, self.p
        gates = max(1, kernel.count // (kernel.reduction * self.h))
        width = kernel.reduction * p.pe * o.bits  # the unrolled fold reads a unit's whole row at once
        depth = p.directions * (self.h // p.pe)
        if width * depth <= r.lutram_max_bits.value:
            return {"lut": gates * math.ceil(width * depth / r.lutram_bits_per_lut.value)}
        return {"bram18": gates * math.ceil(depth / r.bram18_depth.value) * math.ceil(width / r.bram18_port_bits.value)}

    def activation(self, o: Op, reuse: int, lookups: int) -> Built:
        """FINN-L's tables (256 entries of the output width): a distributed ROM per lookup, with
        its index arithmetic."""
        f, r = self.f, self.r
        rom = math.ceil(f.table_entries.value * o.out_bits / r.lutram_bits_per_lut.value)
        index = f.index_ops.value * f.index_bits.value * r.lut_per_adder_bit.value
        return self.per_group(o), {"lut": rom + index}, {}, math.ceil(self.chained(f.index_ops.value))

    def product(self, o: Op, reuse: int, lookups: int) -> Built:
        units, unit, whole, cycles = super().product(o, reuse, lookups)
        return self.per_group(o), unit, whole, cycles

    def simple(self, o: Op, reuse: int, lookups: int) -> Built:
        units, unit, whole, cycles = super().simple(o, reuse, lookups)
        return self.per_group(o), unit, whole, cycles

    def memory(self, o: Op, reuse: int, lookups: int) -> Built:
        """The state of every unit and direction, kept in distributed RAM between steps."""
        if o.kind != "store" or o.label != "state":
            return 0, {}, {}, 0.0
        bits = self.p.directions * o.count * o.out_bits
        return 0, {}, {"lut": math.ceil(bits / self.r.lutram_bits_per_lut.value)}, 0.0
