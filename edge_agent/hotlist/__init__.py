"""Hotlists: parse an agency extract, keep versions in the database, match reads against the list in force."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterable

from edge_agent.errors import HotlistError
from edge_agent.recognise.plate import MAX_CHARS, OTHER_JURISDICTIONS, US_STATES, normalise_plate
from edge_agent.records import Hit
from edge_agent.store import Database, utc_iso

# Highest priority first: the order alerts are ranked in.
LISTS = (
    "AMBER_ALERT", "WANTED_PERSON", "MISSING_PERSON", "FELONY_VEHICLE", "STOLEN_VEHICLE", "STOLEN_PLATE", "BOLO",
)
STATES = set(US_STATES) | OTHER_JURISDICTIONS
REQUIRED_FIELDS = ("plate", "state", "list")
MAX_FILE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class HotlistEntry:
    plate: str
    state: str
    list_name: str
    nic: str = ""
    expires: str | None = None  # YYYY-MM-DD; the entry stops matching after this day
    details: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ParsedHotlist:
    entries: list[HotlistEntry]
    errors: list[RowError]
    sha256: str


def parse_hotlist(data: bytes, columns: dict[str, str], source: str = "<hotlist>") -> ParsedHotlist:
    """Parse a CSV extract. Bad rows become RowErrors by line number; a file unusable as a whole raises HotlistError."""
    if not data.strip():
        raise HotlistError(f"{source}: file is empty; the list in force stays")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HotlistError(f"{source}: not UTF-8 text (byte {exc.start}); the list in force stays") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except (csv.Error, StopIteration) as exc:
        raise HotlistError(f"{source}: no readable header: {exc}; the list in force stays") from None
    missing = [columns[f] for f in REQUIRED_FIELDS if columns[f] not in header]
    if missing:
        raise HotlistError(
            f"{source}: header lacks column(s) {', '.join(missing)} (found {', '.join(header[:20])}); the list in force stays"
        )
    position = {name: i for i, name in enumerate(header)}
    entries: list[HotlistEntry] = []
    errors: list[RowError] = []
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            entry = _entry(row, header, position, columns)
            if isinstance(entry, str):
                errors.append(RowError(line, entry))
            else:
                entries.append(entry)
    except csv.Error as exc:
        raise HotlistError(f"{source}: line {reader.line_num}: {exc}; the list in force stays") from None
    if not entries:
        raise HotlistError(f"{source}: no usable rows ({len(errors)} rejected); the list in force stays")
    return ParsedHotlist(entries, errors, hashlib.sha256(data).hexdigest())


def _entry(row: list[str], header: list[str], position: dict[str, int], columns: dict[str, str]) -> HotlistEntry | str:
    if len(row) != len(header):
        return f"has {len(row)} columns, the header has {len(header)}"

    def get(name: str) -> str:
        i = position.get(columns[name])
        return row[i].strip() if i is not None else ""

    raw_plate = get("plate")
    if not raw_plate:
        return "plate is empty"
    if not raw_plate.isascii():
        return f"plate {raw_plate!r} has a character outside A-Z and 0-9"
    plate = normalise_plate(raw_plate)
    if not plate or len(plate) != len(raw_plate.replace(" ", "").replace("-", "")):
        return f"plate {raw_plate!r} has a character outside A-Z and 0-9"
    if len(plate) > MAX_CHARS:
        return f"plate {raw_plate!r} is longer than {MAX_CHARS} characters"
    state = get("state").upper()
    if state not in STATES:
        return f"state {state!r} is not a known state or province code"
    list_name = get("list").upper()
    if list_name not in LISTS:
        return f"list {list_name!r} is not one of {', '.join(LISTS)}"
    expires = get("expires")
    if expires:
        try:
            expires = datetime.strptime(expires, "%Y%m%d").date().isoformat()
        except ValueError:
            return f"expiry date {expires!r} is not YYYYMMDD"
    details = {
        key: get(key) for key in ("ori", "oca", "entered", "remarks", "make", "year", "colour", "plate_type") if get(key)
    }
    return HotlistEntry(plate, state, list_name, get("nic"), expires or None, details)


def read_hotlist_file(path: Path, columns: dict[str, str]) -> ParsedHotlist:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise HotlistError(f"{path}: {size} bytes is over the {MAX_FILE_BYTES} byte limit; the list in force stays")
        data = path.read_bytes()
    except OSError as exc:
        raise HotlistError(f"{path}: cannot be read: {exc.strerror or exc}; the list in force stays") from None
    return parse_hotlist(data, columns, str(path))


def store_hotlist(db: Database, parsed: ParsedHotlist, source: str, user: str) -> int:
    """Make `parsed` the list in force in one transaction; older versions' entries go, their records stay."""
    with db.transaction() as c:
        cur = c.execute(
            "INSERT INTO hotlist_versions (source, sha256, rows_loaded, rows_rejected, imported_at, imported_by, active)"
            " VALUES (?, ?, ?, ?, ?, ?, 0)",
            (source, parsed.sha256, len(parsed.entries), len(parsed.errors), utc_iso(), user),
        )
        version = cur.lastrowid
        c.executemany(
            "INSERT INTO hotlist_entries (version_id, plate, state, list, nic, expires, details) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (version, e.plate, e.state, e.list_name, e.nic, e.expires, json.dumps(e.details, separators=(",", ":")))
                for e in parsed.entries
            ),
        )
        c.execute("DELETE FROM hotlist_entries WHERE version_id != ?", (version,))
        c.execute("UPDATE hotlist_versions SET active = (id = ?)", (version,))
    return version


