"""Lawful use: trained users with roles, every access through one layer that writes its own audit record,
and an audit log whose hash chain shows any change, deletion, insertion or reordering."""

import os
import shutil
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from edge_agent.access import (AccessDenied, ReadQuery, add_user, confusion_key, list_users, login, search_audit,
                               search_reads, system_session)
from edge_agent.access.audit import verify
from edge_agent.records import PlateReading, Position, Read
from edge_agent.store import Database
from conftest import run_cli

PASSWORD = "correct-horse-1"
TODAY = date.today()


@pytest.fixture
def db(tmp_path: Path):
    with Database.in_data_dir(tmp_path / "data") as db:
        add_user(db, None, "admin", "administrator", PASSWORD, TODAY - timedelta(days=30))
        boss = login(db, "admin", PASSWORD, "onboarding")
        add_user(db, boss, "ofc.lee", "officer", PASSWORD, TODAY - timedelta(days=10))
        add_user(db, boss, "tech", "technician", PASSWORD, TODAY - timedelta(days=10))
        add_user(db, boss, "aud", "auditor", PASSWORD, TODAY - timedelta(days=10))
        add_user(db, boss, "old", "officer", PASSWORD, TODAY - timedelta(days=400))
        yield db


def _read(plate: str, at: datetime, lat: float | None = None, lon: float | None = None) -> Read:
    return Read(id=f"{plate}-{at.timestamp()}", captured_at=at, camera_id="front",
                reading=PlateReading(plate, 0.95, (1, 2, 3, 4), ()),
                position=Position(lat, lon, "gps") if lat is not None else None)


def _audit(db) -> list[tuple]:
    return [tuple(r) for r in db.query("SELECT user, action, query, purpose, records FROM audit_log ORDER BY id")]


def test_only_trained_users_with_a_purpose_get_in_and_every_refusal_is_audited(db):
    with pytest.raises(AccessDenied, match="the first user of a unit"):
        add_user(Database.in_data_dir(db.path.parent / "other"), None, "x", "officer", PASSWORD, TODAY)
    with pytest.raises(AccessDenied, match="users exist"):
        add_user(db, None, "sneaky", "administrator", PASSWORD, TODAY)
    with pytest.raises(AccessDenied, match="unknown user"):
        login(db, "nobody", PASSWORD, "case 1")
    with pytest.raises(AccessDenied, match="training expired"):
        login(db, "old", PASSWORD, "case 1")
    for purpose in ("", "   "):
        with pytest.raises(AccessDenied, match="no purpose"):
            login(db, "ofc.lee", PASSWORD, purpose)
    officer = login(db, "ofc.lee", PASSWORD, "case 26-0001")
    with pytest.raises(AccessDenied, match="role officer may not"):
        list_users(db, officer)
    refused = [a for a in _audit(db) if a[1].endswith(".refused")]
    assert [r[2].split(";")[0] for r in refused][-5:] == [
        "unknown user", "training expired on " + (TODAY - timedelta(days=400) + timedelta(days=365)).isoformat()
        + ": renew it before using the system", "no purpose given (a case number or a reason)",
        "no purpose given (a case number or a reason)", "role officer may not (administrator, auditor may)"]


def test_wrong_passwords_back_off_and_lock_the_user(db):
    now = datetime.now(timezone.utc)
    for _ in range(5):
        with pytest.raises(AccessDenied, match="wrong password"):
            login(db, "ofc.lee", "not-the-password", "case 1", now=now)
    with pytest.raises(AccessDenied, match="locked"):
        login(db, "ofc.lee", PASSWORD, "case 1", now=now + timedelta(seconds=10))  # even the right one, for now
    assert login(db, "ofc.lee", PASSWORD, "case 1", now=now + timedelta(minutes=2)).role == "officer"
    assert db.query("SELECT password_hash FROM users WHERE name = 'ofc.lee'")[0][0].startswith("$argon2id$")


