from __future__ import annotations

import io
import os
import threading
import time
from datetime import datetime, timezone
from functools import reduce
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


def fleet_unit(tmp: Path, name: str, broker: str, station_pub: Path, agency: str = "test-pd") -> Path:
    """A unit's configuration that syncs to `broker` (plain MQTT, a test network) and pins the station's key."""
    path = tmp / f"{name}.toml"
    path.write_text(f'[agent]\nunit_id = "{name}"\nagency = "{agency}"\ndata_dir = "{tmp / name}"\n'
                    f'[sync]\nbroker = "{broker}"\nack_timeout_s = 3.0\ninsecure = true\nstation_key = "{station_pub}"\n')
    return path


TRAINED_PASSWORD = "trained-pass-1"
LOGIN = ("--purpose", "test patrol")  # with --user NAME: what the CLI needs to log a trained user in


@pytest.fixture
def trained(monkeypatch):
    """Makes trained users in a unit's data folder (its administrator, `admin`, first) and has the CLI log in
    with their password; returns the maker: trained(data_dir, ("ofc1", "officer"), ...)."""
    from datetime import date

    from edge_agent.access import add_user, login
    from edge_agent.store import Database

    monkeypatch.setenv("EDGE_AGENT_PASSWORD", TRAINED_PASSWORD)

    def make(data_dir: Path, *users: tuple[str, str]) -> None:
        with Database.in_data_dir(data_dir) as db:
            if not db.query("SELECT COUNT(*) FROM users")[0][0]:
                add_user(db, None, "admin", "administrator", TRAINED_PASSWORD, date.today())
            admin = login(db, "admin", TRAINED_PASSWORD, "setting up the test")
            for name, role in users:
                add_user(db, admin, name, role, TRAINED_PASSWORD, date.today())

    return make


@pytest.fixture
def postgres():
    """A real PostgreSQL server of its own, on a free loopback port."""
    from edge_agent.bench.pgserver import postgres_bindir, throwaway_postgres

    if postgres_bindir() is None:
        pytest.skip("PostgreSQL is not installed")
    with throwaway_postgres() as url:
        yield url


class StationThread:
    """The reference station receiver, in this process, on a real broker and a real SQLite file (or PostgreSQL)."""

    def __init__(self, data_dir: Path, broker: str, name: str = "station-a", config_text: str = "", db: str = ""):
        from edge_agent.config import parse_config
        from edge_agent.station import Station, station_store
        from edge_agent.tomlcompat import tomllib

        raw = tomllib.loads(config_text) if config_text else {}
        raw.setdefault("agent", {})["data_dir"] = str(data_dir)
        raw.setdefault("sync", {})["broker"] = broker
        raw["sync"].setdefault("insecure", broker.startswith("mqtt://"))  # the tests' plain brokers
        if db:
            raw.setdefault("station", {})["database"] = db
        self.config = parse_config(raw, "<station test config>", data_dir.parent)
        self.lines: list[str] = []
        self.store = station_store(self.config)
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


# --- a GPS receiver on a serial line ----------------------------------------------

def nmea(body: str) -> str:
    return f"${body}*{reduce(lambda a, c: a ^ ord(c), body, 0):02X}\r\n"


def live_sentences(lat: float = 38.5757, lon: float = -121.4788, at: datetime | None = None) -> str:
    """GGA, RMC and VTG for now (or `at`), as a receiver with a fix sends them each second."""
    at = at or datetime.now(timezone.utc)
    t, d = at.strftime("%H%M%S.00"), at.strftime("%d%m%y")
    la = f"{int(abs(lat)):02d}{(abs(lat) % 1) * 60:07.4f},{'N' if lat >= 0 else 'S'}"
    lo = f"{int(abs(lon)):03d}{(abs(lon) % 1) * 60:07.4f},{'E' if lon >= 0 else 'W'}"
    return (nmea(f"GNGGA,{t},{la},{lo},1,08,1.0,9.0,M,-29.8,M,,") + nmea(f"GNRMC,{t},A,{la},{lo},10.8,92.5,{d},,,A")
            + nmea("GNVTG,92.5,T,,M,10.8,N,20.0,K,A"))


class SerialLink:
    """A GPS receiver on a serial port: a pseudo-terminal pair, reached through a stable name (as udev's
    /dev/serial/by-id links are), that the test can unplug and plug back."""

    def __init__(self, folder: Path):
        self.path = folder / "gps0"
        self.master = self.slave = None

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tmp = self.path.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self.slave))
        tmp.replace(self.path)

    def unplug(self) -> None:
        os.close(self.master)
        os.close(self.slave)
        self.path.unlink()

    def send(self, text: str | bytes) -> None:
        os.write(self.master, text.encode() if isinstance(text, str) else text)


def _feed(link: SerialLink, stop: threading.Event, lines=None) -> threading.Thread:
    def loop():
        while not stop.wait(0.2):
            try:
                link.send(live_sentences() if lines is None else lines())
            except OSError:
                pass  # unplugged

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t




@pytest.fixture
def talking_gps(tmp_path: Path):
    """A receiver with a fix, sending GGA, RMC and VTG five times a second on a pseudo-terminal."""
    link = SerialLink(tmp_path)
    link.plug()
    stop = threading.Event()
    _feed(link, stop)
    yield link
    stop.set()
    link.unplug()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A rendered drive-by: three cars, each plate in view for six frames."""
    from edge_agent.synthetic import render_drive_by

    folder = tmp_path_factory.mktemp("clip")
    render_drive_by(folder / "drive-by.avi", ["7ABC123", "5TRK442", "8LMN905"], frames_per_car=6)
    return folder / "drive-by.avi"
