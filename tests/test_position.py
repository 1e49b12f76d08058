"""GPS over a serial line (a pseudo-terminal pair replaying NMEA, garbage and checksum errors included), the
position on every read, and time that can be trusted when the system clock cannot."""

import os
import threading
import time
from datetime import datetime, timedelta, timezone
from functools import reduce
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from edge_agent.clock import BUILT, judge_time, TrustedClock
from edge_agent.config import load_config
from edge_agent.pipeline import Agent
from edge_agent.position import GpsReceiver, PositionTracker
from edge_agent.store import Database
from edge_agent.store.outbox import batch_items, take_batch
from edge_agent.station.store import StationStore
from edge_agent.sync.payloads import build_batch, parse_batch
from edge_agent.synthetic import render_drive_by
from conftest import SerialLink, _feed, live_sentences, nmea

RECORDING = Path(__file__).parent / "data" / "gps" / "drive.nmea"


def test_a_recorded_drive_gives_position_speed_heading_and_time_and_the_bad_lines_are_named():
    tracker = PositionTracker(max_age_s=3.0)
    lines = RECORDING.read_bytes().split(b"\r\n")
    assert tracker.position(0.0) is None
    results = [tracker.feed(line, 10.0) for line in lines if line]
    assert results.count(False) == 3  # the garbage, the checksum error and the sentence cut short
    assert tracker.rejected == 3 and "no checksum" in tracker.last_problem
    fix = tracker.position(11.0)
    assert fix is not None and fix.fix == "gps" and fix.satellites == 9
    assert fix.lat == pytest.approx(38.575764, abs=1e-4) and fix.lon == pytest.approx(-121.4824, abs=1e-3)
    assert fix.speed_kmh == pytest.approx(36.0) and fix.heading_deg == pytest.approx(270.0)
    assert tracker.satellite_time(10.0) == datetime(2026, 12, 3, 18, 30, 30, tzinfo=timezone.utc)
    assert tracker.position(14.0) is None  # a fix older than max_age_s is no fix


def test_a_checksum_error_is_rejected_and_said():
    tracker = PositionTracker()
    good = live_sentences().splitlines()[0]
    assert tracker.feed(good, 1.0)
    assert not tracker.feed(good[:-2] + ("00" if good[-2:] != "00" else "11"), 1.0)
    assert "checksum" in tracker.last_problem


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200),
                 st.text(max_size=80).map(lambda t: "$GPGGA," + t), st.text(max_size=80).map(lambda t: nmea("GPRMC," + t))))
def test_no_line_a_receiver_sends_raises(line):
    tracker = PositionTracker()
    tracker.feed(line, 1.0)
    tracker.position(1.0)
    tracker.satellite_time(1.0)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)),
       st.one_of(st.none(), st.datetimes(min_value=datetime(2026, 12, 3), max_value=datetime(2100, 1, 1),
                                          timezones=st.just(timezone.utc))))
def test_the_time_taken_is_never_before_the_build_unless_marked_unsure(system, satellite):
    at, source = judge_time(system, satellite, 5.0)
    assert source in ("system", "gps", "unsure")
    if source != "unsure":
        assert at >= BUILT
    if satellite is not None:
        assert source != "unsure" and abs((at - satellite).total_seconds()) <= 5.0
    elif system >= BUILT:
        assert (at, source) == (system, "system")


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_the_receiver_survives_garbage_silence_and_being_unplugged_and_plugged_back(tmp_path: Path):
    link = SerialLink(tmp_path)
    receiver = GpsReceiver(str(link.path), backoff_min_s=0.1, backoff_max_s=0.5)
    receiver.SILENT_AFTER_S = 1.0
    receiver.start()
    try:
        assert _wait(lambda: receiver.state == "out", 5) and "cannot open" in receiver.problem  # not there yet
        link.plug()
        talking = threading.Event()
        # a cold start: no fix, garbage, then a fix, each second
        _feed(link, talking, lines=lambda: RECORDING.read_bytes()[:400] + live_sentences().encode())
        assert _wait(lambda: receiver.position() is not None, 10), receiver.problem
        talking.set()
        assert _wait(lambda: receiver.state == "silent", 5)  # says nothing more
        link.send(b"\x00\xff\xfe noise on the line\r\n" * 5)
        assert _wait(lambda: receiver.position() is None, 5)  # the last fix grows old: no fix
        link.unplug()
        assert _wait(lambda: receiver.state == "out", 5)
        link.plug()
        stop = threading.Event()
        _feed(link, stop)
        assert _wait(lambda: receiver.state == "fix" and receiver.position() is not None, 10), receiver.problem
        assert receiver.reopened >= 1
        stop.set()
    finally:
        receiver.stop()


