"""The main job end to end: a rendered drive-by clip through capture, reading, matching, storage, alerts and sync."""

import base64
import json
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.store import Database
from edge_agent.synthetic import render_drive_by, write_hotlist
from conftest import StationThread, Subscriber, run_cli

PLATES = ["7ABC123", "5TRK442", "8LMN905"]


def _config(tmp_path: Path, clip: Path, broker: str = "") -> Path:
    path = tmp_path / "unit.toml"
    path.write_text(f"""
[agent]
unit_id = "car-7"
agency = "test-pd"
data_dir = "data"

[[camera]]
id = "front"
source = "video"
path = "{clip}"

[sync]
broker = "{broker}"
interval_s = 0.2
insecure = true
""")
    return path


def _import_hotlist(tmp_path: Path, config: Path) -> None:
    hotlist = write_hotlist(tmp_path / "hot.csv", {"7ABC123": "STOLEN_VEHICLE", "8LMN905": "AMBER_ALERT"}, others=20)
    assert run_cli("--config", config, "hotlist", "import", hotlist).code == 0


def test_run_without_broker_keeps_reads_waiting(tmp_path: Path, clip: Path):
    config = _config(tmp_path, clip)
    _import_hotlist(tmp_path, config)
    result = run_cli("run", "--config", config)
    assert result.code == 0, result.err
    assert "done: frames=27 reads=3 hits=2 alerts=2 waiting_to_sync=3" in result.out
    # one read per car, voted over the frames it was seen in, given within a second of its first frame
    read_lines = [line.split() for line in result.lines if line.startswith("read ")]
    assert [fields[1] for fields in read_lines] == PLATES
    for fields in read_lines:
        values = dict(f.split("=", 1) for f in fields[2:])
        assert int(values["frames"]) >= 3
        assert float(values["after"].rstrip("s")) < 1.0
    alerts = [line for line in result.lines if line.startswith("ALERT")]
    assert "AMBER_ALERT" in alerts[1] and "8LMN905" in alerts[1]
    with Database.in_data_dir(tmp_path / "data") as db:
        rows = db.query("SELECT * FROM reads ORDER BY captured_at")
        assert [r["plate"] for r in rows] == PLATES
        assert all(r["camera_id"] == "front" and r["sent_at"] is None for r in rows)
        for r in rows:
            images = db.read_images(r["id"])
            plate = cv2.imdecode(np.frombuffer(images["plate"], np.uint8), cv2.IMREAD_COLOR)
            scene = cv2.imdecode(np.frombuffer(images["scene"], np.uint8), cv2.IMREAD_COLOR)
            assert plate.shape[1] < scene.shape[1] and scene.shape[:2] == (720, 1280)
        hits = db.query("SELECT h.list, r.plate FROM hits h JOIN reads r ON r.id = h.read_id ORDER BY r.captured_at")
        assert [(h["plate"], h["list"]) for h in hits] == [("7ABC123", "STOLEN_VEHICLE"), ("8LMN905", "AMBER_ALERT")]
        alert_rows = db.query("SELECT a.id, a.list, r.plate FROM alerts a JOIN reads r ON r.id = a.read_id ORDER BY a.id")
        assert [(a["plate"], a["list"]) for a in alert_rows] == [("7ABC123", "STOLEN_VEHICLE"), ("8LMN905", "AMBER_ALERT")]
    for line, row in zip(alerts, alert_rows):
        assert f"ALERT #{row['id']} " in line and "CLETS" in line
        wav = line.rsplit(" wav=", 1)[1]
        assert wav.endswith(f"alert-{row['id']}.wav")
        with wave.open(wav) as w:
            assert w.getnframes() / w.getframerate() > 3
    stats = run_cli("--config", config, "stats", "--json")
    assert json.loads(stats.out)["waiting"] == 3


def test_run_with_broker_and_station_delivers_every_read_and_alert(tmp_path: Path, clip: Path, mosquitto):
    config = _config(tmp_path, clip, mosquitto.url)
    _import_hotlist(tmp_path, config)
    station = StationThread(tmp_path / "station", mosquitto.url)
    watcher = Subscriber(mosquitto.port, "alpr/v1/test-pd/car-7/#")
    try:
        result = run_cli("run", "--config", config)
        assert result.code == 0, result.err
        assert "waiting_to_sync=0" in result.out
        batches = [json.loads(p) for t, p, _ in watcher.messages if t.endswith("/batch")]
        assert all(b["schema"] == "alpr.batch.v5" and b["unit"] == "car-7" for b in batches)
        reads = [r for b in batches if b["kind"] == "reads" for r in b["items"]]
        assert sorted(r["plate"] for r in reads) == sorted(PLATES)
        hit_read = next(r for r in reads if r["plate"] == "8LMN905")
        assert hit_read["hits"][0]["list"] == "AMBER_ALERT"
        jpeg = base64.b64decode(hit_read["plate_jpeg"])
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) is not None
        stats = station.stats()
        assert (stats["reads"], stats["reads_with_hits"], stats["alerts"], stats["scene_images"]) == (3, 2, 2, 3)
        assert stats["duplicates_refused"] == 0
        assert watcher.wait_for(lambda m: any(t.endswith("/status") and b'"offline"' in p for t, p, _ in m))
    finally:
        watcher.close()
        station.stop()
    with Database.in_data_dir(tmp_path / "data") as db:
        assert db.stats().waiting == 0


