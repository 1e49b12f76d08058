"""The agency PKI (`edge-agent pki`) and the shipped Mosquitto configuration, tried as an attacker would:
each refusal beside its positive twin, so a dead broker cannot pass."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import ssl
import stat
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties

from conftest import REPO, Mosquitto, run_cli
from edge_agent.hotlist.signing import load_private_key

AGENCY = "CA0190000"
PREFIX = f"alpr/v1/{AGENCY}"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    folder = tmp_path / "pki"
    config = tmp_path / "station.toml"
    config.write_text(f'[agent]\nagency = "{AGENCY}"\ndata_dir = "{tmp_path / "data"}"\n')
    assert run_cli("--config", config, "pki", "init", "--dir", folder).code == 0
    assert run_cli("--config", config, "pki", "issue", "broker", "localhost", "--host", "127.0.0.1", "--dir", folder).code == 0
    assert run_cli("--config", config, "pki", "issue", "station", "hq", "--dir", folder).code == 0
    for unit in ("unit-01", "unit-02"):
        assert run_cli("--config", config, "pki", "issue", "unit", unit, "--dir", folder).code == 0
    return folder


def _broker(tmp_path: Path, pki: Path) -> Mosquitto:
    etc = tmp_path / "broker-etc"
    etc.mkdir(exist_ok=True)
    for name in ("ca.crt", "crl.pem", "mosquitto.acl"):
        shutil.copy(pki / name, etc / name)
    shutil.copy(pki / "broker" / "localhost.crt", etc / "broker.crt")
    shutil.copy(pki / "broker" / "localhost.key", etc / "broker.key")
    shipped = (REPO / "config" / "mosquitto" / "edge-agent.conf").read_text()
    broker = Mosquitto(tmp_path, shipped=shipped.replace("/etc/mosquitto/edge-agent/", f"{etc}/"))
    broker.start()
    return broker


@pytest.fixture
def broker(tmp_path: Path, pki: Path):
    b = _broker(tmp_path, pki)
    yield b
    b.stop()


class Client:
    """A real MQTT 5 client over TLS with (or without) a client certificate."""

    def __init__(self, port: int, ca: Path, cert: Path | None = None, key: Path | None = None, client_id: str = ""):
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=client_id or f"test-{time.monotonic_ns()}")
        self.client.tls_set(ca_certs=str(ca), certfile=str(cert) if cert else None, keyfile=str(key) if key else None)
        self.messages: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.ended = threading.Event()
        self.granted: dict[int, list] = {}
        self.puback: dict[int, int] = {}
        self.client.on_connect = lambda c, u, f, rc, p: (rc.is_failure or self.connected.set(), self.ended.set())
        self.client.on_disconnect = lambda *a: self.ended.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.granted.__setitem__(mid, codes)
        self.client.on_publish = lambda c, u, mid, rc, p: self.puback.__setitem__(mid, rc.value)
        self.error = ""
        try:
            self.client.connect("127.0.0.1", port)
        except (ssl.SSLError, OSError) as exc:
            self.error = str(exc)
            self.ended.set()
            return
        self.client.loop_start()
        self.ended.wait(5)
        time.sleep(0.1)  # a TLS 1.3 server refuses a client certificate after the client's handshake ends

    @property
    def ok(self) -> bool:
        return self.connected.is_set() and self.client.is_connected()

    def subscribe(self, topic: str) -> bool:
        _, mid = self.client.subscribe(topic, qos=1)
        deadline = time.monotonic() + 5
        while mid not in self.granted and time.monotonic() < deadline:
            time.sleep(0.02)
        return bool(self.granted.get(mid)) and not self.granted[mid][0].is_failure

    def publish(self, topic: str, payload: bytes = b"x") -> int:
        info = self.client.publish(topic, payload, qos=1, properties=Properties(mqtt.PacketTypes.PUBLISH))
        deadline = time.monotonic() + 5
        while info.mid not in self.puback and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.puback.get(info.mid, -1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _arrives(client: Client, payload: bytes) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(p == payload for _, p in client.messages):
            return True
        time.sleep(0.05)
    return False


def _unit(broker, pki: Path, unit: str) -> Client:
    return Client(broker.port, pki / "ca.crt", pki / "unit" / f"{unit}.crt", pki / "unit" / f"{unit}.key")


def _station(broker, pki: Path) -> Client:
    return Client(broker.port, pki / "ca.crt", pki / "station" / "hq.crt", pki / "station" / "hq.key")


def test_pki_writes_keys_only_its_user_can_read_and_never_overwrites_one_without_force(tmp_path: Path, pki: Path):
    for key in [pki / "ca.key", *pki.glob("*/*.key")]:
        assert _mode(key) == 0o600, key
    before = (pki / "unit" / "unit-01.key").read_bytes()
    config = tmp_path / "station.toml"
    again = run_cli("--config", config, "pki", "issue", "unit", "unit-01", "--dir", pki)
    assert again.code == 2 and "unit-01" in again.err and "renew" in again.err
    assert (pki / "unit" / "unit-01.key").read_bytes() == before
    refused = run_cli("--config", config, "pki", "init", "--dir", pki)
    assert refused.code == 2 and "ca.key" in refused.err and "--force" in refused.err
    # a key left with a wide mode is replaced, with --force, at 0600
    (pki / "unit" / "unit-01.key").chmod(0o644)
    assert run_cli("--config", config, "pki", "issue", "unit", "unit-01", "--dir", pki, "--force").code == 0
    assert _mode(pki / "unit" / "unit-01.key") == 0o600 and (pki / "unit" / "unit-01.key").read_bytes() != before
    # the batch-signing and hotlist keys follow the same rule
    assert run_cli("--config", config, "sync", "keygen", "--out", tmp_path / "keys").code == 0
    assert _mode(tmp_path / "keys" / "unit-01.key") == 0o600
    twice = run_cli("--config", config, "sync", "keygen", "--out", tmp_path / "keys")
    assert twice.code == 2 and "--force" in twice.err
    bad = run_cli("--config", config, "pki", "issue", "unit", "unit/01", "--dir", pki)
    assert bad.code == 2 and "unit/01" in bad.err


def test_the_acl_keeps_each_unit_to_its_own_topics_and_lets_only_stations_acknowledge(pki: Path):
    acl = (pki / "mosquitto.acl").read_text()
    unit = acl.split(f"user unit:{AGENCY}:unit-01\n")[1].split("\n\n")[0].splitlines()
    assert f"topic write {PREFIX}/unit-01/batch" in unit and f"topic read {PREFIX}/unit-01/ack" in unit
    assert not any("unit-02" in line or "+" in line or "#" in line for line in unit)
    assert not any(line.startswith(("topic write", "topic readwrite")) and line.endswith(("/ack", "/hotlist")) for line in unit)
    station = acl.split(f"user station:{AGENCY}:hq\n")[1].split("\n\n")[0].splitlines()
    assert f"topic write {PREFIX}/+/ack" in station


def test_the_broker_takes_only_certificates_of_the_agency_ca_that_are_not_revoked(tmp_path: Path, pki: Path, broker):
    ca = pki / "ca.crt"
    # without a certificate: refused; with the unit's: connected
    bare = Client(broker.port, ca)
    assert not bare.ok
    good = _unit(broker, pki, "unit-01")
    assert good.ok, good.error
    good.close()
    # a certificate of another CA, with the same names: refused
    other = tmp_path / "other-pki"
    config = tmp_path / "other.toml"
    config.write_text(f'[agent]\nagency = "{AGENCY}"\ndata_dir = "{tmp_path / "other-data"}"\n')
    assert run_cli("--config", config, "pki", "init", "--dir", other).code == 0
    assert run_cli("--config", config, "pki", "issue", "unit", "unit-01", "--dir", other).code == 0
    forged = Client(broker.port, ca, other / "unit" / "unit-01.crt", other / "unit" / "unit-01.key")
    assert not forged.ok
    # revoked: a stolen car's unit is refused once the broker has the new CRL; its neighbour still connects
    result = run_cli("--config", tmp_path / "station.toml", "pki", "revoke", "unit-02", "--dir", pki)
    assert result.code == 0 and "restart" in result.out
    assert "unit-02" not in (pki / "mosquitto.acl").read_text()
    broker.stop()
    restarted = _broker(tmp_path, pki)
    try:
        stolen = _unit(restarted, pki, "unit-02")
        assert not stolen.ok
        # the unit's own sync says why, naming the broker and the certificate; its reads stay waiting
        unit = tmp_path / "unit-02.toml"
        keys = pki / "unit"
        unit.write_text(f'[agent]\nunit_id = "unit-02"\nagency = "{AGENCY}"\ndata_dir = "{tmp_path / "u2"}"\n'
                        f'[sync]\nbroker = "{restarted.url}"\ntls_ca = "{pki / "ca.crt"}"\n'
                        f'tls_cert = "{keys / "unit-02.crt"}"\ntls_key = "{keys / "unit-02.key"}"\n')
        refused = run_cli("--config", unit, "sync", "--once", "--timeout", "3")
        assert refused.code == 1 and "revoked" in refused.err and "unit-02.crt" in refused.err
        assert f"127.0.0.1:{restarted.port}" in refused.err
        neighbour = _unit(restarted, pki, "unit-01")
        assert neighbour.ok, neighbour.error
        neighbour.close()
    finally:
        restarted.stop()


def test_a_unit_publishes_and_reads_only_under_its_own_prefix(pki: Path, broker):
    station = _station(broker, pki)
    assert station.ok, station.error
    assert station.subscribe(f"$share/stations/{PREFIX}/+/batch")
    one = _unit(broker, pki, "unit-01")
    assert one.ok, one.error
    # its own batch arrives; a batch under unit-02's prefix is refused and never reaches the station
    assert one.publish(f"{PREFIX}/unit-01/batch", b"mine") == 0
    assert one.publish(f"{PREFIX}/unit-02/batch", b"forged") == 135  # not authorised
    time.sleep(0.5)
    assert [p for _, p in station.messages] == [b"mine"]
    # it never reads another unit's reads or acknowledgements (Mosquitto grants the subscription and
    # checks each message as it goes out: nothing of unit-02's reaches it, while the station has them)
    for topic in (f"{PREFIX}/unit-02/batch", f"{PREFIX}/+/batch", f"{PREFIX}/unit-02/ack", f"{PREFIX}/#"):
        one.subscribe(topic)
    two = _unit(broker, pki, "unit-02")
    assert two.subscribe(f"{PREFIX}/unit-02/ack")
    assert two.publish(f"{PREFIX}/unit-02/batch", b"theirs") == 0
    assert station.publish(f"{PREFIX}/unit-02/ack", b"theirs stored") == 0
    assert _arrives(station, b"theirs") and _arrives(two, b"theirs stored")
    time.sleep(0.3)
    assert one.messages == []
    two.close()
    # only the station acknowledges: a unit's forged acknowledgement is refused, the station's arrives
    assert one.publish(f"{PREFIX}/unit-01/ack", b"forged ack") == 135
    assert one.subscribe(f"{PREFIX}/unit-01/ack")
    assert station.publish(f"{PREFIX}/unit-01/ack", b"stored") == 0
    assert _arrives(one, b"stored")
    assert {p for _, p in one.messages} == {b"stored"}  # once for each of its matching subscriptions
    one.close()
    station.close()


def test_certificates_near_their_end_are_warned_of_and_renewed_for_the_same_key(tmp_path: Path, pki: Path):
    from edge_agent.pki import expiry_warnings

    config = tmp_path / "station.toml"
    assert run_cli("--config", config, "pki", "issue", "unit", "unit-03", "--days", "10", "--dir", pki).code == 0
    cert = pki / "unit" / "unit-03.crt"
    (warning,) = expiry_warnings([cert, pki / "unit" / "unit-01.crt"])
    assert "unit-03.crt" in warning and "renew" in warning
    listed = run_cli("--config", config, "pki", "list", "--dir", pki)
    assert listed.code == 0 and "unit-03.crt" in listed.err
    key = (pki / "unit" / "unit-03.key").read_bytes()
    assert run_cli("--config", config, "pki", "renew", "unit", "unit-03", "--dir", pki).code == 0
    assert expiry_warnings([cert]) == [] and (pki / "unit" / "unit-03.key").read_bytes() == key
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=800)
    assert "expired" in expiry_warnings([cert], now=later)[0]
    (tmp_path / "junk.crt").write_text("not a certificate")
    assert "not a readable PEM certificate" in expiry_warnings([tmp_path / "junk.crt"])[0]


def test_a_station_or_unit_whose_certificate_runs_out_soon_warns_as_it_connects(tmp_path: Path, pki: Path, caplog):
    import logging

    from edge_agent.config import SyncConfig
    from edge_agent.sync import mqtt_client

    config = tmp_path / "station.toml"
    assert run_cli("--config", config, "pki", "issue", "station", "night", "--days", "20", "--dir", pki).code == 0
    for name, warned in (("night", True), ("hq", False)):
        caplog.clear()
        sync = SyncConfig(broker="mqtts://127.0.0.1:8883", tls_ca=pki / "ca.crt", tls_cert=pki / "station" / f"{name}.crt",
                          tls_key=pki / "station" / f"{name}.key")
        with caplog.at_level(logging.WARNING, logger="edge_agent.sync.link"):
            mqtt_client("station", sync)
        assert ("night.crt: certificate expires on" in caplog.text) == warned


def test_through_the_shipped_broker_only_the_stations_signed_answers_settle_and_no_unit_speaks_for_another(
        tmp_path: Path, pki: Path, broker):
    import hashlib
    import json

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from conftest import StationThread, seed_reads
    from edge_agent.store import Database
    from edge_agent.sync.payloads import AckFor, build_ack, build_batch, sign_payload

    keys = tmp_path / "station-keys"
    assert run_cli("hotlist", "keygen", "--out", keys).code == 0
    unit_keys = tmp_path / "unit-keys"  # the station takes only batches their unit signed
    certs = lambda role, name: (f'tls_ca = "{pki / "ca.crt"}"\ntls_cert = "{pki / role / (name + ".crt")}"\n'  # noqa: E731
                                f'tls_key = "{pki / role / (name + ".key")}"\n')

    def unit_config(unit: str) -> Path:
        path = tmp_path / f"{unit}.toml"
        path.write_text(f'[agent]\nunit_id = "{unit}"\nagency = "{AGENCY}"\ndata_dir = "{tmp_path / unit}"\n'
                        f'[sync]\nbroker = "{broker.url}"\n{certs("unit", unit)}ack_timeout_s = 2.0\n'
                        f'station_key = "{keys / "hotlist-signing.pub"}"\nsigning_key = "{unit_keys / (unit + ".key")}"\n')
        return path

    for unit in ("unit-01", "unit-02"):
        bare = tmp_path / f"{unit}-bare.toml"
        bare.write_text(f'[agent]\nunit_id = "{unit}"\nagency = "{AGENCY}"\n')
        assert run_cli("--config", bare, "sync", "keygen", "--out", unit_keys).code == 0
    station_text = (f'[agent]\nagency = "{AGENCY}"\n[sync]\n{certs("station", "hq")}'
                    f'[station]\nsigning_key = "{keys / "hotlist-signing.key"}"\nunit_keys = "{unit_keys}"\n')
    one = unit_config("unit-01")
    # someone holding a station certificate, but not the station's signing key, hears every answer
    rogue = Client(broker.port, pki / "ca.crt", pki / "station" / "hq.crt", pki / "station" / "hq.key")
    genuine: list[tuple[bytes, str]] = []
    other_key = Ed25519PrivateKey.generate()
    armed = []

    def hear(client, userdata, m):
        props = dict(getattr(m.properties, "UserProperty", None) or [])
        if m.topic.endswith("/ack"):
            if "alpr-signature" in props and not armed:
                genuine.append((m.payload, props["alpr-signature"]))
            return
        if not armed:
            return
        batch = json.loads(m.payload)
        to = AckFor("alpr.ack.v4", AGENCY, "unit-01", hashlib.sha256(m.payload).hexdigest())
        ack = build_ack(to, batch["batch_id"], "stored", "2026-11-21T08:00:00Z", "hq", "reads", len(batch["items"]), 0)
        answers = [(ack, None), (ack, sign_payload(other_key, ack))]  # unsigned; signed by another key
        for payload, signature in genuine:  # an earlier batch's genuine answer, replayed as is and altered
            answers += [(payload, signature),
                        (payload.replace(json.loads(payload)["batch_id"].encode(), batch["batch_id"].encode()), signature)]
        for payload, signature in answers:  # (never wait for a PUBACK in a callback)
            props = Properties(mqtt.PacketTypes.PUBLISH)
            if signature:
                props.UserProperty = [("alpr-signature", signature)]
            rogue.client.publish(f"{PREFIX}/unit-01/ack", payload, qos=1, properties=props)

    rogue.client.on_message = hear
    assert rogue.subscribe(f"{PREFIX}/unit-01/batch")
    # the station role reads no answers; a copy of unit-01's certificate does (its own): the rogue has both
    eavesdropper = _unit(broker, pki, "unit-01")
    eavesdropper.client.on_message = hear
    assert eavesdropper.subscribe(f"{PREFIX}/unit-01/ack")
    seed_reads(tmp_path / "unit-01", 20)
    station = StationThread(tmp_path / "station", broker.url, name="hq", config_text=station_text)
    try:
        done = run_cli("--config", one, "sync", "--once", "--json")  # the station's signed answers settle
        assert done.code == 0 and json.loads(done.out)["reads_waiting"] == 0
        assert station.stats()["reads"] == 20 and genuine
    finally:
        station.stop()
    # the station is down: whatever answers the next batch is the rogue, and nothing may be marked sent
    seed_reads(tmp_path / "unit-01", 5, seed=3)
    armed.append(True)
    forged = run_cli("--config", one, "sync", "--once", "--json", "--drain-timeout", "4")
    assert forged.code == 1 and json.loads(forged.out)["reads_waiting"] == 5
    assert json.loads(forged.out)["acks_refused"] >= 4
    rogue.close()
    eavesdropper.close()
    station = StationThread(tmp_path / "station", broker.url, name="hq", config_text=station_text)
    try:
        assert run_cli("--config", one, "sync", "--once").code == 0  # the station back: its answer settles them
        assert station.stats()["reads"] == 25
        two = Client(broker.port, pki / "ca.crt", pki / "unit" / "unit-02.crt", pki / "unit" / "unit-02.key")
        (real,) = seed_reads(tmp_path / "unit-01", 1, seed=5)
        item = {"id": real, "captured_at": "2026-11-21T08:00:00Z", "camera_id": "front", "plate": "0FAKE00",
                "confidence": 0.9, "state": "CA", "state_confidence": 0.9, "candidates": [["0FAKE00", 0.9]],
                "box": [1, 2, 3, 4], "hits": [], "evidence_hold": False, "plate_jpeg": "/9j/"}
        key = load_private_key(unit_keys / "unit-02.key")

        def signed(payload: bytes) -> Properties:
            props = Properties(mqtt.PacketTypes.PUBLISH)
            props.UserProperty = [("alpr-signature", sign_payload(key, payload))]
            return props

        # unit-02, on its own topic: an unsigned batch, and a signed one that says it is unit-01's: refused
        unsigned = build_batch("11111111-2222-3333-4444-555555555554", "reads", AGENCY, "unit-02",
                               "2026-11-21T08:00:00Z", [item])
        claims = build_batch("11111111-2222-3333-4444-555555555555", "reads", AGENCY, "unit-01",
                             "2026-11-21T08:00:00Z", [item])
        two.client.publish(f"{PREFIX}/unit-02/batch", unsigned, qos=1)
        two.client.publish(f"{PREFIX}/unit-02/batch", claims, qos=1, properties=signed(claims))
        # ... and a made-up read of its own under unit-01's next read id, before unit-01's arrives: kept apart
        own = build_batch("11111111-2222-3333-4444-666666666666", "reads", AGENCY, "unit-02",
                          "2026-11-21T08:00:00Z", [item])
        two.client.publish(f"{PREFIX}/unit-02/batch", own, qos=1, properties=signed(own))
        deadline = time.monotonic() + 10
        while station.stats()["reads"] < 26 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        two.close()
        assert run_cli("--config", one, "sync", "--once").code == 0
        by_unit = {u["unit"]: u["reads"] for u in station.stats()["by_unit"]}
        assert by_unit == {"unit-01": 26, "unit-02": 1}
        text = "\n".join(station.lines)
        assert "not signed" in text and "says it is from" in text and station.stats()["payloads_refused"] == 2
        with station.store._tx() as cur:
            plates = dict(cur.query("SELECT unit, plate FROM reads WHERE id = ?", (real,)))
        assert plates["unit-02"] == "0FAKE00" and plates["unit-01"] != "0FAKE00"
        with Database.in_data_dir(tmp_path / "unit-01") as db:
            assert db.stats().waiting == 0
    finally:
        station.stop()


def test_a_broker_that_offers_no_tls_is_named_and_reads_wait(tmp_path: Path, pki: Path, mosquitto):
    from conftest import seed_reads

    seed_reads(tmp_path / "unit", 3)
    config = tmp_path / "unit.toml"
    keys = pki / "unit"
    config.write_text(f'[agent]\nunit_id = "unit-01"\nagency = "{AGENCY}"\ndata_dir = "{tmp_path / "unit"}"\n'
                      f'[sync]\nbroker = "mqtts://127.0.0.1:{mosquitto.port}"\ntls_ca = "{pki / "ca.crt"}"\n'
                      f'tls_cert = "{keys / "unit-01.crt"}"\ntls_key = "{keys / "unit-01.key"}"\n')
    refused = run_cli("--config", config, "sync", "--once", "--json", "--timeout", "3")
    assert refused.code == 1 and f"127.0.0.1:{mosquitto.port}" in refused.err
    assert "offers no TLS" in refused.err or "does not offer TLS" in refused.err
    assert "0 reads" not in refused.out and json.loads(refused.out or '{"reads_waiting": 3}')["reads_waiting"] == 3
