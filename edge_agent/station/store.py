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
import threading
import uuid as uuidlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

from edge_agent.access.audit import parse_checkpoint, record_hash
from edge_agent.config import AgentConfig
from edge_agent.errors import EdgeAgentError
from edge_agent.recognise.plate import confusion_key_sql
from edge_agent.figures import audit_metrics, disposition_metrics, month_of, read_metrics, tally, yearly_figures
from edge_agent.store import from_utc_iso, open_sqlite, utc_iso
from edge_agent.sync.payloads import IncomingBatch

log = logging.getLogger(__name__)
SHARING_FIELDS = ("agency_name", "jurisdiction", "direction", "data", "requester", "purpose", "approved_by",
                  "approved_on", "request_file")

# Ordered migrations; the version applied is kept in schema_version. A database from before versions were
# kept (a067301 and earlier) holds version 1's tables without the record.
MIGRATIONS: list[str | tuple[str, str]] = [  # a pair: (SQLite, PostgreSQL)
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
    # 5: the fleet's figures by the agency's month (edge_agent.figures), kept at ingest in the batch's
    # transaction; what the station held before is counted once by the migration (`_count_held`)
    """
CREATE TABLE counts (
    agency TEXT NOT NULL, unit TEXT NOT NULL, year INTEGER NOT NULL, month INTEGER NOT NULL, metric TEXT NOT NULL,
    count BIGINT NOT NULL, PRIMARY KEY (year, month, metric, agency, unit));
""",
    # 6: each unit's audit chain kept (alpr.batch.v4: an audit record's place in it and its hash), and evidence
    # holds set on a unit (a hold that came before its read holds the read when it arrives)
    """
ALTER TABLE audit ADD COLUMN seq BIGINT;
ALTER TABLE audit ADD COLUMN chained_unit TEXT;
ALTER TABLE audit ADD COLUMN records BIGINT;
ALTER TABLE audit ADD COLUMN prev TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;
CREATE INDEX audit_chain ON audit (agency, unit, seq);
CREATE TABLE holds (
    agency TEXT NOT NULL, unit TEXT NOT NULL, read_id TEXT NOT NULL, at TEXT NOT NULL, user_name TEXT NOT NULL,
    reason TEXT NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY (agency, unit, read_id));
""",
    # 7: the fleet's users, kept here and sent to every unit as a signed roster (edge_agent.access.roster); the
    # version goes up with every change, in the change's transaction
    """
CREATE TABLE roster (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, trained_on TEXT NOT NULL,
    training_expires TEXT NOT NULL, designee INTEGER NOT NULL, active INTEGER NOT NULL, updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL, failed_logins INTEGER NOT NULL DEFAULT 0, locked_until TEXT);
CREATE TABLE roster_version (version BIGINT NOT NULL);
INSERT INTO roster_version (version) VALUES (0);
""",
    # 8: the station's search (edge_agent.station.access): misread-tolerant plates by an index on the plate's
    # confusion key, and on PostgreSQL partial plates with a fixed start by a pattern index
    (f"CREATE INDEX reads_plate_key ON reads ({confusion_key_sql('plate')})",
     f"CREATE INDEX reads_plate_key ON reads ({confusion_key_sql('plate')});"
     " CREATE INDEX reads_plate_prefix ON reads (plate text_pattern_ops)"),
    # 9: the plates officers enter on their units (alpr.batch.v5 kind plates), and which of them the station
    # passes to the whole fleet (signed, alpr.plates.v1); the version goes up with each list published
    """
CREATE TABLE officer_plates (
    agency TEXT NOT NULL, unit TEXT NOT NULL, uuid TEXT NOT NULL, action TEXT NOT NULL, entry_id INTEGER NOT NULL,
    plate TEXT NOT NULL, state TEXT NOT NULL, list TEXT NOT NULL, reason TEXT NOT NULL, entered_by TEXT NOT NULL,
    user_name TEXT NOT NULL, at TEXT NOT NULL, expires TEXT, batch_id TEXT, received_at TEXT NOT NULL,
    shared_by TEXT, shared_at TEXT, PRIMARY KEY (agency, unit, uuid));
CREATE TABLE fleet_plates_version (version BIGINT NOT NULL, sha256 TEXT NOT NULL);
INSERT INTO fleet_plates_version (version, sha256) VALUES (0, '');
""",
]


COUNTS_VERSION = 5