def test_search_full_partial_tolerant_in_a_window_and_near_a_place_and_each_is_audited(db):
    t0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
    for i, (plate, lat, lon) in enumerate([("7ABC123", 38.5757, -121.4788), ("7ABC128", 38.60, -121.40),
                                           ("8BC1234", None, None), ("7XYZ999", 38.5760, -121.4790)]):
        db.insert_read(_read(plate, t0 + timedelta(hours=i), lat, lon))
    officer = login(db, "ofc.lee", PASSWORD, "case 26-0042", unit="car-7")
    assert [r["plate"] for r in search_reads(db, officer, ReadQuery("7ABC123"))] == ["7ABC123"]
    assert {r["plate"] for r in search_reads(db, officer, ReadQuery("7ABC12?"))} == {"7ABC123", "7ABC128"}
    assert {r["plate"] for r in search_reads(db, officer, ReadQuery("7*"))} == {"7ABC123", "7ABC128", "7XYZ999"}
    assert [r["plate"] for r in search_reads(db, officer, ReadQuery("B8CI234", tolerant=True))] == ["8BC1234"]
    window = ReadQuery("7*", since=t0 + timedelta(minutes=30), until=t0 + timedelta(hours=3))
    assert [r["plate"] for r in search_reads(db, officer, window)] == ["7ABC128"]
    near = ReadQuery("7*", near=(38.5757, -121.4788, 0.5))
    assert {r["plate"] for r in search_reads(db, officer, near)} == {"7ABC123", "7XYZ999"}
    searches = [a for a in _audit(db) if a[1] == "search"]
    assert searches[0] == ("ofc.lee", "search", "plate 7ABC123", "case 26-0042", 1)
    assert searches[-1][2] == "plate 7*, within 0.5 km of 38.57570,-121.47880" and searches[-1][4] == 2
    for bad in ("7ABC'; DROP TABLE reads;--", "%", "7AB_12", "../../etc"):
        with pytest.raises(AccessDenied, match="a plate is 1-10 letters and digits"):
            search_reads(db, officer, ReadQuery(bad))
    assert db.stats().reads == 4
    assert sum(a[1] == "search.refused" for a in _audit(db)) == 4
    with pytest.raises(AccessDenied, match="role technician may not"):
        search_reads(db, login(db, "tech", PASSWORD, "fixing the camera"), ReadQuery("7ABC123"))


def test_who_looked_at_a_plate_and_what_a_user_looked_at(db):
    officer = login(db, "ofc.lee", PASSWORD, "case 26-0042")
    search_reads(db, officer, ReadQuery("7AB*"))
    search_reads(db, officer, ReadQuery("5TRK442"))
    auditor = login(db, "aud", PASSWORD, "quarterly audit")
    [hit] = search_audit(db, auditor, plate="7ABC123")
    assert (hit["user"], hit["query"], hit["purpose"]) == ("ofc.lee", "plate 7AB*", "case 26-0042")
    assert [r["query"] for r in search_audit(db, auditor, user="ofc.lee") if r["action"] == "search"] == [
        "plate 5TRK442", "plate 7AB*"]
    with pytest.raises(AccessDenied):
        search_audit(db, officer, plate="7ABC123")


