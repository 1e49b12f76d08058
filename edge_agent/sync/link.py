"""The link to the broker: every MQTT client of the agent is made here, with one set of credentials and TLS
settings, and a TLS link that will not come up is explained in words."""

from __future__ import annotations

import logging
import socket
import ssl
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.config import SyncConfig
from edge_agent.sync.payloads import KEY_PROPERTY, SIGNATURE_PROPERTY, sign_payload

log = logging.getLogger(__name__)


def mqtt_client(client_id: str, s: SyncConfig, broker: str = "") -> tuple[mqtt.Client, str, int]:
    """A paho MQTT 5 client for `broker` (default sync.broker) with the configuration's credentials and TLS
    settings, and the host and port to connect to. Every MQTT client of the agent (sync, station, the
    screen publisher, hotlist publish) is made here, so all of them use the same settings. A plain mqtt://
    broker is allowed only by sync.insecure (the configuration refuses it otherwise) and says so each time."""
    url = urlparse(broker or s.broker)
    tls = url.scheme == "mqtts"
    host, port = url.hostname or "127.0.0.1", url.port or (8883 if tls else 1883)
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    if s.username:
        client.username_pw_set(s.username, s.password or None)
    if tls:
        client.tls_set(ca_certs=str(s.tls_ca) if s.tls_ca else None, certfile=str(s.tls_cert) if s.tls_cert else None,
                       keyfile=str(s.tls_key) if s.tls_key else None, cert_reqs=ssl.CERT_REQUIRED)
        from edge_agent.pki import expiry_warnings

        for warning in expiry_warnings([p for p in (s.tls_cert, s.tls_ca) if p is not None]):
            log.warning("%s", warning)
    else:
        log.warning("INSECURE: plain MQTT to %s:%d (sync.insecure = true): reads, plates and acknowledgements "
                    "travel unencrypted and the broker is not authenticated; use mqtts:// outside a test network",
                    host, port)
    return client, host, port


def tls_problem(host: str, port: int, s: SyncConfig, timeout: float = 5.0) -> str:
    """Why a TLS connection to the broker fails, in words (empty when the handshake goes through): no broker,
    a broker that offers no TLS, a certificate the agency CA did not sign, an expired or revoked one."""
    context = ssl.create_default_context(cafile=str(s.tls_ca) if s.tls_ca else None)
    if s.tls_cert:
        context.load_cert_chain(str(s.tls_cert), str(s.tls_key))
    where = f"broker {host}:{port}"
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return f"{where} not reachable: {exc.strerror or exc}"
    try:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.settimeout(1.0)
            try:  # a TLS 1.3 broker refuses a client certificate after the handshake: read its answer
                tls.recv(1)
            except (TimeoutError, socket.timeout):
                pass
            return ""
    except ssl.SSLCertVerificationError as exc:
        return f"{where}: its certificate does not verify with {s.tls_ca or 'the system CAs'} ({exc.verify_message})"
    except ssl.SSLError as exc:
        reason = (exc.reason or str(exc)).lower().replace("_", " ")
        if "wrong version" in reason or "record layer" in reason or "packet length" in reason:
            return f"{where} does not offer TLS (is it a plain mqtt:// listener?)"
        if any(w in reason for w in ("revoked", "expired", "unknown ca", "bad certificate", "certificate required")):
            return f"{where} refused this unit's certificate {s.tls_cert or '(none given)'}: {reason}"
        return f"{where}: TLS failed: {reason}"
    except OSError as exc:  # reset or closed in the middle of the handshake
        return (f"{where} closed the connection during the TLS handshake ({exc.strerror or exc}): it offers no TLS "
                f"on this port, or it refused this unit's certificate")
    finally:
        raw.close()


def why_down(s: SyncConfig, host: str, port: int, fallback: str) -> str:
    """Why the link to the broker is down, in words: the TLS reason where there is one, else `fallback`."""
    return (tls_problem(host, port, s) if s.broker.startswith("mqtts://") else "") or fallback


def signed(key, payload: bytes) -> Properties | None:
    """The MQTT 5 user properties that carry the Ed25519 signature of `payload` and the key's id (None
    without a key): how units sign batches and the station its answers."""
    if key is None:
        return None
    from edge_agent.hotlist.signing import key_id

    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [(SIGNATURE_PROPERTY, sign_payload(key, payload)), (KEY_PROPERTY, key_id(key.public_key()))]
    return props


def signature_of(message) -> str | None:
    """The signature a received message carries, if any."""
    return dict(getattr(message.properties, "UserProperty", None) or []).get(SIGNATURE_PROPERTY)
