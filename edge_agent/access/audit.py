"""The audit log as a hash chain: each record's hash covers the one before it, so a change, a deletion, an
insertion or a reordering breaks the chain at the first record touched, and `verify` names it.

What is chained is the record itself (uuid, time, user, unit, action, query, purpose, records returned);
the sync bookkeeping kept beside it (batch, sent) is not, so sending a record never disturbs the chain.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid as uuidlib
from dataclasses import dataclass

from edge_agent.store import utc_iso

GENESIS = "0" * 64
_SEP = "\x1f"


def record_hash(prev: str, uuid: str, at: str, user: str, unit: str, action: str, query: str, purpose: str,
                records) -> str:
    body = _SEP.join((prev, uuid, at, user, unit, action, query, purpose, "" if records is None else str(records)))
    return hashlib.sha256(body.encode()).hexdigest()


def append(conn: sqlite3.Connection, user: str, action: str, query: str = "", purpose: str = "", unit: str = "",
           records: int | None = None) -> str:
    """Add one record at the end of the chain, inside the caller's transaction; returns its hash."""
    row = conn.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    prev = row[0] if row and row[0] else GENESIS
    uid, at = str(uuidlib.uuid4()), utc_iso()
    digest = record_hash(prev, uid, at, user, unit, action, query, purpose, records)
    conn.execute("INSERT INTO audit_log (uuid, at, user, unit, action, query, purpose, records, hash)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (uid, at, user, unit, action, query, purpose, records, digest))
    return digest


def seal(conn: sqlite3.Connection) -> int:
    """Chain the records written before the chain existed (a database from an earlier version); returns how many."""
    first = conn.execute("SELECT MIN(id) FROM audit_log WHERE hash IS NULL").fetchone()[0]
    if first is None:
        return 0
    before = conn.execute("SELECT hash FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT 1", (first,)).fetchone()
    prev = before[0] if before and before[0] else GENESIS
    rows = conn.execute("SELECT id, uuid, at, user, unit, action, query, purpose, records FROM audit_log"
                        " WHERE id >= ? ORDER BY id", (first,)).fetchall()
    updates = []
    for r in rows:
        prev = record_hash(prev, r[1] or "", r[2], r[3], r[4] or "", r[5], r[6], r[7], r[8])
        updates.append((prev, r[0]))
    conn.executemany("UPDATE audit_log SET hash = ? WHERE id = ?", updates)
    return len(updates)


@dataclass(frozen=True)
class Verdict:
    records: int
    first_bad_id: int | None = None
    why: str = ""
    last_hash: str = GENESIS
    checkpoint: tuple[int, str] | None = None  # (record, hash) the chain starts after, older records dropped

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None

    def to_json(self) -> dict:
        return {"ok": self.ok, "records": self.records, "first_bad_id": self.first_bad_id, "why": self.why,
                "last_hash": self.last_hash, "checkpoint": list(self.checkpoint) if self.checkpoint else None}


def drop_behind_checkpoint(conn: sqlite3.Connection, before: str, by: str) -> int:
    """Drop the audit records older than `before` that the station holds (sent, and none unsent before them),
    inside the caller's transaction, behind a checkpoint: the last dropped record's place and hash, kept here
    and sent to the station as an audit record of its own, so a chain cut or recomputed behind it is found
    by the station (`station audit verify`). Returns how many were dropped."""
    first_unsent = conn.execute("SELECT MIN(id) FROM audit_log WHERE sent_at IS NULL").fetchone()[0]
    cut = conn.execute("SELECT MAX(id) FROM audit_log WHERE at < ? AND (? IS NULL OR id < ?)",
                       (before, first_unsent, first_unsent)).fetchone()[0]
    if cut is None:
        return 0
    cut_hash = conn.execute("SELECT hash FROM audit_log WHERE id = ?", (cut,)).fetchone()[0]
    dropped = conn.execute("SELECT COUNT(*) FROM audit_log WHERE id <= ?", (cut,)).fetchone()[0]
    total = dropped + (conn.execute("SELECT COALESCE(MAX(records), 0) FROM audit_checkpoints").fetchone()[0])
    # the checkpoint's own record first: the log is never left empty, so record numbers never start again
    append(conn, by, "audit.checkpoint", checkpoint_query(cut, cut_hash), "retention schedule", "", dropped)
    conn.execute("INSERT INTO audit_checkpoints (seq, hash, records, at) VALUES (?, ?, ?, ?)",
                 (cut, cut_hash, total, utc_iso()))
    conn.execute("DELETE FROM audit_log WHERE id <= ?", (cut,))
    return dropped


def checkpoint_query(seq: int, digest: str) -> str:
    return f"records up to {seq} dropped behind checkpoint {seq} {digest}"


def parse_checkpoint(query: str) -> tuple[int, str] | None:
    parts = query.rsplit(" ", 2)
    if len(parts) == 3 and parts[0].endswith("behind checkpoint") and parts[1].isdigit() and len(parts[2]) == 64:
        return int(parts[1]), parts[2]
    return None


def verify(conn: sqlite3.Connection, block: int = 50_000) -> Verdict:
    """Recompute the chain from the first record (or from the last checkpoint, behind which older records were
    dropped); the first record whose hash does not follow names the damage."""
    prev, n, last_id = GENESIS, 0, 0
    row = conn.execute("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
    checkpoint = (row[0], row[1]) if row else None
    first = conn.execute("SELECT MIN(id) FROM audit_log").fetchone()[0]
    if checkpoint:
        last_id, prev = checkpoint
    if first is not None and first != last_id + 1:
        return Verdict(0, first, f"record {first} is not the one after {f'checkpoint {last_id}' if checkpoint else 'the start'}"
                                 ": records before it were deleted", prev, checkpoint)
    sha = hashlib.sha256
    cursor = conn.execute("SELECT id, uuid, at, user, unit, action, query, purpose, records, hash FROM audit_log"
                          " ORDER BY id")
    while rows := cursor.fetchmany(block):
        for rid, uid, at, user, unit, action, query, purpose, records, stored in rows:
            body = _SEP.join((prev, uid or "", at, user, unit or "", action, query, purpose,
                              "" if records is None else str(records)))
            expect = sha(body.encode()).hexdigest()
            if stored != expect:
                why = ("its content was changed, or a record before it was deleted, inserted or moved"
                       if stored else "it has no hash: written around the chain")
                return Verdict(n, rid, f"record {rid} (the {n + 1}th) does not follow the chain: {why}", prev, checkpoint)
            prev, n, last_id = stored, n + 1, rid
    return Verdict(n, None, "", prev, checkpoint)