def test_reads_wait_while_broker_is_down_then_sync_once_drains(tmp_path: Path, clip: Path, mosquitto):
    config = _config(tmp_path, clip, "mqtt://127.0.0.1:1")  # nothing listens on port 1
    result = run_cli("run", "--config", config)
    assert "waiting_to_sync=3" in result.out and "not reachable" in result.out
    down = run_cli("--config", config, "sync", "--once", "--broker", "mqtt://127.0.0.1:1", "--timeout", "1")
    assert down.code == 1 and "not reachable" in down.err
    station = StationThread(tmp_path / "station", mosquitto.url)
    try:
        drained = run_cli("--config", config, "sync", "--once", "--broker", mosquitto.url)
        assert drained.code == 0 and "sent 3 reads" in drained.out and "0 reads waiting" in drained.out
        assert station.stats()["reads"] == 3
    finally:
        station.stop()


def test_run_over_a_folder_with_bad_images_reports_and_continues(tmp_path: Path):
    from edge_agent.synthetic import render_scene

    folder = tmp_path / "shots"
    folder.mkdir()
    cv2.imwrite(str(folder / "1.jpg"), render_scene([("4GHT271", "California")], size=(800, 450), plate_width=200))
    (folder / "2.jpg").write_bytes(b"\xff\xd8 truncated")
    cv2.imwrite(str(folder / "3.jpg"), render_scene([("6WNP018", "California")], size=(800, 450), plate_width=200))
    result = run_cli("--data-dir", tmp_path / "data", "run", "--source", folder)
    assert result.code == 1  # it ran, and one input failed: a script must know
    assert "frames=2 reads=2" in result.out and "errors=1" in result.out
    assert "2.jpg" in result.out
    none = run_cli("--data-dir", tmp_path / "data", "run")
    assert none.code == 2 and "no [[camera]] configured" in none.err


def test_sigterm_stops_the_agent_cleanly_with_reads_kept(tmp_path: Path, clip: Path):
    """The service manager stops a unit with SIGTERM: the agent exits 0 with its summary and keeps what it stored."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO

    config = _config(tmp_path, clip)
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    db_path = tmp_path / "data" / "edge-agent.sqlite3"
    while time.monotonic() < deadline:
        if db_path.exists():
            with Database(db_path) as db:
                if db.stats().reads >= 1:
                    break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "done: frames=" in out
    with Database(db_path) as db:
        assert db.stats().reads >= 1


def test_no_file_under_the_data_directories_is_readable_by_other_users(tmp_path: Path, clip: Path, mosquitto, caplog):
    import logging
    import os
    import signal
    import stat
    import subprocess
    import sys
    import time

    config = _config(tmp_path, clip, mosquitto.url)
    # left by an older version: a world-readable WAV in a world-readable folder
    old = tmp_path / "data" / "alerts" / "old.wav"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"RIFF")
    old.chmod(0o644)
    (tmp_path / "data").chmod(0o755)
    station_config = tmp_path / "station.toml"
    station_config.write_text(f'[agent]\nagency = "test-pd"\ndata_dir = "{tmp_path / "station"}"\n[sync]\ninsecure = true\n')
    # the station as it runs at the station: its own process, started with a permissive umask
    station = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "--config", str(station_config), "station",
                                "--broker", mosquitto.url, "--name", "hq"], preexec_fn=lambda: os.umask(0o022),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with caplog.at_level(logging.WARNING, logger="edge_agent.files"):
            _import_hotlist(tmp_path, config)  # the first command to open the data directory narrows it
            assert run_cli("run", "--config", config).code == 0
        assert any("old.wav" in r.getMessage() and "0644" in r.getMessage() for r in caplog.records)
        assert run_cli("--config", config, "sync", "--once").code == 0
        stored = json.loads(run_cli("--config", config, "stats", "--json").out)["reads"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            stats = run_cli("--config", station_config, "station", "stats", "--json")
            if stats.code == 0 and json.loads(stats.out)["reads"] == stored:
                break
            time.sleep(0.3)
        assert stored > 0 and json.loads(stats.out)["reads"] == stored
    finally:
        station.send_signal(signal.SIGTERM)
        station.wait(20)
    assert len(list((tmp_path / "data" / "alerts").glob("*.wav"))) > 1  # the run's alerts beside the old one
    for root in (tmp_path / "data", tmp_path / "station"):
        paths = [root, *root.rglob("*")]
        assert any(p.suffix == ".sqlite3" for p in paths)
        wide = [f"{p} {stat.S_IMODE(p.stat().st_mode):04o}" for p in paths if p.stat().st_mode & 0o007]
        assert wide == []


@pytest.mark.shared
@pytest.mark.slow
def test_a_camera_configured_as_a_side_view_reads_parked_cars_seen_steeply(tmp_path: Path):
    from edge_agent.bench import load_dataset, seen_from_the_side
    from conftest import shared_path

    items = load_dataset(shared_path("data", "us-plates", "endtoend"), part="validation")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, item in enumerate(items):  # a side camera passing parked cars, 60 degrees off their plates
        cv2.imwrite(str(frames / f"{i:03d}.jpg"), seen_from_the_side(cv2.imread(str(item.path)), 60, 6)[0])
    plates = {item.plate for item in items}
    right = {}
    for side_view in ("false", "true"):
        config = tmp_path / f"side-{side_view}.toml"
        config.write_text(f"""
[agent]
data_dir = "data-{side_view}"

[[camera]]
id = "right"
source = "folder"
path = "{frames}"
side_view = {side_view}
""")
        result = run_cli("run", "--config", config)
        assert result.code == 0, result.err
        read = {line.split()[1] for line in result.lines if line.startswith("read ")}
        right[side_view] = len(read & plates)
    # 2026-12-07: 23 with the side-view detector, 13 without (19 while a narrowed plate's strokes could pass for a
    # short streak, before STREAK_SHORTEST)
    assert right["true"] >= 20 and right["true"] > right["false"] + 3, right
