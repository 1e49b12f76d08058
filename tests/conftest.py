from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.cli import Console, main

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if line.strip()]


def run_cli(*args: str) -> CliResult:
    """Run an edge-agent command in-process, as the console script would."""
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in args], Console(out, err))
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def reader():
    from edge_agent.recognise.reader import PlateReader

    return PlateReader()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared is absent)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A real Mosquitto broker on a free loopback port, started and stopped (or killed) by the test.

    `listener` lines replace the plain one, for TLS or passwords; a restart keeps the port.
    """

    def __init__(self, workdir: Path, extra: str = "", persistence: bool = False):
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            pytest.fail("mosquitto is not installed (scripts/setup installs it)")
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        self.scheme = "mqtts" if "certfile" in extra else "mqtt"
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        store = f"persistence true\npersistence_location {workdir}/\n" if persistence else "persistence false\n"
        # started as root, mosquitto would drop to its own user, which cannot read the test's private folders
        store += "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n{extra or 'allow_anonymous true'}\n{store}log_dest stderr\n"
            "max_queued_messages 100000\n"
        )
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / "mosquitto.log", "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def mosquitto(tmp_path: Path):
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


class Subscriber:
    """Collects what arrives on a topic filter, through a real MQTT client."""

    def __init__(self, port: int, topic: str):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.port = port
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload, m.retain))
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.messages):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class StationThread:
    """The reference station receiver, in this process, on a real broker and a real SQLite file (or PostgreSQL)."""

    def __init__(self, data_dir: Path, broker: str, name: str = "station-a", config_text: str = "", db: str = ""):
        from edge_agent.config import parse_config
        from edge_agent.station import Station, station_database
        from edge_agent.station.store import StationStore
        from edge_agent.tomlcompat import tomllib

        raw = tomllib.loads(config_text) if config_text else {}
        raw.setdefault("agent", {})["data_dir"] = str(data_dir)
        raw.setdefault("sync", {})["broker"] = broker
        if db:
            raw.setdefault("station", {})["database"] = db
        self.config = parse_config(raw, "<station test config>", data_dir.parent)
        self.lines: list[str] = []
        self.store = StationStore(station_database(self.config))
        self.station = Station(self.config, self.store, out=self.lines.append, name=name)
        self.station.start()
        assert self.station.connected.wait(10), "station did not connect"
        time.sleep(0.2)  # let the subscriptions settle

    def stats(self) -> dict:
        return self.store.stats()

    def stop(self) -> None:
        self.station.stop()
        self.store.close()


def seed_reads(data_dir: Path, n: int, hits_every: int = 0, scene: bool = False, seed: int = 0) -> list[str]:
    """N reads in the unit's database, with real plate (and scene) JPEGs; returns their ids."""
    from edge_agent.store import Database
    from edge_agent.synthetic import SyntheticReads

    reads = SyntheticReads(seed, scene=scene).make(n, hits_every)
    with Database.in_data_dir(data_dir) as db:
        for r in reads:
            db.insert_read(r)
    return [r.id for r in reads]
