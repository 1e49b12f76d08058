"""Parsing agency hotlist extracts: CSV with a header, or fixed-width records.

Both layouts come from configuration (`[hotlist.columns]`, `[hotlist.fixed_width]`)
because real extracts differ between agencies and vendors. A row with an error
is reported by line number and skipped; a file unusable as a whole (empty,
truncated, wrong header, not text, too large) raises HotlistError, and the
caller leaves the list in force alone. A file whose rows carry an action column
(`ADD` / `CLEAR`) is an update to the list in force rather than a new list.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, NamedTuple

from edge_agent.errors import HotlistError
from edge_agent.recognise.plate import MAX_CHARS, OTHER_JURISDICTIONS, US_STATES, normalise_plate

# Highest priority first: the order alerts are ranked in.
LISTS = (
    "AMBER_ALERT", "WANTED_PERSON", "MISSING_PERSON", "FELONY_VEHICLE", "STOLEN_VEHICLE", "STOLEN_PLATE", "BOLO",
)
# Policy: an officer enters a partial plate (wildcards) only for a major crime; other lists need the whole plate,
# so that a half-remembered plate does not stop every car that shares a few characters with it.
PARTIAL_PLATE_LISTS = ("AMBER_ALERT", "WANTED_PERSON", "MISSING_PERSON", "FELONY_VEHICLE")
STATES = frozenset(US_STATES) | OTHER_JURISDICTIONS
REQUIRED_FIELDS = ("plate", "state", "list")
DETAIL_FIELDS = ("ori", "oca", "entered", "remarks", "make", "year", "colour", "plate_type")
ACTIONS = ("ADD", "CLEAR")
# One string object per state and list, however many rows name it.
_STATE = {s: s for s in STATES}
_LIST = {name: name for name in LISTS}
PROGRESS_ROWS = 10_000
_KEPT = "the list in force stays"


class HotlistRow(NamedTuple):
    line: int
    action: str  # "" in a full list; ADD or CLEAR in an update
    plate: str
    state: str
    list_name: str
    nic: str
    expires: str | None  # YYYY-MM-DD; the entry stops matching after this day
    details: str  # JSON object of the descriptive fields present


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ParsedHotlist:
    """A whole extract held in memory (tests, small updates)."""

    rows: list[HotlistRow]
    errors: list[RowError]
    sha256: str
    is_update: bool = False
    size: int = 0
    source: str = ""

    @property
    def kind(self) -> str:
        return "delta" if self.is_update else "full"

    def __iter__(self) -> Iterator[HotlistRow]:
        return iter(self.rows)


@dataclass(frozen=True)
class HotlistFormat:
    """How an agency's extract is laid out: CSV columns by header name, or fixed-width fields by position."""

    kind: str = "csv"  # csv | fixed
    columns: dict[str, str] = field(default_factory=dict)  # field -> CSV header name
    fixed_width: dict[str, tuple[int, int]] = field(default_factory=dict)  # field -> (first, last) column, 1-based
    date_format: str = "%Y%m%d"


