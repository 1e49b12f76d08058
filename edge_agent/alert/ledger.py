"""Alerts in the unit's database, and the disposition an officer records for each."""

from __future__ import annotations

import uuid as uuidlib

from edge_agent.figures import disposition_metrics
from edge_agent.records import Hit, Read
from edge_agent.store import Database, utc_iso

# What came of an alert: confirmed through CLETS, a misread, the car not found, CLETS disagreeing with the list,
# not pursued (another call, officer safety), or nothing to do. Defined here once: the CLI, the wire schema
# (alpr.batch.v4, held to this by a test), the station and the yearly report take it from here.
DISPOSITIONS = ("confirmed", "misread", "not-located", "clets-mismatch", "not-pursued", "no-action")
# the department's policy: these need a note saying why (what CLETS said, why the car was not stopped)
NOTE_REQUIRED = ("clets-mismatch", "not-pursued")


def record_alert(db: Database, read: Read, hit: Hit, hit_id: int | None, message: str, others: int) -> tuple[int, str]:
    alert_uuid = str(uuidlib.uuid4())
    with db.transaction() as c:
        alert_id = c.execute(
            "INSERT INTO alerts (uuid, read_id, hit_id, raised_at, camera_id, plate_read, lic, lis, list, match,"
            " message, other_hits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (alert_uuid, read.id, hit_id, utc_iso(), read.camera_id, read.reading.text, hit.lic, hit.lis,
             hit.list_name, hit.match, message, others),
        ).lastrowid
    return alert_id, alert_uuid


def acknowledge(db: Database, alert_id: int, disposition: str, user: str, note: str = "",
                request_id: str | None = None) -> dict:
    """Record what came of an alert: a new entry in its history, the latest shown (never an overwrite). The
    same request (`request_id`, the entry's uuid) sent twice is stored once. A confirmed hit puts its read on
    evidence hold (retention does not purge it)."""
    disposition = disposition.lower()
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition {disposition!r} is not one of {', '.join(DISPOSITIONS)}")
    if not user.strip():
        raise ValueError("the officer recording the disposition is required (--user)")
    if disposition in NOTE_REQUIRED and not note.strip():
        raise ValueError(f"a {disposition} disposition needs a note saying why (policy)")
    rows = db.query("SELECT id, read_id, disposition FROM alerts WHERE id = ?", (alert_id,))
    if not rows:
        raise ValueError(f"there is no alert {alert_id} (see `edge-agent alerts list`)")
    entry = str(uuidlib.UUID(request_id)) if request_id else str(uuidlib.uuid4())
    at = utc_iso()
    with db.transaction() as c:
        done = c.execute("SELECT alert_id, disposition, user, at, note FROM dispositions WHERE uuid = ?", (entry,)).fetchone()
        if done is not None:
            if done["alert_id"] != alert_id:
                raise ValueError(f"request {entry} was for alert {done['alert_id']}, not {alert_id}")
            return {"alert_id": alert_id, "disposition": done["disposition"], "user": done["user"], "at": done["at"],
                    "previous": None, "note": done["note"], "uuid": entry, "repeated": True}
        c.execute("INSERT INTO dispositions (uuid, alert_id, disposition, user, at, note) VALUES (?, ?, ?, ?, ?, ?)",
                  (entry, alert_id, disposition, user, at, note))
        db.count(c, disposition_metrics(disposition))
        c.execute("UPDATE alerts SET disposition = ?, disposition_by = ?, disposition_at = ? WHERE id = ?",
                  (disposition, user, at, alert_id))
        if disposition == "confirmed":
            db.hold(c, [rows[0]["read_id"]], user, f"alert {alert_id} confirmed")
    return {"alert_id": alert_id, "disposition": disposition, "user": user, "at": at,
            "previous": rows[0]["disposition"], "note": note, "uuid": entry, "repeated": False}


def list_alerts(db: Database, limit: int = 50, open_only: bool = False) -> list[dict]:
    where = "WHERE disposition IS NULL" if open_only else ""
    rows = db.query(
        f"SELECT id, raised_at, camera_id, plate_read, lic, lis, list, match, message, other_hits, disposition,"
        f" disposition_by, disposition_at, read_id, (SELECT note FROM dispositions d WHERE d.alert_id = alerts.id"
        f" ORDER BY d.id DESC LIMIT 1) AS note FROM alerts {where} ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [dict(r) for r in rows]


def alert(db: Database, alert_id: int) -> dict | None:
    """One alert with its read's text, time, place and camera, the entry it hit, and its history of
    dispositions (oldest first; the latest is the alert's disposition)."""
    from edge_agent.store import alert_read

    rows = db.query("SELECT id, uuid, read_id, hit_id, raised_at, camera_id, plate_read, lic, lis, list, match, message,"
                    " other_hits, disposition, disposition_by, disposition_at FROM alerts WHERE id = ?", (alert_id,))
    if not rows:
        return None
    out = dict(rows[0])
    out.update(alert_read(db, out["read_id"], out.pop("hit_id")))
    out["history"] = [dict(r) for r in db.query(
        "SELECT uuid, disposition, user, at, note FROM dispositions WHERE alert_id = ? ORDER BY id", (alert_id,))]
    return out
