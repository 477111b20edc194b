"""The pure prefix layer: parsing and the buddy free space (hypothesis)."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocations import prefixes
from allocations.errors import InvalidPrefix, IpamError, NotAligned, PoolExhausted, WrongFamily


@pytest.mark.parametrize(
    ("text", "error", "needle"),
    [
        ("2001:db8::1/64", NotAligned, "host bits"),
        ("10.0.0.1/8", NotAligned, "host bits"),
        ("2001:db8::", InvalidPrefix, "no prefix length"),
        ("2001:db8::/129", InvalidPrefix, "not an IP prefix"),
        ("fe80::%eth0/64", InvalidPrefix, "zone"),
        ("::ffff:10.0.0.0/104", InvalidPrefix, "IPv4-mapped"),
        ("", InvalidPrefix, "blank"),
        ("2001:db8::/6x", InvalidPrefix, "number"),
        ("10.0.0.0/８", InvalidPrefix, "not an IP prefix"),
        ("x" * 500, InvalidPrefix, "not an IP prefix"),
    ],
)
def test_parse_prefix_refuses_with_reason(text: str, error: type[IpamError], needle: str) -> None:
    with pytest.raises(error) as exc:
        prefixes.parse_prefix(text, field="cidr")
    assert needle in exc.value.message
    assert exc.value.field == "cidr"


def test_parse_prefix_refuses_wrong_family_and_non_strings() -> None:
    with pytest.raises(WrongFamily):
        prefixes.parse_prefix("10.0.0.0/8", family=6)
    with pytest.raises(InvalidPrefix, match="string"):
        prefixes.parse_prefix(42)


def test_parse_prefix_accepts_any_spelling_of_a_network() -> None:
    assert str(prefixes.parse_prefix(" 2001:DB8:0::/48 ")) == "2001:db8::/48"


def test_keys_order_like_addresses() -> None:
    low = prefixes.to_key(int(ipaddress.ip_address("2001:db8::")))
    high = prefixes.to_key(int(ipaddress.ip_address("2001:db8:8000::")))
    top = prefixes.to_key((1 << 128) - 1)
    assert len(low) == 16 and low < high < top


def test_split_path_keeps_buddy_invariant() -> None:
    rest = prefixes.split_path(0, 32, 0, 56, 128)
    assert len(rest) == 24
    assert {ln for _, ln in rest} == set(range(33, 57))


def test_cidr_blocks_is_minimal_cover() -> None:
    got = list(prefixes.cidr_blocks(1, 6, 32))
    assert got == [(1, 32), (2, 31), (4, 31), (6, 32)]


def test_first_free_avoiding() -> None:
    pool = ipaddress.ip_network("10.0.0.0/16")
    taken = [ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("10.0.2.0/23")]
    assert str(prefixes.first_free_avoiding(pool, taken, 24)) == "10.0.1.0/24"
    assert str(prefixes.first_free_avoiding(pool, taken, 23)) == "10.0.4.0/23"
    assert prefixes.first_free_avoiding(pool, [pool], 24) is None


# --- properties ----------------------------------------------------------------------

pool_v6 = (
    st.integers(8, 120)
    .flatmap(lambda n: st.tuples(st.integers(0, (1 << n) - 1), st.just(n)))
    .map(lambda t: ipaddress.IPv6Network((t[0] << (128 - t[1]), t[1])))
)
pool_v4 = (
    st.integers(8, 30)
    .flatmap(lambda n: st.tuples(st.integers(0, (1 << n) - 1), st.just(n)))
    .map(lambda t: ipaddress.IPv4Network((t[0] << (32 - t[1]), t[1])))
)

ops = st.lists(
    st.tuples(
        st.sampled_from(["alloc", "alloc", "release", "specific"]), st.integers(0, 7), st.integers(0, 10**6)
    ),
    max_size=60,
)


def check_invariants(space: prefixes.FreeSpace, held: list) -> None:
    total = 1 << (space.bits - space.pool.prefixlen)
    used = sum(n.num_addresses for n in held)
    assert space.free_size() + used == total
    # no overlap among held prefixes and with free blocks
    spans = sorted(
        [(int(n.network_address), int(n.broadcast_address)) for n in held]
        + [(f, prefixes.block_last(f, ln, space.bits)) for f, ln in space.blocks]
    )
    for (_, a_last), (b_first, _) in itertools.pairwise(spans):
        assert a_last < b_first
    # buddy invariant: no two buddies free at once
    for f, ln in space.blocks:
        if ln > space.pool.prefixlen:
            assert (prefixes.buddy_of(f, ln, space.bits), ln) not in space.blocks


@settings(max_examples=150, deadline=None)
@given(pool=st.one_of(pool_v6, pool_v4), steps=ops, policy=st.sampled_from(["lowest-first", "best-fit"]))
def test_random_allocate_release_never_overlaps(pool, steps, policy) -> None:
    space = prefixes.FreeSpace(pool)
    held: list = []
    for op, extra_len, pick in steps:
        length = min(pool.prefixlen + extra_len, space.bits)
        if op == "alloc":
            try:
                held.append(space.allocate(length, policy))
            except PoolExhausted:
                assert all(ln > length for _, ln in space.blocks)
        elif op == "specific":
            size = 1 << (space.bits - length)
            slots = 1 << (length - pool.prefixlen)
            net = prefixes.make_network(
                int(pool.network_address) + (pick % slots) * size, length, pool.version
            )
            if any(net.overlaps(h) for h in held):
                with pytest.raises(Exception):  # noqa: B017 - any refusal is right; overlap is not
                    space.allocate_specific(net)
            else:
                held.append(space.allocate_specific(net))
        elif held:
            space.release(held.pop(pick % len(held)))
        check_invariants(space, held)
    for net in list(held):
        space.release(net)
    assert space.blocks == {(int(pool.network_address), pool.prefixlen)}


@settings(max_examples=100, deadline=None)
@given(pool=st.one_of(pool_v6, pool_v4), lengths=st.lists(st.integers(0, 6), min_size=1, max_size=30))
def test_lowest_first_is_lowest_free_aligned_block(pool, lengths) -> None:
    space = prefixes.FreeSpace(pool)
    held: list = []
    for extra in lengths:
        length = min(pool.prefixlen + extra, space.bits)
        try:
            got = space.allocate(length)
        except PoolExhausted:
            continue
        # brute force over aligned candidates below the result: each must overlap something held
        size = 1 << (space.bits - length)
        start = int(pool.network_address)
        for cand in range(start, int(got.network_address), size):
            net = prefixes.make_network(cand, length, pool.version)
            assert any(net.overlaps(h) for h in held), f"{net} was free but {got} was returned"
        held.append(got)


@settings(max_examples=200, deadline=None)
@given(a=st.integers(0, (1 << 128) - 1), b=st.integers(0, (1 << 128) - 1))
def test_cidr_blocks_matches_ipaddress(a: int, b: int) -> None:
    first, last = min(a, b), max(a, b)
    ours = [ipaddress.IPv6Network((f, ln)) for f, ln in prefixes.cidr_blocks(first, last, 128)]
    theirs = list(
        ipaddress.summarize_address_range(ipaddress.IPv6Address(first), ipaddress.IPv6Address(last))
    )
    assert ours == theirs
