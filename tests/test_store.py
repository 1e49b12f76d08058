"""The unit's SQLite database: WAL, every field of a read, counts, reopen without loss."""

import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from edge_agent.records import Candidate, Hit, PlateReading, Read
from edge_agent.store import MIGRATIONS, Database
from edge_agent.store.outbox import BatchLimits, acknowledge_batch, batch_items, take_batch


def _read(plate="7ABC123", hits=(), at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)) -> Read:
    jpeg = cv2.imencode(".jpg", np.full((30, 60, 3), 200, np.uint8))[1].tobytes()
    reading = PlateReading(plate, 0.97, (10, 20, 60, 30), (Candidate(plate, 0.97), Candidate("7A8C123", 0.02)), "CA", 0.9)
    return Read(str(uuid.uuid4()), at, "front", reading, jpeg, jpeg, list(hits))


def test_read_is_stored_with_everything(tmp_path: Path):
    with Database.in_data_dir(tmp_path) as db:
        hit = Hit("7ABC123", "CA", "STOLEN_VEHICLE", "exact", "S1")
        read = _read(hits=[hit])
        db.insert_read(read, hotlist_version=3)
        (row,) = db.query("SELECT * FROM reads")
        assert row["id"] == read.id and row["plate"] == "7ABC123" and row["camera_id"] == "front"
        assert row["captured_at"] == "2026-03-04T05:06:07.000Z"
        assert row["sent_at"] is None and row["hit_count"] == 1
        images = db.read_images(read.id)
        assert cv2.imdecode(np.frombuffer(images["plate"], np.uint8), cv2.IMREAD_COLOR).shape == (30, 60, 3)
        assert "scene" in images
        (h,) = db.query("SELECT * FROM hits")
        assert (h["list"], h["match"], h["hotlist_version"]) == ("STOLEN_VEHICLE", "exact", 3)
        assert db.query("PRAGMA journal_mode")[0][0] == "wal"


def test_stats_and_yearly_counts_and_mark_sent(tmp_path: Path):
    with Database.in_data_dir(tmp_path) as db:
        reads = [_read() for _ in range(3)] + [_read(hits=[Hit("X1", "CA", "BOLO", "exact")])]
        reads.append(_read(at=datetime(2025, 12, 31, 23, 0, tzinfo=timezone.utc)))
        for r in reads:
            db.insert_read(r)
        assert db.stats().to_json() == {"reads": 5, "sent": 0, "waiting": 5, "hits": 1}
        assert db.yearly_counts() == {2025: {"detections": 1}, 2026: {"detections": 4, "hits": 1, "hits:BOLO": 1}}
        batch = take_batch(db, BatchLimits(reads=2))
        # the read with a hit goes first, then the oldest
        assert {i["id"] for i in batch_items(db, batch)} == {reads[3].id, reads[4].id}
        acknowledge_batch(db, batch.id)
        assert db.stats().waiting == 3


def test_reopening_keeps_data_and_schema_version(tmp_path: Path):
    db = Database.in_data_dir(tmp_path)
    db.insert_read(_read())
    db.close()
    with Database.in_data_dir(tmp_path) as again:
        assert again.stats().reads == 1
        assert again.schema_version == len(MIGRATIONS)


def test_storage_tables_for_policy_exist_from_the_start(tmp_path: Path):
    from edge_agent.hotlist.storage import open_hotlist_db

    with Database.in_data_dir(tmp_path) as db:
        tables = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"reads", "read_images", "hits", "alerts", "dispositions", "users", "audit_log", "counts"} <= tables
    with open_hotlist_db(tmp_path) as hotlist:
        tables = {r[0] for r in hotlist.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"hotlist_versions", "hotlist_entries", "hotlist_index", "local_entries"} <= tables


def test_a_failed_insert_leaves_nothing_half_written(tmp_path: Path):
    with Database.in_data_dir(tmp_path) as db:
        read = _read()
        db.insert_read(read)
        try:
            db.insert_read(read)  # same UUID: refused
        except sqlite3.IntegrityError:
            pass
        assert db.stats().reads == 1
        assert db.yearly_counts()[2026]["detections"] == 1


def test_a_walking_skeleton_database_migrates_keeping_its_reads_and_hits(tmp_path: Path):
    path = tmp_path / "old.sqlite3"
    with Database(path, MIGRATIONS[:1]) as old:
        old._conn.execute(
            "INSERT INTO reads (id, captured_at, camera_id, plate, confidence, candidates, box)"
            " VALUES ('r1', '2026-01-02T03:04:05.000Z', 'front', '7ABC123', 0.9, '[]', '[0,0,1,1]')")
        old._conn.execute("INSERT INTO hits (read_id, lic, lis, list, match, disposition) VALUES"
                          " ('r1', '7ABC123', 'CA', 'STOLEN_VEHICLE', 'exact', 'confirmed')")
        assert old.schema_version == 1
    with Database(path) as db:
        assert db.schema_version == len(MIGRATIONS)
        assert [tuple(r) for r in db.query("SELECT id, plate FROM reads")] == [("r1", "7ABC123")]
        assert [tuple(r) for r in db.query("SELECT read_id, list, entry_id FROM hits")] == [("r1", "STOLEN_VEHICLE", None)]
        assert db.query("SELECT COUNT(*) FROM alerts")[0][0] == 0


def test_a_database_from_before_store_and_forward_migrates_with_its_records_waiting(tmp_path: Path):
    path = tmp_path / "v2.sqlite3"
    with Database(path, MIGRATIONS[:2]) as old:
        old._conn.execute(
            "INSERT INTO reads (id, captured_at, camera_id, plate, confidence, candidates, box)"
            " VALUES ('r1', '2026-01-02T03:04:05.000Z', 'front', '7ABC123', 0.9, '[]', '[0,0,1,1]')")
        old._conn.execute("INSERT INTO read_images (read_id, kind, jpeg) VALUES ('r1', 'scene', x'ffd8')")
        old._conn.execute("INSERT INTO audit_log (at, user, action) VALUES ('2026-01-02T03:04:05Z', 'tech', 'stats')")
    with Database(path) as db:
        assert db.schema_version == len(MIGRATIONS)
        assert [tuple(r) for r in db.query("SELECT id, scene_pending, sent_at FROM reads")] == [("r1", 1, None)]
        assert len(db.query("SELECT uuid FROM audit_log")[0][0]) == 32
        assert [take_batch(db).kind, take_batch(db).kind] == ["reads", "audit"]


def test_two_processes_opening_a_new_database_at_once_both_succeed(tmp_path: Path):
    import subprocess
    import sys

    code = f"from edge_agent.store import Database; Database.in_data_dir({str(tmp_path)!r}).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)]
    assert all(p.wait(60) == 0 for p in procs), [p.stderr.read() for p in procs]
    with Database.in_data_dir(tmp_path) as db:
        assert db.schema_version == len(MIGRATIONS)


def test_a_database_in_a_shared_folder_narrows_its_own_files_and_nothing_else(tmp_path: Path):
    """A station database pointed at /tmp must not take /tmp (or anyone's files in it) from other users."""
    import stat

    from edge_agent.station.store import StationStore

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    neighbour = shared / "someone-elses.txt"
    neighbour.write_text("x")
    neighbour.chmod(0o644)
    with StationStore(str(shared / "station.sqlite3")):
        pass
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777 and stat.S_IMODE(neighbour.stat().st_mode) == 0o644
    assert stat.S_IMODE((shared / "station.sqlite3").stat().st_mode) & 0o007 == 0
