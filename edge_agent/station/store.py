"""The station's database: SQLite by default, PostgreSQL when given a postgresql:// URL.

Every record is stored once: its unit and its UUID (the read's id, the
alert's, the disposition's, the audit record's) decide, so one unit's records
never collide with another's. A batch that arrives again, or a
record that came in an earlier batch, is counted as a duplicate and not stored
again; `batches` keeps how often each batch was delivered.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from edge_agent.errors import EdgeAgentError
from edge_agent.store import from_utc_iso, open_sqlite, utc_iso
from edge_agent.sync.payloads import IncomingBatch

log = logging.getLogger(__name__)
SHARING_FIELDS = ("agency_name", "jurisdiction", "direction", "data", "requester", "purpose", "approved_by",
                  "approved_on", "request_file")

# Ordered migrations; the version applied is kept in schema_version. A database from before versions were
# kept (a067301 and earlier) holds version 1's tables without the record.
MIGRATIONS: list[str] = [
    # 1: records keyed by their id alone
    """
CREATE TABLE units (
    agency TEXT NOT NULL, unit TEXT NOT NULL, state TEXT, status TEXT, last_seen TEXT NOT NULL,
    PRIMARY KEY (agency, unit));
CREATE TABLE reads (
    id TEXT PRIMARY KEY, agency TEXT NOT NULL, unit TEXT NOT NULL, captured_at TEXT NOT NULL,
    camera_id TEXT NOT NULL, plate TEXT NOT NULL, confidence DOUBLE PRECISION NOT NULL, state TEXT,
    state_confidence DOUBLE PRECISION, candidates TEXT NOT NULL, box TEXT NOT NULL, hit_count INTEGER NOT NULL,
    evidence_hold INTEGER NOT NULL, plate_jpeg BYTEA, batch_id TEXT NOT NULL, received_at TEXT NOT NULL);
CREATE INDEX reads_plate ON reads (plate);
CREATE INDEX reads_unit ON reads (agency, unit, captured_at);
CREATE TABLE hits (
    read_id TEXT NOT NULL, n INTEGER NOT NULL, lic TEXT NOT NULL, lis TEXT NOT NULL, list TEXT NOT NULL,
    match TEXT NOT NULL, nic TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (read_id, n));
CREATE TABLE images (
    read_id TEXT NOT NULL, kind TEXT NOT NULL, jpeg BYTEA NOT NULL, agency TEXT NOT NULL, unit TEXT NOT NULL,
    received_at TEXT NOT NULL, PRIMARY KEY (read_id, kind));
CREATE TABLE alerts (
    uuid TEXT PRIMARY KEY, agency TEXT NOT NULL, unit TEXT NOT NULL, read_id TEXT NOT NULL, raised_at TEXT NOT NULL,
    camera_id TEXT NOT NULL, plate_read TEXT NOT NULL, lic TEXT NOT NULL, lis TEXT NOT NULL, list TEXT NOT NULL,
    match TEXT NOT NULL, message TEXT NOT NULL, other_hits INTEGER NOT NULL, received_at TEXT NOT NULL);
CREATE TABLE dispositions (
    uuid TEXT PRIMARY KEY, agency TEXT NOT NULL, unit TEXT NOT NULL, alert_uuid TEXT NOT NULL, read_id TEXT NOT NULL,
    disposition TEXT NOT NULL, user_name TEXT NOT NULL, at TEXT NOT NULL, note TEXT NOT NULL,
    received_at TEXT NOT NULL);
CREATE TABLE audit (
    uuid TEXT PRIMARY KEY, agency TEXT NOT NULL, unit TEXT NOT NULL, at TEXT NOT NULL, user_name TEXT NOT NULL,
    action TEXT NOT NULL, query TEXT NOT NULL, purpose TEXT NOT NULL, received_at TEXT NOT NULL);
