"""The agent as an unattended service: cameras that drop out and come back, a recognition part that fails or
hangs, systemd's readiness and watchdog notifications, the status a technician reads, SIGTERM."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.bench.mjpeg import MjpegCamera
from edge_agent.config import load_config
from edge_agent.pipeline import Agent
from edge_agent.service import CameraState, WorkerState, health
from edge_agent.store import Database
from edge_agent.synthetic import render_drive_by, render_scene
from conftest import free_port, run_cli

PLATES = ["7ABC123", "5TRK442", "8LMN905"]


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _unit(tmp_path: Path, cameras: str, extra: str = "") -> Path:
    path = tmp_path / "unit.toml"
    path.write_text(f'[agent]\nunit_id = "car-7"\nagency = "test-pd"\ndata_dir = "data"\n{cameras}\n'
                    f'[alerts]\nspeak = false\n{extra}')
    return path


def test_a_camera_that_is_out_is_retried_and_comes_back(tmp_path: Path, reader):
    frames = [render_scene([("7ABC123", "California")], size=(640, 360), seed=i) for i in range(3)]
    camera = MjpegCamera(free_port(), frames)
    config = _unit(tmp_path, f'[[camera]]\nid = "front"\nsource = "rtsp"\nurl = "{camera.url}"\n')
    lines: list[str] = []
    agent = Agent(load_config(config), out=lines.append, reader=reader)
    agent.CAMERA_BACKOFF_S = (0.2, 1.0)
    agent.STATUS_EVERY_S = 0.2
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,))
    runner.start()
    try:
        # absent at start: reported, retried, and a warning in status, while the agent runs on
        _wait(lambda: agent.cameras and agent.cameras[0].state == "out" and agent.cameras[0].opened >= 2, 20,
              "the camera to be retried")
        assert runner.is_alive()
        result = run_cli("--config", config, "status", "--json")
        assert result.code == 0, result.err
        [front] = json.loads(result.out)["cameras"]
        assert front["state"] == "out" and "cannot open" in front["problem"]
        camera.start()  # plugged in
        _wait(lambda: agent.cameras[0].state == "ok" and agent.cameras[0].taken > 5, 20, "frames from the camera")
        opened = agent.cameras[0].opened
        camera.stop()  # unplugged mid-stream
        _wait(lambda: agent.cameras[0].state == "out", 20, "the camera to be out")
        camera.start()  # and back
        taken = agent.cameras[0].taken
        _wait(lambda: agent.cameras[0].state == "ok" and agent.cameras[0].taken > taken + 5, 20, "frames again")
        assert agent.cameras[0].opened > opened
        _wait(lambda: json.loads(run_cli("--config", config, "status", "--json").out)["cameras"][0]["fps"] > 0, 10,
              "the status file to show the camera's frame rate")
        text = run_cli("--config", config, "status").out
        assert "camera front: ok" in text and "reads waiting" in text
    finally:
        stopped = time.monotonic()
        stop.set()
        runner.join(15)
        camera.stop()
    assert not runner.is_alive() and time.monotonic() - stopped < 10
    assert sum("warning: camera front" in line for line in lines) <= 4  # said when it changes, not each retry
    with Database.in_data_dir(tmp_path / "data") as db:
        assert [r["plate"] for r in db.query("SELECT plate FROM reads")].count("7ABC123") >= 1
    result = run_cli("--config", config, "status")
    assert result.code == 1 and "not running" in result.err


class FaultyReader:
    """The real reader, with the faults of a native library injected: it raises on one call and hangs on another."""

    def __init__(self, real, fail_on: int, hang_on: int):
        self.real, self.fail_on, self.hang_on = real, fail_on, hang_on
        self.calls = 0
        self.hung_at: float | None = None
        self.release = threading.Event()

    def read_frame(self, image, seen=None, side_view=False):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("onnxruntime: injected failure")
        if self.calls == self.hang_on:
            self.hung_at = time.monotonic()
            self.release.wait(60)  # hangs, as a stuck driver call would
        return self.real.read_frame(image, seen=seen, side_view=side_view)


def test_recognition_that_fails_or_hangs_is_replaced_within_5_s_and_no_stored_read_is_lost(tmp_path: Path, clip, reader):
    config = _unit(tmp_path, f'[[camera]]\nid = "front"\nsource = "video"\npath = "{clip}"\n',
                   "[recognition]\nhang_after_s = 2.0\n")
    faulty = FaultyReader(reader, fail_on=3, hang_on=10)
    lines: list[str] = []
    agent = Agent(load_config(config), out=lines.append, reader=faulty)
    taken_after_hang: list[float] = []
    real_readings = agent._readings

    def watch(frame):
        if faulty.hung_at is not None and not taken_after_hang and faulty.calls > 10:
            taken_after_hang.append(time.monotonic())
        return real_readings(frame)

    agent._readings = watch
    stored_before: list[str] = []

    def snapshot():
        _wait(lambda: faulty.hung_at is not None, 60, "the hang")
        with Database.in_data_dir(tmp_path / "data") as db:
            stored_before.extend(r["id"] for r in db.query("SELECT id FROM reads"))

    t = threading.Thread(target=snapshot)
    t.start()
    summary = agent.run()
    t.join()
    faulty.release.set()
    assert agent.restarts == 2, lines
    assert any("recognition failed" in line for line in lines)
    assert any("recognition hung" in line for line in lines)
    assert taken_after_hang and taken_after_hang[0] - faulty.hung_at < 5.0  # back at work within 5 s
    with Database.in_data_dir(tmp_path / "data") as db:
        stored = {r["id"]: r["plate"] for r in db.query("SELECT id, plate FROM reads")}
    assert set(stored_before) <= set(stored)  # nothing stored before the hang was lost
    assert set(stored.values()) == set(PLATES)  # the two frames lost to the faults cost no vehicle its read
    assert summary.reads == len(stored)


def test_health_feeds_the_watchdog_only_while_the_loop_makes_progress():
    now = 100.0
    cam = CameraState("front", live=True, state="ok", last_frame=99.5, last_taken=99.6)
    out = CameraState("rear", live=True, state="out", problem="cannot open")
    assert health(now, [cam, out], WorkerState("idle", 99.0), 3.0) == []  # a camera out is not a reason
    assert health(now, [cam], WorkerState("read", 99.0), 3.0) == []
    assert "stuck in read" in health(now, [cam], WorkerState("read", 90.0), 3.0)[0]
    assert health(now, [cam], WorkerState("idle", 99.0), 3.0, store_hung=True) == ["the store does not take writes"]
    starving = CameraState("front", live=True, state="ok", last_frame=99.9, last_taken=90.0)
    assert "not reaching recognition" in health(now, [starving], WorkerState("idle", 99.0), 3.0)[0]


def test_systemd_hears_ready_watchdog_status_and_stopping(tmp_path: Path, clip):
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.5)
    config = _unit(tmp_path, f'[[camera]]\nid = "front"\nsource = "video"\npath = "{clip}"\n')
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "2000000",
           "RUNTIME_DIRECTORY": str(tmp_path / "run")}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", str(config), "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    messages: list[str] = []
    first_read = None
    while proc.poll() is None or time.monotonic() - started < 3:
        try:
            messages.append(sock.recv(4096).decode())
        except socket.timeout:
            if proc.poll() is not None:
                break
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert messages[0].startswith("READY=1")
    assert any(m == "WATCHDOG=1" for m in messages)
    assert any(m.startswith("STATUS=front:") and "reads/h" in m for m in messages)
    assert messages[-1].startswith("STOPPING=1") or any(m.startswith("STOPPING=1") for m in messages[-3:])
    assert "read 7ABC123" in out
    assert re.search(r"first frame read \d+\.\d s after the agent started", out)
    assert (tmp_path / "run" / "status.json").is_file()


def test_sigterm_on_a_live_camera_exits_within_10_s_with_reads_kept(tmp_path: Path, reader):
    frames = [render_scene([("5TRK442", "California")], size=(640, 360), seed=i) for i in range(3)]
    camera = MjpegCamera(free_port(), frames)
    camera.start()
    try:
        config = _unit(tmp_path, f'[[camera]]\nid = "front"\nsource = "rtsp"\nurl = "{camera.url}"\n')
        proc = subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", str(config), "run"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Database.in_data_dir(tmp_path / "data") as db:
                if db.stats().reads:
                    break
            time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert time.monotonic() - sent < 10 and proc.returncode == 0, err
    finally:
        camera.stop()
    assert "read 5TRK442" in out
    with Database.in_data_dir(tmp_path / "data") as db:
        assert db.stats().reads >= 1


def test_the_station_lists_every_unit_with_its_contact_clock_versions_and_waiting(tmp_path: Path, clip, mosquitto, reader):
    from edge_agent import __version__
    from conftest import StationThread

    station = StationThread(tmp_path / "station", mosquitto.url)
    try:
        config = _unit(tmp_path, f'[[camera]]\nid = "front"\nsource = "video"\npath = "{clip}"\n',
                       f'[sync]\nbroker = "{mosquitto.url}"\ninsecure = true\ninterval_s = 0.2\n')
        Agent(load_config(config), out=lambda line: None, reader=reader).run()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (station.stats()["reads"] >= 3 and
                                                   [u["state"] for u in station.store.units()] == ["offline"]):
            time.sleep(0.1)  # the unit's goodbye comes after its last sync, which a busy machine makes late
    finally:
        station.stop()
    result = run_cli("--data-dir", tmp_path / "station", "station", "units", "--json")
    assert result.code == 0, result.err
    [unit] = json.loads(result.out)
    assert (unit["agency"], unit["unit"], unit["state"], unit["version"]) == ("test-pd", "car-7", "offline", __version__)
    assert unit["clock"] == "system" and unit["waiting"] == 0 and unit["last_contact"]
    assert unit["clock_skew_s"] is None or abs(unit["clock_skew_s"]) < 5
    text = run_cli("--data-dir", tmp_path / "station", "station", "units").out
    assert text.startswith("test-pd/car-7: offline, last contact") and "0 waiting" in text
    missing = run_cli("--data-dir", tmp_path / "nowhere", "station", "units")
    assert missing.code == 2 and "no station database" in missing.err
