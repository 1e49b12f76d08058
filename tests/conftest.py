from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.bench.broker import LocalBroker, free_port, mosquitto_binary  # noqa: F401 (free_port for tests)
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


class Mosquitto(LocalBroker):
    """A real Mosquitto broker on a free loopback port, started and stopped (or killed) by the test."""

    def __init__(self, workdir: Path, extra: str = "", persistence: bool = False, shipped: str | None = None):
        if mosquitto_binary() is None:
            pytest.fail("mosquitto is not installed (scripts/setup installs it)")
        super().__init__(workdir, extra, persistence, shipped)


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
        raw["sync"].setdefault("insecure", broker.startswith("mqtt://"))  # the tests' plain brokers
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
