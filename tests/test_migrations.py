"""Databases written by an earlier version (tests/data/a067301: a unit's and a station's, written by the code
of commit a067301) open, migrate in place and keep syncing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from conftest import StationThread, run_cli
from edge_agent.station.store import MIGRATIONS, StationStore
from edge_agent.store import Database
from edge_agent.sync.payloads import build_batch, parse_batch

OLD = Path(__file__).parent / "data" / "a067301"


def test_a_station_database_of_a067301_is_migrated_in_place_and_keeps_its_records(tmp_path: Path):
    path = tmp_path / "station.sqlite3"
    shutil.copy(OLD / "station.sqlite3", path)
    with sqlite3.connect(path) as old:
        before = {t: old.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("reads", "hits", "alerts", "audit", "batches", "units")}
        read = old.execute("SELECT id, plate FROM reads ORDER BY id LIMIT 1").fetchone()
    with StationStore(str(path)) as store:
        stats = store.stats()
        assert (stats["reads"], stats["hits"], stats["alerts"], stats["audit_records"], stats["batches"]) == (
            before["reads"], before["hits"], before["alerts"], before["audit"], before["batches"])
    with sqlite3.connect(path) as new:
        assert new.execute("SELECT version FROM schema_version").fetchone()[0] == len(MIGRATIONS) == 9
        assert new.execute("SELECT plate FROM reads WHERE agency = 'test-pd' AND unit = 'car-7' AND id = ?",
                           (read[0],)).fetchone()[0] == read[1]
    # opening it again changes nothing
    with StationStore(str(path)) as store:
        assert store.stats()["reads"] == before["reads"]


def test_one_units_records_never_collide_with_anothers(tmp_path: Path):
    """car-8 sends a made-up read under car-7's read id before car-7's own arrives: both are kept, each
    under its unit, and car-7's real record is not dropped as a duplicate."""
    item = {"id": "5b5f1ca2-3985-40c8-98ca-4a6153005cd9", "captured_at": "2026-11-20T08:00:00Z", "camera_id": "front",
            "plate": "7ABC123", "confidence": 0.9, "state": "CA", "state_confidence": 0.9,
            "candidates": [["7ABC123", 0.9]], "box": [1, 2, 3, 4], "hits": [], "evidence_hold": False,
            "plate_jpeg": "/9j/"}
    forged = build_batch("11111111-2222-3333-4444-555555555555", "reads", "test-pd", "car-8", "2026-11-20T09:00:00Z",
                         [{**item, "plate": "0FAKE00"}])
    real = build_batch("11111111-2222-3333-4444-555555555555", "reads", "test-pd", "car-7", "2026-11-20T09:00:01Z",
                       [item])
    with StationStore(str(tmp_path / "station.sqlite3")) as store:
        assert store.store_batch(parse_batch(forged, 1 << 20), "hq") == (1, 0)
        assert store.store_batch(parse_batch(real, 1 << 20), "hq") == (1, 0)
        assert store.store_batch(parse_batch(real, 1 << 20), "hq") == (0, 1)  # a real duplicate is still one
        by_unit = {u["unit"]: u["reads"] for u in store.stats()["by_unit"]}
        assert by_unit == {"car-7": 1, "car-8": 1}


def test_a_unit_database_of_a067301_opens_and_its_waiting_records_reach_todays_station(tmp_path: Path, mosquitto):
    data = tmp_path / "unit"
    data.mkdir()
    shutil.copy(OLD / "edge-agent.sqlite3", data / "edge-agent.sqlite3")
    with Database.in_data_dir(data) as db:
        assert db.stats().waiting == 4 and db.stats().hits == 2
    config = tmp_path / "unit.toml"
    config.write_text(f'[agent]\nunit_id = "car-7"\nagency = "test-pd"\ndata_dir = "{data}"\n'
                      f'[sync]\nbroker = "{mosquitto.url}"\ninsecure = true\n')
    station = StationThread(tmp_path / "station", mosquitto.url)
    try:
        done = run_cli("--config", config, "sync", "--once")
        assert done.code == 0 and "0 reads waiting" in done.out, done.err
        stats = station.stats()
        # the old unit's audit record, and the sync part's record of the batch of reads and of alerts it sent
        assert (stats["reads"], stats["alerts"], stats["audit_records"]) == (4, 2, 3)
    finally:
        station.stop()