@dataclass(frozen=True)
class _Kind:
    table: str
    key: str  # the column that makes a record unique
    item_key: str  # the field of the batch item holding that value
    columns: tuple[str, ...]
    row: Callable[[dict, str, str, str, str], tuple]  # item, agency, unit, batch_id, received_at -> values
    # what a record counts for in the figures: (its time, its metrics); None for a kind not counted
    counted: Callable[[dict], tuple[str, list[str]]] | None = None


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
                    "received_at", "lat", "lon", "fix", "speed_kmh", "heading_deg", "clock"), _read_row,
                   lambda r: (r["captured_at"], read_metrics(h["list"] for h in r["hits"]))),
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
                                                  i["user"], i["at"], i.get("note", ""), at),
                          lambda i: (i["at"], disposition_metrics(i["disposition"]))),
    "audit": _Kind("audit", "uuid", "uuid",
                   ("uuid", "agency", "unit", "at", "user_name", "action", "query", "purpose", "received_at", "seq",
                    "chained_unit", "records", "prev", "hash"),
                   lambda i, a, u, b, at: (i["uuid"], a, u, i["at"], i["user"], i["action"], i.get("query", ""),
                                           i.get("purpose", ""), at, i.get("seq"), i.get("chained_unit"),
                                           i.get("records"), i.get("prev"), i.get("hash")),
                   lambda i: (i["at"], audit_metrics(i["action"], i.get("purpose", "")))),
    "holds": _Kind("holds", "read_id", "read_id", ("agency", "unit", "read_id", "at", "user_name", "reason", "received_at"),
                   lambda i, a, u, b, at: (a, u, i["read_id"], i["at"], i["user"], i["reason"], at)),
    "plates": _Kind("officer_plates", "uuid", "uuid",
                    ("agency", "unit", "uuid", "action", "entry_id", "plate", "state", "list", "reason", "entered_by",
                     "user_name", "at", "expires", "batch_id", "received_at"),
                    lambda i, a, u, b, at: (a, u, i["uuid"], i["action"], i["entry_id"], i["plate"], i["state"],
                                            i["list"], i["reason"], i["entered_by"], i["user"], i["at"],
                                            i.get("expires"), b, at)),
}


