"""Numbers a person can read (:mod:`ipam_portal.numbers`): grouped, never scientific, never 0 % for use."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from ipam_portal import numbers

NNBSP = "\u202f"


def test_grouped() -> None:
    assert numbers.grouped(16777215) == f"16{NNBSP}777{NNBSP}215"
    assert numbers.grouped(999) == "999" and numbers.grouped(0) == "0"
    assert numbers.grouped(-1234) == f"-1{NNBSP}234"


@given(st.integers(min_value=-(2**130), max_value=2**130))
def test_grouped_is_exact(n: int) -> None:
    assert int(numbers.grouped(n).replace(NNBSP, "")) == n


def test_amount() -> None:
    assert numbers.amount(3812) == f"3{NNBSP}812"
    assert numbers.amount(1 << 46) == "2⁴⁶"
    assert numbers.amount((1 << 46) - 2) == "70.4 T"
    assert numbers.amount(4722366482869645213696) == "2⁷²"
    assert numbers.amount(10**24 + 1) == f"1{NNBSP}000{NNBSP}000 E"


@given(st.integers(min_value=1, max_value=2**128), st.integers(min_value=1, max_value=2**128))
def test_percent_never_scientific_nor_misleading(a: int, b: int) -> None:
    fraction = Fraction(min(a, b), max(a, b))
    text = numbers.percent(fraction)
    assert "e" not in text and text.endswith("%")
    if fraction < 1:
        assert text != "100 %"
    assert text != "0 %"


def test_percent_examples() -> None:
    assert numbers.percent(Fraction(2, 65536)) == "0.003052 %"
    assert numbers.percent(Fraction(1, 2**32)) == "< 0.0001 %"
    assert numbers.percent(Fraction(3, 4)) == "75 %"
    assert numbers.percent(Fraction(0)) == "0 %" and numbers.percent(Fraction(1)) == "100 %"
    assert numbers.percent(1 - Fraction(1, 2**40)) == "> 99.9999 %"


def test_blocks() -> None:
    assert numbers.blocks(1, 56, 6) == "1 × /56"
    assert numbers.blocks(1 << 46, 112, 6) == "2⁴⁶ × /112"
    assert numbers.blocks(256, 32, 4) == "256 addresses" and numbers.blocks(1, 32, 4) == "1 address"
    assert numbers.blocks_by_length({64: 3, 56: 1}, 6) == "1 × /56, 3 × /64"
    assert numbers.blocks_by_length({}, 6) == "none"
