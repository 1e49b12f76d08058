"""The reference station receiver: validates each unit's batches, stores them once, acknowledges them.

Receivers subscribe to the fleet's batches through an MQTT 5 shared subscription
(`$share/{group}/...`), so several of them, on one machine or many, split the
load and each batch goes to one of them. A batch is acknowledged only after it
is committed; a batch that is malformed, oversized, wrongly signed or of an
unknown version is logged, recorded in `refusals` and answered with a refusal,
and nothing of it is stored. The receiver also keeps the signed hotlist
published, retained, for the fleet.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.config import Config
from edge_agent.errors import EdgeAgentError
from edge_agent.station.store import StationStore
from edge_agent.store import utc_iso
from edge_agent.sync.link import mqtt_client, signature_of, signed, why_down
from edge_agent.sync.payloads import (BATCH_SCHEMAS, AckFor, PayloadError, build_ack, parse_batch, parse_status,
                                      peek_batch, verify_payload)

log = logging.getLogger(__name__)
Printer = Callable[[str], None]


def station_database(config: Config) -> str:
    return config.station.database or str(Path(config.data_dir) / "station.sqlite3")


def station_store(config: Config) -> StationStore:
    """The configured station database, its figures in the agency's time zone."""
    return StationStore(station_database(config), config.agent.time_zone)


