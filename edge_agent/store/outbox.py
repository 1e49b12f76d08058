"""What waits to go to the station, grouped into batches that are marked sent only on the station's acknowledgement.

A batch is taken in one transaction: its records get the batch's id, so they are
not taken again, and the batch is written to `sync_batches`. The batch's content
is read back from its records whenever it is published, so a batch that was
published before a power cut goes out again, with the same id and the same
records, after the restart. The station stores each record once (by its UUID),
so sending a batch twice never counts a record twice.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from edge_agent.store import Database, position_of, utc_iso

# The order batches are taken in: hit and alert traffic first, scene images last (they may be deferred).
KINDS = ("alerts", "dispositions", "plates", "reads", "holds", "audit", "images")



@dataclass(frozen=True)
class _Outgoing:
    """For one kind: the records waiting, how a batch takes them, and how the station's acknowledgement settles them."""

    waiting: str  # :limit
    take: str  # :batch, :id
    sent: str  # :batch, :at


def _records(table: str, order: str) -> _Outgoing:
    return _Outgoing(
        f"SELECT id FROM {table} WHERE sent_at IS NULL AND batch_id IS NULL ORDER BY {order} LIMIT :limit",
        f"UPDATE {table} SET batch_id = :batch WHERE id = :id",
        f"UPDATE {table} SET sent_at = :at WHERE batch_id = :batch AND sent_at IS NULL",
    )


_OUTGOING = {
    "alerts": _records("alerts", "id"),
    "dispositions": _records("dispositions", "id"),
    "plates": _records("officer_plates", "id"),
    # reads that hit a list go before the others; the index reads_waiting has this order
    "reads": _records("reads", "(hit_count = 0), captured_at"),
    "holds": _records("evidence_holds", "id"),
    "audit": _records("audit_log", "id"),
    # a scene image goes once its read is at the station
    "images": _Outgoing(
        "SELECT id FROM reads WHERE scene_pending = 1 AND sent_at IS NOT NULL AND scene_batch_id IS NULL"
        " ORDER BY captured_at LIMIT :limit",
        "UPDATE reads SET scene_batch_id = :batch WHERE id = :id",
        "UPDATE reads SET scene_pending = 0 WHERE scene_batch_id = :batch AND scene_pending = 1",
    ),
}


@dataclass(frozen=True)
class BatchLimits:
    reads: int = 200
    images: int = 20  # scene images are ~100 KB each
    records: int = 200  # alerts, dispositions, audit records

    def for_kind(self, kind: str) -> int:
        return self.reads if kind == "reads" else self.images if kind == "images" else self.records


@dataclass(frozen=True)
class Batch:
    id: str
    kind: str
    items: int


def take_batch(db: Database, limits: BatchLimits = BatchLimits(), kinds: tuple[str, ...] = KINDS) -> Batch | None:
    """The next batch of waiting records, highest priority kind first; None when nothing waits."""
    with db.transaction() as c:
        for kind in kinds:
            outgoing = _OUTGOING[kind]
            ids = [row[0] for row in c.execute(outgoing.waiting, {"limit": limits.for_kind(kind)})]
            if not ids:
                continue
            batch_id = str(uuid.uuid4())
            c.execute("INSERT INTO sync_batches (id, kind, items, created_at) VALUES (?, ?, ?, ?)",
                      (batch_id, kind, len(ids), utc_iso()))
            c.executemany(outgoing.take, [{"batch": batch_id, "id": i} for i in ids])
            return Batch(batch_id, kind, len(ids))
    return None


def pending_batches(db: Database, retry_refused_after_s: float = 3600.0, now: datetime | None = None) -> list[Batch]:
    """Batches taken but not acknowledged, oldest first; a batch the station refused waits before it is tried again."""
    cutoff = utc_iso((now or datetime.now(timezone.utc)) - timedelta(seconds=retry_refused_after_s))
    rows = db.query("SELECT id, kind, items FROM sync_batches WHERE refused_at IS NULL OR refused_at <= ?"
                    " ORDER BY created_at, rowid", (cutoff,))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted((Batch(r["id"], r["kind"], r["items"]) for r in rows), key=lambda b: order.get(b.kind, len(KINDS)))


def batch_items(db: Database, batch: Batch) -> list[dict]:
    """The batch's records as the payload carries them (JSON-ready; images base64-encoded)."""
    if batch.kind == "reads":
        return _read_items(db, batch.id)
    if batch.kind == "images":
        rows = db.query("SELECT r.id, i.jpeg FROM reads r JOIN read_images i ON i.read_id = r.id AND i.kind = 'scene'"
                        " WHERE r.scene_batch_id = ? AND r.scene_pending = 1", (batch.id,))
        return [{"read_id": r["id"], "kind": "scene", "jpeg": _b64(r["jpeg"])} for r in rows]
    if batch.kind == "alerts":
        rows = db.query("SELECT uuid, read_id, raised_at, camera_id, plate_read, lic, lis, list, match, message,"
                        " other_hits FROM alerts WHERE batch_id = ?", (batch.id,))
        return [dict(r) for r in rows]
    if batch.kind == "dispositions":
        rows = db.query("SELECT d.uuid, a.uuid AS alert_uuid, a.read_id, d.disposition, d.user, d.at, d.note"
                        " FROM dispositions d JOIN alerts a ON a.id = d.alert_id WHERE d.batch_id = ?", (batch.id,))
        return [dict(r) for r in rows]
    if batch.kind == "audit":
        return audit_items(db, batch.id)
    if batch.kind == "plates":
        rows = db.query("SELECT uuid, action, entry_id, plate, state, list, reason, entered_by, user, at, expires"
                        " FROM officer_plates WHERE batch_id = ? ORDER BY id", (batch.id,))
        return [{k: r[k] for k in r.keys() if r[k] is not None} for r in rows]
    if batch.kind == "holds":
        rows = db.query("SELECT read_id, at, user, reason FROM evidence_holds WHERE batch_id = ?", (batch.id,))
        return [dict(r) for r in rows]
    raise ValueError(f"unknown batch kind {batch.kind!r}")


