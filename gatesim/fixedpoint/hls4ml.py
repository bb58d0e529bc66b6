"""What hls4ml builds from a torch `nn.LSTM` / `nn.GRU`, in integers: the `hls4ml` preset.

hls4ml (1.3, Vivado/Vitis backends, io_parallel, Latency strategy, static state) converts a
float torch recurrent layer into C++ on `ap_fixed` registers. Its C simulation computes, per
register class (`REGISTERS`), on a type that class is given (`ap_fixed<W,I>`; by default
`ap_fixed` truncates toward -inf and wraps), exactly this:

  dense(v, W, b)  every product v_k * W_jk cast to accum on its own, then
                  accum(b_j) + sum of them, wrapping (or saturating, in order) in accum
  gate pre-acts   accum(x part + h part)
  sigmoid/tanh    a 1024-entry table over [-8, 8) / [-4, 4) of table_t values, indexed by
                  trunc-toward-zero(v * 1024 / 16) + 512 (tanh: / 8), clamped; result cast to accum
  LSTM            c = result(g*i + c*f) and h = result(o * tanh(c)), each sum exact, cast once
  GRU             hn = accum(r * (W_hn h + b_hn)), n = tanh(accum(x_n + hn)),
                  h = result(n * (1 - z) + h * z), exact then cast once

Weights reach the C++ through text with F decimals (F: the weight type's fractional bits),
read back as a double and cast: `quantize_weights` does the same. Sources:
hls4ml/templates/vivado/nnet_utils/nnet_recurrent.h (lstm_static, gru_static),
nnet_dense_latency.h, nnet_activation.h (sigmoid, tanh), converters/pytorch/recurrent.py,
model/types.py (weight text), ap_types/ap_fixed_base.h (casts).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from torch import nn

from gatesim.errors import GatesimError

Rounding = Literal["truncate", "half_up", "half_even"]
Overflow = Literal["wrap", "saturate"]
REGISTERS = ("input", "weight", "recurrent_weight", "bias", "recurrent_bias", "accum", "result", "table")
TABLE_SIZE = 1024  # hls4ml's default table_size for sigmoid and tanh (vivado_backend.py)
TABLE_T = "ap_fixed<18,8>"  # hls4ml's default table_t (vivado_backend.py), whatever the model's precision
SIGMOID_RANGE, TANH_RANGE = 8, 4  # tables span [-range, range) (nnet_activation.h)
MODES = {"AP_TRN": "truncate", "AP_RND": "half_up", "AP_RND_CONV": "half_even",
         "AP_WRAP": "wrap", "AP_SAT": "saturate"}
MAX_PRODUCT_BITS = 62  # int64 holds every exact product and two-product sum below this


@dataclass(frozen=True)
class ApFixed:
    """ap_fixed<width, integer, rounding, overflow>: signed, `width - integer` fractional bits."""

    width: int
    integer: int
    rounding: Rounding = "truncate"
    overflow: Overflow = "wrap"

    def __post_init__(self):
        if not 2 <= self.width <= 31:
            raise GatesimError(f"{self}: width {self.width}; the hls4ml preset takes ap_fixed widths 2..31")

    def __str__(self) -> str:
        modes = {v: k for k, v in MODES.items()}
        extra = ("" if (self.rounding, self.overflow) == ("truncate", "wrap")
                 else f",{modes[self.rounding]},{modes[self.overflow]}")
        return f"ap_fixed<{self.width},{self.integer}{extra}>"

    @classmethod
    def parse(cls, text: str) -> "ApFixed":
        """'ap_fixed<16,6>', 'ap_fixed<16,6,AP_RND_CONV,AP_SAT>' or hls4ml's 'fixed<16,6,RND_CONV,SAT>'."""
        found = re.fullmatch(r"\s*(?:ap_)?fixed<\s*(\d+)\s*,\s*(-?\d+)\s*((?:,\s*\w+\s*)*)>\s*", text)
        if not found:
            raise GatesimError(f"precision {text!r}: expected ap_fixed<W,I> (optionally with a rounding and an "
                               "overflow mode, e.g. ap_fixed<16,6,AP_RND_CONV,AP_SAT>)")
        modes = [m.strip() for m in found.group(3).split(",") if m.strip()]
        modes = [m if m.startswith("AP_") else f"AP_{m}" for m in modes]
        if len(modes) > 3 or any(m not in MODES for m in modes[:2]) or modes[2:] not in ([], ["AP_0"]):
            raise GatesimError(f"precision {text!r}: modes must be a rounding ({', '.join(list(MODES)[:3])}) then "
                               f"an overflow (AP_WRAP, AP_SAT); saturation bits are not modelled")
        rounding = MODES[modes[0]] if modes else "truncate"
        overflow = MODES[modes[1]] if len(modes) > 1 else "wrap"
        if rounding in ("wrap", "saturate") or overflow not in ("wrap", "saturate"):
            raise GatesimError(f"precision {text!r}: the rounding mode comes first, then the overflow mode")
        return cls(int(found.group(1)), int(found.group(2)), rounding, overflow)

    @property
    def frac(self) -> int:
        return self.width - self.integer

    @property
    def lo(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def hi(self) -> int:
        return (1 << (self.width - 1)) - 1

    def fit(self, raw: np.ndarray) -> tuple[np.ndarray, int]:
        """Whole numbers on this grid into the register; and how many did not fit."""
        over = int(np.count_nonzero((raw < self.lo) | (raw > self.hi)))
        if self.overflow == "saturate":
            return np.clip(raw, self.lo, self.hi), over
        span = 1 << self.width
        return (raw - self.lo) % span + self.lo, over

    def rescale(self, raw: np.ndarray, frac: int) -> np.ndarray:
        """Whole numbers with `frac` fractional bits onto this grid, by the rounding mode."""
        shift = frac - self.frac
        if shift <= 0:
            return raw << -shift
        if self.rounding == "truncate":
            return raw >> shift  # arithmetic shift: toward -inf
        half = 1 << (shift - 1)
        if self.rounding == "half_up":
            return (raw + half) >> shift
        floor, rest = raw >> shift, raw & ((1 << shift) - 1)
        return floor + ((rest > half) | ((rest == half) & (floor & 1 == 1)))

    def cast(self, raw: np.ndarray, frac: int) -> tuple[np.ndarray, int]:
        """`(this type) value`: quantized first, then fitted (ap_fixed's order)."""
        return self.fit(self.rescale(np.asarray(raw, dtype=np.int64), frac))

    def from_real(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """`ap_fixed(double)`: the exact value d * 2^F, rounded by the mode, then fitted."""
        scaled = np.asarray(values, dtype=np.float64) * 2.0 ** self.frac  # exact: a power of two
        if self.rounding == "truncate":
            whole = np.floor(scaled)
        elif self.rounding == "half_up":
            whole = np.floor(scaled + 0.5)
        else:
            whole = np.rint(scaled)
        return self.fit(whole.astype(np.int64))


@dataclass(frozen=True)
class Hls4mlTypes:
    """The ap_fixed type of each register class; hls4ml's config_from_pytorch_model gives every
    class the model's default precision except the tables (TABLE_T)."""

    types: dict[str, ApFixed]
    table_size: int = TABLE_SIZE

    @classmethod
    def of(cls, precision: str, table: str = TABLE_T, **overrides: str) -> "Hls4mlTypes":
        unknown = [k for k in overrides if k not in REGISTERS]
        if unknown:
            raise GatesimError(f"register class {unknown[0]!r}: allowed are {', '.join(REGISTERS)}")
        default = ApFixed.parse(precision)
        types = {name: default for name in REGISTERS}
        types["table"] = ApFixed.parse(table)
        types.update({name: ApFixed.parse(text) for name, text in overrides.items()})
        return cls(types)

    def with_modes(self, rounding: dict[str, Rounding] | None = None,
                   overflow: dict[str, Overflow] | None = None) -> "Hls4mlTypes":
        """The same widths with other rounding / overflow modes for some register classes."""
        types = dict(self.types)
        for name, mode in (rounding or {}).items():
            types[name] = replace(types[_register(name)], rounding=mode)
        for name, mode in (overflow or {}).items():
            types[name] = replace(types[_register(name)], overflow=mode)
        return replace(self, types=types)

    def __getitem__(self, name: str) -> ApFixed:
        return self.types[name]


def _register(name: str) -> str:
    if name not in REGISTERS:
        raise GatesimError(f"register class {name!r}: allowed are {', '.join(REGISTERS)}")
    return name


def quantize_weights(values: np.ndarray, t: ApFixed) -> tuple[np.ndarray, int]:
    """As hls4ml hands weights to its C++: each printed with F decimals, read back as a double,
    then cast (floor and wrap, by default). The decimal step can move a weight lying within
    0.5 * 10^-F below a grid point onto it."""
    printed = np.array([float(f"{float(w):.{max(t.frac, 0)}f}") for w in np.ravel(values)])
    raw, over = t.from_real(printed)
    return raw.reshape(np.shape(values)), over


@dataclass
class Recorder:
    """Per node: how many values did not fit their register, and the range of what it holds."""

    overflows: dict[str, int] = field(default_factory=dict)
    ranges: dict[str, list[int]] = field(default_factory=dict)

    def __call__(self, node: str, fitted: tuple[np.ndarray, int]) -> np.ndarray:
        raw, over = fitted
        self.overflows[node] = self.overflows.get(node, 0) + over
        if raw.size:
            lo, hi = int(raw.min()), int(raw.max())
            seen = self.ranges.setdefault(node, [lo, hi])
            seen[0], seen[1] = min(seen[0], lo), max(seen[1], hi)
        return raw


def activation_table(kind: str, t: ApFixed, size: int = TABLE_SIZE) -> np.ndarray:
    """hls4ml's sigmoid or tanh table: entry i holds f(x_i), x_i = 2 * range * (i - size/2) / size,
    computed in float32 (sigmoid) or double (tanh) as its C++ does, cast to `t`."""
    span = SIGMOID_RANGE if kind == "sigmoid" else TANH_RANGE
    x = (2.0 * span * (np.arange(size) - size / 2) / size).astype(np.float32)
    if kind == "sigmoid":
        one = np.float32(1)
        y = (one / (one + np.exp(-x, dtype=np.float32))).astype(np.float64)
    else:
        y = np.tanh(x.astype(np.float64))
    return t.from_real(y)[0]


class Hls4mlLayer:
    """One torch nn.LSTM / nn.GRU as hls4ml's C simulation runs it, on `types`."""

    def __init__(self, layer: nn.Module, types: Hls4mlTypes):
        kind = type(layer).__name__
        if kind not in ("LSTM", "GRU"):
            raise GatesimError(f"the hls4ml preset simulates torch nn.LSTM and nn.GRU as hls4ml converts them; "
                               f"got {kind}")
        if layer.num_layers != 1 or layer.bidirectional or getattr(layer, "proj_size", 0):
            raise GatesimError(f"{kind}: hls4ml converts one layer, one direction, no projection "
                               f"(num_layers={layer.num_layers}, bidirectional={layer.bidirectional})")
        self.kind, self.types, self.hidden = kind, types, layer.hidden_size
        widest = max(t.width for t in types.types.values())
        if 2 * widest + 1 > MAX_PRODUCT_BITS:
            raise GatesimError(f"types up to {widest} bits: products need {2 * widest + 1} bits; the hls4ml preset "
                               f"computes them in int64 (at most {MAX_PRODUCT_BITS})")
        self.weights: dict[str, np.ndarray] = {}
        self.weight_overflows: dict[str, int] = {}
        for name, register in (("weight_ih_l0", "weight"), ("weight_hh_l0", "recurrent_weight"),
                               ("bias_ih_l0", "bias"), ("bias_hh_l0", "recurrent_bias")):
            param = getattr(layer, name, None)
            values = (param.detach().double().numpy() if param is not None else
                      np.zeros(layer.weight_ih_l0.shape[0]))  # bias=False: hls4ml's biases are zeros
            self.weights[register], self.weight_overflows[register] = quantize_weights(values, types[register])
        self.tables = {k: activation_table(k, types["table"], types.table_size) for k in ("sigmoid", "tanh")}

    def dense(self, v: np.ndarray, frac: int, weights: str, bias: str, node: str, rec: Recorder) -> np.ndarray:
        """(rows, K) x weights^T + bias, as nnet_dense_latency computes it."""
        acc, w, b = self.types["accum"], self.types[weights], self.types[bias]
        products = rec(f"{node}.products", acc.cast(v[:, None, :] * self.weights[weights][None], frac + w.frac))
        start = rec(f"{node}.bias", acc.cast(self.weights[bias], b.frac))
        if acc.overflow == "wrap":  # addition mod 2^W: the order does not matter
            return rec(node, acc.fit(start + products.sum(axis=2)))
        total = np.broadcast_to(start, products.shape[:2]).copy()
        over = 0
        for k in range(products.shape[2]):  # saturation: in the kernel's order
            total, o = acc.fit(total + products[:, :, k])
            over += o
        return rec(node, (total, over))

    def lookup(self, kind: str, raw: np.ndarray, frac: int, node: str, rec: Recorder) -> np.ndarray:
        """index = trunc toward 0 (x * N / (2 range)) + N/2, clamped; the entry cast to accum."""
        size, table_t = self.types.table_size, self.types["table"]
        span = SIGMOID_RANGE if kind == "sigmoid" else TANH_RANGE
        step = (2 * span) << frac
        index = np.sign(raw) * (np.abs(raw) * size // step) + size // 2
        entries = self.tables[kind][np.clip(index, 0, size - 1)]
        return rec(node, self.types["accum"].cast(entries, table_t.frac))

    def two_products(self, a, fa, b, fb, c, fc, d, fd, node: str, rec: Recorder) -> np.ndarray:
        """result(a*b + c*d): both products exact on their common grid, one cast."""
        f1, f2 = fa + fb, fc + fd
        top = max(f1, f2)
        return rec(node, self.types["result"].cast(((a * b) << (top - f1)) + ((c * d) << (top - f2)), top))

    def run(self, x: np.ndarray) -> tuple[np.ndarray, Recorder, np.ndarray]:
        """x (B, T, I) reals -> h at every step as whole numbers on result's grid (B, T, H),
        what each node held, and c at every step (LSTM; else None). Zero initial state."""
        rec, t = Recorder(), self.types
        acc, res = t["accum"], t["result"]
        fa, fr, H = acc.frac, res.frac, self.hidden
        batch, steps = x.shape[0], x.shape[1]
        h = np.zeros((batch, H), dtype=np.int64)
        c = np.zeros_like(h)
        hs, cs = [], []
        for step in range(steps):
            # the C bridge reads float32 inputs and casts them (floor, wrap by default)
            xt = rec("input", t["input"].from_real(x[:, step].astype(np.float32)))
            t1 = self.dense(xt, t["input"].frac, "weight", "bias", "input_dense", rec)
            t2 = self.dense(h, fr, "recurrent_weight", "recurrent_bias", "recurrent_dense", rec)
            if self.kind == "LSTM":  # torch's gate order i, f, g, o
                pre = rec("gates", acc.fit(t1 + t2))
                i = self.lookup("sigmoid", pre[:, :H], fa, "input_gate", rec)
                f = self.lookup("sigmoid", pre[:, H:2 * H], fa, "forget_gate", rec)
                g = self.lookup("tanh", pre[:, 2 * H:3 * H], fa, "candidate", rec)
                o = self.lookup("sigmoid", pre[:, 3 * H:], fa, "output_gate", rec)
                c = self.two_products(g, fa, i, fa, c, fr, f, fa, "c", rec)
                tc = self.lookup("tanh", c, fr, "tanh_c", rec)
                h = rec("h", res.cast(o * tc, 2 * fa))
                cs.append(c)
            else:  # torch's order r, z, n; the reset gate applied after W_hn h + b_hn
                pre = rec("gates", acc.fit(t1[:, :2 * H] + t2[:, :2 * H]))
                r = self.lookup("sigmoid", pre[:, :H], fa, "reset_gate", rec)
                z = self.lookup("sigmoid", pre[:, H:], fa, "update_gate", rec)
                hn = rec("reset_hidden", acc.cast(r * t2[:, 2 * H:], 2 * fa))
                n = self.lookup("tanh", rec("candidate_preact", acc.fit(t1[:, 2 * H:] + hn)), fa, "candidate", rec)
                h = self.two_products(n, fa, (1 << fa) - z, fa, h, fr, z, fa, "h", rec)
            hs.append(h)
        return np.stack(hs, axis=1), rec, (np.stack(cs, axis=1) if cs else None)


def simulate_hls4ml(layer: nn.Module, x: np.ndarray, precision: str = "ap_fixed<16,6>", table: str = TABLE_T,
                    rounding: dict[str, Rounding] | None = None, overflow: dict[str, Overflow] | None = None,
                    **types: str) -> dict:
    """Run `layer` (torch nn.LSTM / nn.GRU, batch_first) over x (B, T, I) as hls4ml's C simulation
    would for this precision: h at every step (whole numbers and their grid step) and, per node,
    the range held and how many values did not fit (wrapped or saturated)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != layer.input_size:
        raise GatesimError(f"x has shape {x.shape}; expected (batch, steps, {layer.input_size})")
    chosen = Hls4mlTypes.of(precision, table, **types).with_modes(rounding, overflow)
    model = Hls4mlLayer(layer, chosen)
    ints, rec, _ = model.run(x)
    return {"int_outputs": ints, "scale": 2.0 ** -chosen["result"].frac,
            "types": {k: str(v) for k, v in chosen.types.items()},
            "overflows": {**{f"{k} (weights)": v for k, v in model.weight_overflows.items() if v},
                          **{k: v for k, v in rec.overflows.items() if v}},
            "ranges": {k: tuple(v) for k, v in rec.ranges.items()}}

