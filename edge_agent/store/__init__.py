"""The unit's SQLite database: reads, images, hits, hotlists, users, audit and yearly counts.

One file in the data directory, WAL mode, synchronous=FULL so that a read that
was stored survives a power cut. The schema is versioned; `migrate()` brings an
older file forward without touching its data.

Users, the audit log and yearly counts live beside the reads from the start:
policy requires every access to be logged with user, time, query and purpose,
and public-records requests ask for yearly detections and hits, which must stay
countable after retention has purged the reads themselves.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from edge_agent.errors import EdgeAgentError
from edge_agent.figures import month_of, read_metrics
from edge_agent.files import FILE_MODE, narrow_mode, private_folder
from edge_agent.recognise.plate import confusion_key_sql
from edge_agent.records import Position, Read

DB_NAME = "edge-agent.sqlite3"

MIGRATIONS: list[str] = [
    # 1: the walking skeleton's schema
    """
    CREATE TABLE reads (
        id TEXT PRIMARY KEY,
        captured_at TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        plate TEXT NOT NULL,
        confidence REAL NOT NULL,
        state TEXT,
        state_confidence REAL NOT NULL DEFAULT 0,
        candidates TEXT NOT NULL,
        box TEXT NOT NULL,
        hit_count INTEGER NOT NULL DEFAULT 0,
        sent_at TEXT,
        evidence_hold INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX reads_unsent ON reads (captured_at) WHERE sent_at IS NULL;
    CREATE INDEX reads_plate ON reads (plate);
    CREATE INDEX reads_captured ON reads (captured_at);
    CREATE TABLE read_images (
        read_id TEXT NOT NULL REFERENCES reads (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('plate', 'scene')),
        jpeg BLOB NOT NULL,
        PRIMARY KEY (read_id, kind)
    );
    CREATE TABLE hits (
        id INTEGER PRIMARY KEY,
        read_id TEXT NOT NULL REFERENCES reads (id) ON DELETE CASCADE,
        lic TEXT NOT NULL,
        lis TEXT NOT NULL,
        list TEXT NOT NULL,
        match TEXT NOT NULL,
        nic TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT 'hotlist',
        hotlist_version INTEGER,
        disposition TEXT,
        disposition_by TEXT,
        disposition_at TEXT
    );
    CREATE INDEX hits_read ON hits (read_id);
    CREATE TABLE hotlist_versions (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        rows_loaded INTEGER NOT NULL,
        rows_rejected INTEGER NOT NULL,
        imported_at TEXT NOT NULL,
        imported_by TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE hotlist_entries (
        version_id INTEGER NOT NULL REFERENCES hotlist_versions (id) ON DELETE CASCADE,
        plate TEXT NOT NULL,
        state TEXT NOT NULL,
        list TEXT NOT NULL,
        nic TEXT NOT NULL DEFAULT '',
        expires TEXT,
        details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX hotlist_entries_version ON hotlist_entries (version_id);
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        trained_on TEXT,
        active INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        user TEXT NOT NULL,
        action TEXT NOT NULL,
        query TEXT NOT NULL DEFAULT '',
        purpose TEXT NOT NULL DEFAULT '',
        sent_at TEXT
    );
    CREATE TABLE yearly_counts (
        year INTEGER NOT NULL,
        metric TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (year, metric)
    );
    """,
    # 2: hotlists moved to their own file (hotlist.sqlite3, see edge_agent.hotlist.storage) so that a
    # long import never holds the write lock reads are stored under; the old tables stay for their records.
    # Alerts with dispositions.
    """
    ALTER TABLE hits ADD COLUMN entry_id INTEGER;
    ALTER TABLE hits DROP COLUMN disposition;
    ALTER TABLE hits DROP COLUMN disposition_by;
    ALTER TABLE hits DROP COLUMN disposition_at;
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        read_id TEXT NOT NULL REFERENCES reads (id) ON DELETE CASCADE,
        hit_id INTEGER REFERENCES hits (id) ON DELETE SET NULL,
        raised_at TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        plate_read TEXT NOT NULL,
        lic TEXT NOT NULL,
        lis TEXT NOT NULL,
        list TEXT NOT NULL,
        match TEXT NOT NULL,
        message TEXT NOT NULL,
        other_hits INTEGER NOT NULL DEFAULT 0,
        disposition TEXT,
        disposition_by TEXT,
        disposition_at TEXT,
        sent_at TEXT
    );
    CREATE TABLE dispositions (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
        disposition TEXT NOT NULL,
        user TEXT NOT NULL,
        at TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        sent_at TEXT
    );
    """,
    # 3: store and forward. Each record waits until a batch takes it (batch_id) and is sent only once the station
    # has acknowledged that batch (sent_at). Scene images travel after their read, in batches of their own.
    """
    ALTER TABLE reads ADD COLUMN batch_id TEXT;
    ALTER TABLE reads ADD COLUMN scene_pending INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE reads ADD COLUMN scene_batch_id TEXT;
    ALTER TABLE alerts ADD COLUMN batch_id TEXT;
    ALTER TABLE dispositions ADD COLUMN uuid TEXT;
    ALTER TABLE dispositions ADD COLUMN batch_id TEXT;
    ALTER TABLE audit_log ADD COLUMN uuid TEXT;
    ALTER TABLE audit_log ADD COLUMN batch_id TEXT;
    UPDATE dispositions SET uuid = lower(hex(randomblob(16))) WHERE uuid IS NULL;
    UPDATE audit_log SET uuid = lower(hex(randomblob(16))) WHERE uuid IS NULL;
    UPDATE reads SET scene_pending = 1 WHERE EXISTS (SELECT 1 FROM read_images i WHERE i.read_id = reads.id AND i.kind = 'scene');
    DROP INDEX reads_unsent;
    CREATE INDEX reads_waiting ON reads ((hit_count = 0), captured_at) WHERE sent_at IS NULL AND batch_id IS NULL;
    CREATE INDEX reads_batch ON reads (batch_id) WHERE batch_id IS NOT NULL;
    CREATE INDEX reads_scene_waiting ON reads (captured_at) WHERE scene_pending = 1 AND sent_at IS NOT NULL AND scene_batch_id IS NULL;
    CREATE INDEX reads_scene_batch ON reads (scene_batch_id) WHERE scene_batch_id IS NOT NULL;
    CREATE INDEX reads_sent ON reads (sent_at) WHERE sent_at IS NOT NULL;
    CREATE INDEX alerts_read ON alerts (read_id);
    CREATE INDEX alerts_batch ON alerts (batch_id);
    CREATE INDEX dispositions_alert ON dispositions (alert_id);
    CREATE INDEX dispositions_batch ON dispositions (batch_id);
    CREATE INDEX audit_waiting ON audit_log (id) WHERE sent_at IS NULL AND batch_id IS NULL;
    CREATE INDEX audit_batch ON audit_log (batch_id);
    CREATE TABLE sync_batches (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        items INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        refused_at TEXT,
        refused_reason TEXT
    );
    CREATE TABLE storage_events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        records INTEGER NOT NULL,
        bytes INTEGER NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT ''
    );
    """,
    # 4: where the car was (no fix: lat NULL) and where the read's time came from (NULL: before clocks were judged)
    """
    ALTER TABLE reads ADD COLUMN lat REAL;
    ALTER TABLE reads ADD COLUMN lon REAL;
    ALTER TABLE reads ADD COLUMN fix TEXT;
    ALTER TABLE reads ADD COLUMN satellites INTEGER;
    ALTER TABLE reads ADD COLUMN speed_kmh REAL;
    ALTER TABLE reads ADD COLUMN heading_deg REAL;
    ALTER TABLE reads ADD COLUMN fix_age_s REAL;
    ALTER TABLE reads ADD COLUMN clock TEXT;
    """,
    # 5: lawful use. Users with argon2 password hashes and their training; the audit log becomes a hash chain
    # (edge_agent.access.audit) and says which unit and how many records came back. The old users table held
    # nothing (no code used it).
    """
    DROP TABLE users;
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        trained_on TEXT NOT NULL,
        training_expires TEXT NOT NULL,
        designee INTEGER NOT NULL DEFAULT 0,
        active INTEGER NOT NULL DEFAULT 1,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT
    );
    ALTER TABLE audit_log ADD COLUMN unit TEXT NOT NULL DEFAULT '';
    ALTER TABLE audit_log ADD COLUMN records INTEGER;
    ALTER TABLE audit_log ADD COLUMN hash TEXT;
    CREATE INDEX audit_unsealed ON audit_log (id) WHERE hash IS NULL;
    CREATE INDEX audit_user ON audit_log (user, at);
    """,
    # 6: misread-tolerant search by an index on the plate's confusion key (edge_agent.hotlist.codes)
    f"""
    CREATE INDEX reads_plate_key ON reads ({confusion_key_sql("plate")});
    """,
    # 7: the figures by the agency's month too (edge_agent.figures), for the printed report's charts. What was
    # counted before is in its year and month 0, in no month.
    """
    CREATE TABLE counts (
        year INTEGER NOT NULL,
        month INTEGER NOT NULL,
        metric TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (year, month, metric)
    );
    INSERT INTO counts (year, month, metric, count) SELECT year, 0, metric, count FROM yearly_counts;
    DROP TABLE yearly_counts;
    """,
    # 8: an evidence hold goes to the station too (alpr.batch.v4 kind holds), so a hold set after the read was
    # sent reaches it; and the audit log may drop old records behind a checkpoint the station also holds
    """
    CREATE TABLE evidence_holds (
        id INTEGER PRIMARY KEY,
        read_id TEXT NOT NULL,
        at TEXT NOT NULL,
        user TEXT NOT NULL,
        reason TEXT NOT NULL,
        batch_id TEXT,
        sent_at TEXT
    );
    CREATE TABLE audit_checkpoints (
        seq INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        records INTEGER NOT NULL,
        at TEXT NOT NULL
    );
    """,
    # 9: users managed at the station arrive in its signed roster (edge_agent.access.roster); users added on
    # the unit itself stay the unit's
    """
    ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'unit';
    CREATE TABLE roster_applied (
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        applied_at TEXT NOT NULL
    );
    """,
    # 10: a disposition's uuid is the request that made it: the same request sent twice is stored once
    """
    CREATE UNIQUE INDEX dispositions_uuid ON dispositions (uuid);
    """,
    # 11: each plate an officer enters or removes (the hotlist's local entries) goes to the station
    # (alpr.batch.v5 kind plates), which can pass it to the fleet
    """
    CREATE TABLE officer_plates (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        action TEXT NOT NULL CHECK (action IN ('added', 'removed')),
        entry_id INTEGER NOT NULL,
        plate TEXT NOT NULL,
        state TEXT NOT NULL,
        list TEXT NOT NULL,
        reason TEXT NOT NULL,
        entered_by TEXT NOT NULL,
        user TEXT NOT NULL,
        at TEXT NOT NULL,
        expires TEXT,
        batch_id TEXT,
        sent_at TEXT
    );
    """,
]


def position_columns(p: Position | None) -> tuple:
    """lat, lon, fix, satellites, speed_kmh, heading_deg, fix_age_s of a read (all NULL: no fix)."""
    if p is None:
        return (None,) * 7
    return p.lat, p.lon, p.fix, p.satellites, p.speed_kmh, p.heading_deg, p.age_s


def position_of(row) -> dict | None:
    """The wire form of a stored read's position: None when it had no fix."""
    if row["lat"] is None:
        return None
    return Position(row["lat"], row["lon"], row["fix"], row["satellites"], row["speed_kmh"], row["heading_deg"],
                    row["fix_age_s"] or 0.0).to_json()