@dataclass(frozen=True)
class HotlistVersion:
    id: int
    source: str
    sha256: str
    rows_loaded: int
    rows_rejected: int
    imported_at: str


def active_version(db: Database) -> HotlistVersion | None:
    rows = db.query(
        "SELECT id, source, sha256, rows_loaded, rows_rejected, imported_at FROM hotlist_versions WHERE active = 1"
    )
    return HotlistVersion(**dict(rows[0])) if rows else None


class HotlistIndex:
    """The list in force, in memory, keyed by normalised plate."""

    def __init__(self, entries: Iterable[HotlistEntry], version: int | None = None):
        self.version = version
        self._by_plate: dict[str, list[HotlistEntry]] = {}
        for e in entries:
            self._by_plate.setdefault(e.plate, []).append(e)

    @classmethod
    def load(cls, db: Database) -> "HotlistIndex":
        version = active_version(db)
        if version is None:
            return cls([], None)
        rows = db.query(
            "SELECT plate, state, list, nic, expires, details FROM hotlist_entries WHERE version_id = ?", (version.id,)
        )
        return cls(
            (HotlistEntry(r["plate"], r["state"], r["list"], r["nic"], r["expires"], json.loads(r["details"])) for r in rows),
            version.id,
        )

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_plate.values())

    def match(self, plate: str, state: str | None = None, today: date | None = None) -> list[Hit]:
        """Hits for one read, highest-priority list first. A read whose state differs is a `state-mismatch`."""
        entries = self._by_plate.get(normalise_plate(plate))
        if not entries:
            return []
        today_iso = (today or datetime.now(timezone.utc).date()).isoformat()
        hits = [
            Hit(
                lic=e.plate, lis=e.state, list_name=e.list_name, nic=e.nic, details=e.details,
                match="exact" if state is None or state == e.state else "state-mismatch",
            )
            for e in entries
            if e.expires is None or e.expires >= today_iso
        ]
        return sorted(hits, key=lambda h: (h.match != "exact", list_priority(h.list_name)))


def list_priority(list_name: str) -> int:
    return LISTS.index(list_name) if list_name in LISTS else len(LISTS)
