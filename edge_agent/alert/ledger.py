"""Alerts in the unit's database, and the disposition an officer records for each."""

from __future__ import annotations

import uuid as uuidlib

from edge_agent.figures import disposition_metrics
from edge_agent.records import Hit, Read
from edge_agent.store import Database, utc_iso

# What came of an alert: confirmed through CLETS, a misread, the car not found, or CLETS disagreeing with the list.
DISPOSITIONS = ("confirmed", "misread", "not-located", "clets-mismatch")


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


def acknowledge(db: Database, alert_id: int, disposition: str, user: str, note: str = "") -> dict:
    """Record what came of an alert. A confirmed hit puts its read on evidence hold (retention does not purge it)."""
    disposition = disposition.lower()
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition {disposition!r} is not one of {', '.join(DISPOSITIONS)}")
    if not user.strip():
        raise ValueError("the officer recording the disposition is required (--user)")
    rows = db.query("SELECT id, read_id, disposition FROM alerts WHERE id = ?", (alert_id,))
    if not rows:
        raise ValueError(f"there is no alert {alert_id} (see `edge-agent alerts list`)")
    at = utc_iso()
    with db.transaction() as c:
        c.execute("INSERT INTO dispositions (uuid, alert_id, disposition, user, at, note) VALUES (?, ?, ?, ?, ?, ?)",
                  (str(uuidlib.uuid4()), alert_id, disposition, user, at, note))
        for metric in disposition_metrics(disposition):
            db.count(c, metric)
        c.execute("UPDATE alerts SET disposition = ?, disposition_by = ?, disposition_at = ? WHERE id = ?",
                  (disposition, user, at, alert_id))
        if disposition == "confirmed":
            db.hold(c, [rows[0]["read_id"]], user, f"alert {alert_id} confirmed")
    return {"alert_id": alert_id, "disposition": disposition, "user": user, "at": at,
            "previous": rows[0]["disposition"], "note": note}


def list_alerts(db: Database, limit: int = 50, open_only: bool = False) -> list[dict]:
    where = "WHERE disposition IS NULL" if open_only else ""
    rows = db.query(
        f"SELECT id, raised_at, camera_id, plate_read, lic, lis, list, match, message, other_hits, disposition,"
        f" disposition_by, disposition_at, read_id, (SELECT note FROM dispositions d WHERE d.alert_id = alerts.id"
        f" ORDER BY d.id DESC LIMIT 1) AS note FROM alerts {where} ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [dict(r) for r in rows]
