"""Pure prefix arithmetic: parsing, the 16-byte storage key, and the buddy free space.

No Django here. A prefix is handled as ``(first, length)`` integers of one address
family (``bits`` = 32 or 128); the database stores ``first`` as 16 big-endian
bytes so that SQLite and PostgreSQL both order and index 128-bit addresses
correctly (never as 64-bit integers).

Free space is kept as the *buddy decomposition*: the set of maximal aligned
blocks that are entirely free. Invariant: no two buddies (the two halves of one
parent block) are free blocks at the same time — then the decomposition is
canonical, every free aligned /N lies inside exactly one free block, and "the
lowest free /N" is the start of the lowest-addressed free block of length <= N.
:class:`FreeSpace` is the in-memory reference model of that algorithm; the
database allocator in :mod:`allocations.freespace` performs the same steps on indexed rows.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Iterable, Iterator
from fractions import Fraction

from .errors import InvalidPrefix, NotAligned, OutsidePool, PoolExhausted, PrefixOverlap, WrongFamily

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FIT_LOWEST_FIRST = "lowest-first"
FIT_BEST_FIT = "best-fit"

_MAX_INPUT = 100  # longest sensible textual prefix; longer input is refused before parsing


def family_bits(family: int) -> int:
    """Address width of an IP family (4 -> 32, 6 -> 128)."""
    return 32 if family == 4 else 128


def _clean_text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidPrefix(f"expected a prefix as a string, got {type(value).__name__}", field=field)
    text = value.strip()
    if not text:
        raise InvalidPrefix("this field may not be blank", field=field)
    if len(text) > _MAX_INPUT or not text.isascii():
        raise InvalidPrefix(f"{value[:_MAX_INPUT]!r} is not an IP prefix", field=field)
    if "%" in text:
        raise InvalidPrefix(f"{text!r}: zone ids are not allowed in a prefix", field=field)
    return text


def parse_prefix(value: object, *, field: str = "cidr", family: int | None = None) -> IPNetwork:
    """Parse a CIDR strictly: explicit length, no host bits, no zone id, no IPv4-mapped IPv6.

    Raises :class:`InvalidPrefix` / :class:`NotAligned` / :class:`WrongFamily` naming ``field``.
    """
    text = _clean_text(value, field)
    if "/" not in text:
        raise InvalidPrefix(f"{text!r} has no prefix length (write it as address/length)", field=field)
    addr, _, length = text.partition("/")
    if not length.isdigit():
        raise InvalidPrefix(f"{text!r}: the prefix length must be a number", field=field)
    # The family by its separator (an IPv6 address always has a colon, an IPv4 one never): one
    # parse instead of ip_address's failed IPv4 attempt on every IPv6 text, and the network built
    # from the parsed integer (a bulk load parses 10⁶ of these).
    version = ipaddress.IPv6Address if ":" in addr else ipaddress.IPv4Address
    try:
        address: IPAddress = version(addr)
    except ValueError:
        raise InvalidPrefix(
            f"{text!r} is not an IP prefix: {addr!r} is not an IPv4 or IPv6 address", field=field
        ) from None
    if int(length) > address.max_prefixlen:
        raise InvalidPrefix(
            f"{text!r} is not an IP prefix: an IPv{address.version} prefix length is 0 to {address.max_prefixlen}",
            field=field,
        )
    network = ipaddress.IPv6Network if address.version == 6 else ipaddress.IPv4Network
    net: IPNetwork = network((int(address), int(length)), strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
        raise InvalidPrefix(f"{text!r}: IPv4-mapped IPv6 prefixes are not allowed", field=field)
    if address != net.network_address:
        raise NotAligned(
            f"{text!r} has host bits set; the network is {net.network_address}/{net.prefixlen}",
            field=field,
        )
    if family is not None and net.version != family:
        raise WrongFamily(f"{text} is IPv{net.version}, expected IPv{family}", field=field)
    return net


@functools.lru_cache(maxsize=4096)
def stored_network(cidr: str) -> IPNetwork:
    """The network of a stored (canonical) CIDR, parsed once per text: networks are immutable,
    and a pool's own network is asked for on every row a bulk load checks."""
    return parse_prefix(cidr)


def parse_address(value: object, *, field: str = "address") -> IPAddress:
    """Parse one IP address (no zone id, no prefix)."""
    text = _clean_text(value, field)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidPrefix(f"{text!r} is not an IP address", field=field) from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise InvalidPrefix(f"{text!r}: IPv4-mapped IPv6 addresses are not allowed", field=field)
    return address


