"""Numbers a person can read: grouped digits, percentages and counts of prefixes.

The one place the portal turns its exact integers and fractions into text (the
UI's template filters in :mod:`ipam_portal.templatetags.ipam`, the selectors'
``allocated_percent``, the commands). Rules:

* digits are grouped by three with a narrow no-break space (``16 777 215``);
* never scientific notation: a tiny share is ``< 0.0001 %``, a share that is not
  0 or 1 is never rounded to ``0 %`` or ``100 %``;
* IPv6 space is counted in prefixes of one length (``1 × /56``), and counts beyond
  a million are a power of two (``2⁴⁶``) when they are one, else a short decimal
  with an SI suffix (``70.4 T``); the exact figure is always available as
  :func:`grouped` for a tooltip.
"""

from __future__ import annotations

from fractions import Fraction

GROUP_SEPARATOR = "\u202f"  # narrow no-break space: the groups never wrap apart
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_SI = ((10**18, "E"), (10**15, "P"), (10**12, "T"), (10**9, "G"), (10**6, "M"))
SMALLEST_PERCENT = Fraction(1, 10**6)  # 0.0001 %


def grouped(n: int) -> str:
    """``16777215`` → ``16 777 215`` (exact, any size)."""
    sign, digits = ("-", str(-n)) if n < 0 else ("", str(n))
    groups: list[str] = []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    groups.insert(0, digits)
    return sign + GROUP_SEPARATOR.join(groups)


def amount(n: int) -> str:
    """A count short enough to read: exact below a million, else ``2⁴⁶`` or ``70.4 T``."""
    if abs(n) < 10**6:
        return grouped(n)
    if n > 0 and n & (n - 1) == 0:
        return "2" + str(n.bit_length() - 1).translate(_SUPERSCRIPT)
    for scale, suffix in _SI:
        if abs(n) >= scale:
            value = n / scale
            if abs(value) >= 1000:
                return f"{grouped(round(value))} {suffix}"
            return f"{value:.3g} {suffix}"
    return grouped(n)  # pragma: no cover - the loop covers every n >= 10**6


def percent(fraction: Fraction) -> str:
    """A share as a percentage in fixed notation, never misleadingly ``0 %`` or ``100 %``."""
    if fraction <= 0:
        return "0 %"
    if fraction >= 1:
        return "100 %"
    if fraction < SMALLEST_PERCENT:
        return "< 0.0001 %"
    if fraction > 1 - SMALLEST_PERCENT:
        return "> 99.9999 %"
    value = float(fraction * 100)
    text = f"{value:.4g}"
    if "e" in text:  # 4 significant digits of a value below 0.001 %
        text = f"{value:.6f}".rstrip("0")
    if float(text) >= 100:
        return "> 99.99 %"
    if float(text) == 0:  # pragma: no cover - SMALLEST_PERCENT keeps this away
        return "< 0.0001 %"
    return f"{text} %"


def blocks(n: int, length: int, family: int) -> str:
    """``n`` prefixes of ``/length``: ``1 × /56``, ``2⁴⁶ × /112``; single IPv4 addresses by count."""
    if family == 4 and length == 32:
        return f"{amount(n)} address{'es' if n != 1 else ''}"
    return f"{amount(n)} × /{length}"


def blocks_by_length(counts: dict[int, int], family: int) -> str:
    """``{56: 1, 64: 3}`` → ``1 × /56, 3 × /64`` (largest prefixes first); empty → ``none``."""
    parts = [blocks(n, length, family) for length, n in sorted(counts.items()) if n]
    return ", ".join(parts) or "none"