CREATE TABLE batches (
    batch_id TEXT PRIMARY KEY, agency TEXT NOT NULL, unit TEXT NOT NULL, kind TEXT NOT NULL, items INTEGER NOT NULL,
    accepted INTEGER NOT NULL, duplicates INTEGER NOT NULL, deliveries INTEGER NOT NULL,
    first_received_at TEXT NOT NULL, last_received_at TEXT NOT NULL, receiver TEXT NOT NULL);
CREATE TABLE refusals (
    at TEXT NOT NULL, topic TEXT NOT NULL, batch_id TEXT, reason TEXT NOT NULL, bytes INTEGER NOT NULL,
    receiver TEXT NOT NULL);
""",
    # 2: every record keyed by agency, unit and id, so that one unit's records never collide with another's
    # (a unit cannot store a made-up record under another unit's read id first); hits carry their unit
    """
CREATE TABLE reads_v2 (
    agency TEXT NOT NULL, unit TEXT NOT NULL, id TEXT NOT NULL, captured_at TEXT NOT NULL,
    camera_id TEXT NOT NULL, plate TEXT NOT NULL, confidence DOUBLE PRECISION NOT NULL, state TEXT,
    state_confidence DOUBLE PRECISION, candidates TEXT NOT NULL, box TEXT NOT NULL, hit_count INTEGER NOT NULL,
    evidence_hold INTEGER NOT NULL, plate_jpeg BYTEA, batch_id TEXT NOT NULL, received_at TEXT NOT NULL,
    PRIMARY KEY (agency, unit, id));
INSERT INTO reads_v2 SELECT agency, unit, id, captured_at, camera_id, plate, confidence, state, state_confidence,
    candidates, box, hit_count, evidence_hold, plate_jpeg, batch_id, received_at FROM reads;
CREATE TABLE hits_v2 (
    agency TEXT NOT NULL, unit TEXT NOT NULL, read_id TEXT NOT NULL, n INTEGER NOT NULL, lic TEXT NOT NULL,
    lis TEXT NOT NULL, list TEXT NOT NULL, match TEXT NOT NULL, nic TEXT NOT NULL, source TEXT NOT NULL,
    PRIMARY KEY (agency, unit, read_id, n));
INSERT INTO hits_v2 SELECT r.agency, r.unit, h.read_id, h.n, h.lic, h.lis, h.list, h.match, h.nic, h.source
    FROM hits h JOIN reads r ON r.id = h.read_id;
CREATE TABLE images_v2 (
    agency TEXT NOT NULL, unit TEXT NOT NULL, read_id TEXT NOT NULL, kind TEXT NOT NULL, jpeg BYTEA NOT NULL,
    received_at TEXT NOT NULL, PRIMARY KEY (agency, unit, read_id, kind));
INSERT INTO images_v2 SELECT agency, unit, read_id, kind, jpeg, received_at FROM images;
CREATE TABLE alerts_v2 (
    agency TEXT NOT NULL, unit TEXT NOT NULL, uuid TEXT NOT NULL, read_id TEXT NOT NULL, raised_at TEXT NOT NULL,
    camera_id TEXT NOT NULL, plate_read TEXT NOT NULL, lic TEXT NOT NULL, lis TEXT NOT NULL, list TEXT NOT NULL,
    match TEXT NOT NULL, message TEXT NOT NULL, other_hits INTEGER NOT NULL, received_at TEXT NOT NULL,
    PRIMARY KEY (agency, unit, uuid));
INSERT INTO alerts_v2 SELECT agency, unit, uuid, read_id, raised_at, camera_id, plate_read, lic, lis, list, match,
    message, other_hits, received_at FROM alerts;
CREATE TABLE dispositions_v2 (
    agency TEXT NOT NULL, unit TEXT NOT NULL, uuid TEXT NOT NULL, alert_uuid TEXT NOT NULL, read_id TEXT NOT NULL,
    disposition TEXT NOT NULL, user_name TEXT NOT NULL, at TEXT NOT NULL, note TEXT NOT NULL,
    received_at TEXT NOT NULL, PRIMARY KEY (agency, unit, uuid));