class UnitKeys:
    """Each unit's public key, `UNIT.pub` in the configured folder, read again when the file changes."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._cache: dict[str, tuple[float, object]] = {}

    def get(self, unit: str):
        from edge_agent.hotlist.signing import load_public_key

        path = self.folder / f"{unit}.pub"
        try:
            mtime = path.stat().st_mtime
        except OSError:
            raise PayloadError(f"batch from {unit} refused: the station has no key for {unit} ({path})") from None
        cached = self._cache.get(unit)
        if cached is None or cached[0] != mtime:
            try:
                cached = (mtime, load_public_key(path))
            except EdgeAgentError as exc:
                raise PayloadError(f"batch from {unit} refused: {exc}") from None
            self._cache[unit] = cached
        return cached[1]


class Station:
    def __init__(self, config: Config, store: StationStore, out: Printer = print, name: str | None = None):
        self.config = config
        self.store = store
        self.out = out
        # a stable name gives a stable client id: a restarted receiver resumes its persistent session and
        # takes the batches the broker kept for it (two receivers on one host need --name each)
        self.name = name or socket.gethostname()
        self.prefix = config.sync.topic_prefix
        self.max_bytes = int(config.station.max_batch_mb * 1024 * 1024)
        self.keys = UnitKeys(config.station.unit_keys) if config.station.unit_keys else None
        self._ack_key = None
        if config.station.signing_key is not None:
            from edge_agent.hotlist.signing import load_private_key

            self._ack_key = load_private_key(config.station.signing_key)
        else:
            log.warning("station.signing_key is not set: acknowledgements go out unsigned, and units that pin "
                        "the station's key (sync.station_key) will refuse them")
        self.connected = threading.Event()
        self.received = 0
        self.refused = 0
        self.client, self.host, self.port = mqtt_client(f"edge-agent-station-{config.station.share_group}-{self.name}",
                                                        config.sync)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = lambda *a: self._down(f"broker {self.host}:{self.port} not reachable")
        self.client.on_message = self._on_message
        self._down_said = False
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._hotlist_seen: tuple | None = None
        self._roster_published: int | None = None
        self._plates_published: int | None = None
        self._stop = threading.Event()

    @property
    def batch_filter(self) -> str:
        return f"$share/{self.config.station.share_group}/{self.prefix}/+/+/batch"

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(self.config.sync.session_expiry_s)  # batches wait on the broker for a restart
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        threading.Thread(target=self._fleet_loop, daemon=True, name="station-fleet").start()

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()

    def _down(self, why: str) -> None:
        """Say once per outage that the broker cannot be reached, and why (the TLS reason where there is one)."""
        self.connected.clear()
        if self._down_said:
            return
        self._down_said = True
        why = why_down(self.config.sync, self.host, self.port, why)
        self.out(f"station {self.name}: {why}; batches wait on the broker or the units, trying again")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if not self._stop.is_set():
            self._down(f"lost the broker {self.host}:{self.port} ({reason_code})")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._down(f"broker {self.host}:{self.port} refused the station's connection: {reason_code}")
            return
        if self._down_said:
            self.out(f"station {self.name}: connected to the broker {self.host}:{self.port} again")
            self._down_said = False
        client.subscribe(self.batch_filter, qos=1)
        # statuses are retained, and retained messages do not go to shared subscriptions: every receiver takes them
        client.subscribe(f"{self.prefix}/+/+/status", qos=1)
        self.connected.set()
        self._hotlist_seen = None  # publish the list again on a new connection
        log.info("station %s receiving on %s", self.name, self.batch_filter)

    def _unit_of(self, topic: str, leaf: str) -> tuple[str, str] | None:
        head = f"{self.prefix}/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head):].split("/")
        if len(parts) != 3 or parts[2] != leaf:
            return None
        return parts[0], parts[1]

    def _on_message(self, client, userdata, message) -> None:
        try:
            if message.topic.endswith("/status"):
                self._status(message)
            else:
                self._batch(message)
        except Exception as exc:  # one bad message must never stop the receiver
            log.exception("message on %s not handled: %s", message.topic, exc)

    def _status(self, message) -> None:
        unit = self._unit_of(message.topic, "status")
        if unit is None or not message.payload:
            return
        try:
            status = parse_status(message.payload)
        except PayloadError as exc:
            log.warning("status on %s refused: %s", message.topic, exc)
            return
        self.store.record_status(unit[0], unit[1], status)

    def _batch(self, message) -> None:
        payload: bytes = message.payload
        unit = self._unit_of(message.topic, "batch")
        try:
            if unit is None:
                raise PayloadError(f"topic {message.topic!r} is not {self.prefix}/AGENCY/UNIT/batch")
            if len(payload) > self.max_bytes:
                raise PayloadError(f"batch of {len(payload)} bytes is over the limit of {self.max_bytes}")
            if self.keys is not None:
                verify_payload(self.keys.get(unit[1]), payload, signature_of(message), f"batch from {unit[1]}", f"{unit[1]}'s")
            batch = parse_batch(payload, self.max_bytes)
            if (batch.agency, batch.unit) != unit:
                raise PayloadError(f"batch says it is from {batch.agency}/{batch.unit} but came on {message.topic}")
        except PayloadError as exc:
            batch_id, answer = peek_batch(payload) if unit is not None else (None, "")  # to answer the unit
            self.refused += 1
            reason = str(exc)
            self.out(f"refused batch {batch_id or '(no id)'} on {message.topic}: {reason}")
            self.store.record_refusal(message.topic, batch_id, reason, len(payload), self.name)
            if unit is not None and batch_id is not None:
                to = AckFor(answer, unit[0], unit[1], hashlib.sha256(payload).hexdigest())
                self._ack(unit, build_ack(to, batch_id, "refused", utc_iso(), self.name, reason=reason))
            return
        accepted, duplicates = self.store.store_batch(batch, self.name)
        self.received += 1
        to = AckFor(BATCH_SCHEMAS[batch.schema], batch.agency, batch.unit, batch.sha256)
        self._ack(unit, build_ack(to, batch.batch_id, "stored", utc_iso(), self.name, batch.kind, accepted, duplicates))
        log.info("batch %s from %s/%s: %d %s stored, %d held already", batch.batch_id, batch.agency, batch.unit,
                 accepted, batch.kind, duplicates)

    def _ack(self, unit: tuple[str, str], payload: bytes) -> None:
        self.client.publish(f"{self.prefix}/{unit[0]}/{unit[1]}/ack", payload, qos=1, properties=signed(self._ack_key, payload))

    # what the station publishes to the whole fleet: the hotlist and the roster ----------------

    PURGE_EVERY_S = 3600.0

    def _fleet_loop(self) -> None:
        purge_at = time.monotonic() + 60  # not in the first minute of a (re)start
        while not self._stop.is_set():
            if time.monotonic() >= purge_at and self.config.station.retention_days > 0:
                purge_at = time.monotonic() + self.PURGE_EVERY_S
                try:
                    n = self.store.purge(self.config.station.retention_days, self.config.agent.agency, "system:retention")
                    if n:
                        self.out(f"purged {n} reads older than {self.config.station.retention_days:g} days")
                except Exception as exc:  # the receiver goes on; the next hour tries again
                    log.exception("station purge failed: %s", exc)
            if self.connected.is_set():
                if self.config.station.hotlist is not None:
                    try:
                        self.publish_hotlist()
                    except EdgeAgentError as exc:
                        self.out(f"hotlist not published: {exc}")
                        self._hotlist_seen = self._hotlist_key()  # say it once per version of the file
                try:
                    self.publish_roster()
                except Exception as exc:  # the receiver goes on; the next poll tries again
                    log.exception("roster not published: %s", exc)
                try:
                    self.publish_fleet_plates()
                except Exception as exc:
                    log.exception("officers' plates not published: %s", exc)
            self._stop.wait(self.config.station.hotlist_poll_s)

    def publish_roster(self) -> bool:
        """Publish the fleet's users, signed and retained, when the roster has changed since the last time."""
        from edge_agent.access.roster import build_roster

        version, users = self.store.roster()
        if version == 0 or version == self._roster_published:
            return False
        if self._ack_key is None:
            if self._roster_published is None:
                self.out("roster not published: station.signing_key is not set, and units take only a signed roster")
                self._roster_published = -1
            return False
        payload = build_roster(self.config.agent.agency, version, users)
        topic = f"{self.prefix}/{self.config.agent.agency}/roster"
        self.client.publish(topic, payload, qos=1, retain=True, properties=signed(self._ack_key, payload))
        self._roster_published = version
        self.out(f"published roster version {version} ({len(users)} users) on {topic}")
        return True

    def publish_fleet_plates(self) -> bool:
        """Publish the officers' plates chosen for the fleet, signed and retained, when that list has changed."""
        from datetime import date

        from edge_agent.hotlist.fleet import build_fleet_plates

        agency = self.config.agent.agency
        version, plates = self.store.fleet_plates(agency, date.today().isoformat())
        if version == 0 or version == self._plates_published:
            return False
        if self._ack_key is None:
            if self._plates_published is None:
                self.out("officers' plates not published: station.signing_key is not set, and units take only a "
                         "signed list")
                self._plates_published = -1
            return False
        payload = build_fleet_plates(agency, version, plates)
        topic = f"{self.prefix}/{agency}/plates"
        self.client.publish(topic, payload, qos=1, retain=True, properties=signed(self._ack_key, payload))
        self._plates_published = version
        self.out(f"published officers' plates version {version} ({len(plates)} plates) on {topic}")
        return True

    def _hotlist_key(self) -> tuple | None:
        path = self.config.station.hotlist
        sig = path.with_name(path.name + ".sig")
        try:
            return tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in (path, sig))
        except OSError:
            return None

    def publish_hotlist(self) -> bool:
        """Publish the configured signed list, retained, when it is new or changed since the last time."""
        key = self._hotlist_key()
        if key is None or key == self._hotlist_seen:
            return False
        from edge_agent.hotlist.signing import signed_payload

        path = self.config.station.hotlist
        envelope, payload = signed_payload(path, path.with_name(path.name + ".sig"))
        if hashlib.sha256(payload.partition(b"\n")[2]).hexdigest() != envelope.sha256:
            # caught between the new list and its new signature: try again at the next poll
            log.info("hotlist %s does not match its signature yet; not published", path)
            return False
        topic = f"{self.prefix}/{self.config.agent.agency}/hotlist"
        self.client.publish(topic, payload, qos=1, retain=True)
        self._hotlist_seen = key
        self.out(f"published hotlist {path} (signed version {envelope.version}, {envelope.kind}) on {topic}")
        return True
