"""A plate an officer enters in one car reaches the station (alpr.batch.v5 kind plates); a supervisor passes it
to the fleet, and every other car matches it from then on (alpr.plates.v1, signed by the station)."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest

from conftest import StationThread, Subscriber, fleet_unit, run_cli
from edge_agent.access import add_user, login
from edge_agent.hotlist import load_index
from edge_agent.hotlist.fleet import apply_fleet_plates, build_fleet_plates
from edge_agent.hotlist.parse import LISTS
from edge_agent.hotlist.storage import open_hotlist_db
from edge_agent.store import Database
from edge_agent.sync.payloads import PayloadError, schema, sign_payload

AGENCY = "test-pd"
PASSWORD = "plates-password-1"


def _unit(tmp: Path, name: str, broker: str, station_pub: Path) -> Path:
    path = fleet_unit(tmp, name, broker, station_pub, AGENCY)
    with Database.in_data_dir(tmp / name) as db:
        add_user(db, None, "admin", "administrator", PASSWORD, date.today())
        admin = login(db, "admin", PASSWORD, "set-up")
        add_user(db, admin, "ofc.kim", "officer", PASSWORD, date.today())
    return path


def _matches(data: Path, plate: str) -> list:
    with open_hotlist_db(data) as hot:
        return load_index(hot).match(plate, "CA")


def test_an_officers_plate_goes_to_the_station_and_from_there_to_every_car(tmp_path: Path, mosquitto, monkeypatch):
    keys = tmp_path / "keys"
    assert run_cli("hotlist", "keygen", "--out", keys).code == 0
    station_dir = tmp_path / "station"
    station = StationThread(station_dir, mosquitto.url, config_text=(
        f'[agent]\nagency = "{AGENCY}"\n[station]\nsigning_key = "{keys / "hotlist-signing.key"}"\nhotlist_poll_s = 0.2\n'))
    cars = {name: _unit(tmp_path, name, mosquitto.url, keys / "hotlist-signing.pub") for name in ("car-7", "car-8")}
    monkeypatch.setenv("EDGE_AGENT_PASSWORD", PASSWORD)
    monkeypatch.setenv("EDGE_AGENT_NEW_PASSWORD", PASSWORD)
    try:
        today = date.today().isoformat()
        users = ("--data-dir", station_dir, "station", "users")
        assert run_cli(*users, "add", "sgt.cho", "--role", "supervisor", "--trained-on", today).code == 2
        assert run_cli(*users, "add", "adm.ng", "--role", "administrator", "--trained-on", today).code == 0
        assert run_cli(*users, "add", "sgt.cho", "--role", "supervisor", "--trained-on", today, "--as", "adm.ng").code == 0
        assert run_cli(*users, "add", "ofc.ray", "--role", "officer", "--trained-on", today, "--as", "adm.ng").code == 0
        # car-7's officer enters a partial plate; it travels with the next sync
        added = run_cli("--config", cars["car-7"], "hotlist", "add", "8XY?42*", "--list", "FELONY_VEHICLE",
                        "--reason", "case 26-0107 armed robbery", "--user", "ofc.kim", "--purpose", "case 26-0107")
        assert added.code == 0, added.err
        assert run_cli("--config", cars["car-7"], "sync", "--once").code == 0
        station_config = tmp_path / "station.toml"
        station_config.write_text(f'[agent]\nagency = "{AGENCY}"\ndata_dir = "{station_dir}"\n')
        plates = ("--config", station_config, "station", "plates")
        listed = run_cli(*plates, "list", "--json", "--user", "ofc.ray", "--purpose", "briefing")
        assert listed.code == 0, listed.err
        [plate] = json.loads(listed.out)["plates"]
        assert (plate["plate"], plate["unit"], plate["entered_by"], plate["shared_by"]) == \
            ("8XY?42*", "car-7", "ofc.kim", None)
        assert _matches(tmp_path / "car-8", "8XYZ4211") == []
        # an officer may not pass it to the fleet; a supervisor may
        refused = run_cli(*plates, "share", plate["uuid"], "--user", "ofc.ray", "--purpose", "briefing")
        assert refused.code == 2 and "role officer may not pass plates to the fleet" in refused.err
        shared = run_cli(*plates, "share", plate["uuid"], "--user", "sgt.cho", "--purpose", "case 26-0107")
        assert shared.code == 0 and "goes to every unit" in shared.out, shared.err
        fleet = Subscriber(mosquitto.port, f"alpr/v1/{AGENCY}/plates")
        assert fleet.wait_for(lambda m: m and json.loads(m[-1][1])["plates"])
        fleet.close()
        deadline = time.monotonic() + 15
        while not _matches(tmp_path / "car-8", "8XYZ4211") and time.monotonic() < deadline:
            assert run_cli("--config", cars["car-8"], "sync", "--once").code == 0
            time.sleep(0.3)
        [hit] = _matches(tmp_path / "car-8", "8XYZ4211")
        assert (hit.list_name, hit.source, hit.details["entered_by"]) == ("FELONY_VEHICLE", "local", "ofc.kim (car-7)")
        assert run_cli("--config", cars["car-7"], "sync", "--once").code == 0
        with open_hotlist_db(tmp_path / "car-7") as hot:  # the car that entered it keeps its own entry only
            assert hot.query("SELECT COUNT(*) FROM local_entries WHERE removed_at IS NULL")[0][0] == 1
        # car-7's officer removes it: the station drops it from the fleet's list, and car-8 stops matching
        with open_hotlist_db(tmp_path / "car-7") as hot:
            entry_id = hot.query("SELECT id FROM local_entries")[0][0]
        assert run_cli("--config", cars["car-7"], "hotlist", "remove", str(entry_id), "--user", "ofc.kim",
                       "--purpose", "case 26-0107 closed").code == 0
        assert run_cli("--config", cars["car-7"], "sync", "--once").code == 0
        deadline = time.monotonic() + 15
        while _matches(tmp_path / "car-8", "8XYZ4211") and time.monotonic() < deadline:
            assert run_cli("--config", cars["car-8"], "sync", "--once").code == 0
            time.sleep(0.3)
        assert _matches(tmp_path / "car-8", "8XYZ4211") == []
        with Database.in_data_dir(tmp_path / "car-8") as db:
            applied = [r[0] for r in db.query("SELECT query FROM audit_log WHERE action = 'plates.apply' ORDER BY id")]
        assert applied[0].endswith("1 added, 0 removed") and applied[-1].endswith("0 added, 1 removed")
    finally:
        station.stop()


def test_a_fleet_list_not_signed_by_the_station_or_older_than_the_one_held_is_not_taken(tmp_path: Path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    station, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    plate = {"uuid": "6b1e6c1e-0c4f-4c41-9b8a-9a3f1d2b7c11", "unit": "car-7", "plate": "7ABC12?", "state": "CA",
             "list": "STOLEN_VEHICLE", "reason": "case 1", "entered_by": "ofc.kim"}
    v2 = build_fleet_plates(AGENCY, 2, [plate])
    with Database.in_data_dir(tmp_path / "car-8") as db, open_hotlist_db(tmp_path / "car-8") as hot:
        for payload, signature, key, why in ((v2, None, station.public_key(), "not signed"),
                                             (v2, sign_payload(other, v2), station.public_key(), "wrongly signed"),
                                             (v2, sign_payload(station, v2), None, "station_key is not set")):
            with pytest.raises(PayloadError, match=why):
                apply_fleet_plates(db, hot, payload, signature, key, AGENCY, "car-8")
        foreign = build_fleet_plates("other-pd", 3, [plate])
        with pytest.raises(PayloadError, match="not 'test-pd'"):
            apply_fleet_plates(db, hot, foreign, sign_payload(station, foreign), station.public_key(), AGENCY, "car-8")
        assert db.query("SELECT COUNT(*) FROM audit_log WHERE action = 'plates.refused'")[0][0] == 4
        taken = apply_fleet_plates(db, hot, v2, sign_payload(station, v2), station.public_key(), AGENCY, "car-8")
        assert (taken.added, taken.removed) == (1, 0)
        v1 = build_fleet_plates(AGENCY, 1, [])  # an older list replayed: would drop the plate
        assert apply_fleet_plates(db, hot, v1, sign_payload(station, v1), station.public_key(), AGENCY, "car-8") is None
        assert len(load_index(hot).match("7ABC123", "CA")) == 1


def test_the_wire_schemas_know_the_same_lists_as_the_hotlist():
    assert tuple(schema("alpr.plates.v1")["properties"]["plates"]["items"]["properties"]["list"]["enum"]) == LISTS
    assert tuple(schema("alpr.batch.v5")["definitions"]["officer_plate"]["properties"]["list"]["enum"]) == LISTS
