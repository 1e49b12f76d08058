"""The unit's storage cap, retention and a full disk, on real SQLite files (and a real, small tmpfs disk)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Subscriber, run_cli, write_config
from edge_agent.config import StorageConfig, load_config
from edge_agent.store import Database
from edge_agent.store.keeper import ReadKeeper
from edge_agent.store.outbox import acknowledge_batch, take_batch
from edge_agent.store.retention import CapPolicy, enforce_cap, purge_expired
from edge_agent.synthetic import SyntheticReads

READS = SyntheticReads(seed=5, scene=True)


def _store(db: Database, n: int, hits_every: int = 0, start: datetime | None = None) -> list:
    reads = READS.make(n, hits_every, start=start)
    for r in reads:
        db.insert_read(r)
    return reads


def _send_all(db: Database) -> None:
    while (batch := take_batch(db, kinds=("reads",))) is not None:
        acknowledge_batch(db, batch.id)


def _images(db: Database, read_id: str) -> set[str]:
    return set(db.read_images(read_id))


def test_the_cap_gives_up_scene_images_of_sent_reads_first_then_unsent_then_never_an_unsent_hit(tmp_path: Path):
    with Database.in_data_dir(tmp_path) as db:
        sent = _store(db, 20, start=datetime(2026, 11, 1, tzinfo=timezone.utc))
        _send_all(db)
        db.query("UPDATE reads SET evidence_hold = 1 WHERE id = ?", (sent[0].id,))
        unsent = _store(db, 20, start=datetime(2026, 11, 2, tzinfo=timezone.utc))
        hits = _store(db, 5, hits_every=1, start=datetime(2026, 11, 3, tzinfo=timezone.utc))
        used, _ = db.used_bytes()
        scene = len(READS.scene_jpegs[0])
        # a little over: only the oldest sent reads' scene images go
        result = enforce_cap(db, CapPolicy(used, used - 1, used - 5 * scene))
        assert set(result.given_up) == {"scene images of sent reads"}
        assert _images(db, sent[1].id) == {"plate"} and _images(db, unsent[0].id) == {"plate", "scene"}
        assert _images(db, sent[0].id) == {"plate", "scene"}  # evidence hold
        # far over: everything that may go, goes, in order; what must stay, stays
        result = enforce_cap(db, CapPolicy(1, 0, 0))
        assert list(result.given_up) == ["scene images of unsent reads without hits", "sent reads without hits",
                                         "plate images of unsent reads without hits"]
        assert result.over_cap
        for r in hits:
            assert _images(db, r.id) == {"plate", "scene"}
        assert _images(db, sent[0].id) == {"plate", "scene"}
        assert all(_images(db, r.id) == set() for r in unsent)
        assert db.stats().reads == 1 + 20 + 5  # the evidence, the unsent reads (without images), the hits
        events = db.query("SELECT action, records, detail FROM storage_events")
        assert {e["detail"] for e in events} >= {"sent reads without hits"}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=12),
       st.integers(0, 3))
def test_no_cap_ever_touches_an_unsent_hit_or_evidence(tmp_path_factory, mix, squeeze):
    folder = tmp_path_factory.mktemp("cap")
    with Database.in_data_dir(folder) as db:
        keep: list[str] = []
        for i, (is_sent, is_hit, is_evidence) in enumerate(mix):
            [read] = READS.make(1, hits_every=1 if is_hit else 0, start=datetime(2026, 1, 1 + i, tzinfo=timezone.utc))
            db.insert_read(read)
            if is_sent:
                db.query("UPDATE reads SET sent_at = '2026-02-01T00:00:00Z' WHERE id = ?", (read.id,))
            if is_evidence:
                db.query("UPDATE reads SET evidence_hold = 1 WHERE id = ?", (read.id,))
            if is_evidence or (is_hit and not is_sent):
                keep.append(read.id)
        used, _ = db.used_bytes()
        enforce_cap(db, CapPolicy(used, used // (squeeze + 1) - 1, used // (squeeze + 2)))
        for read_id in keep:
            assert _images(db, read_id) == {"plate", "scene"}


def test_purge_removes_sent_reads_past_retention_but_keeps_evidence_unsent_and_counts(tmp_path: Path):
    old = datetime.now(timezone.utc) - timedelta(days=40)
    with Database.in_data_dir(tmp_path) as db:
        sent_old = _store(db, 6, start=old)
        _send_all(db)
        db.query("UPDATE reads SET evidence_hold = 1 WHERE id = ?", (sent_old[0].id,))
        unsent_old = _store(db, 2, start=old)
        recent = _store(db, 3)
        _send_all(db)
        db.query("UPDATE reads SET sent_at = NULL WHERE id IN (?, ?)", (unsent_old[0].id, unsent_old[1].id))
        counts = db.yearly_counts()
    config = write_config(tmp_path / "c.toml", f'[agent]\ndata_dir = "{tmp_path}"\n[storage]\nretention_days = 30\n')
    result = run_cli("--config", config, "purge", "--user", "records-1", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"purged": 5, "evidence_hold": 1, "retention_days": 30.0}
    with Database.in_data_dir(tmp_path) as db:
        left = {r[0] for r in db.query("SELECT id FROM reads")}
        assert left == {sent_old[0].id} | {r.id for r in unsent_old} | {r.id for r in recent}
        after = db.yearly_counts()  # public-records figures survive the purge, which is counted too
        assert {y: {k: v for k, v in m.items() if k not in ("purged", "purges")} for y, m in after.items()} == counts
        assert sum(m.get("purged", 0) for m in after.values()) == 5
        assert db.query("SELECT user, action FROM audit_log")[-1][:] == ("records-1", "retention.purge")
        assert purge_expired(db, 30) == 0


def test_a_week_offline_stays_within_the_cap_and_keeps_every_read(tmp_path: Path):
    cap_mb = 10.0
    with Database.in_data_dir(tmp_path) as db:
        keeper = ReadKeeper(db, StorageConfig(cap_mb=cap_mb, retention_days=0), out=lambda line: None)
        reads = READS.make(300, hits_every=25)  # 300 x ~170 KB of images: about 50 MB offered
        for r in reads:
            assert keeper.store(r, None) is not None
            _, on_disk = db.used_bytes()
            assert on_disk <= cap_mb * 1024 * 1024, f"{on_disk} bytes on disk after {r.id}"
        assert db.stats().reads == 300 and keeper.state == "ok"
        for r in reads:
            assert "plate" in _images(db, r.id)
            if r.hits:
                assert _images(db, r.id) == {"plate", "scene"}
        assert keeper.given_up["scene images of unsent reads without hits"] > 200


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 4 MB tmpfs mount; skips where this machine does not allow mounting."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_holds_reads_in_memory_says_so_and_corrupts_nothing(tmp_path: Path, small_disk: Path, mosquitto):
    from edge_agent.sync import MqttSync

    config = load_config(write_config(tmp_path / "c.toml", (
        f'[agent]\nunit_id = "car-7"\nagency = "test-pd"\ndata_dir = "{small_disk}"\n'
        f'[storage]\ncap_mb = 0\nmemory_buffer_reads = 20\n[sync]\nbroker = "{mosquitto.url}"\ninsecure = true\n')))
    lines: list[str] = []
    db = Database.in_data_dir(small_disk)
    keeper = ReadKeeper(db, config.storage, out=lines.append)
    sync = MqttSync(config, db, status=keeper.status)
    watcher = Subscriber(mosquitto.port, "alpr/v1/test-pd/car-7/status")
    sync.start()
    try:
        assert sync.connected.wait(10)
        reads = READS.make(120, hits_every=10)
        stored = [r for r in reads if keeper.store(r, None) is not None]
        assert 0 < len(stored) < 120 and keeper.state == "full"
        assert len(keeper.buffer) == 20 and keeper.dropped == 120 - len(stored) - 20
        assert all(r.hits for r, _ in keeper.buffer if r is not keeper.buffer[-1][0]) or keeper.dropped < 100
        assert any("storage full" in line for line in lines)
        sync.publish_status()
        assert watcher.wait_for(lambda m: m and json.loads(m[-1][1]).get("storage") == "full")
        status = json.loads(watcher.messages[-1][1])
        assert status["buffered_in_memory"] == 20 and status["dropped"] == keeper.dropped
        assert db.query("PRAGMA integrity_check")[0][0] == "ok"
        assert {r[0] for r in db.query("SELECT id FROM reads")} == {r.id for r in stored}
        # space comes back (the technician clears the card): the buffer is written out
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        time.sleep(ReadKeeper.RETRY_S + 0.1)
        keeper.retry()
        assert keeper.state == "ok" and not keeper.buffer
        assert db.stats().reads == len(stored) + 20
        assert any("writable again" in line for line in lines)
    finally:
        watcher.close()
        sync.stop()
        db.close()
    with Database.in_data_dir(small_disk) as again:
        assert again.query("PRAGMA integrity_check")[0][0] == "ok"
        assert again.stats().reads == len(stored) + 20
    os.sync()


def test_scene_images_can_go_sooner_than_their_reads_and_every_purge_is_counted_and_audited(tmp_path: Path):
    from datetime import datetime, timedelta, timezone

    from conftest import seed_reads
    from edge_agent.config import StorageConfig
    from edge_agent.store.keeper import ReadKeeper

    seed_reads(tmp_path, 4, scene=True)
    with Database.in_data_dir(tmp_path) as db:
        ten_days = (datetime.now(timezone.utc) - timedelta(days=10)).isoformat(timespec="milliseconds")[:23] + "Z"
        db.query("UPDATE reads SET captured_at = ?, sent_at = ?, scene_pending = 0", (ten_days, ten_days))
        keeper = ReadKeeper(db, StorageConfig(retention_days=30, scene_retention_days=7, cap_mb=0), out=lambda line: None)
        keeper.housekeeping()
        assert db.stats().reads == 4  # the reads stay for their 30 days
        assert db.query("SELECT COUNT(*) FROM read_images WHERE kind = 'scene'")[0][0] == 0
        assert db.query("SELECT COUNT(*) FROM read_images WHERE kind = 'plate'")[0][0] == 4
        assert db.yearly_counts()[datetime.now(timezone.utc).year].get("scene_images_purged") == 4
        [(user, action, query, records)] = db.query(
            "SELECT user, action, query, records FROM audit_log WHERE action = 'retention.purge'")
        assert (user, action, records) == ("system:retention", "retention.purge", 4)
        assert "4 scene images older than 7 days" in query