def _tamper(path: Path, sql: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(sql)


@pytest.mark.parametrize("damage, first_bad", [
    ("UPDATE audit_log SET purpose = 'nothing to see' WHERE id = 3", 3),
    ("DELETE FROM audit_log WHERE id = 3", 4),
    ("INSERT INTO audit_log (id, uuid, at, user, action, query, purpose, hash) SELECT 3.5, 'x', at, user, action,"
     " query, purpose, hash FROM audit_log WHERE id = 3", None),
    ("UPDATE audit_log SET id = -3 WHERE id = 3; UPDATE audit_log SET id = 3 WHERE id = 4;"
     " UPDATE audit_log SET id = 4 WHERE id = -3", 3),
])
def test_audit_verify_names_the_first_record_changed_deleted_inserted_or_moved(db, tmp_path, damage, first_bad):
    path = db.path
    assert verify(db._conn).ok
    db.close()
    if "3.5" in damage:  # an inserted record (a copy placed between 3 and 4) under a new integer id
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE audit_log SET id = id + 1000 WHERE id > 3")
            conn.execute("INSERT INTO audit_log (id, uuid, at, user, action, query, purpose, unit, hash) SELECT 4, "
                         "'forged', at, user, action, 'plate 1FAKE00', purpose, unit, hash FROM audit_log WHERE id = 3")
        first_bad = 4
    else:
        _tamper(path, damage)
    result = run_cli("--data-dir", path.parent, "audit", "verify")
    assert result.code == 1 and f"record {first_bad} " in result.err, result.err


def test_the_audit_log_of_an_earlier_version_is_sealed_into_the_chain(tmp_path: Path):
    data = tmp_path / "unit"
    data.mkdir()
    shutil.copy(Path(__file__).parent / "data" / "a067301" / "edge-agent.sqlite3", data / "edge-agent.sqlite3")
    with Database.in_data_dir(data) as db:
        verdict = verify(db._conn)
        assert verdict.ok and verdict.records == db.query("SELECT COUNT(*) FROM audit_log")[0][0] > 0
    result = run_cli("--data-dir", data, "audit", "verify")
    assert result.code == 0 and "audit log intact" in result.out


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=8))
@settings(max_examples=200)
def test_a_plate_always_matches_itself_misread_tolerantly(plate):
    assert confusion_key(plate) == confusion_key(plate)
    assert len(confusion_key(plate)) == len(plate)