def parse_address_or_prefix(value: object, *, field: str = "q") -> IPNetwork:
    """An address becomes its host prefix (/32, /128); a prefix is parsed strictly."""
    text = _clean_text(value, field)
    if "/" in text:
        return parse_prefix(text, field=field)
    addr = parse_address(text, field=field)
    return ipaddress.ip_network(addr)


_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _not_canonical(value: object, field: str) -> InvalidPrefix:
    # Gardener's wording; Kubernetes prints bad values with Go's %q (double quotes, escapes).
    return InvalidPrefix(
        f"{field}: Invalid value: {json.dumps(str(value))}: must be valid canonical CIDR",
        field=field,
        value=value,
    )


def parse_canonical_cidr(value: str, *, field: str) -> IPNetwork:
    """Parse a CIDR the way Gardener wants it written, or raise ``InvalidPrefix``.

    Accepted: exactly the text Go prints for the parsed network — lower-case,
    RFC 5952-compressed IPv6, no leading zeros, an explicit prefix length and no
    host bits. Refused: whitespace anywhere, zone ids (``fe80::1%eth0/64``),
    IPv4-mapped IPv6 (``::ffff:10.0.0.0/104``), netmask notation, anything else.

    Gardener itself only refuses host bits (``ipNet.IP.Equal(ip)``); the portal is
    stricter so that a stored range compares equal, as text, to what Gardener and
    the clouds print back (search, import and reconcile match on it). Here rather
    than in :mod:`allocations.gardener` because the layouts, which Gardener's rules
    build on, parse with it too.
    """
    if not isinstance(value, str) or not value:
        raise _not_canonical(value, field)
    if "".join(value.split()) != value or "%" in value or value.count("/") != 1:
        raise _not_canonical(value, field)
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise _not_canonical(value, field) from None
    if str(net) != value:
        raise _not_canonical(value, field)
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_IPV4_MAPPED):
        raise _not_canonical(value, field)
    return net


def canonical_network(value: object, *, field: str) -> IPNetwork:
    """A network from text (see :func:`parse_canonical_cidr`) or an ``ip_network`` object (re-checked)."""
    if isinstance(value, str):
        return parse_canonical_cidr(value, field=field)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        # Objects are canonical by construction, but zone ids and IPv4-mapped
        # ranges still slip through ipaddress.
        if isinstance(value, ipaddress.IPv6Network) and (
            value.network_address.scope_id is not None or value.subnet_of(_IPV4_MAPPED)
        ):
            raise _not_canonical(value, field)
        return value
    raise _not_canonical(value, field)


def to_key(value: int) -> bytes:
    """The 16-byte big-endian storage key of an address integer (IPv4 and IPv6 alike)."""
    return value.to_bytes(16, "big")


def from_key(key: bytes | memoryview) -> int:
    return int.from_bytes(bytes(key), "big")


def make_network(first: int, length: int, family: int) -> IPNetwork:
    if family == 4:
        return ipaddress.IPv4Network((first, length))
    return ipaddress.IPv6Network((first, length))


def block_size(length: int, bits: int) -> int:
    return 1 << (bits - length)


def block_last(first: int, length: int, bits: int) -> int:
    return first + block_size(length, bits) - 1


def buddy_of(first: int, length: int, bits: int) -> int:
    """Start of the other half of this block's parent."""
    return first ^ block_size(length, bits)


def split_path(
    block_first: int, block_len: int, target_first: int, target_len: int, bits: int
) -> list[tuple[int, int]]:
    """Free blocks left over when ``target`` is taken out of the free ``block``.

    Walks from the block down to the target, keeping at each level the half that
    does not contain the target: at most ``target_len - block_len`` blocks, each
    maximal (its buddy is no longer entirely free), so the buddy invariant holds.
    """
    rest: list[tuple[int, int]] = []
    first, length = block_first, block_len
    while length < target_len:
        length += 1
        half = block_size(length, bits)
        if target_first >= first + half:
            rest.append((first, length))
            first += half
        else:
            rest.append((first + half, length))
    return rest


def cidr_blocks(first: int, last: int, bits: int) -> Iterator[tuple[int, int]]:
    """The minimal aligned blocks covering [first, last] (the buddy decomposition of a gap).

    Each step takes the largest block that is both aligned at ``first`` and fits
    before ``last``: constant work per block.
    """
    while first <= last:
        align = (first & -first).bit_length() - 1 if first else bits
        fit = (last - first + 1).bit_length() - 1
        size_log = min(align, fit)
        yield first, bits - size_log
        first += 1 << size_log


