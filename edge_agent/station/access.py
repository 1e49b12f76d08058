"""The station's own door to the fleet's data: the roster's users log in (the same argon2 hashes, training
and roles as on the units), and each search is audited at the station with its purpose and the number of
reads returned; a refusal is audited too. The search is the unit's (`access.ReadQuery`), over every unit's
reads."""

from __future__ import annotations

from datetime import datetime, timezone

from edge_agent.access import MAY_SEARCH, AccessDenied, ReadQuery, Session, locked_until_after, password_matches
from edge_agent.station.store import StationStore


def station_login(store: StationStore, agency: str, name: str, password: str, purpose: str,
                  now: datetime | None = None) -> Session:
    """A session for a roster user, with the unit's checks and its back-off after repeated wrong passwords."""
    now = now or datetime.now(timezone.utc)
    purpose = (purpose or "").strip()
    user = store.roster_user(name)
    why = ""
    if user is None:
        why = "unknown user (users are added with `station users add`)"
    elif user["locked_until"] and now.isoformat() < user["locked_until"]:
        why = f"locked after {user['failed_logins']} failed logins until {user['locked_until'][:19]}Z"
    elif not password_matches(user["password_hash"], password):
        failures = user["failed_logins"] + 1
        lock = locked_until_after(failures, now)
        store.roster_login_result(name, failures, lock)
        why = "wrong password" + (f"; locked until {lock[:19]}Z" if lock else "")
    elif not user["active"]:
        why = "user is deactivated"
    elif user["training_expires"] < now.date().isoformat():
        why = f"training expired on {user['training_expires']}: renew it before using the system"
    elif not purpose:
        why = "no purpose given (a case number or a reason)"
    if why:
        _refused(store, agency, name, "login", why, purpose)
    if user["failed_logins"]:
        store.roster_login_result(name, 0, None)
    store.audit_station(agency, name, "login", "", purpose, None)
    return Session(name, user["role"], purpose, "station")


def change_roster(store: StationStore, agency: str, admin: Session | None, user: dict, action: str) -> int:
    """Add, renew or deactivate a fleet user; returns the roster's new version. The fleet's first user is
    its administrator, added by the installer (admin None); after that an administrator logs in for it."""
    _, users = store.roster()
    if not users:
        if admin is not None or user["role"] != "administrator":
            _refused(store, agency, admin.user if admin else "installer", action,
                     "the roster is empty: its first user is the fleet's administrator, added without --as", "")
        return store.roster_put(user, agency, "installer", action)
    if admin is None or admin.role != "administrator":
        _refused(store, agency, admin.user if admin else "-", action,
                 f"an administrator must log in to change the roster (--as NAME); asked {user['name']}",
                 admin.purpose if admin else "")
    return store.roster_put(user, agency, admin.user, action)


def station_search(store: StationStore, agency: str, session: Session, q: ReadQuery, limit: int = 1000) -> list[dict]:
    if session.role not in MAY_SEARCH:
        _refused(store, agency, session.user, "search", f"role {session.role} may not search; asked {q.describe()}",
                 session.purpose)
    try:
        return store.search_reads(q, agency, session.user, session.purpose, limit)
    except AccessDenied as exc:
        _refused(store, agency, session.user, "search", f"{exc}; asked {q.describe()}", session.purpose)


def _refused(store: StationStore, agency: str, user: str, action: str, why: str, purpose: str):
    store.audit_station(agency, user or "-", f"{action}.refused", why, purpose, 0)
    raise AccessDenied(f"{action} refused: {why}")


MAY_SHARE_PLATES = ("supervisor", "administrator")  # pass an officer's plate to the whole fleet


def station_plates(store: StationStore, agency: str, session: Session, today: str) -> list[dict]:
    """The plates officers have entered on the fleet's units (in force), audited at the station."""
    if session.role not in MAY_SEARCH:
        _refused(store, agency, session.user, "plates.list", f"role {session.role} may not see officers' plates",
                 session.purpose)
    plates = store.officer_plates(agency, today)
    store.audit_station(agency, session.user, "plates.list", "officers' plates", session.purpose, len(plates))
    return plates


def share_plate(store: StationStore, agency: str, session: Session, uuid: str, share: bool) -> dict:
    """Pass an officer's plate to the fleet, or stop passing it: a supervisor's or an administrator's call."""
    if session.role not in MAY_SHARE_PLATES:
        _refused(store, agency, session.user, "plates.share",
                 f"role {session.role} may not pass plates to the fleet ({', '.join(MAY_SHARE_PLATES)} may)",
                 session.purpose)
    return store.share_plate(agency, uuid, session.user if share else None, session.purpose)
