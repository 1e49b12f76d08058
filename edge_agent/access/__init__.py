"""Who may touch the data, and the one way in: every function that returns reads or audit records takes a
`Session` (a user, their role, the purpose of the access) and writes the audit record itself: user, UTC
time, unit, what was asked, purpose and how many records came back. Refusals are audited too.

Users are trained people: an argon2 password hash, a role, the date their department-approved training was
completed and when it expires. An untrained, expired, locked or wrong-role user is refused.
"""

from __future__ import annotations

import math
import re
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from edge_agent.errors import EdgeAgentError
from edge_agent.figures import audit_metrics, yearly_figures
from edge_agent.recognise.plate import CONFUSION_KEY, confusion_key_sql
from edge_agent.store import Database, utc_iso

ROLES = ("officer", "supervisor", "technician", "auditor", "administrator")
# what each kind of access needs
MAY_SEARCH = ("officer", "supervisor", "auditor", "administrator")
MAY_AUDIT = ("supervisor", "auditor", "administrator")
MAY_MANAGE_USERS = ("administrator",)
SYSTEM_PARTS = ("sync", "alerting", "retention", "hotlist", "selftest")

LOCK_AFTER = 5  # failed logins in a row lock the user out for LOCK_MINUTES (doubling each further failure)
LOCK_MINUTES = 1.0
_hasher = PasswordHasher()


class AccessDenied(EdgeAgentError):
    """Refused: one line saying why (and the refusal is in the audit log)."""


@dataclass(frozen=True)
class Session:
    user: str
    role: str
    purpose: str
    unit: str = ""

    @property
    def system(self) -> bool:
        return self.role == "system"


def system_session(part: str, unit: str = "") -> Session:
    """The agent's own parts reach the data as named system users, audited as such."""
    if part not in SYSTEM_PARTS:
        raise ValueError(f"unknown system part {part!r}")
    return Session(f"system:{part}", "system", part, unit)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def add_user(db: Database, by: Session | None, name: str, role: str, password: str, trained_on: date,
             valid_days: int = 365, designee: bool = False) -> None:
    """A trained user. The first user of a unit may be added by the installer (by=None): an administrator."""
    new = new_user(name, role, password, trained_on, valid_days, designee)
    existing = db.query("SELECT COUNT(*) FROM users")[0][0]
    if by is None:
        if existing:
            raise AccessDenied("users exist: an administrator must log in to add one (--as NAME)")
        if role != "administrator":
            raise AccessDenied("the first user of a unit is its administrator")
        who = "installer"
    else:
        _require(db, by, MAY_MANAGE_USERS, "users.add", name)
        who = by.user
    expires = new["training_expires"]
    with db.transaction() as c:
        try:
            c.execute("INSERT INTO users (name, role, password_hash, trained_on, training_expires, designee)"
                      " VALUES (?, ?, ?, ?, ?, ?)", (name, role, new["password_hash"], new["trained_on"], expires,
                                                    int(designee)))
        except sqlite3.IntegrityError:
            raise AccessDenied(f"user {name!r} exists already") from None
        from edge_agent.access.audit import append

        append(c, who, "users.add", f"{name} as {role}, trained {trained_on}, until {expires}"
               + (", ALPR administrator designee" if designee else ""), "user management", by.unit if by else "", 1)