def test_the_command_line_logs_in_searches_and_audits(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("EDGE_AGENT_NEW_PASSWORD", PASSWORD)
    monkeypatch.setenv("EDGE_AGENT_PASSWORD", PASSWORD)
    data = tmp_path / "data"
    assert run_cli("--data-dir", data, "users", "add", "admin", "--role", "administrator",
                   "--trained-on", TODAY.isoformat()).code == 0
    assert run_cli("--data-dir", data, "users", "add", "lee", "--role", "officer", "--trained-on",
                   TODAY.isoformat(), "--as", "admin").code == 0
    with Database.in_data_dir(data) as db:
        db.insert_read(_read("7ABC123", datetime.now(timezone.utc)))
    found = run_cli("--data-dir", data, "search", "7ABC*", "--user", "lee", "--purpose", "case 26-7")
    assert found.code == 0 and "7ABC123" in found.out and "1 reads" in found.out
    no_purpose = run_cli("--data-dir", data, "search", "7ABC*", "--user", "lee", "--purpose", " ")
    assert no_purpose.code == 2 and "no purpose" in no_purpose.err
    monkeypatch.setenv("EDGE_AGENT_PASSWORD", "wrong-password")
    assert run_cli("--data-dir", data, "search", "7ABC*", "--user", "lee", "--purpose", "x").code == 2
    monkeypatch.setenv("EDGE_AGENT_PASSWORD", PASSWORD)
    who = run_cli("--data-dir", data, "audit", "search", "--plate", "7ABC123", "--user", "admin", "--purpose", "audit")
    assert who.code == 0 and "lee" in who.out and "case 26-7" in who.out
    assert run_cli("--data-dir", data, "audit", "verify").code == 0


def test_an_export_writes_images_and_a_manifest_and_puts_the_reads_on_evidence_hold(db, tmp_path):
    import hashlib
    import json

    from conftest import seed_reads
    from edge_agent.access import export_reads

    seed_reads(db.path.parent, 6, scene=True)
    plate = db.query("SELECT plate FROM reads LIMIT 1")[0][0]
    boss = login(db, "admin", PASSWORD, "case 26-0099 evidence")
    out = tmp_path / "evidence-26-0099"
    manifest = export_reads(db, boss, ReadQuery(plate), out)
    assert manifest["reads"] >= 1 and manifest["purpose"] == "case 26-0099 evidence"
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert json.loads((out / "manifest.json").read_text())["files"] == manifest["files"]
    assert any(n.endswith("-scene.jpg") for n in manifest["files"]) and (out / "reads.json").is_file()
    held = db.query("SELECT COUNT(*) FROM reads WHERE evidence_hold = 1")[0][0]
    assert held == manifest["reads"]
    with pytest.raises(AccessDenied, match="exists already"):
        export_reads(db, boss, ReadQuery(plate), out)
    with pytest.raises(AccessDenied, match="role officer may not"):
        export_reads(db, login(db, "ofc.lee", PASSWORD, "case 1"), ReadQuery(plate), tmp_path / "x")
    assert [a[1] for a in _audit(db)].count("export.refused") == 2
    assert ("admin", "export") in [(a[0], a[1]) for a in _audit(db)]


def test_the_yearly_figures_survive_the_purge_of_the_reads_behind_them(tmp_path: Path, monkeypatch):
    from zoneinfo import ZoneInfo

    from edge_agent.access import yearly_report
    from edge_agent.records import Hit
    from edge_agent.store.retention import purge_expired

    with Database.in_data_dir(tmp_path / "data") as db:
        db.zone = ZoneInfo("America/Los_Angeles")
        add_user(db, None, "admin", "administrator", PASSWORD, TODAY)
        # 2027-01-01 06:00 UTC is still New Year's Eve 2026 in California: the agency's year is 2026
        eve = datetime(2027, 1, 1, 6, 0, tzinfo=timezone.utc)
        for i in range(3):
            read = _read(f"7ABC12{i}", eve - timedelta(days=40 + i))
            if i < 2:
                read.hits = [Hit(read.reading.text, "CA", "STOLEN_VEHICLE" if i == 0 else "AMBER_ALERT", "exact")]
            db.insert_read(read)
        db.insert_read(_read("5TRK442", eve))
        boss = login(db, "admin", PASSWORD, "records request PRA-2027-3")
        search_reads(db, boss, ReadQuery("7ABC12*"))
        before = yearly_report(db, boss, 2026)
        assert (before["detections"], before["hits"], before["searches"]) == (4, 2, 1)
        assert before["hits_by_list"] == {"AMBER_ALERT": 1, "STOLEN_VEHICLE": 1}
        assert yearly_report(db, boss, 2027)["detections"] == 0
        with db.transaction() as c:
            c.execute("UPDATE reads SET sent_at = captured_at")
        assert purge_expired(db, 1.0, now=eve + timedelta(days=400)) == 4
        after = yearly_report(db, boss, 2026)
        assert {k: after[k] for k in ("detections", "hits", "hits_by_list")} == {
            k: before[k] for k in ("detections", "hits", "hits_by_list")}
        assert db.stats().reads == 0
        assert [m["detections"] for m in before["months"]][10:] == [3, 1]  # November, and the eve in December
        assert before["searches_by_purpose"] == {"records request pra-2027-3": 1}
        later = yearly_report(db, boss, 2028)
        assert (later["reads_purged"], later["purges"]) == (4, 1)  # counted in the year the purge ran
    monkeypatch.setenv("EDGE_AGENT_PASSWORD", PASSWORD)
    text = run_cli("--data-dir", tmp_path / "data", "report", "--year", "2026", "--user", "admin", "--purpose", "PRA")
    assert text.code == 0 and "4 detections (one stored read: one vehicle pass seen by one camera), 2 hits" in text.out
    csv = run_cli("--data-dir", tmp_path / "data", "report", "--year", "2026", "--csv", "--user", "admin",
                  "--purpose", "PRA")
    assert "hits_by_list,STOLEN_VEHICLE,1" in csv.out and "month:Nov,detections,3" in csv.out


def test_the_sharing_register_keeps_approved_requests_and_refuses_out_of_state_and_federal(tmp_path: Path):
    request = tmp_path / "request-sacso.pdf"
    request.write_bytes(b"%PDF-1.4 written request")
    station = tmp_path / "station"
    args = ["--data-dir", station, "station", "sharing", "add", "--agency-name", "Sacramento County Sheriff",
            "--jurisdiction", "ca", "--direction", "share", "--data", "alpr", "--requester", "Lt. A. Diaz",
            "--purpose", "regional auto theft task force", "--approved-by", "Capt. R. Moss (designee)",
            "--approved-on", "2026-11-02", "--request-file", request]
    assert run_cli(*args).code == 0
    received = [a if a != "share" else "receive" for a in args]
    received[received.index("alpr")] = "hotlist"
    assert run_cli(*received).code == 0
    for jurisdiction in ("NV", "FBI"):
        refused = run_cli(*[jurisdiction if a == "ca" else a for a in args])
        assert refused.code == 2 and "1798.90.55(b)" in refused.err
    missing = run_cli(*[tmp_path / "nope.pdf" if a == request else a for a in args])
    assert missing.code == 2 and "kept on file" in missing.err
    listed = run_cli("--data-dir", station, "station", "sharing", "list", "--json")
    entries = __import__("json").loads(listed.out)
    assert [(e["direction"], e["data"], e["jurisdiction"]) for e in entries] == [("share", "alpr", "CA"),
                                                                              ("receive", "hotlist", "CA")]
    assert entries[0]["request_file"].endswith(__import__("hashlib").sha256(request.read_bytes()).hexdigest())


def test_the_published_policy_says_what_the_configuration_does(tmp_path: Path):
    from html.parser import HTMLParser

    config = tmp_path / "unit.toml"
    config.write_text('[agent]\nagency = "sacpd"\n[storage]\nretention_days = 45\n[station]\nretention_days = 730\n')
    result = run_cli("--config", config, "policy", "--agency-name", "Sacramento Police Department")
    assert result.code == 0
    text = []

    class Text(HTMLParser):
        def handle_data(self, data):
            text.append(data)

    Text().feed(result.out)
    page = " ".join(text)
    assert "Sacramento Police Department: ALPR usage and privacy policy" in page
    assert "45 days on the in-car unit" in page and "1798.90.55(b)" in page and "CLETS" in page
    assert "at the station 730 days (never less than 365 days)" in page
    assert "officer, supervisor, technician, auditor, administrator" in page


def test_a_redacted_export_masks_every_other_vehicles_plate(db, tmp_path, reader):
    import json

    from edge_agent.access import export_reads
    from edge_agent.capture import decode_image
    from edge_agent.imaging import encode_jpeg
    from edge_agent.synthetic import render_scene

    scene = render_scene([("7ABC123", "California"), ("5TRK442", "California")], size=(1280, 720), seed=3)
    assert {r.text for r in reader.read(scene)} == {"7ABC123", "5TRK442"}
    read = _read("7ABC123", datetime.now(timezone.utc))
    read.scene_jpeg = encode_jpeg(scene, 95)
    db.insert_read(read)
    boss = login(db, "admin", PASSWORD, "public records request PRA-2026-88")
    out = tmp_path / "release"
    manifest = export_reads(db, boss, ReadQuery("7ABC123"), out, redact_with=reader)
    assert manifest["redacted"] is True
    [name] = [n for n in manifest["files"] if n.endswith("-scene.jpg")]
    released = {r.text for r in reader.read(decode_image(out / name))}
    assert "7ABC123" in released and "5TRK442" not in released
    assert json.loads((out / "manifest.json").read_text())["redacted"] is True
    assert any("(redacted)" in a[2] for a in _audit(db) if a[1] == "export")
