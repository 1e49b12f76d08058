"""Store and forward against a real Mosquitto and the real station receiver: every read reaches the station once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import REPO, Mosquitto, StationThread, Subscriber, run_cli, seed_reads
from edge_agent.config import load_config
from edge_agent.store import Database
from edge_agent.store.outbox import BatchLimits, acknowledge_batch, batch_items, pending_batches, refuse_batch, take_batch
from edge_agent.sync import MqttSync, backoff_delay
from edge_agent.sync.payloads import AckFor, PayloadError, build_ack, build_batch, parse_batch, sign_payload, validate

AGENCY, UNIT = "test-pd", "car-7"


def unit_config(tmp: Path, broker: str, extra: str = "", name: str = "unit.toml") -> Path:
    path = tmp / name
    path.write_text(
        f'[agent]\nunit_id = "{UNIT}"\nagency = "{AGENCY}"\ndata_dir = "{tmp / "unit"}"\n'
        f'[sync]\nbroker = "{broker}"\nack_timeout_s = 3.0\nbackoff_min_s = 0.2\nbackoff_max_s = 1.0\n{extra}\n'
        + ("insecure = true\n" if broker.startswith("mqtt://") else "")
    )
    return path


def station_ids(station: StationThread) -> list[str]:
    return station.store.read_ids()


def unit_sent_ids(data_dir: Path) -> set[str]:
    with Database.in_data_dir(data_dir) as db:
        return {r[0] for r in db.query("SELECT id FROM reads WHERE sent_at IS NOT NULL")}


def assert_exactly_once(station: StationThread, ids: list[str], data_dir: Path) -> None:
    held = station_ids(station)
    assert len(held) == len(set(held)) == len(ids), (len(held), len(set(held)), len(ids))
    assert set(held) == set(ids)
    assert unit_sent_ids(data_dir) <= set(held), "the unit marked reads sent that the station lacks"


def wait_until(condition, timeout: float, poll: float = 0.02) -> None:
    """Poll until the condition holds or the time is up (the test's own assertions say what was expected)."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(poll)


def drain_until_done(sync: MqttSync, data_dir: Path, timeout: float = 60.0) -> None:
    """What the agent's sync thread does: drain again after each interruption, until nothing waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sync.connected.wait(1):
            sync.drain(timeout=10)
        with Database.in_data_dir(data_dir) as db:
            if db.stats().waiting == 0 and not pending_batches(db, 0):
                return
    raise AssertionError("reads still waiting")


# --- the outbox, on a real SQLite file ----------------------------------------------------------------


def test_batches_take_alerts_and_hits_first_and_settle_only_on_acknowledgement(tmp_path: Path):
    data = tmp_path / "unit"
    seed_reads(data, 30, hits_every=0)
    hit_ids = seed_reads(data, 3, hits_every=1, seed=1)
    with Database.in_data_dir(data) as db:
        db.audit("officer-1", "alerts.list", "open=True", "shift review")
        first = take_batch(db, BatchLimits(reads=3))
        assert first.kind == "reads"
        items = batch_items(db, first)
        assert {i["id"] for i in items} == set(hit_ids) and all(i["hits"] for i in items)  # hits go first
        rest = take_batch(db)
        assert rest.items == 30
        assert db.stats().sent == 0
        assert acknowledge_batch(db, "00000000-0000-0000-0000-000000000000") is None  # never sent: refused
        assert acknowledge_batch(db, first.id).items == 3
        assert acknowledge_batch(db, rest.id).items == 30
        assert db.stats().sent == 33
        assert acknowledge_batch(db, first.id) is None  # a second acknowledgement changes nothing
        audit = take_batch(db)
        assert audit.kind == "audit"
        assert refuse_batch(db, audit.id, "station says no")
        assert pending_batches(db) == []  # refused: it waits before it is tried again
        assert [b.id for b in pending_batches(db, retry_refused_after_s=0)] == [audit.id]


def test_a_batch_taken_before_a_restart_goes_out_again_with_the_same_records(tmp_path: Path):
    data = tmp_path / "unit"
    seed_reads(data, 10)
    with Database.in_data_dir(data) as db:
        batch = take_batch(db)
        before = batch_items(db, batch)
    with Database.in_data_dir(data) as db:  # the unit lost power: the batch is still there
        [again] = pending_batches(db)
        assert again == batch and batch_items(db, again) == before
        assert take_batch(db) is None  # its records are not taken twice


def test_payloads_are_what_the_json_schemas_in_the_repository_say(tmp_path: Path):
    data = tmp_path / "unit"
    seed_reads(data, 5, hits_every=2)
    with Database.in_data_dir(data) as db:
        batch = take_batch(db)
        payload = build_batch(batch.id, batch.kind, AGENCY, UNIT, "2026-11-21T08:00:00.000Z", batch_items(db, batch))
    incoming = parse_batch(payload, 1 << 20)
    assert len(incoming.items) == 5 and incoming.items[0]["plate_jpeg"][:2] == b"\xff\xd8"  # a real JPEG
    assert incoming.schema == "alpr.batch.v5"
    assert all(i["position"] is None and i["clock"] == "system" for i in incoming.items)  # seeded with no GPS
    for deep in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        with pytest.raises(PayloadError, match="nested deeper"):
            parse_batch(deep, 16 << 20)
    to = AckFor("alpr.ack.v4", AGENCY, UNIT, incoming.sha256)
    validate("alpr.ack.v4", json.loads(build_ack(to, batch.id, "stored", "2026-11-21T08:00:01Z", "s", "reads", 5, 0)))
    # units of earlier versions send v4 and v3 (reads as now), v2 and v1 batches (reads without position and
    # clock), answered in kind
    for version in ("alpr.batch.v4", "alpr.batch.v3"):
        assert parse_batch(payload.replace(b'"alpr.batch.v5"', f'"{version}"'.encode()), 1 << 20).schema == version
    body = json.loads(payload)
    for item in body["items"]:
        del item["position"], item["clock"]
    for version, answer in (("alpr.batch.v2", "alpr.ack.v2"), ("alpr.batch.v1", "alpr.ack.v1")):
        with pytest.raises(PayloadError, match=f"not a valid {version}"):
            parse_batch(payload.replace(b'"alpr.batch.v5"', f'"{version}"'.encode()), 1 << 20)
        old = parse_batch(json.dumps({**body, "schema": version}).encode(), 1 << 20)
        assert old.schema == version and len(old.items) == 5
        to = AckFor(answer, AGENCY, UNIT, old.sha256)
        validate(answer, json.loads(build_ack(to, batch.id, "stored", "2026-11-21T08:00:01Z", "s", "reads", 5, 0)))
    schemas = sorted(p.name for p in (REPO / "edge_agent" / "sync" / "schemas").glob("*.json"))
    assert schemas == ["alpr.ack.v1.json", "alpr.ack.v2.json", "alpr.ack.v3.json", "alpr.ack.v4.json",
                       "alpr.batch.v1.json", "alpr.batch.v2.json", "alpr.batch.v3.json", "alpr.batch.v4.json",
                       "alpr.batch.v5.json", "alpr.plates.v1.json", "alpr.roster.v1.json", "alpr.status.v1.json",
                       "alpr.status.v2.json"]


@given(st.integers(0, 100), st.floats(0.01, 10), st.floats(0.01, 600), st.floats(0, 0.999999))
def test_reconnect_backoff_grows_to_its_cap_with_jitter(attempt, base, cap, draw):
    cap = max(cap, base)
    delay = backoff_delay(attempt, base, cap, draw)
    step = min(cap, base * 2 ** attempt)
    assert step / 2 <= delay <= step <= cap
    assert backoff_delay(attempt + 1, base, cap, draw) >= delay  # never shrinks for the same draw


# --- with a real broker and station ------------------------------------------------------------------


def test_sync_once_drains_reads_hits_alerts_and_audit_and_station_counts_them(tmp_path: Path, mosquitto):
    data = tmp_path / "unit"
    ids = seed_reads(data, 450, hits_every=50, scene=True)
    config = unit_config(tmp_path, mosquitto.url)
    station = StationThread(tmp_path / "station", mosquitto.url)
    try:
        result = run_cli("--config", config, "sync", "--once", "--json")
        assert result.code == 0, result.err
        summary = json.loads(result.out)
        assert summary["sent"]["reads"] == 450 and summary["sent"]["images"] == 450, json.dumps(summary)
        assert summary["reads_waiting"] == 0
        assert_exactly_once(station, ids, data)
        stats = json.loads(run_cli("--data-dir", tmp_path / "station", "station", "stats", "--json").out)
        assert stats["reads"] == 450 and stats["reads_with_hits"] == 9 and stats["scene_images"] == 450
        assert stats["duplicates_refused"] == 0 and stats["units"] == 1
        unit = json.loads(run_cli("--config", config, "stats", "--json").out)
        assert (unit["reads"], unit["sent"], unit["waiting"]) == (450, 450, 0)
    finally:
        station.stop()


def test_the_broker_down_when_the_unit_starts(tmp_path: Path):
    broker = Mosquitto(tmp_path)
    data = tmp_path / "unit"
    ids = seed_reads(data, 300)
    config = load_config(unit_config(tmp_path, broker.url))
    down = run_cli("--config", tmp_path / "unit.toml", "sync", "--once", "--timeout", "1")
    assert down.code == 1 and "not reachable" in down.err
    with Database.in_data_dir(data) as db:
        sync = MqttSync(config, db)
        sync.start()  # keeps trying, with backoff
        time.sleep(1.5)
        assert not sync.connected.is_set()
        broker.start()
        station = StationThread(tmp_path / "station", broker.url)
        try:
            assert sync.connected.wait(10), "the unit did not reconnect once the broker came up"
            drain_until_done(sync, data)
        finally:
            sync.stop()
    try:
        assert_exactly_once(station, ids, data)
    finally:
        station.stop()
        broker.stop()


def test_broker_killed_and_restarted_in_the_middle_of_a_drain(tmp_path: Path):
    broker = Mosquitto(tmp_path)
    broker.start()
    data = tmp_path / "unit"
    ids = seed_reads(data, 6000)
    config = load_config(unit_config(tmp_path, broker.url, "batch_size = 100\nmax_in_flight = 2"))
    station = StationThread(tmp_path / "station", broker.url)
    with Database.in_data_dir(data) as db:
        sync = MqttSync(config, db)
        sync.start()
        assert sync.connected.wait(10)
        worker = threading.Thread(target=drain_until_done, args=(sync, data, 90), daemon=True)
        worker.start()
        wait_until(lambda: len(station_ids(station)) >= 300, 30)
        broker.kill()  # mid-drain, no goodbye
        assert len(station_ids(station)) < 6000, "the drain finished before the broker was killed"
        time.sleep(1.0)
        broker.start()
        worker.join(90)
        sync.stop()
    try:
        assert_exactly_once(station, ids, data)
    finally:
        station.stop()
        broker.stop()


def _agent_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_agent_killed_with_sigkill_in_the_middle_of_a_batch_then_restarted(tmp_path: Path, mosquitto):
    data = tmp_path / "unit"
    ids = seed_reads(data, 8000)
    config = unit_config(tmp_path, mosquitto.url, "batch_size = 200")
    station = StationThread(tmp_path / "station", mosquitto.url)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", str(config), "sync", "--once"],
                                env=_agent_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: len(station_ids(station)) >= 1000, 60, poll=0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert len(station_ids(station)) < 8000, "the drain finished before the kill"
        with Database.in_data_dir(data) as db:
            assert db.query("PRAGMA integrity_check")[0][0] == "ok"
            assert {r[0] for r in db.query("SELECT id FROM reads WHERE sent_at IS NOT NULL")} <= set(station_ids(station))
        again = run_cli("--config", config, "sync", "--once")
        assert again.code == 0, again.err
        assert_exactly_once(station, ids, data)
        assert station.stats()["duplicates_refused"] >= 0
    finally:
        station.stop()


def test_station_restarted_while_a_unit_drains(tmp_path: Path):
    broker = Mosquitto(tmp_path, persistence=False)
    broker.start()
    data = tmp_path / "unit"
    ids = seed_reads(data, 5000)
    config = unit_config(tmp_path, broker.url, "batch_size = 100")
    station_dir = tmp_path / "station"
    station_config = tmp_path / "station.toml"
    station_config.write_text("[sync]\ninsecure = true\n")  # this test's broker is plain MQTT on loopback
    cmd = [sys.executable, "-m", "edge_agent", "--config", str(station_config), "--data-dir", str(station_dir),
           "station", "--broker", broker.url, "--name", "receiver-1"]
    proc = subprocess.Popen(cmd, env=_agent_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        unit = subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", str(config), "sync", "--once",
                                 "--drain-timeout", "120"], env=_agent_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        db_path = station_dir / "station.sqlite3"

        def held() -> int:
            try:
                with closing(sqlite3.connect(db_path, timeout=10)) as c:
                    return c.execute("SELECT COUNT(*) FROM reads").fetchone()[0]
            except sqlite3.OperationalError:  # not created yet
                return 0

        wait_until(lambda: db_path.exists() and held() >= 500, 60, poll=0.05)
        proc.send_signal(signal.SIGKILL)  # the station dies mid-stream, without a goodbye
        proc.wait(10)
        time.sleep(1.0)
        proc = subprocess.Popen(cmd, env=_agent_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out, err = unit.communicate(timeout=150)
        assert unit.returncode == 0, err
    finally:
        proc.terminate()
        proc.wait(10)
        broker.stop()
    with sqlite3.connect(station_dir / "station.sqlite3") as c:
        held = [r[0] for r in c.execute("SELECT id FROM reads")]
    assert len(held) == len(set(held)) == 5000 and set(held) == set(ids)
    assert unit_sent_ids(data) == set(ids)


def test_the_same_batch_delivered_twice_is_stored_once_and_counted_as_duplicates(tmp_path: Path, mosquitto):
    data = tmp_path / "unit"
    ids = seed_reads(data, 20)
    station = StationThread(tmp_path / "station", mosquitto.url)
    acks = Subscriber(mosquitto.port, f"alpr/v1/{AGENCY}/{UNIT}/ack")
    try:
        with Database.in_data_dir(data) as db:
            batch = take_batch(db)
            payload = build_batch(batch.id, batch.kind, AGENCY, UNIT, "2026-11-21T08:00:00Z", batch_items(db, batch))
        publisher = Subscriber(mosquitto.port, "unused/#")
        for _ in range(2):
            publisher.client.publish(f"alpr/v1/{AGENCY}/{UNIT}/batch", payload, qos=1)
        assert acks.wait_for(lambda m: len(m) >= 2)
        answers = [json.loads(p) for _, p, _ in acks.messages]
        assert [(a["status"], a["accepted"], a["duplicates"]) for a in answers] == [("stored", 20, 0), ("stored", 0, 20)]
        stats = station.stats()
        assert stats["reads"] == 20 and stats["duplicates_refused"] == 20 and stats["batch_deliveries"] == 2
        assert sorted(station_ids(station)) == sorted(ids)
        publisher.close()
    finally:
        acks.close()
        station.stop()


def test_shared_subscription_splits_batches_between_two_receivers(tmp_path: Path, mosquitto):
    data = tmp_path / "unit"
    ids = seed_reads(data, 2000)
    config = unit_config(tmp_path, mosquitto.url, "batch_size = 50")
    a = StationThread(tmp_path / "station", mosquitto.url, name="receiver-a")
    b = StationThread(tmp_path / "station", mosquitto.url, name="receiver-b")  # the same database, a second receiver
    try:
        assert run_cli("--config", config, "sync", "--once").code == 0
        assert_exactly_once(a, ids, data)
        with sqlite3.connect(tmp_path / "station" / "station.sqlite3") as c:
            per = dict(c.execute("SELECT receiver, COUNT(*) FROM batches WHERE kind = 'reads' GROUP BY receiver").fetchall())
        assert set(per) == {"receiver-a", "receiver-b"} and sum(per.values()) == 40
    finally:
        a.stop()
        b.stop()


def test_status_is_retained_with_a_last_will_when_the_unit_dies(tmp_path: Path, mosquitto):
    seed_reads(tmp_path / "unit", 1)
    config = unit_config(tmp_path, mosquitto.url)
    script = ("import sys, time; from edge_agent.config import load_config; from edge_agent.store import Database;"
              "from edge_agent.sync import MqttSync; c = load_config(sys.argv[1]);"
              "s = MqttSync(c, Database.in_data_dir(c.data_dir), status=lambda: {'storage': 'ok', 'waiting': 1});"
              "s.start(); s.connected.wait(10); s.publish_status(); print('up', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script, str(config)], env=_agent_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"
    time.sleep(0.3)
    watcher = Subscriber(mosquitto.port, f"alpr/v1/{AGENCY}/{UNIT}/status")
    try:
        assert watcher.wait_for(lambda m: m and m[-1][2])  # retained: a station that subscribes later sees it
        status = json.loads(watcher.messages[-1][1])
        assert status["state"] == "online" and status["waiting"] == 1
        proc.kill()  # power cut: no goodbye, the broker sends the will
        assert watcher.wait_for(lambda m: json.loads(m[-1][1])["state"] == "offline", timeout=10)
    finally:
        proc.kill()
        watcher.close()


def test_the_goodbye_is_the_last_status_however_late_another_thread_reports(tmp_path: Path, mosquitto):
    # the sync thread reports its status after each drain; one that finishes as the unit stops must not
    # leave the station showing a unit that has gone as online
    seed_reads(tmp_path / "unit", 1)
    config = load_config(unit_config(tmp_path, mosquitto.url))
    sync = MqttSync(config, Database.in_data_dir(config.data_dir), status=lambda: {"storage": "ok", "waiting": 0})
    sync.start()
    assert sync.connected.wait(10)
    done = threading.Event()

    def report() -> None:
        while not done.wait(0.002):
            sync.publish_status()

    reporter = threading.Thread(target=report)
    reporter.start()
    time.sleep(0.2)
    try:
        sync.stop()
    finally:
        time.sleep(0.2)
        done.set()
        reporter.join()
    watcher = Subscriber(mosquitto.port, f"alpr/v1/{AGENCY}/{UNIT}/status")
    try:
        assert watcher.wait_for(lambda m: m and m[-1][2])
        assert json.loads(watcher.messages[-1][1])["state"] == "offline"
    finally:
        watcher.close()


# --- security: TLS with a client certificate, passwords, signed batches ----------------------------


def _certificates(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate for the unit, made with `cryptography`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def make(name: str, issuer_key=None, issuer_name=None, ca=False, san=None):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name or subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(issuer_key or key, hashes.SHA256())
        (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                               serialization.PrivateFormat.TraditionalOpenSSL,
                                                               serialization.NoEncryption()))
        return key, subject

    ca_key, ca_name = make("ca", ca=True)
    make("server", ca_key, ca_name, san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    make("car-7", ca_key, ca_name)
    make("station", ca_key, ca_name)
    return {n: folder / f"{n}.crt" for n in ("ca", "server", "car-7", "station")}


def test_tls_with_a_client_certificate(tmp_path: Path):
    certs = tmp_path / "pki"
    certs.mkdir()
    _certificates(certs)
    broker = Mosquitto(tmp_path, extra=(
        f"cafile {certs / 'ca.crt'}\ncertfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
        "require_certificate true\nuse_identity_as_username true\nallow_anonymous false"))
    broker.start()
    data = tmp_path / "unit"
    ids = seed_reads(data, 100)
    tls = lambda who: f'tls_ca = "{certs / "ca.crt"}"\ntls_cert = "{certs / (who + ".crt")}"\ntls_key = "{certs / (who + ".key")}"'  # noqa: E731
    # bad files are named at start: a key others can read, a CA file that is not a certificate
    (certs / "car-7.key").chmod(0o644)
    wide = run_cli("--config", unit_config(tmp_path, broker.url, tls("car-7")), "sync", "--once")
    assert wide.code == 2 and "car-7.key" in wide.err and "chmod 600" in wide.err
    for name in ("car-7", "station"):
        (certs / f"{name}.key").chmod(0o600)
    (certs / "junk.crt").write_text("not a certificate")
    junk = run_cli("--config", unit_config(tmp_path, broker.url, f'tls_ca = "{certs / "junk.crt"}"', name="j.toml"),
                   "sync", "--once")
    assert junk.code == 2 and "junk.crt" in junk.err and "not a PEM certificate" in junk.err
    config = unit_config(tmp_path, broker.url, tls("car-7"))
    no_cert = unit_config(tmp_path, broker.url, f'tls_ca = "{certs / "ca.crt"}"', name="nocert.toml")
    station = StationThread(tmp_path / "station", broker.url, config_text=f"[sync]\n{tls('station')}\n")
    try:
        refused = run_cli("--config", no_cert, "sync", "--once", "--timeout", "2")
        assert refused.code == 1 and "not reachable" in refused.err
        result = run_cli("--config", config, "sync", "--once")
        assert result.code == 0, result.err
        assert_exactly_once(station, ids, data)
    finally:
        station.stop()
        broker.stop()


def test_username_and_password(tmp_path: Path):
    passwords = tmp_path / "passwd"
    passwords.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "car-7", "s3cret-car"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "station", "s3cret-station"], check=True)
    broker = Mosquitto(tmp_path, extra=f"allow_anonymous false\npassword_file {passwords}")
    broker.start()
    data = tmp_path / "unit"
    ids = seed_reads(data, 50)
    wrong = unit_config(tmp_path, broker.url, 'username = "car-7"\npassword = "guess"', name="wrong.toml")
    right = unit_config(tmp_path, broker.url, 'username = "car-7"\npassword = "s3cret-car"')
    station = StationThread(tmp_path / "station", broker.url,
                            config_text='[sync]\nusername = "station"\npassword = "s3cret-station"\n')
    try:
        refused = run_cli("--config", wrong, "sync", "--once", "--timeout", "2")
        assert refused.code == 1 and "refused the connection" in refused.err
        # credentials in the URL are used, not dropped, and never shown
        in_url = broker.url.replace("mqtt://", "mqtt://car-7:guess@")
        refused = run_cli("--config", unit_config(tmp_path, in_url, name="url.toml"), "sync", "--once", "--timeout", "2")
        assert refused.code == 1 and "refused the connection" in refused.err and "guess" not in refused.err
        clash = run_cli("--config", right, "sync", "--once", "--broker", in_url)
        assert clash.code == 2 and "guess" not in clash.err and "car-7:***@" in clash.err
        bad_port = run_cli("--config", right, "sync", "--once", "--broker", "mqtt://car-7:s3cret-car@host:port")
        assert bad_port.code == 2 and "s3cret-car" not in bad_port.err
        plain = unit_config(tmp_path, broker.url, name="plain.toml")
        right_url = broker.url.replace("mqtt://", "mqtt://car-7:s3cret-car@")
        done = run_cli("--config", plain, "sync", "--once", "--broker", right_url)
        assert done.code == 0 and "s3cret-car" not in done.out + done.err
        assert_exactly_once(station, ids, data)
    finally:
        station.stop()
        broker.stop()


def test_signed_batches_and_every_kind_of_bad_payload_at_the_station(tmp_path: Path, mosquitto):
    keys = tmp_path / "keys"
    config = unit_config(tmp_path, mosquitto.url, f'signing_key = "{keys / (UNIT + ".key")}"')
    (keys).mkdir()
    assert run_cli("--config", unit_config(tmp_path, mosquitto.url, name="plain.toml"), "sync", "keygen", "--out",
                   keys).code == 0
    station_keys = tmp_path / "unit-keys"
    station_keys.mkdir()
    (station_keys / f"{UNIT}.pub").write_bytes((keys / f"{UNIT}.pub").read_bytes())
    station = StationThread(tmp_path / "station", mosquitto.url,
                            config_text=f'[station]\nunit_keys = "{station_keys}"\nmax_batch_mb = 1.0\n')
    acks = Subscriber(mosquitto.port, f"alpr/v1/{AGENCY}/+/ack")
    data = tmp_path / "unit"
    ids = seed_reads(data, 40)
    try:
        with Database.in_data_dir(data) as db:
            batch = take_batch(db)
            good = build_batch(batch.id, batch.kind, AGENCY, UNIT, "2026-11-21T08:00:00Z", batch_items(db, batch))
        topic = f"alpr/v1/{AGENCY}/{UNIT}/batch"
        body = json.loads(good)
        bad = {
            "malformed": b"{not json",
            "oversized": b"x" * (1024 * 1024 + 10),
            "wrong version": json.dumps({**body, "schema": "alpr.batch.v9"}).encode(),
            "bad field": json.dumps({**body, "items": [{**body["items"][0], "plate": "<script>"}]}).encode(),
        }
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        from edge_agent.hotlist.signing import load_private_key
        from edge_agent.sync.payloads import sign_payload

        key = load_private_key(keys / f"{UNIT}.key")

        def signed(payload: bytes, signature: str | None = None) -> Properties:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = [("alpr-signature", signature or sign_payload(key, payload))]
            return props

        acks.client.publish(topic, good, qos=1, properties=signed(good, "A" * 88))  # wrongly signed
        acks.client.publish(topic, good, qos=1)  # not signed at all
        for name, payload in bad.items():  # signed by the unit, but bad in themselves
            acks.client.publish(topic, payload, qos=1, properties=signed(payload))
        acks.client.publish(f"alpr/v1/{AGENCY}/car-99/batch", good, qos=1, properties=signed(good))  # no key for it
        wait_until(lambda: station.stats()["payloads_refused"] >= 7, 10, poll=0.05)
        time.sleep(0.3)
        stats = station.stats()
        assert stats["payloads_refused"] == 7 and stats["reads"] == 0
        text = "\n".join(station.lines)
        for words in ("wrongly signed", "not JSON", "over the limit", "not signed", "alpr.batch.v9",
                      "not a valid alpr.batch.v5", "no key for car-99"):
            assert words in text, words
        refusals = [json.loads(p) for _, p, _ in acks.messages]
        assert refusals and all(a["status"] == "refused" for a in refusals)
        # the unit keeps a refused batch's reads, and the real, signed drain still gets them all there
        result = run_cli("--config", config, "sync", "--once", "--json")
        assert result.code == 0, result.err
        assert sorted(station_ids(station)) == sorted(ids)
    finally:
        acks.close()
        station.stop()


def test_an_acknowledgement_for_a_batch_never_sent_is_refused_and_marks_nothing(tmp_path: Path, mosquitto, caplog):
    data = tmp_path / "unit"
    seed_reads(data, 10)
    config = load_config(unit_config(tmp_path, mosquitto.url))
    forger = Subscriber(mosquitto.port, "unused/#")
    with Database.in_data_dir(data) as db:
        sync = MqttSync(config, db)
        sync.start()
        try:
            assert sync.connected.wait(10)
            time.sleep(0.2)
            forged = AckFor("alpr.ack.v4", AGENCY, UNIT, "0" * 64)
            for payload in (build_ack(forged, "11111111-2222-3333-4444-555555555555", "stored",
                                      "2026-11-21T08:00:00Z", "x", "reads", 10, 0), b"\x00garbage"):
                forger.client.publish(f"alpr/v1/{AGENCY}/{UNIT}/ack", payload, qos=1)
            time.sleep(0.5)
            result = sync.drain(timeout=2)  # no station: nothing may be marked sent
            assert result.acks_refused == 2 and result.reads == 0
            assert db.stats().sent == 0
        finally:
            sync.stop()
            forger.close()
    assert "names a payload this unit did not send" in caplog.text


# --- PostgreSQL at the station -----------------------------------------------------------------------


def test_station_on_postgresql(tmp_path: Path, mosquitto, postgres):
    data = tmp_path / "unit"
    ids = seed_reads(data, 500, hits_every=100, scene=True)
    config = unit_config(tmp_path, mosquitto.url)
    station = StationThread(tmp_path / "station", mosquitto.url, db=postgres)
    try:
        assert run_cli("--config", config, "sync", "--once").code == 0
        assert_exactly_once(station, ids, data)
        stats = json.loads(run_cli("--data-dir", tmp_path / "station", "station", "stats", "--db", postgres,
                                   "--json").out)
        assert (stats["reads"], stats["reads_with_hits"], stats["scene_images"]) == (500, 5, 500)
    finally:
        station.stop()


def test_the_station_keeps_the_signed_hotlist_published_for_the_fleet(tmp_path: Path, mosquitto):
    from edge_agent.hotlist.signing import unpack
    from edge_agent.synthetic import write_hotlist

    keys = tmp_path / "keys"
    assert run_cli("hotlist", "keygen", "--out", keys).code == 0
    listing = write_hotlist(tmp_path / "hotlist.csv", {"7ABC123": "STOLEN_VEHICLE"})
    assert run_cli("hotlist", "sign", listing, "--key", keys / "hotlist-signing.key", "--version", "1").code == 0
    station = StationThread(tmp_path / "station", mosquitto.url,
                            config_text=f'[agent]\nagency = "{AGENCY}"\n[station]\nhotlist = "{listing}"\n'
                                        'hotlist_poll_s = 0.2\n')
    try:
        fleet = Subscriber(mosquitto.port, f"alpr/v1/{AGENCY}/hotlist")
        assert fleet.wait_for(lambda m: len(m) >= 1)
        envelope, data = unpack(fleet.messages[-1][1], "test")
        assert envelope.version == 1 and data == listing.read_bytes()
        later = Subscriber(mosquitto.port, f"alpr/v1/{AGENCY}/hotlist")  # a unit that comes online later
        assert later.wait_for(lambda m: m and m[-1][2])  # gets it too: retained
        later.close()
        write_hotlist(listing, {"7ABC123": "STOLEN_VEHICLE", "5TRK442": "FELONY_VEHICLE"})
        assert run_cli("hotlist", "sign", listing, "--key", keys / "hotlist-signing.key", "--version", "2").code == 0
        assert fleet.wait_for(lambda m: unpack(m[-1][1], "test")[0].version == 2)
        assert any("signed version 2" in line for line in station.lines)
        fleet.close()
    finally:
        station.stop()


def test_one_sync_per_data_directory_a_second_is_refused_until_the_first_ends(tmp_path: Path, mosquitto):
    config = unit_config(tmp_path, mosquitto.url)
    ids = seed_reads(tmp_path / "unit", 20)
    station = StationThread(tmp_path / "station", mosquitto.url)
    db = Database.in_data_dir(tmp_path / "unit")
    running = MqttSync(load_config(config), db)  # what `run` holds while it syncs
    try:
        second = run_cli("--config", config, "sync", "--once")
        assert second.code == 1 and "another sync" in second.err and str(os.getpid()) in second.err
        running.stop()
        # the agent's own sync ended: the same command now drains, under the same client id
        assert run_cli("--config", config, "sync", "--once").code == 0
        assert_exactly_once(station, ids, tmp_path / "unit")
    finally:
        running.stop()
        db.close()
        station.stop()


class AckForger:
    """Someone on the broker who answers every batch of the unit with acknowledgements of their own, and keeps
    the station's genuine answers to replay them."""

    def __init__(self, port: int, key=None):
        import hashlib

        import paho.mqtt.client as mqtt

        self.genuine: list[tuple[bytes, str]] = []
        self.key = key
        self.sent = 0
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

        def on_message(client, userdata, m):
            props = dict(getattr(m.properties, "UserProperty", None) or [])
            if m.topic.endswith("/ack"):
                if "alpr-signature" in props:
                    self.genuine.append((m.payload, props["alpr-signature"]))
                return
            if not self.armed or not m.topic.endswith("/batch"):
                return
            batch = json.loads(m.payload)
            to = AckFor("alpr.ack.v4", AGENCY, UNIT, hashlib.sha256(m.payload).hexdigest())
            forged = build_ack(to, batch["batch_id"], "stored", "2026-11-21T08:00:00Z", "forger", batch["kind"],
                               len(batch["items"]), 0)
            self.publish(forged)  # not signed at all
            if self.key is not None:
                self.publish(forged, sign_payload(self.key, forged))  # signed, by another key
            for payload, signature in self.genuine:
                self.publish(payload, signature)  # an earlier batch's genuine answer, replayed
                altered = payload.replace(json.loads(payload)["batch_id"].encode(), batch["batch_id"].encode())
                self.publish(altered, signature)  # ... and altered to name this batch

        self.armed = False
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"alpr/v1/{AGENCY}/{UNIT}/#", qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def publish(self, payload: bytes, signature: str | None = None) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)
        if signature:
            props.UserProperty = [("alpr-signature", signature)]
        self.client.publish(f"alpr/v1/{AGENCY}/{UNIT}/ack", payload, qos=1, properties=props)
        self.sent += 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_only_acknowledgements_the_station_signed_for_the_batch_sent_mark_reads_sent(tmp_path: Path, mosquitto):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    keys = tmp_path / "keys"
    assert run_cli("hotlist", "keygen", "--out", keys).code == 0  # the station's key; its .pub is pinned on the unit
    config = unit_config(tmp_path, mosquitto.url, f'station_key = "{keys / "hotlist-signing.pub"}"')
    station_text = f'[station]\nsigning_key = "{keys / "hotlist-signing.key"}"\n'
    forger = AckForger(mosquitto.port, Ed25519PrivateKey.generate())
    first = seed_reads(tmp_path / "unit", 30)
    station = StationThread(tmp_path / "station", mosquitto.url, config_text=station_text)
    try:
        assert run_cli("--config", config, "sync", "--once").code == 0  # the station's signed answers are taken
        assert_exactly_once(station, first, tmp_path / "unit")
        assert forger.genuine
    finally:
        station.stop()
    # the station is down: whatever answers the new batch is someone else, and nothing may be marked sent
    seed_reads(tmp_path / "unit", 10, seed=1)
    forger.armed = True
    with Database.in_data_dir(tmp_path / "unit") as db:
        sync = MqttSync(load_config(config), db)
        sync.start()
        try:
            assert sync.connected.wait(10)
            result = sync.drain(timeout=4)
        finally:
            sync.stop()
        assert forger.sent >= 4 and result.acks_refused >= 4 and result.reads == 0
        assert db.stats().waiting == 10
    forger.close()
    # the station back: its own answer settles the same batch
    station = StationThread(tmp_path / "station", mosquitto.url, config_text=station_text)
    try:
        done = run_cli("--config", config, "sync", "--once", "--json")
        assert done.code == 0 and json.loads(done.out)["reads_waiting"] == 0
        assert station.stats()["reads"] == 40
    finally:
        station.stop()
    # a unit that pins the station's key takes no unsigned answer, not even the station's own
    seed_reads(tmp_path / "unit", 5, seed=2)
    station = StationThread(tmp_path / "station", mosquitto.url)  # provisioned without its key
    try:
        refused = run_cli("--config", config, "sync", "--once", "--json", "--drain-timeout", "4")
        assert refused.code == 1 and json.loads(refused.out)["reads_waiting"] == 5
    finally:
        station.stop()