def new_user(name: str, role: str, password: str, trained_on: date, valid_days: int = 365,
             designee: bool = False) -> dict:
    """A user's record as the unit and the station's roster keep it (the password only as its argon2id hash),
    or AccessDenied saying what is wrong."""
    if role not in ROLES:
        raise AccessDenied(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", name):
        raise AccessDenied(f"user name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-'")
    if len(password) < 10:
        raise AccessDenied("a password needs at least 10 characters")
    if valid_days < 1:
        raise AccessDenied("training must be valid for at least a day")
    return {"name": name, "role": role, "password_hash": _hasher.hash(password), "trained_on": trained_on.isoformat(),
            "training_expires": (trained_on + timedelta(days=valid_days)).isoformat(), "designee": designee,
            "active": True}


def locked_until_after(failures: int, now: datetime) -> str | None:
    """When a user with this many failed logins in a row may try again: LOCK_AFTER failures lock for
    LOCK_MINUTES, doubling with each further one; None while under LOCK_AFTER."""
    if failures < LOCK_AFTER:
        return None
    return (now + timedelta(minutes=LOCK_MINUTES * 2 ** min(failures - LOCK_AFTER, 20))).isoformat()


def password_matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def login(db: Database, name: str, password: str, purpose: str, unit: str = "", now: datetime | None = None) -> Session:
    """A session for a trained user with a purpose; every refusal says why and is audited."""
    now = now or _now()
    purpose = (purpose or "").strip()
    rows = db.query("SELECT role, password_hash, training_expires, active, failed_logins, locked_until FROM users"
                    " WHERE name = ?", (name,))
    if not rows:
        _refused(db, name, "login", "unknown user", purpose, unit)
    role, stored, expires, active, failures, locked_until = rows[0]
    if locked_until and now.isoformat() < locked_until:
        _refused(db, name, "login", f"locked after {failures} failed logins until {locked_until[:19]}Z", purpose, unit)
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        failures += 1
        lock = locked_until_after(failures, now)
        with db.transaction() as c:
            c.execute("UPDATE users SET failed_logins = ?, locked_until = ? WHERE name = ?", (failures, lock, name))
        _refused(db, name, "login", "wrong password" + (f"; locked until {lock[:19]}Z" if lock else ""), purpose, unit)
    if not active:
        _refused(db, name, "login", "user is deactivated", purpose, unit)
    if expires < now.date().isoformat():
        _refused(db, name, "login", f"training expired on {expires}: renew it before using the system", purpose, unit)
    if not purpose:
        _refused(db, name, "login", "no purpose given (a case number or a reason)", purpose, unit)
    with db.transaction() as c:
        c.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE name = ?", (name,))
    db.audit(name, "login", "", purpose, unit, None)
    return Session(name, role, purpose, unit)


def _refused(db: Database, user: str, action: str, why: str, purpose: str, unit: str):
    db.audit(user or "-", f"{action}.refused", why, purpose, unit, 0)
    raise AccessDenied(f"{action} refused: {why}")


def _require(db: Database, session: Session, roles: tuple[str, ...], action: str, query: str) -> None:
    if session.system:
        return
    if session.role not in roles:
        _refused(db, session.user, action, f"role {session.role} may not ({', '.join(roles)} may); asked {query}",
                 session.purpose, session.unit)
    if not session.purpose.strip():
        _refused(db, session.user, action, f"no purpose given; asked {query}", session.purpose, session.unit)


def list_users(db: Database, session: Session) -> list[dict]:
    _require(db, session, MAY_MANAGE_USERS + ("auditor",), "users.list", "all users")
    rows = db.query("SELECT name, role, trained_on, training_expires, designee, active, failed_logins FROM users"
                    " ORDER BY name")
    _accessed(db, session, "users.list", "all users", len(rows))
    return [dict(r) for r in rows]


# --- search -------------------------------------------------------------------

def confusion_key(plate: str) -> str:
    """The plate with each easily confused character replaced by its group's first: 8BC1 and B8CI match."""
    return "".join(CONFUSION_KEY.get(ch, ch) for ch in plate)


def like_pattern(plate: str) -> str:
    """A plate with wildcards (* any run, ? one character) as a LIKE pattern; anything but A-Z 0-9 * ? refused."""
    text = plate.strip().upper()
    if not re.fullmatch(r"[A-Z0-9*?]{1,10}", text):
        raise AccessDenied(f"search {plate[:40]!r}: a plate is 1-10 letters and digits, with * and ? as wildcards")
    return text.replace("*", "%").replace("?", "_")


@dataclass(frozen=True)
class ReadQuery:
    plate: str
    since: datetime | None = None
    until: datetime | None = None
    near: tuple[float, float, float] | None = None  # lat, lon, km
    tolerant: bool = False  # misread-tolerant: O/0, I/1, B/8 ... match each other

    def describe(self) -> str:
        parts = [f"plate {self.plate}" + (" (misread-tolerant)" if self.tolerant else "")]
        if self.since:
            parts.append(f"since {utc_iso(self.since)}")
        if self.until:
            parts.append(f"until {utc_iso(self.until)}")
        if self.near:
            parts.append(f"within {self.near[2]:g} km of {self.near[0]:.5f},{self.near[1]:.5f}")
        return ", ".join(parts)

    def where(self) -> tuple[list[str], list]:
        """The SQL conditions (? placeholders; the same on the unit's SQLite and the station's PostgreSQL) and
        their values; AccessDenied for a plate that is not 1-10 of A-Z 0-9 * ?. Plate and time use their
        indexes; a place is a box here, and `keeps` then holds each read to the circle."""
        pattern = like_pattern(self.plate)
        wild = "%" in pattern or "_" in pattern
        where, params = [], []
        if self.tolerant:
            where.append(f"{confusion_key_sql('plate')} {'LIKE' if wild else '='} ?")  # the index when no wildcard
            params.append(confusion_key(pattern))
        elif wild:
            where.append("plate LIKE ?")
            params.append(pattern)
        else:
            where.append("plate = ?")
            params.append(pattern)
        if self.since:
            where.append("captured_at >= ?")
            params.append(utc_iso(self.since))
        if self.until:
            where.append("captured_at < ?")
            params.append(utc_iso(self.until))
        if self.near:
            lat, lon, km = self.near
            dlat = km / 111.0
            dlon = km / max(1e-6, 111.0 * math.cos(math.radians(lat)))
            where.append("lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?")
            params += [lat - dlat, lat + dlat, lon - dlon, lon + dlon]
        return where, params

    def keeps(self, lat: float | None, lon: float | None) -> bool:
        return self.near is None or (lat is not None and _km(self.near[0], self.near[1], lat, lon) <= self.near[2])


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 12742.0 * math.asin(math.sqrt(a))


def search_reads(db: Database, session: Session, q: ReadQuery, limit: int = 1000) -> list[dict]:
    """Reads matching the query, newest first, audited with the number returned."""
    _require(db, session, MAY_SEARCH, "search", q.describe())
    out = _find_reads(db, session, q, "search", limit)
    _accessed(db, session, "search", q.describe(), len(out))
    return out


def _accessed(db: Database, session: Session, action: str, query: str, records: int | None) -> None:
    """The audit record of an access and, where the figures count it (`figures.audit_metrics`), its count:
    one transaction."""
    from edge_agent.access.audit import append

    with db.transaction() as c:
        append(c, session.user, action, query, session.purpose, session.unit, records)
        db.count(c, audit_metrics(action, session.purpose))


def _find_reads(db: Database, session: Session, q: ReadQuery, action: str, limit: int = 1000) -> list[dict]:
    """The query run, unaudited: for the access functions above it, which audit it as what they do."""
    asked = q.describe()
    try:
        where, params = q.where()
    except AccessDenied as exc:
        _refused(db, session.user, action, f"{exc}; asked {asked}", session.purpose, session.unit)
    sql = ("SELECT id, captured_at, camera_id, plate, confidence, state, lat, lon, fix, clock, hit_count, evidence_hold"
           f" FROM reads WHERE {' AND '.join(where)} ORDER BY captured_at DESC LIMIT ?")
    rows = db.query(sql, params + [limit])
    return [dict(r) for r in rows if q.keeps(r["lat"], r["lon"])]


def _covers(asked: str, plate: str) -> bool:
    """Whether a search described as `asked` (ReadQuery.describe) would have returned `plate`."""
    m = re.match(r"plate ([A-Z0-9*?]+)( \(misread-tolerant\))?", asked)
    if not m:
        return False
    pattern, tolerant = m.group(1), bool(m.group(2))
    if tolerant:
        pattern, plate = confusion_key(pattern), confusion_key(plate)
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, plate) is not None