INSERT INTO dispositions_v2 SELECT agency, unit, uuid, alert_uuid, read_id, disposition, user_name, at, note,
    received_at FROM dispositions;
CREATE TABLE audit_v2 (
    agency TEXT NOT NULL, unit TEXT NOT NULL, uuid TEXT NOT NULL, at TEXT NOT NULL, user_name TEXT NOT NULL,
    action TEXT NOT NULL, query TEXT NOT NULL, purpose TEXT NOT NULL, received_at TEXT NOT NULL,
    PRIMARY KEY (agency, unit, uuid));
INSERT INTO audit_v2 SELECT agency, unit, uuid, at, user_name, action, query, purpose, received_at FROM audit;
CREATE TABLE batches_v2 (
    agency TEXT NOT NULL, unit TEXT NOT NULL, batch_id TEXT NOT NULL, kind TEXT NOT NULL, items INTEGER NOT NULL,
    accepted INTEGER NOT NULL, duplicates INTEGER NOT NULL, deliveries INTEGER NOT NULL,
    first_received_at TEXT NOT NULL, last_received_at TEXT NOT NULL, receiver TEXT NOT NULL,
    PRIMARY KEY (agency, unit, batch_id));
INSERT INTO batches_v2 SELECT agency, unit, batch_id, kind, items, accepted, duplicates, deliveries,
    first_received_at, last_received_at, receiver FROM batches;
DROP TABLE reads;
DROP TABLE hits;
DROP TABLE images;
DROP TABLE alerts;
DROP TABLE dispositions;
DROP TABLE audit;
DROP TABLE batches;
ALTER TABLE reads_v2 RENAME TO reads;
ALTER TABLE hits_v2 RENAME TO hits;
ALTER TABLE images_v2 RENAME TO images;
ALTER TABLE alerts_v2 RENAME TO alerts;
ALTER TABLE dispositions_v2 RENAME TO dispositions;
ALTER TABLE audit_v2 RENAME TO audit;
ALTER TABLE batches_v2 RENAME TO batches;
CREATE INDEX reads_plate ON reads (plate);
CREATE INDEX reads_unit ON reads (agency, unit, captured_at);
""",
    # 3: where the car was at a read (alpr.batch.v3; NULL for no fix and for earlier units) and its clock
    """
ALTER TABLE reads ADD COLUMN lat DOUBLE PRECISION;
ALTER TABLE reads ADD COLUMN lon DOUBLE PRECISION;
ALTER TABLE reads ADD COLUMN fix TEXT;
ALTER TABLE reads ADD COLUMN speed_kmh DOUBLE PRECISION;
ALTER TABLE reads ADD COLUMN heading_deg DOUBLE PRECISION;
ALTER TABLE reads ADD COLUMN clock TEXT;
""",
    # 4: the sharing register: agencies the department shares ALPR data or hotlists with, or receives them
    # from, each on a written request approved by the designee (Civil Code 1798.90.5 and following)
    """
CREATE TABLE sharing (
    id INTEGER PRIMARY KEY, agency_name TEXT NOT NULL, jurisdiction TEXT NOT NULL, direction TEXT NOT NULL,
    data TEXT NOT NULL, requester TEXT NOT NULL, purpose TEXT NOT NULL, approved_by TEXT NOT NULL,
    approved_on TEXT NOT NULL, request_file TEXT NOT NULL, recorded_at TEXT NOT NULL, recorded_by TEXT NOT NULL);