def test_every_read_carries_the_position_and_it_reaches_the_station(tmp_path: Path, reader, talking_gps):
    link = talking_gps
    clip = tmp_path / "drive-by.avi"
    render_drive_by(clip, ["7ABC123", "5TRK442"], frames_per_car=6)
    config = tmp_path / "unit.toml"
    config.write_text(f'[agent]\nunit_id = "car-7"\nagency = "test-pd"\ndata_dir = "data"\n'
                      f'[[camera]]\nid = "front"\nsource = "video"\npath = "{clip}"\n'
                      f'[alerts]\nspeak = false\n[gps]\nport = "{link.path}"\nbaud = 9600\n')
    agent = Agent(load_config(config), out=lambda line: None, reader=reader)
    assert _wait(lambda: agent.gps.position() is not None, 10)
    agent.run()
    with Database.in_data_dir(tmp_path / "data") as db:
        rows = db.query("SELECT plate, lat, lon, fix, speed_kmh, heading_deg, clock FROM reads")
        assert {r["plate"] for r in rows} == {"7ABC123", "5TRK442"}
        for r in rows:
            assert r["lat"] == pytest.approx(38.5757, abs=1e-4) and r["lon"] == pytest.approx(-121.4788, abs=1e-4)
            assert (r["fix"], r["speed_kmh"], r["heading_deg"], r["clock"]) == ("gps", 20.0, 92.5, "system")
        batch = take_batch(db)
        payload = build_batch(batch.id, batch.kind, "test-pd", "car-7", "2026-12-03T08:00:00.000Z", batch_items(db, batch))
    incoming = parse_batch(payload, 1 << 22)
    assert all(i["position"]["fix"] == "gps" for i in incoming.items)
    station = StationStore(str(tmp_path / "station.sqlite3"))
    station.store_batch(incoming, "test")
    [(lat, clock)] = set(station._conn.execute("SELECT ROUND(lat, 4), clock FROM reads").fetchall())
    assert (lat, clock) == (38.5757, "system")


def test_reads_without_a_fix_say_so_and_a_clock_in_1970_marks_them_unsure(tmp_path: Path, reader):
    clip = tmp_path / "drive-by.avi"
    render_drive_by(clip, ["8LMN905"], frames_per_car=6)
    link = SerialLink(tmp_path)
    link.plug()
    stop = threading.Event()
    _feed(link, stop, lines=lambda: nmea("GPGGA,000001.00,,,,,0,00,99.99,,,,,,"))  # a receiver with no fix
    config = tmp_path / "unit.toml"
    config.write_text(f'[agent]\ndata_dir = "data"\n[[camera]]\nid = "front"\nsource = "video"\npath = "{clip}"\n'
                      f'[alerts]\nspeak = false\n[gps]\nport = "{link.path}"\n')
    agent = Agent(load_config(config), out=lambda line: None, reader=reader)
    # a Raspberry Pi with no battery clock and no network: the system clock starts in 1970
    agent.clock = TrustedClock(agent.gps.satellite_time, system=lambda: datetime(1970, 1, 1, 0, 5, tzinfo=timezone.utc))
    agent.keeper.clock_sane = agent.clock.sane
    agent.run()
    stop.set()
    link.unplug()
    with Database.in_data_dir(tmp_path / "data") as db:
        [row] = db.query("SELECT plate, lat, fix, clock FROM reads")
    assert (row["plate"], row["lat"], row["fix"], row["clock"]) == ("8LMN905", None, None, "unsure")


def test_gps_time_wins_over_a_system_clock_that_is_wrong():
    true_now = datetime(2027, 3, 1, 12, 0, tzinfo=timezone.utc)
    clock = TrustedClock(lambda: true_now, system=lambda: true_now + timedelta(hours=3), max_skew_s=5)
    at, source = clock.correct(true_now + timedelta(hours=3))
    assert (at, source) == (true_now, "gps") and clock.skew_s == pytest.approx(3 * 3600)
    ok = TrustedClock(lambda: true_now, system=lambda: true_now + timedelta(seconds=2))
    assert ok.correct(true_now)[1] == "system"


def test_purges_by_age_wait_for_a_clock_that_can_be_trusted(tmp_path: Path):
    from conftest import seed_reads
    from edge_agent.config import StorageConfig
    from edge_agent.store.keeper import ReadKeeper

    seed_reads(tmp_path / "data", 3)
    with Database.in_data_dir(tmp_path / "data") as db:
        db.query("UPDATE reads SET captured_at = '2026-12-01T00:00:00.000Z', sent_at = '2026-12-01T00:01:00.000Z'")
        unsure = ReadKeeper(db, StorageConfig(retention_days=1.0, cap_mb=0), out=lambda line: None,
                            clock_sane=lambda: False)
        unsure.housekeeping()
        assert db.stats().reads == 3  # a clock in 1970 (or in the future) must not decide what is old
        sane = ReadKeeper(db, StorageConfig(retention_days=1.0, cap_mb=0), out=lambda line: None)
        sane.housekeeping()
        assert db.stats().reads == 0