def search_audit(db: Database, session: Session, plate: str | None = None, user: str | None = None,
                 limit: int = 1000) -> list[dict]:
    """Who looked at plate X (every search whose pattern covers it, wildcards and misread-tolerance included),
    or what user Y looked at, and why."""
    asked = f"plate {plate}" if plate else f"user {user}" if user else "everything"
    _require(db, session, MAY_AUDIT, "audit.search", asked)
    where, params = [], []
    if plate:
        like_pattern(plate)  # refuses anything but a plate
        plate = plate.strip().upper()
        where.append("action IN ('search', 'export')")
    if user:
        where.append("user = ?")
        params.append(user)
    sql = ("SELECT id, at, user, unit, action, query, purpose, records FROM audit_log"
           + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC")
    rows = [dict(r) for r in db.query(sql, params)]
    if plate:
        rows = [r for r in rows if _covers(r["query"], plate)]
    rows = rows[:limit]
    _accessed(db, session, "audit.search", asked, len(rows))
    return rows


# --- export for evidence ------------------------------------------------------

MAY_EXPORT = ("supervisor", "administrator")


def export_reads(db: Database, session: Session, q: ReadQuery, out: "Path", redact_with=None) -> dict:
    """The reads a search finds, with their plate and scene images and a manifest of sha256 digests, written
    to a new folder for booking into evidence; each read goes on evidence hold (kept past retention).

    With `redact_with` (a plate reader), the export is for public release: in each scene image every other
    vehicle's plate, and any plate that cannot be read, is pixelated."""
    import hashlib
    import json
    from pathlib import Path

    from edge_agent.files import write_atomic

    asked = q.describe()
    _require(db, session, MAY_EXPORT, "export", asked)
    out = Path(out)
    if out.exists():
        _refused(db, session.user, "export", f"{out} exists already: an export goes to a new folder; asked {asked}",
                 session.purpose, session.unit)
    reads = _find_reads(db, session, q, "export")
    try:
        out.mkdir(parents=True, mode=0o750)
    except OSError as exc:
        _refused(db, session.user, "export", f"{out} cannot be made: {exc.strerror or exc}; asked {asked}",
                 session.purpose, session.unit)
    files: dict[str, str] = {}

    def put(name: str, data: bytes) -> None:
        write_atomic(out / name, data, 0o640)
        files[name] = hashlib.sha256(data).hexdigest()

    for r in reads:
        for kind, jpeg in db.read_images(r["id"]).items():
            if redact_with is not None and kind == "scene":
                jpeg = _redacted(jpeg, r["plate"], redact_with)
            put(f"{r['id']}-{kind}.jpg", jpeg)
    put("reads.json", json.dumps(reads, indent=1).encode())
    manifest = {"exported_at": utc_iso(), "by": session.user, "purpose": session.purpose, "unit": session.unit,
                "query": asked, "reads": len(reads), "redacted": redact_with is not None, "files": files}
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=1).encode(), 0o640)
    with db.transaction() as c:
        db.hold(c, [r["id"] for r in reads], session.user, f"exported to {out} for {session.purpose}")
    _accessed(db, session, "export", f"{asked} -> {out}{' (redacted)' if redact_with is not None else ''}",
              len(reads))
    return manifest


