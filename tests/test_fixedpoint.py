"""The register type: rounding, wrap and saturate, and exact requantization between grids."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatesim.fixedpoint.fixed import FixedType, frac_bits_of, rounding_rescaler


def test_range_and_grid():
    t = FixedType(width=8, scale=2**-7)
    assert (t.min_int, t.max_int, t.frac_bits) == (-128, 127, 7)
    assert (t.min, t.max) == (-1.0, 127 / 128)
    assert FixedType(width=8, scale=2**-7, narrow=True).min_int == -127
    assert FixedType(width=4, scale=0.5, signed=False).max == 7.5
    assert frac_bits_of(0.1) is None and frac_bits_of(4.0) == -2


def test_quantize_rounds_half_to_even_and_saturates_like_brevitas():
    t = FixedType(width=4, scale=0.5)
    got = t.quantize(np.array([0.25, 0.75, -0.25, 1.25, 100.0, -100.0]))
    np.testing.assert_array_equal(got, [0, 2, 0, 2, 7, -8])


def test_wrap_is_twos_complement_and_both_modes_report_the_overflows():
    ints = np.array([-9.0, -8.0, 7.0, 8.0, 300.0])
    wrapped, over = FixedType(width=4, scale=1.0, overflow="wrap").fit(ints)
    np.testing.assert_array_equal(wrapped, [7, -8, 7, -8, 300 - 19 * 16])
    saturated, over_s = FixedType(width=4, scale=1.0, overflow="saturate").fit(ints)
    np.testing.assert_array_equal(saturated, [-8, -8, 7, 7, 7])
    np.testing.assert_array_equal(over, [True, False, False, True, True])
    np.testing.assert_array_equal(over, over_s)


def test_bad_register_is_refused():
    with pytest.raises(ValueError, match="width 0"):
        FixedType(width=0, scale=1.0)
    with pytest.raises(ValueError, match="scale -1"):
        FixedType(width=8, scale=-1.0)


def exact_round(k: int, ratio: Fraction) -> int:
    """round half to even of k * ratio with Python's exact rationals."""
    return round(k * ratio)  # Fraction.__round__ rounds half to even


@given(ints=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=20),
       num=st.integers(1, 2**20), den=st.integers(1, 2**20))
def test_requantizing_between_any_two_grids_is_exact(ints, num, den):
    ratio = Fraction(num, den)
    got = rounding_rescaler(ratio, "half_even")(np.array(ints, dtype=np.int64))
    assert list(got) == [exact_round(k, ratio) for k in ints]


@given(ints=st.lists(st.integers(-(2**30), 2**30), min_size=1, max_size=20), shift=st.integers(0, 20))
def test_power_of_two_requant_on_floats_is_exact(ints, shift):
    ratio = Fraction(1, 2**shift)
    got = rounding_rescaler(ratio, "half_even")(np.array(ints, dtype=np.float64))
    assert [int(v) for v in got] == [exact_round(k, ratio) for k in ints]
    floor = rounding_rescaler(ratio, "floor")(np.array(ints, dtype=np.float64))
    assert [int(v) for v in floor] == [k >> shift for k in ints]


def test_requantizer_saturates_onto_the_target():
    to_8_bits = FixedType(width=8, scale=2**-7).requantizer(2**-14)
    np.testing.assert_array_equal(to_8_bits(np.array([64.0, 192.0, 2.0**30, -(2.0**30)])), [0, 2, 127, -128])