def test_bench_sync_drains_over_tls_and_keeps_exactly_once_through_faults(tmp_path: Path):
    """The benchmarks as anyone runs them: a drain through the shipped broker configuration (TLS, client
    certificates, signed answers), and the exactly-once run with killed syncs, broker restarts and killed
    stations (small here; the figures in the README come from --reads 4000)."""
    drained = run_cli("bench", "sync", "--reads", "300", "--tls", "--json", "--work", tmp_path / "drain")
    assert drained.code == 0, drained.err
    figures = json.loads(drained.out)
    assert figures["tls"] and figures["station_count_exact"] and figures["acks_refused"] == 0
    faults = run_cli("bench", "sync", "--reads", "300", "--faults", "6", "--tls", "--json", "--work", tmp_path / "f")
    assert faults.code == 0, faults.err
    figures = json.loads(faults.out)
    assert figures["exactly_once"] and figures["lost"] == figures["doubled"] == figures["unit_waiting"] == 0
    assert figures["syncs_killed"] + figures["broker_restarts"] + figures["stations_killed"] == 6


def test_an_answer_the_station_signed_for_another_payload_under_the_same_batch_id_marks_nothing_sent(
        tmp_path: Path, mosquitto):
    """Someone who can publish on the unit's topic (a copied unit certificate) sends the station a batch of
    made-up records under the id of the unit's waiting batch. The station stores it and signs its answer;
    that answer names the made-up payload, so the unit must not take it for its own records."""
    keys = tmp_path / "keys"
    assert run_cli("hotlist", "keygen", "--out", keys).code == 0
    config = unit_config(tmp_path, mosquitto.url, f'station_key = "{keys / "hotlist-signing.pub"}"')
    ids = seed_reads(tmp_path / "unit", 10)
    with Database.in_data_dir(tmp_path / "unit") as db:
        batch = take_batch(db)  # the unit's waiting batch
        sync = MqttSync(load_config(config), db)  # its persistent session, which will hold the answer
        sync.start()
        assert sync.connected.wait(10)
        sync.stop()
    station = StationThread(tmp_path / "station", mosquitto.url,
                            config_text=f'[station]\nsigning_key = "{keys / "hotlist-signing.key"}"\n')
    forger = Subscriber(mosquitto.port, "unused/#")
    try:
        fake = {"id": "5b5f1ca2-3985-40c8-98ca-4a6153005cd9", "captured_at": "2026-11-21T08:00:00Z",
                "camera_id": "front", "plate": "0FAKE00", "confidence": 0.9, "state": "CA", "state_confidence": 0.9,
                "candidates": [["0FAKE00", 0.9]], "box": [1, 2, 3, 4], "hits": [], "evidence_hold": False,
                "plate_jpeg": "/9j/"}
        forger.client.publish(f"alpr/v1/{AGENCY}/{UNIT}/batch",
                              build_batch(batch.id, "reads", AGENCY, UNIT, "2026-11-21T08:00:00Z", [fake]), qos=1)
        wait_until(lambda: station.stats()["reads"] == 1, 10)
        done = run_cli("--config", config, "sync", "--once", "--json")
        assert done.code == 0, done.err
        figures = json.loads(done.out)
        assert figures["acks_refused"] >= 1 and figures["reads_waiting"] == 0
        assert set(ids) <= set(station_ids(station))  # the real records arrived after all
    finally:
        forger.close()
        station.stop()


def test_the_station_says_when_its_broker_is_unreachable_and_when_it_is_back(tmp_path: Path):
    broker = Mosquitto(tmp_path)  # its port, nothing listening yet
    config = tmp_path / "station.toml"
    config.write_text(f'[agent]\ndata_dir = "{tmp_path / "station"}"\n[sync]\ninsecure = true\n')
    station = subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", str(config), "station", "--broker",
                                broker.url, "--name", "hq"], env=_agent_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(station.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("not reachable" in line for line in lines), 15, poll=0.1)
        assert any(f"127.0.0.1:{broker.port} not reachable" in line for line in lines), lines
        broker.start()
        wait_until(lambda: any("connected to the broker" in line for line in lines), 40, poll=0.1)
        assert any("again" in line for line in lines), lines
    finally:
        station.terminate()
        station.wait(20)
        broker.stop()
