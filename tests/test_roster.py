"""Users managed at the station reach every unit as a signed roster: an officer added once logs in to any
car, and one deactivated at the station loses access everywhere; a roster that is not the station's is refused."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest

from conftest import StationThread, Subscriber, fleet_unit, run_cli, seed_reads
from edge_agent.access import ROLES, AccessDenied, login
from edge_agent.access.roster import apply_roster, build_roster
from edge_agent.store import Database
from edge_agent.sync.payloads import PayloadError, schema, sign_payload

AGENCY = "test-pd"
PASSWORD = "roster-password-1"


def _sync_until(config: Path, data: Path, version: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert run_cli("--config", config, "sync", "--once").code == 0
        with Database.in_data_dir(data) as db:
            if (db.query("SELECT MAX(version) FROM roster_applied")[0][0] or 0) >= version:
                return
        time.sleep(0.3)
    raise AssertionError(f"roster version {version} did not arrive")


def test_a_user_added_at_the_station_logs_in_to_every_car_until_deactivated(tmp_path: Path, mosquitto, monkeypatch):
    keys = tmp_path / "keys"
    assert run_cli("hotlist", "keygen", "--out", keys).code == 0
    station_dir = tmp_path / "station"
    station_text = (f'[agent]\nagency = "{AGENCY}"\n[station]\nsigning_key = "{keys / "hotlist-signing.key"}"\n'
                    "hotlist_poll_s = 0.2\n")
    station = StationThread(station_dir, mosquitto.url, config_text=station_text)
    cars = {name: fleet_unit(tmp_path, name, mosquitto.url, keys / "hotlist-signing.pub") for name in ("car-7", "car-8")}
    for name in cars:
        seed_reads(tmp_path / name, 3)
    try:
        monkeypatch.setenv("EDGE_AGENT_NEW_PASSWORD", PASSWORD)
        monkeypatch.setenv("EDGE_AGENT_PASSWORD", PASSWORD)
        today = date.today().isoformat()
        users = ("--data-dir", station_dir, "station", "users")
        first = run_cli(*users, "add", "ofc.lee", "--role", "officer", "--trained-on", today)
        assert first.code == 2 and "its first user is the fleet's administrator" in first.err
        assert run_cli(*users, "add", "sgt.admin", "--role", "administrator", "--trained-on", today).code == 0
        nobody = run_cli(*users, "add", "ofc.lee", "--role", "officer", "--trained-on", today)
        assert nobody.code == 2 and "an administrator must log in" in nobody.err
        added = run_cli(*users, "add", "ofc.lee", "--role", "officer", "--trained-on", today, "--as", "sgt.admin")
        assert added.code == 0, added.err
        fleet = Subscriber(mosquitto.port, f"alpr/v1/{AGENCY}/roster")
        assert fleet.wait_for(lambda m: m and json.loads(m[-1][1])["version"] == 2)
        assert PASSWORD not in fleet.messages[-1][1].decode()  # only the argon2id hash travels
        fleet.close()
        for name, config in cars.items():
            _sync_until(config, tmp_path / name, 2)
            with Database.in_data_dir(tmp_path / name) as db:
                assert login(db, "ofc.lee", PASSWORD, "patrol").role == "officer"
        assert run_cli(*users, "deactivate", "ofc.lee", "--as", "sgt.admin").code == 0
        _sync_until(cars["car-8"], tmp_path / "car-8", 3)
        with Database.in_data_dir(tmp_path / "car-8") as db:
            with pytest.raises(AccessDenied, match="deactivated"):
                login(db, "ofc.lee", PASSWORD, "patrol")
            applied = db.query("SELECT user, action, query FROM audit_log WHERE action = 'roster.apply'")
            assert [tuple(r)[:2] for r in applied] == [("system:sync", "roster.apply")] * 2
        listed = json.loads(run_cli(*users, "list", "--json").out)
        lee = [u for u in listed["users"] if u["name"] == "ofc.lee"][0]
        assert listed["version"] == 3 and lee["active"] in (0, False) and "password_hash" not in lee
    finally:
        station.stop()


def test_a_roster_not_signed_by_the_station_or_older_than_the_one_held_is_not_taken(tmp_path: Path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge_agent.access import new_user

    station, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    user = new_user("det.ray", "supervisor", PASSWORD, date.today())
    v2 = build_roster(AGENCY, 2, [user])
    with Database.in_data_dir(tmp_path / "unit") as db:
        for payload, signature, key, why in (
                (v2, None, station.public_key(), "not signed"),
                (v2, sign_payload(other, v2), station.public_key(), "wrongly signed"),
                (v2, sign_payload(station, v2), None, "station_key is not set"),
                (build_roster("other-pd", 3, [user]), None, station.public_key(), "not signed")):
            with pytest.raises(PayloadError, match=why):
                apply_roster(db, payload, signature, key, AGENCY)
        other_agency = build_roster("other-pd", 3, [user])
        with pytest.raises(PayloadError, match="not 'test-pd'"):
            apply_roster(db, other_agency, sign_payload(station, other_agency), station.public_key(), AGENCY)
        assert db.query("SELECT COUNT(*) FROM users")[0][0] == 0
        assert db.query("SELECT COUNT(*) FROM audit_log WHERE action = 'roster.refused'")[0][0] == 5
        assert apply_roster(db, v2, sign_payload(station, v2), station.public_key(), AGENCY).users == 1
        v1 = build_roster(AGENCY, 1, [])  # an older roster replayed: would deactivate everyone
        assert apply_roster(db, v1, sign_payload(station, v1), station.public_key(), AGENCY) is None
        assert login(db, "det.ray", PASSWORD, "case 7").role == "supervisor"


def test_the_roster_schema_knows_the_same_roles_as_the_access_layer():
    assert tuple(schema("alpr.roster.v1")["definitions"]["user"]["properties"]["role"]["enum"]) == ROLES
