"""The address-space map of a pool page, drawn as SVG markup.

Built in Python (with escaping) rather than in the template: 256 cells of nested
template tags would cost more than the whole aggregation
(:func:`allocations.selectors.pool_address_map`). Labels are part of the SVG, so
they scale with it on a narrow screen and stay next to their rows. Colours live in
the stylesheet only (``k-<kind>`` for the map, ``kind-<kind>`` for the swatches of
the legend and the lists), so a kind has one colour everywhere.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe

from ipam_portal import numbers

from .. import prefixes, selectors

#: The kinds a map cell can show, with the word the legend and the lists use.
KIND_LABELS = {
    "allocated": "allocated",
    "pool": "child pool",
    "reserved": "reserved (hold)",
    "quarantined": "quarantined",
    "free": "free",
}
CELL_W, CELL_H, GAP = 40, 26, 2
HEADER_H = 16
MIN_MARK = 6.0  # px: small use inside a big cell stays visible


def map_columns(amap: selectors.AddressMap) -> int:
    """Cells per row: a square-ish grid (16 × 16 for 256 cells)."""
    return 1 << ((amap.cell_bits + 1) // 2)


def _pool_url(amap: selectors.AddressMap, **query: str) -> str:
    base = reverse("ui:pool-detail", args=[amap.pool_id])
    return f"{base}?{urlencode(query, safe=':/')}" if query else base


def cell_link(
    amap: selectors.AddressMap, cell: selectors.MapCell, *, may_allocate: bool, view_is_pool: bool
) -> tuple[str | None, str]:
    """Where a cell leads and what the link does: a pool, an allocation, a zoom, or allocate it."""
    if cell.pool_id is not None:
        return reverse("ui:pool-detail", args=[cell.pool_id]), "open the child pool"
    if cell.allocation_id is not None:
        return reverse("ui:allocation-detail", args=[cell.allocation_id]), "open the allocation"
    if cell.count and amap.zoomable:
        return f"{_pool_url(amap, at=str(cell.cidr))}#map", "zoom in"
    if not cell.count and may_allocate:
        query = {"allocate": str(cell.cidr)}
        if not view_is_pool:
            query = {"at": str(amap.view), **query}
        return f"{_pool_url(amap, **query)}#allocate", "allocate it"
    return None, ""


def _column_label(col: int, family: int) -> str:
    return f"+{col:x}" if family == 6 else f"+{col}"


def map_svg(
    amap: selectors.AddressMap,
    *,
    may_allocate: bool = False,
    view_is_pool: bool = True,
    mark: prefixes.IPNetwork | None = None,
) -> dict[str, Any]:
    """The SVG map: row and column labels, one link per actionable cell, stacked fills per kind."""
    columns = map_columns(amap)
    rows_n = (len(amap.cells) + columns - 1) // columns
    row_labels = [str(amap.cells[r * columns].cidr.network_address) for r in range(rows_n)]
    label_w = int(max(len(label) for label in row_labels) * 6.2) + 10
    width = label_w + columns * (CELL_W + GAP)
    height = HEADER_H + rows_n * (CELL_H + GAP)
    family = amap.view.version
    marked = None
    if mark is not None:
        cell_size = amap.cells[0].size
        marked = (int(mark.network_address) - int(amap.view.network_address)) // cell_size
    title = escape(
        f"Address space of {amap.view} in {len(amap.cells)} cells of /{amap.cell_length}: "
        "allocated, child pools, reserved, quarantined and free space"
    )
    parts = [
        f'<svg class="addrmap" role="group" aria-labelledby="map-title" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title id="map-title">{title}</title>'
    ]
    for col in range(columns):
        x = label_w + col * (CELL_W + GAP) + CELL_W / 2
        parts.append(
            f'<text class="col-label" x="{x:.0f}" y="11" text-anchor="middle">{_column_label(col, family)}</text>'
        )
    for row, label in enumerate(row_labels):
        y = HEADER_H + row * (CELL_H + GAP) + CELL_H / 2 + 3
        parts.append(
            f'<text class="row-label" x="{label_w - 6}" y="{y:.0f}" text-anchor="end">{escape(label)}</text>'
        )
    for cell in amap.cells:
        row, col = divmod(cell.index, columns)
        x, y = label_w + col * (CELL_W + GAP), HEADER_H + row * (CELL_H + GAP)
        cidr = escape(str(cell.cidr))
        link, action = cell_link(amap, cell, may_allocate=may_allocate, view_is_pool=view_is_pool)
        if cell.count:
            used = numbers.percent(prefixes.exact_fraction(cell.size - cell.free, cell.size))
            plural = "s" if cell.count != 1 else ""
            kinds = ", ".join(KIND_LABELS[k] for k in selectors.MAP_CATEGORIES if cell.used.get(k))
            text = f"{cidr}: {numbers.grouped(cell.count)} allocation{plural} ({kinds}), {escape(used)} used"
        else:
            text = f"{cidr}: free"
        if action:
            text = f"{text}; {action}"
        attrs = f'class="cell cell-{cell.category}" data-cidr="{cidr}"'
        if marked == cell.index:
            attrs += ' data-marked="1"'
        parts.append(f'<a href="{escape(link)}" aria-label="{text}" {attrs}>' if link else f"<g {attrs}>")
        parts.append(
            f'<title>{text}</title><rect x="{x}" y="{y}" width="{CELL_W}" height="{CELL_H}" class="free"/>'
        )
        top: float = y + CELL_H
        for kind in selectors.MAP_CATEGORIES:
            used_size = cell.used.get(kind, 0)
            if not used_size:
                continue
            fill: float = CELL_H if cell.whole else max(MIN_MARK, CELL_H * used_size / cell.size)
            fill = min(fill, top - y)
            top -= fill
            parts.append(
                f'<rect x="{x}" y="{top:.2f}" width="{CELL_W}" height="{fill:.2f}" class="k-{kind}"/>'
            )
        if marked == cell.index:
            parts.append(
                f'<rect x="{x + 1.5}" y="{y + 1.5}" width="{CELL_W - 3}" height="{CELL_H - 3}" class="mark"/>'
            )
        parts.append("</a>" if link else "</g>")
    parts.append("</svg>")
    return {
        "svg": mark_safe("".join(parts)),  # noqa: S308 - every text above is escaped, the rest are numbers
        "columns": columns,
        "column_step": f"/{amap.cell_length}",
        "kinds": KIND_LABELS,
    }
