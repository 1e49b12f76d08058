"""Officers' plates passed to the whole fleet: the station signs the list (alpr.plates.v1) and every unit
takes it as local entries of its hotlist, marked with the plate's uuid, so that a plate entered in one car
matches in every car. A later list that leaves a plate out removes it; the unit that entered a plate keeps
its own entry and skips the copy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from edge_agent.store import Database, utc_iso
from edge_agent.sync.payloads import PayloadError, open_fleet_message, validate

SCHEMA = "alpr.plates.v1"


def build_fleet_plates(agency: str, version: int, plates: list[dict], issued_at: str | None = None) -> bytes:
    body = {"schema": SCHEMA, "agency": agency, "version": version, "issued_at": issued_at or utc_iso(),
            "plates": plates}
    validate(SCHEMA, body)
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class FleetPlatesTaken:
    version: int
    added: int
    removed: int


def apply_fleet_plates(db: Database, hotlist_db: Database, payload: bytes, signature: str | None, station_key,
                       agency: str, unit: str) -> FleetPlatesTaken | None:
    """Take the station's list of fleet plates; None when it is not newer than the one held. Anything
    unsigned, signed by another key, for another agency or malformed is refused (PayloadError) and audited."""
    try:
        body = open_fleet_message(payload, signature, station_key, SCHEMA, "officers' plates", agency)
    except PayloadError as exc:
        db.audit("system:sync", "plates.refused", str(exc), "officers' plates from the station", "", 0)
        raise
    held = hotlist_db.query("SELECT MAX(version) FROM fleet_plates_applied")[0][0] or 0
    if body["version"] <= held:
        return None
    wanted = {p["uuid"]: p for p in body["plates"] if p["unit"] != unit}
    now = utc_iso()
    with hotlist_db.transaction() as c:
        have = {r["fleet_uuid"] for r in c.execute(
            "SELECT fleet_uuid FROM local_entries WHERE fleet_uuid IS NOT NULL AND removed_at IS NULL")}
        gone = sorted(have - set(wanted))
        c.executemany("UPDATE local_entries SET removed_by = 'station', removed_at = ? WHERE fleet_uuid = ? AND"
                      " removed_at IS NULL", [(now, u) for u in gone])
        new = [p for u, p in wanted.items() if u not in have]
        c.executemany("INSERT INTO local_entries (pattern, state, list, reason, entered_by, entered_at, expires,"
                      " fleet_uuid) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fleet_uuid) WHERE fleet_uuid IS NOT"
                      " NULL DO UPDATE SET removed_by = NULL, removed_at = NULL",
                      [(p["plate"], p["state"], p["list"], p["reason"], f"{p['entered_by']} ({p['unit']})", now,
                        p.get("expires"), p["uuid"]) for p in new])
        c.execute("INSERT INTO fleet_plates_applied (version, sha256, applied_at) VALUES (?, ?, ?)",
                  (body["version"], hashlib.sha256(payload).hexdigest(), now))
    db.audit("system:sync", "plates.apply", f"version {body['version']}: {len(new)} added, {len(gone)} removed",
             "officers' plates from the station", "", len(wanted))
    return FleetPlatesTaken(body["version"], len(new), len(gone))
