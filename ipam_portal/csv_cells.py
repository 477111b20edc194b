"""CSV for spreadsheets: cells that never run as formulas, rows streamed as text lines.

Every CSV export (the audit log, the prefix history) writes through :func:`csv_lines`,
so the neutralisation rule is written once.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

# A spreadsheet runs a cell that starts with one of these as a formula. A cell starts at the
# beginning of a value and, for importers that split on their own delimiter or on line breaks,
# after any of , ; tab CR LF inside it: each such start gets a ' so it stays text.
_CELL_START_FORMULA = re.compile(r"(?:^|(?<=[,;\t\r\n]))(?=[=+\-@\t\r])")


def spreadsheet_safe(value: str) -> str:
    """``value`` with a ``'`` before every formula character that could start a spreadsheet cell."""
    return _CELL_START_FORMULA.sub("'", value)


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The header and each row as one CSV line; text cells are made :func:`spreadsheet_safe`."""
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([spreadsheet_safe(v) if isinstance(v, str) else v for v in row])