def hotlist_imported(db: Database, session: Session, source: str, result) -> None:
    """The audit record of a hotlist import (the list's own management: it touches no reads)."""
    _accessed(db, session, "hotlist.import", f"{source} -> version {result.version} ({result.kind}, "
              f"{result.entries_in_force} entries, sha256 {result.sha256})", None)


# --- the yearly figures that records requests ask for ------------------------

MAY_REPORT = ("supervisor", "auditor", "administrator")


def yearly_report(db: Database, session: Session, year: int) -> dict:
    """Detections (a detection is one stored read), hits by list, dispositions, searches by purpose, exports
    and purges in the agency's year, by month (`figures.yearly_figures`); kept as counts when they happen,
    so purging the reads changes none of them."""
    _require(db, session, MAY_REPORT, "report", f"year {year}")
    report = yearly_figures(year, str(db.zone), db.counts_of_year(year), scope="unit", unit=session.unit)
    _accessed(db, session, "report", f"year {year}", 1)
    return report


def _redacted(jpeg: bytes, plate: str, reader) -> bytes:
    import numpy as np

    from edge_agent.capture import decode_image_bytes
    from edge_agent.imaging import encode_jpeg, mask_boxes

    scene = decode_image_bytes(np.frombuffer(jpeg, np.uint8), "scene image")
    others = [r.box for r in reader.read_frame(scene) if r.text != plate]
    return encode_jpeg(mask_boxes(scene, others), 90)