def choose(candidates: Iterable[tuple[int, int]], length: int, policy: str) -> tuple[int, int] | None:
    """Pick the free block a /length is cut from, by fit policy.

    ``lowest-first``: the lowest-addressed block that fits (so the result is the
    lowest free aligned /length). ``best-fit``: the smallest block that fits,
    lowest first among equals, so large blocks stay whole.
    """
    fitting = [c for c in candidates if c[1] <= length]
    if not fitting:
        return None
    if policy == FIT_BEST_FIT:
        return min(fitting, key=lambda c: (-c[1], c[0]))
    return min(fitting, key=lambda c: c[0])


class FreeSpace:
    """In-memory buddy free space of one pool: the reference model of the allocator.

    ``blocks`` maps ``(first, length)`` of every maximal free block. Taken
    prefixes are not tracked here (the database holds allocations).
    """

    def __init__(self, pool: IPNetwork) -> None:
        self.pool = pool
        self.family = pool.version
        self.bits = family_bits(pool.version)
        self.blocks: set[tuple[int, int]] = {(int(pool.network_address), pool.prefixlen)}

    def allocate(self, length: int, policy: str = FIT_LOWEST_FIRST) -> IPNetwork:
        if not self.pool.prefixlen <= length <= self.bits:
            raise OutsidePool(f"a /{length} does not fit in {self.pool}", field="prefix_length")
        source = choose(self.blocks, length, policy)
        if source is None:
            raise PoolExhausted(f"no free /{length} in {self.pool}", field="prefix_length")
        self.blocks.remove(source)
        self.blocks.update(split_path(source[0], source[1], source[0], length, self.bits))
        return make_network(source[0], length, self.family)

    def allocate_specific(self, net: IPNetwork) -> IPNetwork:
        if net.version != self.family:
            raise WrongFamily(f"{net} is not IPv{self.family}", field="cidr")
        if not net.subnet_of(self.pool):  # type: ignore[arg-type]
            raise OutsidePool(f"{net} is not inside {self.pool}", field="cidr")
        first, length = int(net.network_address), net.prefixlen
        for b_first, b_len in self.blocks:
            if b_len <= length and b_first <= first <= block_last(b_first, b_len, self.bits):
                self.blocks.remove((b_first, b_len))
                self.blocks.update(split_path(b_first, b_len, first, length, self.bits))
                return net
        raise PrefixOverlap(f"{net} is not free in {self.pool}", field="cidr")

    def release(self, net: IPNetwork) -> None:
        first, length = int(net.network_address), net.prefixlen
        while length > self.pool.prefixlen:
            buddy = (buddy_of(first, length, self.bits), length)
            if buddy not in self.blocks:
                break
            self.blocks.remove(buddy)
            first, length = min(first, buddy[0]), length - 1
        self.blocks.add((first, length))

    def free_size(self) -> int:
        return sum(block_size(length, self.bits) for _, length in self.blocks)

    def networks(self) -> list[IPNetwork]:
        return [make_network(f, ln, self.family) for f, ln in sorted(self.blocks)]


def count_blocks_of(free_by_length: dict[int, int], length: int) -> int:
    """How many aligned /length fit in free blocks counted per prefix length (exact)."""
    return sum(n << (length - ln) for ln, n in free_by_length.items() if ln <= length)


def exact_fraction(part: int, whole: int) -> Fraction:
    return Fraction(part, whole) if whole else Fraction(0)


def first_free_avoiding(pool: IPNetwork, taken: Iterable[IPNetwork], length: int) -> IPNetwork | None:
    """Lowest aligned /length in ``pool`` overlapping none of ``taken`` (few items).

    Used for per-shoot pools, where only the same shoot's few allocations matter.
    """
    bits = family_bits(pool.version)
    size = block_size(length, bits)
    spans = sorted((int(t.network_address), int(t.broadcast_address)) for t in taken)
    candidate = int(pool.network_address)
    end = int(pool.broadcast_address)
    for lo, hi in spans:
        if hi < candidate:
            continue
        if candidate + size - 1 < lo:
            break
        candidate = ((hi + 1 + size - 1) // size) * size
    if candidate + size - 1 > end:
        return None
    return make_network(candidate, length, pool.version)


def first_n_blocks(pool: IPNetwork, length: int, limit: int) -> list[IPNetwork]:
    """The first ``limit`` aligned /length blocks of ``pool`` (per-shoot pools: all free)."""
    bits = family_bits(pool.version)
    step = block_size(length, bits)
    count = min(limit, 1 << (length - pool.prefixlen))
    start = int(pool.network_address)
    return [make_network(start + i * step, length, pool.version) for i in range(count)]
