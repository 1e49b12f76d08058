"""A running agent takes new lists: from the command line beside it, and signed from the station over MQTT."""

import json
import threading
import time
from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.pipeline import Agent
from edge_agent.synthetic import write_hotlist
from conftest import LOGIN, run_cli


def _unit(tmp_path: Path, broker: str = "", key: Path | None = None) -> Path:
    config = tmp_path / "unit.toml"
    config.write_text(f"""
[agent]
unit_id = "car-7"
agency = "test-pd"
data_dir = "data"
[hotlist]
{f'public_key = "{key}"' if key else ""}
[alerts]
speak = false
[sync]
broker = "{broker}"
interval_s = 0.2
insecure = true
""")
    return config


def _wait(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_running_agent_swaps_in_a_new_list_and_an_officers_entry(tmp_path: Path, reader, trained):
    config_path = _unit(tmp_path)
    trained(load_config(str(config_path)).data_dir)
    first = write_hotlist(tmp_path / "a.csv", {"7ABC123": "STOLEN_VEHICLE"}, others=30)
    assert run_cli("--config", config_path, "hotlist", "import", first).code == 0
    lines: list[str] = []
    agent = Agent(load_config(str(config_path)), out=lines.append, reader=reader)
    try:
        assert agent.hotlist.match("7ABC123", "CA")
        second = write_hotlist(tmp_path / "b.csv", {"8LMN905": "AMBER_ALERT"}, others=30, seed=9)
        assert run_cli("--config", config_path, "hotlist", "import", second).code == 0
        assert run_cli("--config", config_path, "hotlist", "add", "5TR?44*", "--list", "WANTED_PERSON",
                       "--reason", "case 9", "--user", "admin", *LOGIN).code == 0
        agent.refresh_hotlist(force=True)
        assert not agent.hotlist.match("7ABC123", "CA")
        assert agent.hotlist.match("8LMN905", "CA")[0].list_name == "AMBER_ALERT"
        assert agent.hotlist.match("5TRK442")[0].match == "partial"
        assert any("hotlist: version 2 in force, 32 entries" in line for line in lines)
    finally:
        agent.db.close()
        agent.hotlist_db.close()


def test_signed_list_from_the_station_reaches_the_running_agent(tmp_path: Path, reader, mosquitto):
    station = tmp_path / "station"
    assert run_cli("hotlist", "keygen", "--out", station).code == 0
    key = station / "hotlist-signing.key"
    config_path = _unit(tmp_path, mosquitto.url, station / "hotlist-signing.pub")
    lines: list[str] = []
    agent = Agent(load_config(str(config_path)), out=lines.append, reader=reader)
    stop = threading.Event()
    sync = agent._start_sync(stop)
    importer = threading.Thread(target=agent._import_arrivals, args=(stop,), daemon=True)
    importer.start()
    try:
        assert sync.connected.wait(10)
        time.sleep(0.3)  # the subscription to the fleet's hotlist topic
        good = write_hotlist(tmp_path / "v3.csv", {"7ABC123": "STOLEN_VEHICLE"}, others=30)
        assert run_cli("--config", config_path, "hotlist", "sign", good, "--key", key, "--version", 3).code == 0
        published = run_cli("--config", config_path, "hotlist", "publish", good, "--broker", mosquitto.url, "--retain")
        assert published.code == 0, published.err
        assert _wait(lambda: any("signed version 3 imported" in line for line in lines)), lines
        agent.refresh_hotlist(force=True)
        assert agent.hotlist.match("7ABC123", "CA")[0].match == "exact"

        # a forged list and a replayed older version are refused; the list in force stays
        forged = write_hotlist(tmp_path / "v4.csv", {"8LMN905": "AMBER_ALERT"}, others=30, seed=4)
        run_cli("--config", config_path, "hotlist", "sign", forged, "--key", key, "--version", 4)
        forged.write_bytes(forged.read_bytes().replace(b"AMBER_ALERT", b"BOLO"))
        assert run_cli("--config", config_path, "hotlist", "publish", forged, "--broker", mosquitto.url).code == 0
        old = write_hotlist(tmp_path / "v2.csv", {"8LMN905": "AMBER_ALERT"}, others=30, seed=5)
        run_cli("--config", config_path, "hotlist", "sign", old, "--key", key, "--version", 2)
        assert run_cli("--config", config_path, "hotlist", "publish", old, "--broker", mosquitto.url).code == 0
        assert _wait(lambda: sum("hotlist update refused" in line for line in lines) == 2), lines
        refusals = [line for line in lines if "refused" in line]
        assert "is not the signed" in refusals[0] and "not newer than version 3" in refusals[1]
        agent.refresh_hotlist(force=True)
        assert agent.hotlist.match("7ABC123", "CA") and not agent.hotlist.match("8LMN905", "CA")
        status = json.loads(run_cli("--config", config_path, "hotlist", "status", "--json").out)
        assert status["in_force"]["signed_version"] == 3 and len(status["versions"]) == 1
    finally:
        stop.set()
        sync.stop()
        importer.join(5)
        agent.db.close()
        agent.hotlist_db.close()


def test_a_list_from_the_station_is_refused_without_a_key(tmp_path: Path, reader, mosquitto):
    config_path = _unit(tmp_path, mosquitto.url)
    lines: list[str] = []
    agent = Agent(load_config(str(config_path)), out=lines.append, reader=reader)
    stop = threading.Event()
    importer = threading.Thread(target=agent._import_arrivals, args=(stop,), daemon=True)
    importer.start()
    try:
        agent._hotlist_arrived(b'{"schema": "x"}\nLIC,LIS,LIST\n7ABC123,CA,STOLEN_VEHICLE\n')
        assert _wait(lambda: any("public_key is not configured" in line for line in lines))
    finally:
        stop.set()
        importer.join(5)
        agent.db.close()
        agent.hotlist_db.close()


@pytest.mark.parametrize("payload, words", [(b"no newline at all", "no signature envelope"),
                                            (b"{not json}\nLIC\n", "unreadable"),
                                            (b'{"schema": "alpr.hotlist-signature.v1", "version": -1}\nx', "positive")])
def test_malformed_station_payloads_are_refused(tmp_path: Path, payload: bytes, words: str):
    from edge_agent.errors import HotlistError
    from edge_agent.hotlist import import_payload
    from edge_agent.hotlist.signing import generate_key
    from edge_agent.hotlist.storage import open_hotlist_db
    import dataclasses

    _, pub = generate_key(tmp_path / "keys")
    config = dataclasses.replace(load_config(str(_unit(tmp_path))).hotlist, public_key=pub)
    with open_hotlist_db(tmp_path / "data") as db, pytest.raises(HotlistError) as info:
        import_payload(db, config, payload, "mqtt")
    assert words in str(info.value)
