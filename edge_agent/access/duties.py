"""An officer's and a supervisor's daily work with the data, through the access layer: the alerts raised and
what came of each, plates checked against the hotlist, and plates entered by officers. Each function takes
a `Session`, checks its role and writes its own audit record (user, time, unit, what was asked, purpose,
records), so the CLI and the in-car screen get the same checks and the same audit.
"""

from __future__ import annotations

from datetime import date

from edge_agent.access import MAY_SEARCH, Session, _accessed, _refused, _require
from edge_agent.store import Database

MAY_DISPOSE = ("officer", "supervisor", "administrator")  # record what came of an alert
MAY_ENTER_PLATES = ("officer", "supervisor", "administrator")


def list_alerts(db: Database, session: Session, limit: int = 50, open_only: bool = False) -> list[dict]:
    from edge_agent.alert import ledger

    asked = f"alerts open={open_only} limit={limit}"
    _require(db, session, MAY_SEARCH, "alerts.list", asked)
    alerts = ledger.list_alerts(db, limit, open_only)
    _accessed(db, session, "alerts.list", asked, len(alerts))
    return alerts


def record_disposition(db: Database, session: Session, alert_id: int, disposition: str, note: str = "",
                       request_id: str | None = None) -> dict:
    """What came of an alert, by the session's user: a new entry in the alert's history (a confirmed hit puts
    its read on evidence hold); the same request (`request_id`) sent twice is stored, and audited, once."""
    from edge_agent.alert import ledger

    asked = f"alert {alert_id}: {disposition}"
    _require(db, session, MAY_DISPOSE, "alerts.ack", asked)
    try:
        result = ledger.acknowledge(db, alert_id, disposition, session.user, note, request_id)
    except ValueError as exc:
        _refused(db, session.user, "alerts.ack", f"{exc}; asked {asked[:80]}", session.purpose, session.unit)
    if result["repeated"]:
        return result
    _accessed(db, session, "alerts.ack", f"alert {alert_id}: {result['disposition']}" + (f" ({note})" if note else ""), 1)
    return result


def check_plates(db: Database, session: Session, index, plates: list[str], state: str | None = None,
                 exact_only: bool = False) -> list[tuple[str, list | str]]:
    """Each plate with its hits in the hotlist, or the reason it is not a plate."""
    from edge_agent.hotlist import query_plate

    asked = " ".join(p[:20] for p in plates[:50]) + (" ..." if len(plates) > 50 else "")
    _require(db, session, MAY_SEARCH, "hotlist.check", asked)
    out: list[tuple[str, list | str]] = []
    for raw in plates:
        try:
            plate = query_plate(raw)
        except ValueError as exc:
            out.append((raw[:40], str(exc)))
            continue
        out.append((plate, index.exact(plate, state) if exact_only else index.match(plate, state)))
    _accessed(db, session, "hotlist.check", asked, sum(len(r) for _, r in out if isinstance(r, list)))
    return out


def add_officer_plate(db: Database, session: Session, hotlist_db, plate: str, list_name: str, reason: str,
                      state: str = "", expires: date | None = None):
    """A plate (or a partial plate, for major crimes) an officer enters: it matches at once."""
    from edge_agent.hotlist import add_local

    asked = f"{plate[:20]} {state or '*'} {list_name}"
    _require(db, session, MAY_ENTER_PLATES, "hotlist.add", asked)
    entry = add_local(hotlist_db, plate, list_name, reason, session.user, state, expires)
    _plate_changed(db, session, "added", entry, f"local entry {entry.id}: {entry.pattern.text} {entry.state or '*'} "
                   f"{entry.list_name} ({entry.reason})")
    return entry


def remove_officer_plate(db: Database, session: Session, hotlist_db, entry_id: int):
    from edge_agent.hotlist import remove_local

    _require(db, session, MAY_ENTER_PLATES, "hotlist.remove", f"local entry {entry_id}")
    entry = remove_local(hotlist_db, entry_id, session.user)
    _plate_changed(db, session, "removed", entry, f"local entry {entry.id}: {entry.pattern.text}")
    return entry


def _plate_changed(db: Database, session: Session, action: str, entry, query: str) -> None:
    """An officer's plate entered or removed: the record the station is sent (it may pass the plate to the
    fleet) and the audit record, in one transaction."""
    import uuid

    from edge_agent.access.audit import append
    from edge_agent.store import utc_iso

    with db.transaction() as c:
        c.execute("INSERT INTO officer_plates (uuid, action, entry_id, plate, state, list, reason, entered_by, user, at,"
                  " expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (str(uuid.uuid4()), action, entry.id, entry.pattern.text, entry.state or "", entry.list_name,
                   entry.reason, entry.entered_by, session.user, utc_iso(), entry.expires))
        append(c, session.user, f"hotlist.{'add' if action == 'added' else 'remove'}", query, session.purpose,
               session.unit, 1)


# the officer's screen ------------------------------------------------------

MAY_WATCH_CAMERAS = ("technician", "supervisor", "administrator")  # aim cameras at installation


def watch_live(db: Database, session: Session) -> None:
    """The live view of reads and hits: a standing purpose (patrol), audited once for the screen's session."""
    _require(db, session, MAY_SEARCH, "screen.live", "live reads and hits")
    _accessed(db, session, "screen.live", "live reads and hits", None)


def watch_cameras(db: Database, session: Session) -> None:
    """The technician's view of each camera's picture with its plate boxes, audited once for the session."""
    _require(db, session, MAY_WATCH_CAMERAS, "screen.cameras", "live camera pictures")
    _accessed(db, session, "screen.cameras", "live camera pictures", None)


def open_alert(db: Database, session: Session, hotlist_db, alert_id: int) -> dict:
    """One alert as the hit view shows it: the read with its scene and plate images, the list's entry, the
    spoken words and the history of dispositions (oldest first). Audited each time it is opened."""
    from edge_agent.alert import ledger
    from edge_agent.hotlist.storage import hit_details

    asked = f"alert {alert_id}"
    _require(db, session, MAY_SEARCH, "screen.alert", asked)
    alert = ledger.alert(db, alert_id)
    if alert is None:
        _refused(db, session.user, "screen.alert", f"there is no alert {alert_id}", session.purpose, session.unit)
    alert["details"] = hit_details(hotlist_db, alert.pop("source") or "hotlist", alert.pop("entry_id"))
    alert["images"] = db.read_images(alert["read_id"])
    _accessed(db, session, "screen.alert", f"{asked}: {alert['plate_read']} ({alert['list']})", 1)
    return alert


def open_read(db: Database, session: Session, read_id: str) -> dict:
    """A past read with its images, audited each time it is opened."""
    from edge_agent.store import read_record

    asked = f"read {read_id[:40]}"
    _require(db, session, MAY_SEARCH, "screen.read", asked)
    read = read_record(db, read_id)
    if read is None:
        _refused(db, session.user, "screen.read", f"there is no read {read_id[:40]}", session.purpose, session.unit)
    read["images"] = db.read_images(read_id)
    _accessed(db, session, "screen.read", f"{asked}: {read['plate']}", 1)
    return read


def list_officer_plates(db: Database, session: Session, hotlist_db) -> list:
    from edge_agent.hotlist import local_entries

    _require(db, session, MAY_SEARCH, "hotlist.local", "officers' entries")
    entries = local_entries(hotlist_db)
    _accessed(db, session, "hotlist.local", "officers' entries", len(entries))
    return entries
