"""CKKS model: depth in closed form, the ring size security allows, and TenSEAL's own depth."""
import pytest

from gatesim import CellConfig, GatesimError
from gatesim.costs import estimate
from gatesim.pipeline import template

ts = pytest.importorskip("tenseal")


def graph(cell, hidden=4, input_size=4):
    return template(cell, input_size, hidden, CellConfig.unquantized()).at(input_size, hidden, 1)


@pytest.mark.parametrize("degree", [1, 2, 3, 5, 7])
def test_multiply_gated_depth_in_closed_form(degree):
    """GRU: W h (1), sigmoid, r * (.) (1), tanh, (1 - z) * n (1): 3 + 2 ceil(log2(d + 1))."""
    poly = (degree + 1 - 1).bit_length()  # ceil(log2(d + 1))
    assert estimate(graph("gru"), "ckks", poly_degree=degree).resources["depth"] == 3 + 2 * poly


def test_ring_size_follows_the_depth_at_128_bit_security():
    r = estimate(graph("gru"), "ckks").resources
    assert (r["depth"], r["poly_modulus_degree"], r["secure_128"]) == (7, 16384, True)
    assert r["modulus_bits"] == 60 + 7 * 40 + 60 <= 438
    deeper = estimate(graph("add_gru"), "ckks").resources
    assert deeper["depth"] > r["depth"] and deeper["poly_modulus_degree"] == 32768


def test_parameters_below_128_bit_security_are_refused_unless_insecure():
    with pytest.raises(GatesimError, match="N=8192 holds 218 modulus bits at 128-bit security, the depth-7 "
                                           "chain needs 400; choose N >= 16384 or pass --insecure"):
        estimate(graph("gru"), "ckks", poly_modulus_degree=8192)
    r = estimate(graph("gru"), "ckks", poly_modulus_degree=8192, insecure=True).resources
    assert r["secure_128"] is False


def test_tenseal_runs_the_step_on_exactly_the_predicted_depth():
    from gatesim.validate.ckks import one

    row = one("gru", 2, 3, None)
    assert row["depth_measured"] == row["depth_predicted"] == 7
    assert row["measured_s"] > 0


def test_batch_rows_share_ciphertexts_but_not_matrix_products():
    one = template("gru", 4, 8, CellConfig.unquantized(), 1).at(4, 8, 1)
    eight = template("gru", 4, 8, CellConfig.unquantized(), 8).at(4, 8, 8)
    a, b = estimate(one, "ckks").resources, estimate(eight, "ckks").resources
    assert b["ct_ct_mults"] == a["ct_ct_mults"]  # 8 x 8 values still fit one ciphertext
    assert b["rotations"] == 8 * a["rotations"]  # one vector-matrix product per row


def test_baby_step_giant_step_needs_about_two_square_roots_of_rotations():
    diagonal = estimate(graph("gru", hidden=64), "ckks").resources["rotations"]
    bsgs = estimate(graph("gru", hidden=64), "ckks", matvec="bsgs").resources["rotations"]
    # gru: 3 blocks on x (n = 4) and 3 on h (n = 64)
    assert diagonal == 3 * 4 + 3 * 64
    assert bsgs == 3 * (2 + 2) + 3 * (8 + 8)
