"""What the station keeps for lawful use: each unit's audit chain (verified there, with the checkpoints behind
which units drop old records), evidence holds set after a read was sent, and its own retention floor."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from conftest import StationThread, run_cli, seed_reads
from edge_agent.access import ReadQuery, add_user, export_reads, login, search_reads
from edge_agent.access.audit import verify
from edge_agent.store import Database, utc_iso
from edge_agent.store.retention import purge_expired

PASSWORD = "correct-horse-1"
AGENCY, UNIT = "test-pd", "car-7"


def _unit(tmp: Path, broker: str) -> Path:
    path = tmp / "unit.toml"
    path.write_text(f'[agent]\nunit_id = "{UNIT}"\nagency = "{AGENCY}"\ndata_dir = "{tmp / "unit"}"\n'
                    f'[sync]\nbroker = "{broker}"\nack_timeout_s = 3.0\ninsecure = true\n')
    return path


def _sync(config: Path) -> None:
    done = run_cli("--config", config, "sync", "--once")
    assert done.code == 0, done.err


def _unit_with_searches(tmp_path: Path, reads: int, plates: tuple[str, ...], purpose: str) -> Path:
    """A unit's data folder with `reads` reads, its administrator, and a search for each plate (audited)."""
    data = tmp_path / "unit"
    seed_reads(data, reads, hits_every=10)
    with Database.in_data_dir(data) as db:
        add_user(db, None, "admin", "administrator", PASSWORD, date.today())
        boss = login(db, "admin", PASSWORD, purpose)
        for plate in plates:
            search_reads(db, boss, ReadQuery(plate))
    return data


def _chain(station: StationThread) -> dict:
    [chain] = station.store.audit_chains()
    return chain


def test_the_units_audit_chain_is_kept_and_verified_at_the_station_behind_its_checkpoints(tmp_path: Path, mosquitto):
    data = _unit_with_searches(tmp_path, 30, ("7ABC*", "5TRK442", "8XYZ9*"), "case 2026-0412")
    config = _unit(tmp_path, mosquitto.url)
    station = StationThread(tmp_path / "station", mosquitto.url)
    try:
        _sync(config)
        chain = _chain(station)
        assert chain["ok"] and chain["first_seq"] == 1 and chain["records"] >= 5 and chain["gaps"] == 0
        # the unit drops its audit records behind a checkpoint; its own verify starts there, and the
        # checkpoint reaches the station, which holds the records behind it
        with Database.in_data_dir(data) as db:
            with db.transaction() as c:
                c.execute("UPDATE reads SET sent_at = captured_at")
            purge_expired(db, 3650, now=datetime.now(timezone.utc) + timedelta(days=800), audit_retention_days=730)
            before = db.query("SELECT COUNT(*) FROM audit_log")[0][0]
            verdict = verify(db._conn)
            assert verdict.ok and verdict.checkpoint is not None and before == verdict.records == 1
        done = run_cli("--config", config, "audit", "verify")
        assert done.code == 0 and f"behind checkpoint {verdict.checkpoint[0]}" in done.out
        _sync(config)
        chain = _chain(station)
        assert chain["ok"] and chain["last_seq"] == verdict.checkpoint[0] + 1
        verified = run_cli("--data-dir", tmp_path / "station", "station", "audit", "verify")
        assert verified.code == 0 and f"{AGENCY}/{UNIT}: intact" in verified.out
        # the unit's chain rewritten after sending: a record changed and every hash after it recomputed passes
        # the unit's own check, but the next record it sends no longer follows what the station holds
        with Database.in_data_dir(data) as db:
            with db.transaction() as c:
                c.execute("DELETE FROM audit_checkpoints")
                c.execute("UPDATE audit_log SET query = 'nothing to see', hash = NULL")
                from edge_agent.access.audit import seal

                seal(c)
            assert verify(db._conn).ok is False  # the checkpoint is gone: the unit's chain does not start at 1
            search_reads(db, login(db, "admin", PASSWORD, "case 2026-0413"), ReadQuery("7ABC*"))
        _sync(config)
        chain = _chain(station)
        assert not chain["ok"] and "recomputed" in chain["why"]
        broken = run_cli("--data-dir", tmp_path / "station", "station", "audit", "verify", "--json")
        assert broken.code == 1 and json.loads(broken.out)[0]["first_bad_seq"] == chain["first_bad_seq"]
    finally:
        station.stop()


