"""Hotlists in the unit's database: versions, entries, the prebuilt index, officers' entries.

A new list or an update changes the entries, writes the matching index and
switches the version in force in one transaction, so a reader of the database
sees the old list or the new one, never half of each.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Iterable

from edge_agent.errors import HotlistError
from edge_agent.hotlist.codes import PlatePattern, parse_pattern
from edge_agent.hotlist.index import EntryTable, HotlistIndex, LocalEntry, local_table
from edge_agent.hotlist.parse import (LISTS, PARTIAL_PLATE_LISTS, STATES, HotlistRow, HotlistStream, ParsedHotlist,
                                      RowError)
from edge_agent.store import Database, age_s, utc_iso

_KEPT = "the list in force stays"
HOTLIST_DB_NAME = "hotlist.sqlite3"

MIGRATIONS: list[str] = [
    """
    CREATE TABLE hotlist_versions (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('full', 'delta')),
        rows_loaded INTEGER NOT NULL,
        rows_rejected INTEGER NOT NULL,
        rows_added INTEGER NOT NULL DEFAULT 0,
        rows_cleared INTEGER NOT NULL DEFAULT 0,
        entries_in_force INTEGER,
        imported_at TEXT NOT NULL,
        imported_by TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 0,
        signed_version INTEGER,
        signed_by TEXT
    );
    CREATE TABLE hotlist_entries (
        id INTEGER PRIMARY KEY,
        version_id INTEGER NOT NULL,
        plate TEXT NOT NULL,
        state TEXT NOT NULL,
        list TEXT NOT NULL,
        nic TEXT NOT NULL DEFAULT '',
        expires TEXT,
        details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX hotlist_entries_plate ON hotlist_entries (plate);
    CREATE TABLE hotlist_index (
        version_id INTEGER PRIMARY KEY,
        entries INTEGER NOT NULL,
        codes BLOB NOT NULL, ids BLOB NOT NULL, states BLOB NOT NULL,
        lists BLOB NOT NULL, nics BLOB NOT NULL, expires BLOB NOT NULL
    );
    CREATE TABLE local_entries (
        id INTEGER PRIMARY KEY,
        pattern TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT '',
        list TEXT NOT NULL,
        reason TEXT NOT NULL,
        entered_by TEXT NOT NULL,
        entered_at TEXT NOT NULL,
        expires TEXT,
        removed_by TEXT,
        removed_at TEXT
    );
    """,
    # 2: officers' plates the station passes to the fleet (edge_agent.hotlist.fleet) are local entries too,
    # known by the uuid their unit gave them
    """
    ALTER TABLE local_entries ADD COLUMN fleet_uuid TEXT;
    CREATE UNIQUE INDEX local_entries_fleet ON local_entries (fleet_uuid) WHERE fleet_uuid IS NOT NULL;
    CREATE TABLE fleet_plates_applied (
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        applied_at TEXT NOT NULL
    );
    """,
]


def open_hotlist_db(data_dir: Path) -> Database:
    """The hotlist's own SQLite file beside the reads: a long import never blocks storing reads."""
    return Database(Path(data_dir) / HOTLIST_DB_NAME, MIGRATIONS)


@dataclass(frozen=True)
class SignedInfo:
    """What a valid station signature vouched for."""

    version: int
    key_id: str


@dataclass(frozen=True)
class HotlistVersion:
    id: int
    source: str
    sha256: str
    kind: str
    rows_loaded: int
    rows_rejected: int
    entries_in_force: int
    imported_at: str
    signed_version: int | None


@dataclass
class ImportResult:
    version: int
    kind: str
    source: str
    sha256: str
    loaded: int
    rejected: int
    added: int
    cleared: int
    entries_in_force: int
    seconds: float
    warnings: list[RowError] = field(default_factory=list)
    signed_version: int | None = None

    def to_json(self) -> dict:
        return {
            "file": self.source, "version": self.version, "kind": self.kind, "loaded": self.loaded,
            "rejected": self.rejected, "added": self.added, "cleared": self.cleared,
            "entries_in_force": self.entries_in_force, "sha256": self.sha256, "seconds": round(self.seconds, 2),
            "signed_version": self.signed_version,
        }


def active_version(db: Database) -> HotlistVersion | None:
    rows = db.query(
        "SELECT id, source, sha256, kind, rows_loaded, rows_rejected, IFNULL(entries_in_force, rows_loaded) AS entries_in_force,"
        " imported_at, signed_version FROM hotlist_versions WHERE active = 1"
    )
    return HotlistVersion(**dict(rows[0])) if rows else None


def hotlist_age_s(db: Database) -> float | None:
    """Seconds since the list in force was imported; None when there is none."""
    version = active_version(db)
    return None if version is None else age_s(version.imported_at)


def latest_signed_version(db: Database) -> int | None:
    return db.query("SELECT MAX(signed_version) FROM hotlist_versions")[0][0]


def apply_hotlist(db: Database, parsed: ParsedHotlist | HotlistStream, user: str, *, signed: SignedInfo | None = None,
                  force: bool = False, min_fraction: float = 0.5) -> ImportResult:
    """Make a full list the list in force, or apply an update (ADD/CLEAR rows) to it.

    Rows stream from the parser into the database inside one transaction; any
    refusal on the way (a truncated file, too few rows) rolls it back whole.
    """
    started = time.monotonic()
    in_force = active_version(db)
    if signed is not None:
        newest = latest_signed_version(db)
        if newest is not None and signed.version <= newest:
            raise HotlistError(f"{parsed.source}: signed version {signed.version} is not newer than version {newest} "
                               f"already applied; {_KEPT}")
    if parsed.is_update and in_force is None:
        raise HotlistError(f"{parsed.source}: is an update (ADD/CLEAR rows) but no full list is in force to apply it to")
    with db.transaction() as c:
        version = c.execute(
            "INSERT INTO hotlist_versions (source, sha256, kind, rows_loaded, rows_rejected, imported_at, imported_by,"
            " active, signed_version, signed_by) VALUES (?, ?, ?, 0, 0, ?, ?, 0, ?, ?)",
            (parsed.source, parsed.sha256, parsed.kind, utc_iso(), user,
             signed.version if signed else None, signed.key_id if signed else None),
        ).lastrowid
        base = c.execute("SELECT IFNULL(MAX(id), 0) FROM hotlist_entries").fetchone()[0]
        if parsed.is_update:
            loaded, added, cleared, warnings = _apply_update(c, parsed, version, base)
            table = _table_from_entries(c)
        else:
            c.execute("DELETE FROM hotlist_entries")
            loaded, table = _insert_full(c, parsed, version, base)
            added, cleared, warnings = loaded, in_force.entries_in_force if in_force else 0, []
            if in_force is not None and not force and loaded < min_fraction * in_force.entries_in_force:
                raise HotlistError(
                    f"{parsed.source}: has {loaded:,} entries against {in_force.entries_in_force:,} in force, under "
                    f"{min_fraction:.0%} of them (truncated extract?); {_KEPT}. Import with --force if the list really shrank"
                )
        _store_index(c, version, table)
        c.execute("UPDATE hotlist_versions SET rows_loaded = ?, rows_rejected = ?, rows_added = ?, rows_cleared = ?"
                  " WHERE id = ?", (loaded, len(parsed.errors), added, cleared, version))
        c.execute("UPDATE hotlist_versions SET active = (id = ?), entries_in_force = CASE WHEN id = ? THEN ?"
                  " ELSE entries_in_force END", (version, version, len(table)))
    return ImportResult(version, parsed.kind, parsed.source, parsed.sha256, loaded, len(parsed.errors),
                        added, cleared, len(table), time.monotonic() - started, warnings,
                        signed.version if signed else None)


_BATCH = 20_000


def _insert_full(c, rows: Iterable[HotlistRow], version: int, base: int) -> tuple[int, EntryTable]:
    """Insert a full list in batches, building the index's columns batch by batch as numpy arrays."""
    parts: list[EntryTable] = []
    batch: list[HotlistRow] = []
    loaded = 0

    def flush() -> None:
        first = base + loaded - len(batch) + 1
        c.executemany(
            "INSERT INTO hotlist_entries (id, version_id, plate, state, list, nic, expires, details)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(first + i, version, r.plate, r.state, r.list_name, r.nic, r.expires, r.details) for i, r in enumerate(batch)],
        )
        parts.append(EntryTable.build(range(first, first + len(batch)), [r.plate for r in batch],
                                      [r.state for r in batch], [r.list_name for r in batch], [r.nic for r in batch],
                                      [r.expires for r in batch], sort=False))
        batch.clear()

    for row in rows:
        batch.append(row)
        loaded += 1
        if len(batch) >= _BATCH:
            flush()
    if batch:
        flush()
    return loaded, EntryTable.concat(parts)


def _apply_update(c, rows: Iterable[HotlistRow], version: int, base: int) -> tuple[int, int, int, list[RowError]]:
    loaded = added = cleared = 0
    warnings: list[RowError] = []
    next_id = base
    for r in rows:
        loaded += 1
        gone = c.execute("DELETE FROM hotlist_entries WHERE plate = ? AND state = ? AND nic = ?",
                         (r.plate, r.state, r.nic)).rowcount
        if r.action == "CLEAR":
            cleared += gone
            if not gone:
                warnings.append(RowError(r.line, f"CLEAR {r.plate} {r.state} {r.nic}: no such entry in force"))
        else:
            next_id += 1
            c.execute("INSERT INTO hotlist_entries (id, version_id, plate, state, list, nic, expires, details)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (next_id, version, r.plate, r.state, r.list_name, r.nic, r.expires, r.details))
            added += 1
    return loaded, added, cleared, warnings


def _table_from_entries(c) -> EntryTable:
    parts = []
    cursor = c.execute("SELECT id, plate, state, list, nic, expires FROM hotlist_entries")
    while rows := cursor.fetchmany(_BATCH):
        parts.append(EntryTable.build([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                                      [r[3] for r in rows], [r[4] for r in rows], [r[5] for r in rows], sort=False))
    return EntryTable.concat(parts)


def _store_index(c, version: int, table: EntryTable) -> None:
    blobs = table.to_blobs()
    c.execute("DELETE FROM hotlist_index")
    c.execute(
        "INSERT INTO hotlist_index (version_id, entries, codes, ids, states, lists, nics, expires)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (version, len(table), *(blobs[name] for name in EntryTable.BLOBS)),
    )


def hotlist_generation(db: Database) -> tuple:
    """Changes whenever the list in force or the officers' entries change; cheap enough to poll."""
    row = db.query(
        "SELECT (SELECT id FROM hotlist_versions WHERE active = 1), (SELECT COUNT(*) FROM local_entries),"
        " (SELECT COUNT(removed_at) FROM local_entries)"
    )[0]
    return tuple(row)


def load_index(db: Database) -> HotlistIndex:
    """The list in force and the officers' entries, ready to match."""
    generation = hotlist_generation(db)
    version = active_version(db)
    doj = EntryTable.empty()
    if version is not None:
        rows = db.query("SELECT * FROM hotlist_index WHERE version_id = ?", (version.id,))
        if rows:
            doj = EntryTable.from_blobs(dict(rows[0]))
        else:  # a database from before the index was stored: build it once and keep it
            with db.transaction() as c:
                doj = _table_from_entries(c)
                _store_index(c, version.id, doj)
    local = local_entries(db)
    return HotlistIndex(doj, local_table(local), {e.id: e for e in local}, version.id if version else None, generation)


def entry_details(db: Database, entry_id: int | None) -> dict:
    """What the agency's list says about an entry beyond its plate (make, colour, case number...)."""
    if entry_id is None:
        return {}
    rows = db.query("SELECT details, expires FROM hotlist_entries WHERE id = ?", (entry_id,))
    if not rows:
        return {}
    details = json.loads(rows[0]["details"])
    if rows[0]["expires"]:
        details["expires"] = rows[0]["expires"]
    return details


def hit_details(db: Database, source: str, entry_id: int | None) -> dict:
    """What the list says about the entry a hit matched: the agency list's details, or an officer's reason."""
    if source != "local":
        return entry_details(db, entry_id)
    rows = db.query("SELECT reason, entered_by, expires FROM local_entries WHERE id = ?", (entry_id,))
    return {k: rows[0][k] for k in ("reason", "entered_by", "expires") if rows[0][k]} if rows else {}


# officers' entries ---------------------------------------------------------


def add_local(db: Database, plate: str, list_name: str, reason: str, user: str, state: str = "",
              expires: str | None = None) -> LocalEntry:
    """Enter a plate, or a partial plate with wildcards (`7AB?12*`). ValueError names what is wrong."""
    pattern: PlatePattern = parse_pattern(plate)
    list_name = list_name.upper()
    if list_name not in LISTS:
        raise ValueError(f"list {list_name!r} is not one of {', '.join(LISTS)}")
    if pattern.is_wildcard and list_name not in PARTIAL_PLATE_LISTS:
        raise ValueError(f"a partial plate is entered only for a major crime ({', '.join(PARTIAL_PLATE_LISTS)}); "
                         f"{list_name} needs the whole plate")
    state = (state or "").upper()
    if state and state not in STATES:
        raise ValueError(f"state {state!r} is not a known state or province code")
    if not reason.strip():
        raise ValueError("a reason is required (case number or why the plate is wanted)")
    if not user.strip():
        raise ValueError("the user who enters the plate is required")
    if expires:
        from datetime import date

        try:
            expires = date.fromisoformat(expires).isoformat()
        except ValueError:
            raise ValueError(f"expiry {expires!r} is not a date YYYY-MM-DD") from None
    with db.transaction() as c:
        entry_id = c.execute(
            "INSERT INTO local_entries (pattern, state, list, reason, entered_by, entered_at, expires)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (pattern.text, state, list_name, reason.strip(), user, utc_iso(), expires),
        ).lastrowid
    return LocalEntry(entry_id, pattern, state, list_name, reason.strip(), user, expires)


def remove_local(db: Database, entry_id: int, user: str) -> LocalEntry:
    entries = {e.id: e for e in local_entries(db)}
    if entry_id not in entries:
        removed = db.query("SELECT removed_by, removed_at FROM local_entries WHERE id = ?", (entry_id,))
        if removed:
            raise ValueError(f"local entry {entry_id} was already removed by {removed[0][0]} at {removed[0][1]}")
        raise ValueError(f"there is no local entry {entry_id} (see `edge-agent hotlist local`)")
    with db.transaction() as c:
        c.execute("UPDATE local_entries SET removed_by = ?, removed_at = ? WHERE id = ?", (user, utc_iso(), entry_id))
    return entries[entry_id]


def local_entries(db: Database) -> list[LocalEntry]:
    return [
        LocalEntry(r["id"], parse_pattern(r["pattern"]), r["state"], r["list"], r["reason"], r["entered_by"], r["expires"])
        for r in db.query("SELECT * FROM local_entries WHERE removed_at IS NULL ORDER BY id")
    ]
