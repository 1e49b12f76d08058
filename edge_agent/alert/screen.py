"""Alerts published for the in-car screen over MQTT (QoS 1, not retained: a stale alert must not reappear)."""

from __future__ import annotations

import json
import logging
import threading
import paho.mqtt.client as mqtt

from edge_agent.config import SyncConfig

log = logging.getLogger(__name__)


class ScreenPublisher:
    """Publishes each alert on `{prefix}/{agency}/{unit}/alerts`. Queues a bounded number while the broker is away."""

    MAX_QUEUED = 100

    def __init__(self, sync: SyncConfig, broker: str, topic: str, client_id: str):
        from edge_agent.sync import mqtt_client

        self.topic = topic
        self.connected = threading.Event()
        self.client, host, port = mqtt_client(client_id, sync, broker)  # the sync link's credentials and TLS
        self.client.max_queued_messages_set(self.MAX_QUEUED)
        self.client.on_connect = lambda c, u, f, rc, p=None: self.connected.set() if not rc.is_failure else None
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(host, port)
        self.client.loop_start()
        self._last: mqtt.MQTTMessageInfo | None = None

    def publish(self, message: dict) -> None:
        info = self.client.publish(self.topic, json.dumps(message, separators=(",", ":")), qos=1)
        self._last = info
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("alert for the screen not queued (%s)", mqtt.error_string(info.rc))

    def close(self, wait_s: float = 2.0) -> None:
        # Let the last alert reach the broker before the connection closes.
        if self._last is not None and self.connected.is_set():
            try:
                self._last.wait_for_publish(wait_s)
            except (RuntimeError, ValueError):
                pass
        self.client.loop_stop()
        self.client.disconnect()