class StationStore:
    """One database connection; `store_batch` is one transaction."""

    def __init__(self, target: str, time_zone: str = AgentConfig.time_zone):
        self.target = target
        self.zone = ZoneInfo(time_zone)  # the agency's years and months in the fleet's figures
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
            if isinstance(script, tuple):
                script = script[1] if self.postgres else script[0]
            with self._tx() as cur:
                for statement in script.split(";"):
                    if statement.strip():
                        cur.execute(statement)
                if number == COUNTS_VERSION:
                    self._count_held(cur)
                cur.execute("UPDATE schema_version SET version = ?", (number,))
            log.info("station database %s migrated to version %d", self.target if not self.postgres else "(PostgreSQL)", number)
        return len(MIGRATIONS)

    def _count_held(self, cur: "_Cursor") -> None:
        """The figures of the records the station held before it kept them, counted as ingest counts them."""
        found: dict[tuple[str, str], list] = {}
        for agency, unit, read_id, captured_at, lst in cur.query(
                "SELECT r.agency, r.unit, r.id, r.captured_at, h.list FROM reads r LEFT JOIN hits h"
                " ON h.agency = r.agency AND h.unit = r.unit AND h.read_id = r.id"):
            one = found.setdefault((agency, unit), {}).setdefault(read_id, {"captured_at": captured_at, "hits": []})
            if lst is not None:
                one["hits"].append({"list": lst})
        for (agency, unit), reads in found.items():
            self._count(cur, agency, unit, KINDS["reads"], list(reads.values()))
        for kind, sql in (("dispositions", "SELECT agency, unit, at, disposition FROM dispositions"),
                          ("audit", "SELECT agency, unit, at, action, purpose FROM audit")):
            held: dict[tuple[str, str], list] = {}
            for row in cur.query(sql):
                item = {"at": row[2], "disposition": row[3]} if kind == "dispositions" else \
                    {"at": row[2], "action": row[3], "purpose": row[4]}
                held.setdefault((row[0], row[1]), []).append(item)
            for (agency, unit), items in held.items():
                self._count(cur, agency, unit, KINDS[kind], items)

    def _count(self, cur: "_Cursor", agency: str, unit: str, kind: "_Kind", items: list[dict]) -> None:
        """Add what these records count for to the figures, in the caller's transaction."""
        if kind.counted is None or not items:
            return
        counted = tally((month_of(from_utc_iso(t), self.zone), metrics) for t, metrics in map(kind.counted, items))
        cur.add_counts(agency, unit, counted)

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
            cur.lock_unit(batch.agency, batch.unit)
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
                self._count(cur, batch.agency, batch.unit, kind, fresh)
            if batch.kind in ("reads", "holds") and fresh:
                # a hold set on the unit after its read was sent, or sent before its read
                ids = [i[kind.item_key] for i in fresh]
                held = ids if batch.kind == "holds" else sorted(cur.existing("holds", "read_id", ids, batch.agency, batch.unit))
                if held:
                    cur.execute(f"UPDATE reads SET evidence_hold = 1 WHERE agency = ? AND unit = ? AND id IN"
                                f" ({','.join('?' * len(held))})", (batch.agency, batch.unit, *held))
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

    def yearly_report(self, year: int) -> dict:
        """The fleet's figures for the agency's year, from the counts kept at ingest (never a scan of the
        reads), with each unit's detections and hits and the sharing register."""
        with self._tx() as cur:
            rows = cur.query("SELECT month, metric, SUM(count) FROM counts WHERE year = ? GROUP BY month, metric", (year,))
            units = cur.query("SELECT agency, unit, metric, SUM(count) FROM counts WHERE year = ? AND metric IN"
                              " ('detections', 'hits') GROUP BY agency, unit, metric ORDER BY agency, unit", (year,))
        report = yearly_figures(year, str(self.zone), [(m, k, int(n)) for m, k, n in rows], scope="fleet")
        per_unit: dict[tuple[str, str], dict] = {}
        for agency, unit, metric, n in units:
            per_unit.setdefault((agency, unit), {"agency": agency, "unit": unit, "detections": 0, "hits": 0})[metric] = int(n)
        report["units"] = list(per_unit.values())
        report["sharing"] = [{k: e[k] for k in ("direction", "data", "agency_name", "jurisdiction", "requester", "purpose",
                                                 "approved_by", "approved_on")} for e in self.sharing(year)]
        return report

    def purge(self, retention_days: float, agency: str, by: str, now: datetime | None = None) -> int:
        """Delete reads (their hits and images with them) captured longer ago than the retention period,
        except those on evidence hold; unit by unit through the (agency, unit, captured_at) index, counted
        and audited in the same transaction. Returns how many."""
        now = now or datetime.now(timezone.utc)
        cutoff = utc_iso(now - timedelta(days=retention_days))
        year, month = month_of(now, self.zone)
        total = 0
        with self._tx() as cur:
            for a, u in cur.query("SELECT agency, unit FROM units"):
                old = ("FROM reads r WHERE r.agency = ? AND r.unit = ? AND r.captured_at < ? AND r.evidence_hold = 0")
                n = int(cur.query(f"SELECT COUNT(*) {old}", (a, u, cutoff))[0][0])
                if not n:
                    continue
                for table in ("hits", "images"):
                    cur.execute(f"DELETE FROM {table} WHERE agency = ? AND unit = ? AND read_id IN (SELECT r.id {old})",
                                (a, u, a, u, cutoff))
                cur.execute("DELETE FROM reads WHERE agency = ? AND unit = ? AND captured_at < ? AND evidence_hold = 0",
                            (a, u, cutoff))
                cur.add_counts(a, u, {(year, month, "purged"): n})
                total += n
            if total or not by.startswith("system:"):
                cur.add_counts(agency, "station", tally([((year, month), audit_metrics("retention.purge", ""))]))
                _station_audit(cur, agency, by, "retention.purge",
                               f"{total} reads captured before {cutoff} ({retention_days:g} days)", "retention schedule",
                               total)
        return total

    # the fleet's roster ------------------------------------------------------

    def roster_put(self, user: dict, agency: str, by: str, action: str) -> int:
        """Add or change a user of the fleet; returns the roster's new version."""
        with self._tx() as cur:
            cur.execute("INSERT INTO roster (name, role, password_hash, trained_on, training_expires, designee, active,"
                        " updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                        " role = excluded.role, password_hash = excluded.password_hash, trained_on = excluded.trained_on,"
                        " training_expires = excluded.training_expires, designee = excluded.designee,"
                        " active = excluded.active, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                        (user["name"], user["role"], user["password_hash"], user["trained_on"], user["training_expires"],
                         int(user["designee"]), int(user["active"]), utc_iso(), by))
            cur.execute("UPDATE roster_version SET version = version + 1")
            _station_audit(cur, agency, by, action, f"{user['name']} as {user['role']}, trained {user['trained_on']},"
                           f" until {user['training_expires']}{'' if user['active'] else ', deactivated'}",
                           "user management", 1)
            return int(cur.query("SELECT version FROM roster_version")[0][0])

    def roster_login_result(self, name: str, failures: int, locked_until: str | None) -> None:
        """Keep a station login's failed count (0 after a good one) and the time the user may try again."""
        with self._tx() as cur:
            cur.execute("UPDATE roster SET failed_logins = ?, locked_until = ? WHERE name = ?", (failures, locked_until, name))

    def roster_user(self, name: str) -> dict | None:
        cols = ("name", "role", "password_hash", "training_expires", "active", "failed_logins", "locked_until")
        with self._tx() as cur:
            rows = cur.query(f"SELECT {', '.join(cols)} FROM roster WHERE name = ?", (name,))
        return dict(zip(cols, rows[0])) if rows else None

    def audit_station(self, agency: str, by: str, action: str, query: str, purpose: str, records: int | None) -> None:
        with self._tx() as cur:
            _station_audit(cur, agency, by, action, query, purpose, records)

    def search_reads(self, q, agency: str, user: str, purpose: str, limit: int = 1000) -> list[dict]:
        """The fleet's reads matching a `ReadQuery` (the unit's search, the same SQL), newest first; audited
        at the station with the number returned, and counted, in the same transaction."""
        where, params = q.where()
        cols = ("agency", "unit", "id", "captured_at", "camera_id", "plate", "confidence", "state", "lat", "lon", "fix",
                "clock", "hit_count", "evidence_hold")
        with self._tx() as cur:
            rows = cur.query(f"SELECT {', '.join(cols)} FROM reads WHERE {' AND '.join(where)}"
                             " ORDER BY captured_at DESC LIMIT ?", (*params, limit))
            out = [dict(zip(cols, r)) for r in rows]
            out = [r for r in out if q.keeps(r["lat"], r["lon"])]
            _station_audit(cur, agency, user, "search", q.describe(), purpose, len(out))
            at = month_of(datetime.now(timezone.utc), self.zone)
            cur.add_counts(agency, "station", tally([(at, audit_metrics("search", purpose))]))
        return out

    def roster(self) -> tuple[int, list[dict]]:
        """The roster's version and its users."""
        cols = ("name", "role", "password_hash", "trained_on", "training_expires", "designee", "active")
        with self._tx() as cur:
            version = int(cur.query("SELECT version FROM roster_version")[0][0])
            users = [dict(zip(cols, r)) for r in cur.query(f"SELECT {', '.join(cols)} FROM roster ORDER BY name")]
        return version, users

    # the plates officers enter, and those passed to the fleet -----------------------------------------

    PLATE_COLUMNS = ("agency", "unit", "uuid", "plate", "state", "list", "reason", "entered_by", "at", "expires",
                     "shared_by", "shared_at")

    def officer_plates(self, agency: str, today: str) -> list[dict]:
        """The plates officers have entered on their units and not removed, and not expired by `today`
        (YYYY-MM-DD), oldest first; each says whether, and by whom, it is passed to the fleet."""
        with self._tx() as cur:
            rows = cur.query(
                f"SELECT {', '.join('p.' + c for c in self.PLATE_COLUMNS)} FROM officer_plates p WHERE p.agency = ?"
                " AND p.action = 'added' AND (p.expires IS NULL OR p.expires >= ?) AND NOT EXISTS (SELECT 1 FROM"
                " officer_plates r WHERE r.agency = p.agency AND r.unit = p.unit AND r.entry_id = p.entry_id AND"
                " r.action = 'removed') ORDER BY p.at", (agency, today))
        return [dict(zip(self.PLATE_COLUMNS, r)) for r in rows]

    def share_plate(self, agency: str, uuid: str, by: str | None, purpose: str) -> dict:
        """Pass an officer's plate to the fleet (by a user), or stop passing it (by None); audited."""
        with self._tx() as cur:
            rows = cur.query("SELECT unit, plate, list FROM officer_plates WHERE agency = ? AND uuid = ? AND"
                             " action = 'added'", (agency, uuid))
            if not rows:
                raise EdgeAgentError(f"no officer's plate {uuid} (see `edge-agent station plates list`)")
            unit, plate, list_name = rows[0]
            cur.execute("UPDATE officer_plates SET shared_by = ?, shared_at = ? WHERE agency = ? AND uuid = ?",
                        (by, utc_iso() if by else None, agency, uuid))
            _station_audit(cur, agency, by or "-", "plates.share" if by else "plates.unshare",
                           f"{plate} {list_name} from {unit} ({uuid})", purpose, 1)
        return {"uuid": uuid, "unit": unit, "plate": plate, "list": list_name, "shared": by is not None}

    def fleet_plates(self, agency: str, today: str) -> tuple[int, list[dict]]:
        """The plates passed to the fleet now (shared, not removed by their unit, not expired) and the version
        of that list: one higher each time what it holds changes."""
        import hashlib

        plates = [{k: p[k] for k in ("uuid", "unit", "plate", "state", "list", "reason", "entered_by", "expires")
                   if p[k] is not None} for p in self.officer_plates(agency, today) if p["shared_by"]]
        digest = hashlib.sha256(json.dumps(plates, sort_keys=True).encode()).hexdigest()
        with self._tx() as cur:
            version, held = cur.query("SELECT version, sha256 FROM fleet_plates_version")[0]
            if held != digest:
                version = int(version) + 1
                cur.execute("UPDATE fleet_plates_version SET version = ?, sha256 = ?", (version, digest))
        return int(version), plates

    def audit_chains(self) -> list[dict]:
        """Each unit's audit chain as the station holds it, verified: every record's hash, each record's link
        to the one before it, and every checkpoint the unit sent against the record it names. A gap is
        records not received yet (or never sent); records from before units sent their chain are not in it."""
        with self._tx() as cur:
            rows = cur.query("SELECT agency, unit, seq, uuid, at, user_name, chained_unit, action, query, purpose,"
                             " records, prev, hash FROM audit WHERE seq IS NOT NULL ORDER BY agency, unit, seq")
        out: dict[tuple[str, str], dict] = {}
        held: dict[tuple[str, str, int], str] = {}
        checkpoints = []
        last: dict[tuple[str, str], tuple[int, str]] = {}
        for agency, unit, seq, uid, at, user, chained_unit, action, query, purpose, records, prev, digest in rows:
            key = (agency, unit)
            chain = out.setdefault(key, {"agency": agency, "unit": unit, "records": 0, "first_seq": seq, "last_seq": seq,
                                         "gaps": 0, "ok": True, "first_bad_seq": None, "why": ""})
            chain["records"] += 1
            chain["last_seq"] = seq
            held[(agency, unit, seq)] = digest
            bad = ""
            if record_hash(prev, uid, at, user, chained_unit or "", action, query, purpose, records) != digest:
                bad = "its content is not what its hash says"
            elif key in last and last[key][0] == seq:
                bad = "two records claim this place: the unit's chain was cut and written again"
            elif key in last and last[key][0] == seq - 1 and last[key][1] != prev:
                bad = f"it does not follow record {seq - 1}: the chain was recomputed or a record changed"
            elif key in last and last[key][0] < seq - 1:
                chain["gaps"] += 1
            if bad and chain["ok"]:
                chain.update(ok=False, first_bad_seq=seq, why=f"record {seq}: {bad}")
            if action == "audit.checkpoint":
                checkpoints.append((key, seq, parse_checkpoint(query)))
            last[key] = (seq, digest)
        for key, seq, point in checkpoints:
            chain = out[key]
            if point is None or (key + (point[0],) in held and held[key + (point[0],)] != point[1]):
                if chain["ok"]:
                    chain.update(ok=False, first_bad_seq=seq,
                                 why=f"record {seq}: the unit's checkpoint does not match the records the station holds")
        return list(out.values())

    def read_ids(self) -> list[str]:
        with self._tx() as cur:
            return [row[0] for row in cur.query("SELECT id FROM reads")]


