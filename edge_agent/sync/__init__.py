"""Store and forward to the station over MQTT 5 (paho-mqtt).

Records wait in SQLite (`edge_agent.store.outbox`) until the station has
acknowledged the batch that carried them. Up to `sync.max_in_flight` batches
are out at once; a batch with no acknowledgement after a reconnect or after
`sync.ack_timeout_s` goes out again with the same id, and the station stores
each record once, so a read is counted once whatever fails on the way.

paho's network thread keeps the connection; each reconnect waits an
exponential backoff with jitter (set before every attempt) so that a fleet
returning to the station Wi-Fi at shift change does not hit the broker in step. A retained status topic
with a last will tells the station when the unit goes offline.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import logging
import os
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.config import Config
from edge_agent.errors import EdgeAgentError
from edge_agent.store import Database, utc_iso
from edge_agent.store.outbox import (KINDS, Batch, BatchLimits, acknowledge_batch, batch_items, pending_batches,
                                     refuse_batch, take_batch)
from edge_agent.sync.link import mqtt_client, signature_of, signed, why_down
from edge_agent.sync.payloads import ACK_SCHEMA, PayloadError, build_batch, build_status, parse_ack, verify_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    batch: str
    ack: str
    status: str
    alerts: str
    hotlist: str  # agency-wide: the station publishes signed lists here for the whole fleet
    roster: str  # agency-wide: the station's signed roster of users (edge_agent.access.roster)
    plates: str  # agency-wide: officers' plates the station passes to the fleet (edge_agent.hotlist.fleet)

    @classmethod
    def for_unit(cls, prefix: str, agency: str, unit: str) -> "Topics":
        base = f"{prefix}/{agency}/{unit}"
        return cls(batch=f"{base}/batch", ack=f"{base}/ack", status=f"{base}/status", alerts=f"{base}/alerts",
                   hotlist=f"{prefix}/{agency}/hotlist", roster=f"{prefix}/{agency}/roster",
                   plates=f"{prefix}/{agency}/plates")


def backoff_delay(attempt: int, base_s: float, cap_s: float, draw: float) -> float:
    """Seconds to wait before reconnect attempt `attempt` (0 first): exponential, capped, with jitter.

    `draw` is uniform in [0, 1). The delay lies in the upper half of the exponential step, so a fleet spreads out
    without any unit retrying at once.
    """
    step = min(cap_s, base_s * (2 ** min(attempt, 32)))
    return step / 2 + draw * step / 2


class SyncBusy(EdgeAgentError):
    """Another sync of the same data directory is running: two would take the same persistent session and
    send the same records."""


class SyncLock:
    """One sync per data directory: an advisory lock on DATA_DIR/sync.lock, held while the sync runs and
    let go by the kernel if the process dies."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "sync.lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(self._fd, 32).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise SyncBusy(f"another sync of {self.path.parent} is running (pid {holder}); "
                           "its records are being sent, try again when it ends") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing lets the lock go
            self._fd = -1


@dataclass
class DrainResult:
    sent: dict[str, int] = field(default_factory=dict)  # records acknowledged by the station, by kind
    batches: int = 0
    batches_refused: int = 0  # the station refused them; their records wait
    acks_refused: int = 0  # acknowledgements for batches this unit never sent (or had settled already)
    disconnected: bool = False
    on_acknowledged: Callable[[int], None] | None = field(default=None, repr=False, compare=False)  # a progress bar

    @property
    def reads(self) -> int:
        return self.sent.get("reads", 0)