def audit_items(db: Database, batch_id: str) -> list[dict]:
    """Audit records with their place in the chain (alpr.batch.v4): the station keeps and verifies the chain."""
    from edge_agent.access.audit import GENESIS

    rows = db.query("SELECT a.id, a.uuid, a.at, a.user, a.unit, a.action, a.query, a.purpose, a.records, a.hash,"
                    " COALESCE((SELECT p.hash FROM audit_log p WHERE p.id < a.id ORDER BY p.id DESC LIMIT 1),"
                    " (SELECT c.hash FROM audit_checkpoints c WHERE c.seq < a.id ORDER BY c.seq DESC LIMIT 1), ?) AS prev"
                    " FROM audit_log a WHERE a.batch_id = ? ORDER BY a.id", (GENESIS, batch_id))
    return [{"uuid": r["uuid"], "at": r["at"], "user": r["user"], "action": r["action"], "query": r["query"],
             "purpose": r["purpose"], "seq": r["id"], "chained_unit": r["unit"] or "", "records": r["records"],
             "prev": r["prev"], "hash": r["hash"]} for r in rows]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _read_items(db: Database, batch_id: str) -> list[dict]:
    rows = db.query("SELECT r.*, i.jpeg AS plate_jpeg FROM reads r LEFT JOIN read_images i ON i.read_id = r.id"
                    " AND i.kind = 'plate' WHERE r.batch_id = ? ORDER BY r.captured_at", (batch_id,))
    hits: dict[str, list[dict]] = {}
    for h in db.query("SELECT h.read_id, h.lic, h.lis, h.list, h.match, h.nic, h.source FROM hits h"
                      " JOIN reads r ON r.id = h.read_id WHERE r.batch_id = ?", (batch_id,)):
        hits.setdefault(h["read_id"], []).append(
            {"lic": h["lic"], "lis": h["lis"], "list": h["list"], "match": h["match"], "nic": h["nic"],
             "source": h["source"]})
    return [
        {
            "id": r["id"], "captured_at": r["captured_at"], "camera_id": r["camera_id"], "plate": r["plate"],
            "confidence": r["confidence"], "state": r["state"], "state_confidence": r["state_confidence"],
            "candidates": json.loads(r["candidates"]), "box": json.loads(r["box"]), "hits": hits.get(r["id"], []),
            "evidence_hold": bool(r["evidence_hold"]), "plate_jpeg": _b64(r["plate_jpeg"] or b""),
            "position": position_of(r), **({"clock": r["clock"]} if r["clock"] else {}),
        }
        for r in rows
    ]


def acknowledge_batch(db: Database, batch_id: str, at: datetime | None = None) -> Batch | None:
    """Mark a batch's records sent; None when this unit has no such batch waiting (never sent, or acknowledged)."""
    stamp = utc_iso(at)
    with db.transaction() as c:
        row = c.execute("SELECT id, kind, items FROM sync_batches WHERE id = ?", (batch_id,)).fetchone()
        if row is None:
            return None
        c.execute(_OUTGOING[row["kind"]].sent, {"batch": batch_id, "at": stamp})
        c.execute("DELETE FROM sync_batches WHERE id = ?", (batch_id,))
        if row["kind"] != "audit":  # the sync part's access, audited as such (audit batches not: that never ends)
            from edge_agent.access.audit import append

            append(c, "system:sync", "sync.sent", f"{row['kind']} batch {batch_id}: {row['items']} records",
                   "sync to the station", "", row["items"])
    return Batch(row["id"], row["kind"], row["items"])


def refuse_batch(db: Database, batch_id: str, reason: str) -> bool:
    """The station refused the batch: its records stay unsent, and it waits before it is tried again."""
    with db.transaction() as c:
        return c.execute("UPDATE sync_batches SET refused_at = ?, refused_reason = ? WHERE id = ?",
                         (utc_iso(), reason[:500], batch_id)).rowcount > 0


def outbox_stats(db: Database) -> dict:
    row = db.query(
        "SELECT (SELECT COUNT(*) FROM alerts WHERE sent_at IS NULL) AS alerts,"
        " (SELECT COUNT(*) FROM dispositions WHERE sent_at IS NULL) AS dispositions,"
        " (SELECT COUNT(*) FROM officer_plates WHERE sent_at IS NULL) AS plates,"
        " (SELECT COUNT(*) FROM audit_log WHERE sent_at IS NULL) AS audit,"
        " (SELECT COUNT(*) FROM evidence_holds WHERE sent_at IS NULL) AS holds,"
        " (SELECT COUNT(*) FROM reads WHERE scene_pending = 1) AS scene_images,"
        " (SELECT COUNT(*) FROM sync_batches WHERE refused_at IS NULL) AS batches_unacknowledged,"
        " (SELECT COUNT(*) FROM sync_batches WHERE refused_at IS NOT NULL) AS batches_refused"
    )[0]
    return dict(row)