def _station_audit(cur: "_Cursor", agency: str, by: str, action: str, query: str, purpose: str, records: int) -> None:
    """An audit record of the station's own (unit `station`): kept beside the units' records, outside their chains."""
    cur.execute("INSERT INTO audit (uuid, agency, unit, at, user_name, action, query, purpose, received_at, records)"
                " VALUES (?, ?, 'station', ?, ?, ?, ?, ?, ?, ?)",
                (str(uuidlib.uuid4()), agency, utc_iso(), by, action, query, purpose, utc_iso(), records))


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

    def lock_unit(self, agency: str, unit: str) -> None:
        """Hold one unit's batches to one receiver at a time until the transaction ends, so a record that two
        receivers both take is stored and counted once (SQLite's BEGIN IMMEDIATE already holds everything)."""
        if self.postgres:
            self.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"{agency}/{unit}",))

    def add_counts(self, agency: str, unit: str, counted) -> None:
        """Add {(year, month, metric): n} to a unit's figures."""
        self.cur.executemany(self._sql(
            "INSERT INTO counts (agency, unit, year, month, metric, count) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (year, month, metric, agency, unit) DO UPDATE SET count = counts.count + excluded.count"),
            [(agency, unit, y, m, metric, n) for (y, m, metric), n in sorted(counted.items())])

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        # ON CONFLICT DO NOTHING: a receiver beside this one may have stored the same record a moment ago
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING"
        self.cur.executemany(self._sql(sql), rows)