""",
]


@dataclass(frozen=True)
class _Kind:
    table: str
    key: str  # the column that makes a record unique
    item_key: str  # the field of the batch item holding that value
    columns: tuple[str, ...]
    row: Callable[[dict, str, str, str, str], tuple]  # item, agency, unit, batch_id, received_at -> values


def _read_row(r: dict, agency: str, unit: str, batch_id: str, at: str) -> tuple:
    p = r.get("position") or {}
    return (r["id"], agency, unit, r["captured_at"], r["camera_id"], r["plate"], r["confidence"], r.get("state"),
            r.get("state_confidence", 0.0), json.dumps(r["candidates"]), json.dumps(r["box"]), len(r["hits"]),
            int(r.get("evidence_hold", False)), r["plate_jpeg"], batch_id, at, p.get("lat"), p.get("lon"),
            p.get("fix"), p.get("speed_kmh"), p.get("heading_deg"), r.get("clock"))


KINDS = {
    "reads": _Kind("reads", "id", "id",
                   ("id", "agency", "unit", "captured_at", "camera_id", "plate", "confidence", "state",
                    "state_confidence", "candidates", "box", "hit_count", "evidence_hold", "plate_jpeg", "batch_id",
                    "received_at", "lat", "lon", "fix", "speed_kmh", "heading_deg", "clock"), _read_row),
    "images": _Kind("images", "read_id", "read_id", ("read_id", "kind", "jpeg", "agency", "unit", "received_at"),
                    lambda i, a, u, b, at: (i["read_id"], i["kind"], i["jpeg"], a, u, at)),
    "alerts": _Kind("alerts", "uuid", "uuid",
                    ("uuid", "agency", "unit", "read_id", "raised_at", "camera_id", "plate_read", "lic", "lis", "list",
                     "match", "message", "other_hits", "received_at"),
                    lambda i, a, u, b, at: (i["uuid"], a, u, i["read_id"], i["raised_at"], i["camera_id"],
                                            i["plate_read"], i["lic"], i["lis"], i["list"], i["match"], i["message"],
                                            i.get("other_hits", 0), at)),
    "dispositions": _Kind("dispositions", "uuid", "uuid",
                          ("uuid", "agency", "unit", "alert_uuid", "read_id", "disposition", "user_name", "at", "note",
                           "received_at"),
                          lambda i, a, u, b, at: (i["uuid"], a, u, i["alert_uuid"], i["read_id"], i["disposition"],
                                                  i["user"], i["at"], i.get("note", ""), at)),
    "audit": _Kind("audit", "uuid", "uuid",
                   ("uuid", "agency", "unit", "at", "user_name", "action", "query", "purpose", "received_at"),
                   lambda i, a, u, b, at: (i["uuid"], a, u, i["at"], i["user"], i["action"], i.get("query", ""),
                                           i.get("purpose", ""), at)),
}


class StationStore:
    """One database connection; `store_batch` is one transaction."""

    def __init__(self, target: str):
        self.target = target
        self.postgres = target.startswith(("postgresql://", "postgres://"))
        self._lock = threading.Lock()
        if self.postgres:
            import psycopg

            from edge_agent.config import redact_url

            try:
                self._conn = psycopg.connect(target, autocommit=True)
            except psycopg.Error as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise EdgeAgentError(f"{redact_url(target)}: cannot connect to PostgreSQL: {reason}") from None
            self._mark = "%s"
        else:
            self._conn = open_sqlite(Path(target))
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")  # an acknowledged batch must survive a power cut
            self._mark = "?"
        self.migrate()

    def migrate(self) -> int:
        """Apply the migrations this database lacks, each in its own transaction; returns the version."""
        with self._tx() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = cur.query("SELECT version FROM schema_version")
            if row:
                version = row[0][0]
            else:
                exists = ("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'reads'" if self.postgres
                          else "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'reads'")
                version = 1 if cur.query(exists)[0][0] else 0
                cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self._tx() as cur:
                for statement in script.split(";"):
                    if statement.strip():
                        cur.execute(statement)
                cur.execute("UPDATE schema_version SET version = ?", (number,))
            log.info("station database %s migrated to version %d", self.target if not self.postgres else "(PostgreSQL)", number)
        return len(MIGRATIONS)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "StationStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator:
        with self._lock:
            if self.postgres:
                with self._conn.transaction():
                    with self._conn.cursor() as cur:
                        yield _Cursor(cur, True)
            else:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _Cursor(self._conn.cursor(), False)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    def store_batch(self, batch: IncomingBatch, receiver: str) -> tuple[int, int]:
        """Store the batch's records that the station does not hold yet; returns (accepted, duplicates)."""
        kind = KINDS[batch.kind]
        at = utc_iso()
        with self._tx() as cur:
            seen: set[str] = set()
            fresh = []
            keys = [item[kind.item_key] for item in batch.items]
            held = cur.existing(kind.table, kind.key, keys, batch.agency, batch.unit,
                                "kind = 'scene'" if batch.kind == "images" else "")
            for item, key in zip(batch.items, keys):
                if key in held or key in seen:
                    continue
                seen.add(key)
                fresh.append(item)
            if fresh:
                cur.insert(kind.table, kind.columns,
                           [kind.row(i, batch.agency, batch.unit, batch.batch_id, at) for i in fresh])
            if batch.kind == "reads":
                hits = [(batch.agency, batch.unit, r["id"], n, h["lic"], h["lis"], h["list"], h["match"], h.get("nic", ""),
                         h.get("source", "hotlist")) for r in fresh for n, h in enumerate(r["hits"])]
                if hits:
                    cur.insert("hits", ("agency", "unit", "read_id", "n", "lic", "lis", "list", "match", "nic", "source"),
                               hits)
            accepted, duplicates = len(fresh), len(batch.items) - len(fresh)
            cur.execute(
                "INSERT INTO batches (batch_id, agency, unit, kind, items, accepted, duplicates, deliveries,"
                " first_received_at, last_received_at, receiver) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)"
                " ON CONFLICT (agency, unit, batch_id) DO UPDATE SET deliveries = batches.deliveries + 1,"
                " duplicates = batches.duplicates + excluded.duplicates, accepted = batches.accepted + excluded.accepted,"
                " last_received_at = excluded.last_received_at",
                (batch.batch_id, batch.agency, batch.unit, batch.kind, len(batch.items), accepted, duplicates, at, at,
                 receiver))
            cur.execute(
                "INSERT INTO units (agency, unit, last_seen) VALUES (?, ?, ?)"
                " ON CONFLICT (agency, unit) DO UPDATE SET last_seen = excluded.last_seen",
                (batch.agency, batch.unit, at))
        return accepted, duplicates

    def record_status(self, agency: str, unit: str, status: dict) -> None:
        with self._tx() as cur:
            if status.get("state") == "offline":  # a goodbye (or the broker's will) says nothing of the rest
                before = cur.query("SELECT status FROM units WHERE agency = ? AND unit = ?",
                                   (agency, unit))
                if before and before[0][0]:
                    status = {**json.loads(before[0][0]), "state": "offline"}
            cur.execute(
                "INSERT INTO units (agency, unit, state, status, last_seen) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (agency, unit) DO UPDATE SET state = excluded.state, status = excluded.status,"
                " last_seen = excluded.last_seen",
                (agency, unit, status.get("state"), json.dumps(status), utc_iso()))

    def units(self) -> list[dict]:
        """Every unit as last heard of: its status (as it last reported it) and when the station heard it."""
        with self._tx() as cur:
            rows = cur.query("SELECT agency, unit, state, status, last_seen FROM units ORDER BY agency, unit")
        out = []
        for agency, unit, state, status, seen in rows:
            s = json.loads(status or "{}")
            skew = None
            if s.get("at") and s.get("state") == "online":
                try:
                    skew = round((from_utc_iso(s["at"]) - from_utc_iso(seen)).total_seconds(), 1)
                except ValueError:
                    skew = None
            out.append({"agency": agency, "unit": unit, "state": state, "last_contact": seen, "clock_skew_s": skew,
                        "clock": s.get("clock"), "version": s.get("version"), "hotlist_version": s.get("hotlist_version"),
                        "waiting": s.get("waiting"), "sync_lag_s": s.get("sync_lag_s"), "storage": s.get("storage"),
                        "certificate_expires": s.get("certificate_expires")})
        return out

    def record_refusal(self, topic: str, batch_id: str | None, reason: str, size: int, receiver: str) -> None:
        with self._tx() as cur:
            cur.execute("INSERT INTO refusals (at, topic, batch_id, reason, bytes, receiver) VALUES (?, ?, ?, ?, ?, ?)",
                        (utc_iso(), topic[:300], batch_id, reason[:1000], size, receiver))

    def add_sharing(self, entry: dict) -> int:
        with self._tx() as cur:
            cur.execute("INSERT INTO sharing (agency_name, jurisdiction, direction, data, requester, purpose, approved_by,"
                        " approved_on, request_file, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        tuple(entry[k] for k in SHARING_FIELDS) + (utc_iso(), entry["recorded_by"]))
            return cur.query("SELECT MAX(id) FROM sharing")[0][0]

    def sharing(self, year: int | None = None) -> list[dict]:
        with self._tx() as cur:
            rows = cur.query("SELECT id, " + ", ".join(SHARING_FIELDS) + ", recorded_at, recorded_by FROM sharing"
                             " ORDER BY approved_on, id")
        cols = ("id", *SHARING_FIELDS, "recorded_at", "recorded_by")
        out = [dict(zip(cols, r)) for r in rows]
        return [e for e in out if year is None or e["approved_on"][:4] <= str(year)]

    def stats(self) -> dict:
        with self._tx() as cur:
            one = lambda sql: cur.query(sql)[0][0] or 0  # noqa: E731
            out = {
                "units": one("SELECT COUNT(*) FROM units"),
                "reads": one("SELECT COUNT(*) FROM reads"),
                "hits": one("SELECT COUNT(*) FROM hits"),
                "reads_with_hits": one("SELECT COUNT(*) FROM reads WHERE hit_count > 0"),
                "alerts": one("SELECT COUNT(*) FROM alerts"),
                "dispositions": one("SELECT COUNT(*) FROM dispositions"),
                "audit_records": one("SELECT COUNT(*) FROM audit"),
                "scene_images": one("SELECT COUNT(*) FROM images"),
                "batches": one("SELECT COUNT(*) FROM batches"),
                "batch_deliveries": one("SELECT SUM(deliveries) FROM batches"),
                "duplicates_refused": one("SELECT SUM(duplicates) FROM batches"),
                "payloads_refused": one("SELECT COUNT(*) FROM refusals"),
            }
            out["by_unit"] = [
                {"agency": a, "unit": u, "state": s, "last_seen": seen, "reads": n}
                for a, u, s, seen, n in cur.query(
                    "SELECT u.agency, u.unit, u.state, u.last_seen, (SELECT COUNT(*) FROM reads r"
                    " WHERE r.agency = u.agency AND r.unit = u.unit) FROM units u ORDER BY u.agency, u.unit")
            ]
        return out

    def read_ids(self) -> list[str]:
        with self._tx() as cur:
            return [row[0] for row in cur.query("SELECT id FROM reads")]


class _Cursor:
    """The few statements the store needs, written once with ? placeholders for both databases."""

    def __init__(self, cur, postgres: bool):
        self.cur = cur
        self.postgres = postgres

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: tuple = ()) -> None:
        self.cur.execute(self._sql(sql), params)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        self.cur.execute(self._sql(sql), params)
        return list(self.cur.fetchall())

    def existing(self, table: str, key: str, values: list[str], agency: str, unit: str, where: str = "") -> set[str]:
        """Which of a unit's records the station holds already."""
        marks = ",".join("?" * len(values))
        extra = f" AND {where}" if where else ""
        return {row[0] for row in self.query(f"SELECT {key} FROM {table} WHERE agency = ? AND unit = ? AND {key} IN"
                                             f" ({marks}){extra}", (agency, unit, *values))}

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        # ON CONFLICT DO NOTHING: a receiver beside this one may have stored the same record a moment ago
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING"
        self.cur.executemany(self._sql(sql), rows)