def test_a_record_changed_at_the_station_breaks_its_chain_there(tmp_path: Path, mosquitto):
    _unit_with_searches(tmp_path, 5, ("7ABC*",), "case 1")
    station = StationThread(tmp_path / "station", mosquitto.url)
    try:
        _sync(_unit(tmp_path, mosquitto.url))
        assert _chain(station)["ok"]
    finally:
        station.stop()
    with sqlite3.connect(tmp_path / "station" / "station.sqlite3") as c:
        c.execute("UPDATE audit SET purpose = 'curiosity' WHERE action = 'search'")
    verified = run_cli("--data-dir", tmp_path / "station", "station", "audit", "verify")
    assert verified.code == 1 and "not what its hash says" in verified.out


def test_an_evidence_hold_set_after_sync_reaches_the_station(tmp_path: Path, mosquitto):
    data = tmp_path / "unit"
    ids = seed_reads(data, 40)
    config = _unit(tmp_path, mosquitto.url)
    station = StationThread(tmp_path / "station", mosquitto.url)
    try:
        _sync(config)
        with Database.in_data_dir(data) as db:
            add_user(db, None, "det", "administrator", PASSWORD, date.today())
            plate = db.query("SELECT plate FROM reads WHERE id = ?", (ids[3],))[0][0]
            manifest = export_reads(db, login(db, "det", PASSWORD, "case 2026-0500"), ReadQuery(plate), tmp_path / "ev")
            assert manifest["reads"] >= 1
        _sync(config)
        with station.store._tx() as cur:
            held = {r[0] for r in cur.query("SELECT id FROM reads WHERE evidence_hold = 1")}
            hold = cur.query("SELECT user_name, reason FROM holds")[0]
        assert ids[3] in held and hold[0] == "det" and "case 2026-0500" in hold[1]
    finally:
        station.stop()
    # the station's own retention keeps what is held, and never goes under its minimum
    station_dir = tmp_path / "station"
    with sqlite3.connect(station_dir / "station.sqlite3") as c:
        c.execute("UPDATE reads SET captured_at = ?", (utc_iso(datetime.now(timezone.utc) - timedelta(days=400)),))
    short = station_dir / "short.toml"
    short.write_text(f'[agent]\ndata_dir = "{station_dir}"\n[station]\nretention_days = 90\n')
    refused = run_cli("--config", short, "station", "purge")
    assert refused.code == 2 and "under the minimum of 365" in refused.err
    purged = run_cli("--data-dir", station_dir, "station", "purge", "--user", "records-1", "--json")
    assert purged.code == 0, purged.err
    assert json.loads(purged.out)["purged"] == 40 - len(held)
    with sqlite3.connect(station_dir / "station.sqlite3") as c:
        assert {r[0] for r in c.execute("SELECT id FROM reads")} == held
        assert c.execute("SELECT user_name, records FROM audit WHERE action = 'retention.purge'").fetchone() == (
            "records-1", 40 - len(held))
        assert c.execute("SELECT SUM(count) FROM counts WHERE metric = 'purged'").fetchone()[0] == 40 - len(held)


def _search_station(store_target: str, tmp_path: Path, monkeypatch) -> None:
    from edge_agent.station.store import StationStore
    from test_report import _fleet

    with StationStore(store_target, "America/Los_Angeles") as store:
        _fleet(store)  # two units' reads: plates 7ABC000 ... 7ABC299, and 7ABC900
        this_year = datetime.now(timezone.utc).astimezone(store.zone).year
        before = store.yearly_report(this_year)["searches_by_purpose"].get("case 2026-0412", 0)
    monkeypatch.setenv("EDGE_AGENT_NEW_PASSWORD", PASSWORD)
    monkeypatch.setenv("EDGE_AGENT_PASSWORD", PASSWORD)
    station = tmp_path / "station"
    db = ("--db", store_target)
    for name, role, admin in (("sgt.admin", "administrator", ()), ("det.ray", "supervisor", ("--as", "sgt.admin")),
                              ("tech.kim", "technician", ("--as", "sgt.admin"))):
        added = run_cli("--data-dir", station, "station", "users", "add", name, "--role", role, "--trained-on",
                        date.today().isoformat(), *admin, *db)
        assert added.code == 0, added.err

    def search(*args: str, user: str = "det.ray", purpose: str = "case 2026-0412"):
        return run_cli("--data-dir", station, "station", "search", *args, "--user", user, "--purpose", purpose, *db,
                       "--json")

    full = search("7ABC012")
    assert full.code == 0, full.err
    assert {(r["unit"], r["plate"]) for r in json.loads(full.out)} == {("car-7", "7ABC012")}
    assert {r["plate"] for r in json.loads(search("7ABC01*").out)} == {f"7ABC01{i}" for i in range(10)}
    tolerant = {r["plate"] for r in json.loads(search("7A8C0I2", "--tolerant").out)}  # 8/B and I/1 (and 1/7)
    assert "7ABC012" in tolerant and "7ABC013" not in tolerant and len(tolerant) <= 3
    for args, user, purpose, words in ((("7ABC012",), "tech.kim", "x", "role technician may not"),
                                       (("7AB%'",), "det.ray", "x", "a plate is 1-10 letters"),
                                       (("7ABC012",), "nobody", "x", "unknown user"),
                                       (("7ABC012",), "det.ray", "  ", "no purpose")):
        refused = search(*args, user=user, purpose=purpose)
        assert refused.code == 2 and words in refused.err
    with StationStore(store_target, "America/Los_Angeles") as store:
        with store._tx() as cur:
            audit = cur.query("SELECT user_name, action, purpose, records FROM audit WHERE unit = 'station'"
                              " AND substr(action, 1, 6) = 'search' ORDER BY at")
        assert [a[:2] for a in audit] == [("det.ray", "search")] * 3 + [("tech.kim", "search.refused"),
                                                                       ("det.ray", "search.refused")]
        assert audit[0][2:] == ("case 2026-0412", 1)
        assert store.yearly_report(this_year)["searches_by_purpose"]["case 2026-0412"] == before + 3