class HotlistStream:
    """An extract read row by row, so a million-row list never sits in memory at once.

    The header (or the fixed-width layout) is checked when the stream is made, so
    a file with the wrong layout is refused before anything is touched. Iterating
    yields good rows and collects bad ones in `errors`; a file that turns out to
    be unusable (not text, truncated, no good rows) raises HotlistError at the
    point it is found, and the importer's transaction rolls back.
    """

    def __init__(self, opener: Callable[[], BinaryIO], size: int, sha256: str, fmt: HotlistFormat, source: str):
        self.opener, self.size, self.sha256, self.fmt, self.source = opener, size, sha256, fmt, source
        self.errors: list[RowError] = []
        self.rows_read = 0
        self.on_rows = None  # called with the count every PROGRESS_ROWS rows (a progress bar)
        if size == 0:
            raise HotlistError(f"{source}: file is empty; {_KEPT}")
        with opener() as raw:
            raw.seek(max(0, size - 1))
            self._ends_with_newline = raw.read(1) in (b"\n", b"\r")
            raw.seek(0)
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            try:
                if fmt.kind == "fixed":
                    self.is_update = self._fixed_layout()
                else:
                    self.is_update, self._header = self._csv_header(text)
            except UnicodeDecodeError as exc:
                raise HotlistError(f"{source}: not UTF-8 text (byte {exc.start} of the header): {_KEPT}") from None
            except csv.Error as exc:
                raise HotlistError(f"{source}: unreadable CSV header: {exc}; {_KEPT}") from None
            finally:
                text.detach()

    @property
    def kind(self) -> str:
        return "delta" if self.is_update else "full"

    def __iter__(self) -> Iterator[HotlistRow]:
        self.errors = []
        self.rows_read = 0
        with self.opener() as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            rows = self._fixed_rows(text) if self.fmt.kind == "fixed" else self._csv_rows(text)
            last = 0
            try:
                for item in rows:
                    if isinstance(item, int):
                        last = item
                        continue
                    self.rows_read += 1
                    if self.on_rows is not None and self.rows_read % PROGRESS_ROWS == 0:
                        self.on_rows(PROGRESS_ROWS)
                    yield item
            except UnicodeDecodeError as exc:
                raise HotlistError(f"{self.source}: not UTF-8 text after line {last} (byte {exc.start} of a block); "
                                   f"{_KEPT}") from None
            except csv.Error as exc:
                raise HotlistError(f"{self.source}: unreadable CSV after line {last}: {exc}; {_KEPT}") from None
            finally:
                text.detach()
        if not self._ends_with_newline:
            # every record of an extract ends with a line break: a last line without one was cut short, even
            # where what is left of it still parses (a cut inside the remarks leaves a plausible row)
            raise HotlistError(f"{self.source}: ends in the middle of line {last}, with no line break after it "
                               f"(truncated?); {_KEPT}")
        if not self.rows_read:
            raise HotlistError(f"{self.source}: no usable rows ({len(self.errors)} rejected); {_KEPT}")

    def read_all(self) -> ParsedHotlist:
        rows = list(self)
        return ParsedHotlist(rows, self.errors, self.sha256, self.is_update, self.size, self.source)

    def _binary_check(self, line: int, cells: list[str]) -> None:
        # Only rows that already failed are looked at, so good rows cost nothing.
        if any("\x00" in cell for cell in cells):
            raise HotlistError(f"{self.source}: line {line} holds NUL bytes: not a text extract; {_KEPT}")

    # CSV -------------------------------------------------------------------

    def _csv_header(self, text: io.TextIOBase) -> tuple[bool, list[str]]:
        columns = self.fmt.columns
        try:
            header = [h.strip() for h in next(csv.reader(text))]
        except StopIteration:
            raise HotlistError(f"{self.source}: file is empty; {_KEPT}") from None
        if not any(header):
            raise HotlistError(f"{self.source}: the first line is blank, not a header; {_KEPT}")
        missing = [columns[f] for f in REQUIRED_FIELDS if columns.get(f) not in header]
        if missing:
            found = ", ".join(h[:20] for h in header[:20])
            raise HotlistError(f"{self.source}: header lacks column(s) {', '.join(missing)} (found {found[:300]}); {_KEPT}")
        return columns.get("action") in header, header

    def _csv_rows(self, text: io.TextIOBase) -> Iterator[HotlistRow | int]:
        header = self._header
        position = {name: i for i, name in enumerate(header)}
        at = [(f, position[name]) for f, name in self.fmt.columns.items() if name in position]
        width = len(header)
        reader = csv.reader(text)
        next(reader)
        for cells in reader:
            line = reader.line_num
            yield line
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if len(cells) != width:
                self._binary_check(line, cells)
                self.errors.append(RowError(line, f"has {len(cells)} columns, the header has {width}"))
                continue
            row = _row(line, {f: cells[i].strip() for f, i in at}, self.fmt, self.is_update)
            if isinstance(row, str):
                self._binary_check(line, cells)
                self.errors.append(RowError(line, row))
            else:
                yield row

    # fixed width -------------------------------------------------------------

    def _fixed_layout(self) -> bool:
        missing = [f for f in REQUIRED_FIELDS if f not in self.fmt.fixed_width]
        if missing:
            raise HotlistError(f"{self.source}: hotlist.fixed_width lacks {', '.join(missing)}; {_KEPT}")
        return "action" in self.fmt.fixed_width

    def _fixed_rows(self, text: io.TextIOBase) -> Iterator[HotlistRow | int]:
        spans = list(self.fmt.fixed_width.items())
        needed = max(last for _, (_, last) in spans)
        shortest = min(first for _, (first, _) in spans)
        for line, record in enumerate(text, start=1):
            yield line
            record = record.rstrip("\r\n")
            if not record.strip():
                continue
            if len(record.rstrip()) < shortest:
                self.errors.append(RowError(line, f"is {len(record)} characters; records are {needed}"))
                continue
            row = _row(line, {f: record[first - 1:last].strip() for f, (first, last) in spans}, self.fmt, self.is_update)
            if isinstance(row, str):
                self._binary_check(line, [record])
                self.errors.append(RowError(line, row))
            else:
                yield row


