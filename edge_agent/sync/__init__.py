"""Store and forward to the station over MQTT (paho-mqtt, MQTT 5).

Reads wait in SQLite until a broker is reachable. A batch is marked sent only
once the broker has acknowledged it (QoS 1 PUBACK); a retained status topic
with a last will tells the station when the unit goes offline.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
import uuid
from dataclasses import dataclass
from typing import Callable

import paho.mqtt.client as mqtt

from edge_agent.config import Config
from edge_agent.store import Database, utc_iso

log = logging.getLogger(__name__)
PAYLOAD_SCHEMA = "alpr.reads.v1"


@dataclass(frozen=True)
class Topics:
    reads: str
    status: str
    alerts: str
    hotlist: str  # agency-wide: the station publishes signed lists here for the whole fleet

    @classmethod
    def for_unit(cls, prefix: str, agency: str, unit: str) -> "Topics":
        base = f"{prefix}/{agency}/{unit}"
        return cls(reads=f"{base}/reads", status=f"{base}/status", alerts=f"{base}/alerts",
                   hotlist=f"{prefix}/{agency}/hotlist")


def reads_payload(reads: list[dict], agency: str, unit: str) -> bytes:
    """One batch as the station receives it: JSON, images base64-encoded."""
    body = {
        "schema": PAYLOAD_SCHEMA,
        "batch_id": str(uuid.uuid4()),
        "agency": agency,
        "unit": unit,
        "sent_at": utc_iso(),
        "reads": [
            {**{k: v for k, v in r.items() if k != "plate_jpeg"}, "plate_jpeg": base64.b64encode(r["plate_jpeg"]).decode()}
            for r in reads
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


class MqttSync:
    """Publishes waiting reads whenever the broker is connected; paho reconnects on its own."""

    def __init__(self, config: Config, db: Database, publish_timeout: float = 10.0,
                 on_hotlist: Callable[[bytes], None] | None = None):
        self.config = config
        self.on_hotlist = on_hotlist
        self.db = db
        self.publish_timeout = publish_timeout
        self.topics = Topics.for_unit(config.sync.topic_prefix, config.agent.agency, config.agent.unit_id)
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"edge-agent-{config.agent.agency}-{config.agent.unit_id}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.will_set(self.topics.status, self._status("offline"), qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=60)
        if config.sync.username:
            self.client.username_pw_set(config.sync.username, config.sync.password or None)
        host, port, tls = config.sync.host_port
        if tls:
            self.client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self.host, self.port = host, port

    def _status(self, state: str) -> bytes:
        return json.dumps({"unit": self.config.agent.unit_id, "state": state, "at": utc_iso()}).encode()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker %s:%s refused the connection: %s", self.host, self.port, reason_code)
            return
        log.info("connected to broker %s:%s", self.host, self.port)
        client.publish(self.topics.status, self._status("online"), qos=1, retain=True)
        if self.on_hotlist is not None:
            client.subscribe(self.topics.hotlist, qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self.topics.hotlist and self.on_hotlist is not None:
            self.on_hotlist(message.payload)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        if self.connected.is_set():
            info = self.client.publish(self.topics.status, self._status("offline"), qos=1, retain=True)
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def drain(self, max_batches: int | None = None) -> int:
        """Publish waiting reads batch by batch while connected; returns how many were acknowledged."""
        sent = 0
        batches = 0
        with self._lock:
            while self.connected.is_set() and (max_batches is None or batches < max_batches):
                reads = self.db.unsent_reads(self.config.sync.batch_size)
                if not reads:
                    break
                payload = reads_payload(reads, self.config.agent.agency, self.config.agent.unit_id)
                info = self.client.publish(self.topics.reads, payload, qos=1)
                try:
                    info.wait_for_publish(self.publish_timeout)
                except (RuntimeError, ValueError) as exc:
                    log.info("batch not acknowledged, reads stay waiting: %s", exc)
                    break
                if not info.is_published():
                    break
                self.db.mark_sent([r["id"] for r in reads])
                sent += len(reads)
                batches += 1
        return sent