def test_the_fleet_is_searched_at_the_station_by_trained_users_and_every_search_audited(tmp_path: Path, monkeypatch):
    _search_station(str(tmp_path / "station" / "station.sqlite3"), tmp_path, monkeypatch)


def test_the_fleet_is_searched_at_the_station_on_postgresql(tmp_path: Path, monkeypatch, postgres):
    _search_station(postgres, tmp_path, monkeypatch)


def test_wrong_passwords_at_the_station_back_off_and_are_audited(tmp_path: Path):
    from edge_agent.access import AccessDenied, new_user
    from edge_agent.station.access import station_login
    from edge_agent.station.store import StationStore

    with StationStore(str(tmp_path / "station.sqlite3")) as store:
        store.roster_put(new_user("det.ray", "supervisor", PASSWORD, date.today()), AGENCY, "sgt.admin", "roster.put")
        now = datetime.now(timezone.utc)
        for attempt in range(5):
            try:
                station_login(store, AGENCY, "det.ray", "guess-guess-1", "case 1", now)
            except AccessDenied as exc:
                last = str(exc)
        assert "locked until" in last
        try:
            station_login(store, AGENCY, "det.ray", PASSWORD, "case 1", now)  # the right one, too soon
            raise AssertionError("a locked user got in")
        except AccessDenied as exc:
            assert "locked after 5 failed logins" in str(exc)
        assert station_login(store, AGENCY, "det.ray", PASSWORD, "case 1", now + timedelta(minutes=2)).role == "supervisor"
        with store._tx() as cur:
            refused = cur.query("SELECT COUNT(*) FROM audit WHERE action = 'login.refused' AND user_name = 'det.ray'")
        assert refused[0][0] == 6


def test_a_hold_that_arrives_before_its_read_holds_the_read_when_it_comes(tmp_path: Path):
    from edge_agent.station.store import StationStore
    from test_report import _ingest, _read

    read = _read(5, datetime(2026, 11, 20, tzinfo=timezone.utc))
    with StationStore(str(tmp_path / "station.sqlite3")) as store:
        hold = {"read_id": read["id"], "at": "2026-11-21T00:00:00Z", "user": "det.ray", "reason": "case 2026-0500"}
        assert _ingest(store, "car-7", "holds", [hold]) == (1, 0)
        assert _ingest(store, "car-7", "holds", [hold]) == (0, 1)
        assert _ingest(store, "car-8", "reads", [read]) == (1, 0)  # another unit's read of the same id: not held
        assert _ingest(store, "car-7", "reads", [read]) == (1, 0)
        with store._tx() as cur:
            held = cur.query("SELECT unit, evidence_hold FROM reads ORDER BY unit")
        assert [tuple(r) for r in held] == [("car-7", 1), ("car-8", 0)]


def test_a_tail_cut_from_the_units_audit_log_is_found_at_the_station(tmp_path: Path, mosquitto):
    data = _unit_with_searches(tmp_path, 5, ("7ABC*", "5TRK442", "8XYZ9*"), "case 1")
    config = _unit(tmp_path, mosquitto.url)
    station = StationThread(tmp_path / "station", mosquitto.url)
    try:
        _sync(config)
        assert _chain(station)["ok"]
        with Database.in_data_dir(data) as db:
            last = db.query("SELECT MAX(id) FROM audit_log")[0][0]
            with db.transaction() as c:  # the newest records cut away: what is left still chains on the unit
                c.execute("DELETE FROM audit_log WHERE id > ?", (last - 3,))
            assert verify(db._conn).ok
            search_reads(db, login(db, "admin", PASSWORD, "case 2"), ReadQuery("7ABC*"))
        _sync(config)
        chain = _chain(station)
        assert not chain["ok"] and "two records claim this place" in chain["why"]
    finally:
        station.stop()