class MqttSync:
    """Sends waiting records to the station and marks them sent on its acknowledgement."""

    ACK_QUEUE = 10_000

    def __init__(self, config: Config, db: Database, on_hotlist: Callable[[bytes], None] | None = None,
                 status: Callable[[], dict] | None = None):
        self.config = config
        self.db = db
        self._lock = SyncLock(db.path.parent)  # before anything connects under the unit's client id
        self.on_hotlist = on_hotlist
        self.roster_version: int | None = None  # the last roster taken while running
        self.status_fields = status or (lambda: {})
        s, a = config.sync, config.agent
        self.topics = Topics.for_unit(s.topic_prefix, a.agency, a.unit_id)
        self.limits = BatchLimits(reads=s.batch_size, images=s.image_batch_size, records=s.batch_size)
        self.kinds = KINDS if s.scene_images else tuple(k for k in KINDS if k != "images")
        self.connected = threading.Event()
        self.last_error = ""
        self._generation = 0  # bumped on every connection: batches out before it have to go again
        self._attempt = 0  # reconnect attempts since the last connection that worked
        self._rng = random.Random()
        self._acks: queue.Queue[tuple[bytes, str | None]] = queue.Queue(self.ACK_QUEUE)  # (payload, signature)
        self._sent_digests: collections.OrderedDict[str, set[str]] = collections.OrderedDict()  # batch id -> payloads' sha256
        self._settled: collections.deque[str] = collections.deque(maxlen=10_000)  # batches acknowledged lately
        self._drain_lock = threading.Lock()
        # the status and the goodbye go out one at a time, and nothing after the goodbye: a report that
        # finishes as the unit stops would otherwise leave the station showing it online
        self._status_lock = threading.Lock()
        self._said_goodbye = False
        # batches published and not yet answered, kept from one drain to the next: a drain that ends on its
        # deadline leaves some out, and the next must wait for their answers, not publish them again
        self._in_flight: dict[str, float] = {}
        self._in_flight_generation = 0
        self._signing_key = None
        if s.signing_key:
            from edge_agent.hotlist.signing import load_private_key

            self._signing_key = load_private_key(s.signing_key)
        self._station_key = None
        if s.station_key:
            from edge_agent.hotlist.signing import load_public_key

            self._station_key = load_public_key(s.station_key)
        elif s.broker:
            log.warning("sync.station_key is not set: acknowledgements are taken without checking who signed them, "
                        "so anyone who can publish on the broker could mark reads sent")
        self.client, self.host, self.port = mqtt_client(f"edge-agent-{a.agency}-{a.unit_id}", s)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_connect_fail = self._on_connect_fail
        self.client.will_set(self.topics.status, self._status_payload("offline", {}), qos=1, retain=True)

    # connection ------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(self.config.sync.session_expiry_s)  # acks sent while the car is away wait
        self._schedule_reconnect()
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()

    def _schedule_reconnect(self) -> None:
        """paho waits `min_delay` before its next attempt: give it this attempt's delay, with jitter."""
        s = self.config.sync
        delay = backoff_delay(self._attempt, s.backoff_min_s, s.backoff_max_s, self._rng.random())
        self._attempt += 1
        self.client.reconnect_delay_set(min_delay=delay, max_delay=delay)

    def _on_connect_fail(self, client, userdata) -> None:
        self._explain(f"broker {self.host}:{self.port} not reachable")
        self._schedule_reconnect()

    def _explain(self, error: str) -> None:
        """Say why the link is down, once until it comes up again (a later attempt does not blur a precise
        reason); paho does not say why a TLS connection failed, so that is found out, for the technician."""
        if self.last_error:
            log.info("%s; next attempt with backoff", self.last_error)
            return
        error = why_down(self.config.sync, self.host, self.port, error)
        self.last_error = error
        log.warning("%s; reads wait in SQLite, next attempt with backoff", error)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            log.warning("broker %s:%s refused the connection: %s", self.host, self.port, reason_code)
            return
        log.info("connected to broker %s:%s", self.host, self.port)
        self._generation += 1
        self._attempt = 0
        self.last_error = ""
        client.subscribe(self.topics.ack, qos=1)
        client.subscribe(self.topics.roster, qos=1)
        client.subscribe(self.topics.plates, qos=1)
        if self.on_hotlist is not None:
            client.subscribe(self.topics.hotlist, qos=1)
        self.connected.set()
        self.publish_status()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._generation == 0:  # dropped before it ever connected: a TLS 1.3 broker refusing the certificate
            self._explain(f"broker {self.host}:{self.port} closed the connection before accepting it ({reason_code})")
        self.connected.clear()
        self._schedule_reconnect()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self.topics.ack:
            try:
                self._acks.put_nowait((message.payload, signature_of(message)))
            except queue.Full:
                log.warning("acknowledgement dropped: %d wait to be processed", self.ACK_QUEUE)
        elif message.topic == self.topics.hotlist and self.on_hotlist is not None:
            self.on_hotlist(message.payload)
        elif message.topic == self.topics.roster and message.payload:
            self._take_roster(message.payload, signature_of(message))
        elif message.topic == self.topics.plates and message.payload:
            self._take_fleet_plates(message.payload, signature_of(message))

    def _take_fleet_plates(self, payload: bytes, signature: str | None) -> None:
        """Officers' plates from the station: a small write, taken here on the network thread; the agent's
        recognition sees the new list in force within its next poll."""
        from edge_agent.hotlist.fleet import apply_fleet_plates
        from edge_agent.hotlist.storage import open_hotlist_db

        a = self.config.agent
        try:
            with open_hotlist_db(self.config.data_dir) as hotlist_db:
                taken = apply_fleet_plates(self.db, hotlist_db, payload, signature, self._station_key, a.agency,
                                           a.unit_id)
        except PayloadError as exc:
            log.warning("officers' plates from the station refused: %s", exc)
            return
        if taken is not None:
            log.info("fleet plates version %d taken: %d added, %d removed", taken.version, taken.added, taken.removed)

    def _take_roster(self, payload: bytes, signature: str | None) -> None:
        """A small write, so taken here on the network thread; a bad roster is refused and audited."""
        from edge_agent.access.roster import apply_roster

        try:
            taken = apply_roster(self.db, payload, signature, self._station_key, self.config.agent.agency)
        except PayloadError as exc:
            log.warning("roster refused: %s", exc)
            return
        if taken is not None:
            self.roster_version = taken.version
            log.info("roster version %d taken: %d users, %d deactivated", taken.version, taken.users, taken.deactivated)

    def _status_payload(self, state: str, fields: dict) -> bytes:
        a = self.config.agent
        return build_status(a.agency, a.unit_id, state, utc_iso(), **fields)

    def publish_status(self) -> None:
        """The unit's retained status: online, with its storage state and what waits."""
        if not self.connected.is_set():
            return
        try:
            fields = self.status_fields()
        except Exception as exc:  # the status is informative; never let it stop the link
            log.warning("status not gathered: %s", exc)
            fields = {}
        with self._status_lock:
            if not self._said_goodbye:
                self.client.publish(self.topics.status, self._status_payload("online", fields), qos=1, retain=True)

    def stop(self) -> None:
        with self._status_lock:
            self._said_goodbye = True
            info = None
            if self.connected.is_set():
                info = self.client.publish(self.topics.status, self._status_payload("offline", {}), qos=1, retain=True)
        if info is not None:
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
        self._lock.release()

    # batches ---------------------------------------------------------------

    def drain(self, stop: threading.Event | None = None, timeout: float | None = None,
              reconnect_wait: float = 0.0, on_acknowledged: Callable[[int], None] | None = None) -> DrainResult:
        """Send what waits, batch by batch, until the station has acknowledged everything or the link drops.

        With `reconnect_wait`, a dropped link is waited for that long and the drain goes on where it stopped.
        """
        result = DrainResult(on_acknowledged=on_acknowledged)
        deadline = None if timeout is None else time.monotonic() + timeout
        s = self.config.sync
        with self._drain_lock:
            in_flight = self._in_flight
            generation = self._generation
            if self._in_flight_generation != generation:  # out on an earlier connection: they go again
                in_flight.clear()
                self._in_flight_generation = generation
            while not (stop is not None and stop.is_set()):
                self._take_acks(in_flight, result, 0)
                if not self.connected.is_set():
                    if reconnect_wait and self.connected.wait(reconnect_wait):
                        continue
                    result.disconnected = True
                    break
                if self._generation != generation:  # a new connection: whatever had no answer goes again
                    in_flight.clear()
                    generation = self._in_flight_generation = self._generation
                now = time.monotonic()
                for batch_id, published in list(in_flight.items()):
                    if now - published > s.ack_timeout_s:
                        del in_flight[batch_id]
                if deadline is not None and now > deadline:
                    break
                if len(in_flight) < s.max_in_flight:
                    batch = self._next_batch(in_flight)
                    if batch is not None:
                        if self._publish(batch, result):
                            in_flight[batch.id] = now
                        continue
                    if not in_flight:
                        break
                self._take_acks(in_flight, result, 0.2)
        if result.batches or result.batches_refused:
            self.publish_status()  # what waits has changed
        return result

    def _next_batch(self, in_flight: dict[str, float]) -> Batch | None:
        for batch in pending_batches(self.db, self.config.sync.retry_refused_after_s):
            if batch.id not in in_flight:
                return batch
        return take_batch(self.db, self.limits, self.kinds)

    def _publish(self, batch: Batch, result: DrainResult) -> bool:
        items = batch_items(self.db, batch)
        if not items:  # its records went meanwhile (scene images given up for space): nothing to send
            acknowledge_batch(self.db, batch.id)
            return False
        a = self.config.agent
        payload = build_batch(batch.id, batch.kind, a.agency, a.unit_id, utc_iso(), items)
        props = signed(self._signing_key, payload)
        self._sent_digests.setdefault(batch.id, set()).add(hashlib.sha256(payload).hexdigest())
        self._sent_digests.move_to_end(batch.id)
        while len(self._sent_digests) > self.ACK_QUEUE:
            self._sent_digests.popitem(last=False)
        info = self.client.publish(self.topics.batch, payload, qos=1, properties=props)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _take_acks(self, in_flight: dict[str, float], result: DrainResult, wait: float) -> None:
        try:
            message = self._acks.get(timeout=wait) if wait else self._acks.get_nowait()
        except queue.Empty:
            return
        while True:
            self._settle(*message, in_flight, result)
            try:
                message = self._acks.get_nowait()
            except queue.Empty:
                return

    def _check_ack(self, ack: dict, payload: bytes, signature: str | None) -> None:
        """An answer is taken only when it holds: with the station's key pinned, a v2 answer that the station
        signed; any v2 answer must name this unit and a batch payload this unit sent."""
        if self._station_key is not None:
            if ack["schema"] != ACK_SCHEMA:
                raise PayloadError(f"acknowledgement of batch {ack['batch_id']} is {ack['schema']}, which is unsigned; "
                                   f"this unit takes only {ACK_SCHEMA}")
            verify_payload(self._station_key, payload, signature, f"acknowledgement of batch {ack['batch_id']}",
                           "the station's")
        if ack["schema"] != "alpr.ack.v1":  # v2 and later name the unit and the payload
            a = self.config.agent
            if (ack["agency"], ack["unit"]) != (a.agency, a.unit_id):
                raise PayloadError(f"acknowledgement of batch {ack['batch_id']} is for {ack['agency']}/{ack['unit']}, "
                                   f"not this unit")
            if ack["batch_sha256"] not in self._sent_digests.get(ack["batch_id"], ()):
                raise PayloadError(f"acknowledgement of batch {ack['batch_id']} names a payload this unit did not "
                                   "send (altered, replayed, or from before a restart); the batch goes again")

    def _settle(self, payload: bytes, signature: str | None, in_flight: dict[str, float], result: DrainResult) -> None:
        try:
            ack = parse_ack(payload)
            self._check_ack(ack, payload, signature)
        except PayloadError as exc:
            result.acks_refused += 1
            log.warning("acknowledgement refused: %s", exc)
            return
        batch_id = ack["batch_id"]
        in_flight.pop(batch_id, None)
        if ack["status"] == "stored":
            batch = acknowledge_batch(self.db, batch_id)
            if batch is not None:
                self._settled.append(batch_id)
                result.sent[batch.kind] = result.sent.get(batch.kind, 0) + batch.items
                if result.on_acknowledged is not None:
                    result.on_acknowledged(batch.items)
                result.batches += 1
                return
        elif refuse_batch(self.db, batch_id, ack.get("reason", "")):
            result.batches_refused += 1
            log.warning("the station refused batch %s: %s; its records wait and it will be tried again in %g s",
                        batch_id, ack.get("reason", ""), self.config.sync.retry_refused_after_s)
            return
        if batch_id in self._settled:
            log.debug("second acknowledgement for batch %s (it went out twice)", batch_id)
            return
        result.acks_refused += 1
        log.warning("acknowledgement for batch %s refused: this unit has no such batch waiting", batch_id)
