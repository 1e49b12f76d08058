"""Records written out for people and other programs: CSV whose cells a spreadsheet never runs.

Text in the records comes from outside (hotlist extracts, officers' notes); a cell that begins with =, +, -,
@, a tab or a carriage return would be taken for a formula by a spreadsheet, so it is written with a
leading apostrophe (the usual neutralisation; the text itself is kept).
"""

from __future__ import annotations

import csv
from typing import Iterable, TextIO

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_LEADS) else text


def write_csv(out: TextIO, columns: list[str], rows: Iterable[dict]) -> int:
    """A header and one line a row, every cell through `csv_cell`; returns the rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    n = 0
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
        n += 1
    return n
