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
    _accessed(db, session, "hotlist.add", f"local entry {entry.id}: {entry.pattern.text} {entry.state or '*'} "
              f"{entry.list_name} ({entry.reason})", 1)
    return entry


def remove_officer_plate(db: Database, session: Session, hotlist_db, entry_id: int):
    from edge_agent.hotlist import remove_local

    _require(db, session, MAY_ENTER_PLATES, "hotlist.remove", f"local entry {entry_id}")
    entry = remove_local(hotlist_db, entry_id, session.user)
    _accessed(db, session, "hotlist.remove", f"local entry {entry.id}: {entry.pattern.text}", 1)
    return entry