def parse_hotlist(data: bytes, columns: dict[str, str] | HotlistFormat, source: str = "<hotlist>") -> ParsedHotlist:
    """Parse an extract held in memory (tests, updates that arrive over MQTT)."""
    fmt = columns if isinstance(columns, HotlistFormat) else HotlistFormat("csv", dict(columns))
    return HotlistStream(lambda: io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest(), fmt, source).read_all()


def open_hotlist_file(path: Path, fmt: HotlistFormat, max_bytes: int = 512 * 1024 * 1024) -> HotlistStream:
    """An extract on disk, checked for size and layout; its rows are read when it is iterated."""
    try:
        if path.is_dir():
            raise HotlistError(f"{path}: is a folder, not a hotlist file; {_KEPT}")
        size = path.stat().st_size
        if size > max_bytes:
            raise HotlistError(
                f"{path}: {size / 1e6:,.0f} MB is over the {max_bytes / 1e6:,.0f} MB limit for a hotlist "
                f"(hotlist.max_file_mb); {_KEPT}"
            )
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return HotlistStream(lambda: path.open("rb"), size, digest.hexdigest(), fmt, str(path))
    except OSError as exc:
        raise HotlistError(f"{path}: cannot be read: {exc.strerror or exc}; {_KEPT}") from None


def read_hotlist_file(path: Path, fmt: dict[str, str] | HotlistFormat, max_bytes: int = 512 * 1024 * 1024) -> ParsedHotlist:
    fmt = fmt if isinstance(fmt, HotlistFormat) else HotlistFormat("csv", dict(fmt))
    return open_hotlist_file(path, fmt, max_bytes).read_all()


def _row(line: int, got: dict[str, str], fmt: HotlistFormat, is_update: bool) -> HotlistRow | str:
    action = ""
    if is_update:
        action = got.get("action", "").upper()
        if action not in ACTIONS:
            return f"action {got.get('action', '')!r} is not ADD or CLEAR"
    raw_plate = got.get("plate", "")
    if not raw_plate:
        return "plate is empty"
    if not raw_plate.isascii():
        return f"plate {raw_plate!r} has a character outside A-Z and 0-9"
    plate = normalise_plate(raw_plate)
    if len(plate) != len(raw_plate.replace(" ", "").replace("-", "")):
        return f"plate {raw_plate!r} has a character outside A-Z and 0-9"
    if len(plate) > MAX_CHARS:
        return f"plate {raw_plate[:20]!r} is longer than {MAX_CHARS} characters"
    state = _STATE.get(got.get("state", "").upper())
    if state is None:
        return f"state {got.get('state', '')[:10]!r} is not a known state or province code"
    list_name = _LIST.get(got.get("list", "").upper())
    if list_name is None:
        return f"list {got.get('list', '')[:30]!r} is not one of {', '.join(LISTS)}"
    expires = got.get("expires") or None
    if expires:
        try:
            expires = datetime.strptime(expires, fmt.date_format).date().isoformat()
        except ValueError:
            return f"expiry date {expires[:20]!r} does not fit {fmt.date_format}"
    details = {key: got[key] for key in DETAIL_FIELDS if got.get(key)}
    return HotlistRow(line, action, plate, state, list_name, got.get("nic", ""), expires,
                      json.dumps(details, separators=(",", ":")) if details else "{}")
