"""The fleet's users, managed at the station and sent to every unit as a signed roster (alpr.roster.v1), so
that an officer trained and added once can log in to any car. Password hashes only travel, never passwords.

A unit takes a roster only when the station's key (sync.station_key, the key that signs its
acknowledgements) signs it, it names the unit's agency, and its version is higher than the last one taken;
then, in one transaction, the roster's users are the unit's station users (a later roster that leaves one
out deactivates it), and the change is audited as the sync part's. Users added on the unit itself (its
installer's administrator) stay.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from edge_agent.access.audit import append
from edge_agent.store import Database, utc_iso
from edge_agent.sync.payloads import PayloadError, open_fleet_message, validate

SCHEMA = "alpr.roster.v1"
FIELDS = ("name", "role", "password_hash", "trained_on", "training_expires", "designee", "active")


def build_roster(agency: str, version: int, users: list[dict], issued_at: str | None = None) -> bytes:
    """The roster payload (the station signs these bytes)."""
    body = {"schema": SCHEMA, "agency": agency, "version": version, "issued_at": issued_at or utc_iso(),
            "users": [{k: (bool(u[k]) if k in ("designee", "active") else u[k]) for k in FIELDS} for u in users]}
    validate(SCHEMA, body)
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class RosterTaken:
    version: int
    users: int
    deactivated: int


def apply_roster(db: Database, payload: bytes, signature: str | None, station_key, agency: str) -> RosterTaken | None:
    """Take a roster from the station; None when it is not newer than the one held. Anything unsigned, signed
    by another key, for another agency or malformed is refused (PayloadError), and the refusal audited."""
    try:
        body = open_fleet_message(payload, signature, station_key, SCHEMA, "roster", agency)
    except PayloadError as exc:
        db.audit("system:sync", "roster.refused", str(exc), "roster from the station", "", 0)
        raise
    held = db.query("SELECT MAX(version) FROM roster_applied")[0][0] or 0
    if body["version"] <= held:
        return None
    names = [u["name"] for u in body["users"]]
    with db.transaction() as c:
        for u in body["users"]:
            c.execute("INSERT INTO users (name, role, password_hash, trained_on, training_expires, designee, active,"
                      " source) VALUES (?, ?, ?, ?, ?, ?, ?, 'station') ON CONFLICT (name) DO UPDATE SET"
                      " role = excluded.role, password_hash = excluded.password_hash, trained_on = excluded.trained_on,"
                      " training_expires = excluded.training_expires, designee = excluded.designee,"
                      " active = excluded.active, source = 'station'",
                      (u["name"], u["role"], u["password_hash"], u["trained_on"], u["training_expires"],
                       int(u["designee"]), int(u["active"])))
        gone = c.execute(f"UPDATE users SET active = 0 WHERE source = 'station' AND active = 1 AND name NOT IN"
                         f" ({','.join('?' * len(names)) or 'NULL'})", names).rowcount
        c.execute("INSERT INTO roster_applied (version, sha256, applied_at) VALUES (?, ?, ?)",
                  (body["version"], hashlib.sha256(payload).hexdigest(), utc_iso()))
        append(c, "system:sync", "roster.apply", f"version {body['version']}: {len(names)} users, {gone} deactivated",
               "roster from the station", "", len(names))
    return RosterTaken(body["version"], len(names), gone)