def read_record(db: "Database", read_id: str) -> dict | None:
    """One read as a person sees it: plate, state, confidence, camera, time, place (no images)."""
    rows = db.query("SELECT id, captured_at, camera_id, plate, confidence, state, lat, lon, fix, clock, hit_count,"
                    " evidence_hold FROM reads WHERE id = ?", (read_id,))
    return dict(rows[0]) if rows else None


def alert_read(db: "Database", read_id: str, hit_id: int | None) -> dict:
    """What an alert's read and hit add to the alert record: the read's state, confidence and place, and the
    hit's entry (its source and id in the hotlist)."""
    read = read_record(db, read_id) or {}
    hit = db.query("SELECT source, entry_id, nic FROM hits WHERE id = ?", (hit_id,)) if hit_id is not None else []
    return {"state_read": read.get("state"), "confidence": read.get("confidence"), "lat": read.get("lat"),
            "lon": read.get("lon"), "captured_at": read.get("captured_at"),
            "source": hit[0]["source"] if hit else None, "entry_id": hit[0]["entry_id"] if hit else None,
            "nic": hit[0]["nic"] if hit else ""}


def utc_iso(at: datetime | None = None) -> str:
    return (at or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_utc_iso(text: str) -> datetime:
    """A time written by `utc_iso` (Python 3.10's fromisoformat does not take the Z)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def age_s(text: str | None) -> float | None:
    """Seconds since a time written by `utc_iso`; None for none."""
    return None if text is None else (datetime.now(timezone.utc) - from_utc_iso(text)).total_seconds()


@dataclass(frozen=True)
class StoreStats:
    reads: int
    sent: int
    waiting: int
    hits: int

    def to_json(self) -> dict:
        return {"reads": self.reads, "sent": self.sent, "waiting": self.waiting, "hits": self.hits}


def open_sqlite(path: Path) -> sqlite3.Connection:
    """A connection to the SQLite file at `path`, in a private folder made if missing; a folder that is a
    file, or cannot be written, is one clear message (EdgeAgentError), never a traceback."""
    try:
        if path.parent.exists() and not path.parent.is_dir():
            raise EdgeAgentError(f"{path.parent}: is not a folder, so it cannot hold the database")
        private_folder(path.parent)
        new = not path.exists()
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA schema_version").fetchone()  # opens the file now, not at the first write
        narrow_mode(path, FILE_MODE, new)  # SQLite gives its -wal and -shm files the database's mode
        return conn
    except OSError as exc:
        raise EdgeAgentError(f"{exc.filename or path}: cannot be used for the database: {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        raise EdgeAgentError(f"{path}: cannot open the database: {exc}") from None


class Database:
    """The unit's database. One connection, guarded by a lock: capture, recognition and sync share it."""

    WAL_LIMIT = 8 * 1024 * 1024

    def __init__(self, path: Path, migrations: list[str] | None = None):
        self.path = Path(path)
        self.zone = timezone.utc  # the agency's time zone for its yearly figures (agent.time_zone)
        self._migrations = MIGRATIONS if migrations is None else migrations
        self._conn = open_sqlite(self.path)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        # After a checkpoint the WAL is cut back to this, so it never holds on to space the storage cap counts
        self._conn.execute(f"PRAGMA journal_size_limit={self.WAL_LIMIT}")
        self.migrate()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> "Database":
        return cls(Path(data_dir) / DB_NAME)

    @classmethod
    def for_config(cls, config) -> "Database":
        """The unit's database, its yearly figures kept in the agency's time zone."""
        from zoneinfo import ZoneInfo

        db = cls.in_data_dir(config.data_dir)
        db.zone = ZoneInfo(config.agent.time_zone)
        return db

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def transaction(self):
        return _Transaction(self)

    def query(self, sql: str, params: Iterable = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    @property
    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        with self._lock:
            if self.schema_version >= len(self._migrations):
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # Read the version again under the write lock: another process (the agent starting while a
                # technician runs a command) may have migrated the file in the meantime.
                current = self.schema_version
                for version, script in enumerate(self._migrations[current:], start=current + 1):
                    for statement in _statements(script):
                        self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {version}")
                if self._migrations is MIGRATIONS and current < 5 <= len(self._migrations):
                    from edge_agent.access.audit import seal

                    seal(self._conn)  # the records of earlier versions become the start of the chain
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    # reads -----------------------------------------------------------------

    def insert_read(self, read: Read, hotlist_version: int | None = None) -> list[int]:
        """Store a read with its images and hits in one durable transaction; returns the hits' row ids."""
        r = read.reading
        with self.transaction() as c:
            c.execute(
                "INSERT INTO reads (id, captured_at, camera_id, plate, confidence, state, state_confidence, candidates, box,"
                " hit_count, scene_pending, lat, lon, fix, satellites, speed_kmh, heading_deg, fix_age_s, clock)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    read.id, utc_iso(read.captured_at), read.camera_id, r.text, r.confidence, r.state, r.state_confidence,
                    json.dumps([[c.text, c.confidence] for c in r.candidates]), json.dumps(list(r.box)), len(read.hits),
                    1 if read.scene_jpeg else 0, *position_columns(read.position), read.clock,
                ),
            )
            for kind, jpeg in (("plate", read.plate_jpeg), ("scene", read.scene_jpeg)):
                if jpeg:
                    c.execute("INSERT INTO read_images (read_id, kind, jpeg) VALUES (?, ?, ?)", (read.id, kind, jpeg))
            hit_ids = [
                c.execute(
                    "INSERT INTO hits (read_id, lic, lis, list, match, nic, source, hotlist_version, entry_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (read.id, h.lic, h.lis, h.list_name, h.match, h.nic, h.source, hotlist_version, h.entry_id),
                ).lastrowid
                for h in read.hits
            ]
            self.count(c, read_metrics(h.list_name for h in read.hits), 1, read.captured_at)
        return hit_ids

    def count(self, c: sqlite3.Connection, metrics: Iterable[str], n: int = 1, at: datetime | None = None) -> None:
        """Add `n` to each figure named (edge_agent.figures) in the agency's month of `at` (now), in the caller's
        transaction: the figures outlive the records behind them."""
        year, month = month_of(at or datetime.now(timezone.utc), self.zone)
        c.executemany(
            "INSERT INTO counts (year, month, metric, count) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (year, month, metric) DO UPDATE SET count = count + excluded.count",
            [(year, month, metric, n) for metric in metrics],
        )

    def limit_wal(self, max_bytes: int) -> None:
        """Checkpoint the WAL once it holds about this much, and cut the file back to it afterwards."""
        with self._lock:
            page = self._conn.execute("PRAGMA page_size").fetchone()[0]
            self._conn.execute(f"PRAGMA wal_autocheckpoint={max(16, max_bytes // page)}")
            self._conn.execute(f"PRAGMA journal_size_limit={int(max_bytes)}")

    def used_bytes(self) -> tuple[int, int]:
        """Bytes the database's live pages take, and bytes its files take on disk (main file and WAL)."""
        with self._lock:
            page = self._conn.execute("PRAGMA page_size").fetchone()[0]
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        wal = self.path.with_name(self.path.name + "-wal")
        on_disk = pages * page + (wal.stat().st_size if wal.exists() else 0)
        return (pages - free) * page, on_disk

    def stats(self) -> StoreStats:
        row = self.query(
            "SELECT COUNT(*) AS reads, COUNT(sent_at) AS sent, (SELECT COUNT(*) FROM hits) AS hits FROM reads"
        )[0]
        return StoreStats(row["reads"], row["sent"], row["reads"] - row["sent"], row["hits"])

    def activity(self, since: str, today: str) -> dict:
        """The figures of the agent's own status (a system part, not a person's access): reads since a time,
        reads with hits since the day began, reads waiting to sync and the oldest of them."""
        row = self.query(
            "SELECT (SELECT COUNT(*) FROM reads WHERE captured_at >= ?) AS recent,"
            " (SELECT COUNT(*) FROM reads WHERE captured_at >= ? AND hit_count > 0) AS hits_today,"
            " (SELECT COUNT(*) FROM reads WHERE sent_at IS NULL) AS waiting,"
            " (SELECT MIN(captured_at) FROM reads WHERE sent_at IS NULL) AS oldest_waiting", (since, today))[0]
        return dict(row)

    def evidence_held(self) -> int:
        return self.query("SELECT COUNT(*) FROM reads WHERE evidence_hold = 1")[0][0]

    @staticmethod
    def hold(c: sqlite3.Connection, read_ids: Iterable[str], user: str, reason: str) -> None:
        """Put reads on evidence hold, in the caller's transaction: retention keeps them, here and (once the hold
        has gone to it) at the station."""
        at = utc_iso()
        for read_id in read_ids:
            if c.execute("UPDATE reads SET evidence_hold = 1 WHERE id = ? AND evidence_hold = 0", (read_id,)).rowcount:
                c.execute("INSERT INTO evidence_holds (read_id, at, user, reason) VALUES (?, ?, ?, ?)",
                          (read_id, at, user, reason[:2000]))

    def yearly_counts(self) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = {}
        for row in self.query("SELECT year, metric, SUM(count) AS n FROM counts GROUP BY year, metric ORDER BY year"):
            out.setdefault(row["year"], {})[row["metric"]] = row["n"]
        return out

    def counts_of_year(self, year: int) -> list[tuple[int, str, int]]:
        """(month, metric, n) of the agency's year; month 0 holds what was counted before months were."""
        return [tuple(r) for r in self.query("SELECT month, metric, count FROM counts WHERE year = ?", (year,))]

    def read_images(self, read_id: str) -> dict[str, bytes]:
        return {row["kind"]: row["jpeg"] for row in self.query("SELECT kind, jpeg FROM read_images WHERE read_id = ?", (read_id,))}

    # audit -----------------------------------------------------------------

    def audit(self, user: str, action: str, query: str = "", purpose: str = "", unit: str = "",
              records: int | None = None) -> None:
        """One record at the end of the audit chain, in its own durable transaction."""
        from edge_agent.access.audit import append

        with self.transaction() as c:
            append(c, user, action, query, purpose, unit, records)


def _statements(script: str) -> list[str]:
    """Split a migration script into statements, so that it runs inside one transaction."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT under the database's lock; rolls back on any exception."""

    def __init__(self, db: Database):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db._lock.acquire()
        self.db._conn.execute("BEGIN IMMEDIATE")
        return self.db._conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.db._conn.execute("COMMIT")
            elif self.db._conn.in_transaction:  # SQLite may have rolled back already (a full disk does)
                self.db._conn.execute("ROLLBACK")
        finally:
            self.db._lock.release()

