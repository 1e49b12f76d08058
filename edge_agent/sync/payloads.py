"""The messages between units and the station, checked against the JSON Schemas in `schemas/`.

Both sides use these functions, so what a unit builds is exactly what the
station validates. A payload that does not hold raises `PayloadError` with one
line naming what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import fastjsonschema
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_agent.errors import EdgeAgentError

# What a unit of this version sends and takes. The station takes the earlier batch versions too and answers
# each batch in its own version, so a fleet upgrades car by car (the station first): a v1 unit gets v1 answers
# (which it cannot verify), v2 and v3 units only signed v2 answers. v3 adds the position and clock of reads.
# v4 chains the audit records and adds evidence holds; v5 adds the plates officers enter.
BATCH_SCHEMA = "alpr.batch.v5"
ACK_SCHEMA = "alpr.ack.v4"
BATCH_SCHEMAS = {"alpr.batch.v1": "alpr.ack.v1", "alpr.batch.v2": "alpr.ack.v2", "alpr.batch.v3": "alpr.ack.v2",
                 "alpr.batch.v4": "alpr.ack.v3", "alpr.batch.v5": "alpr.ack.v4"}  # each batch version's answer
STATUS_SCHEMA = "alpr.status.v2"
STATUS_SCHEMAS = ("alpr.status.v1", "alpr.status.v2")  # a station takes both: units upgrade one by one
SIGNATURE_PROPERTY = "alpr-signature"
KEY_PROPERTY = "alpr-key"


class PayloadError(EdgeAgentError):
    """A message that is not what its schema says, or not signed as it must be."""


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    return json.loads(resources.files("edge_agent.sync").joinpath("schemas", f"{name}.json").read_text())


@lru_cache(maxsize=None)
def _validator(name: str):
    # compiled once per process: validation then costs microseconds per record
    return fastjsonschema.compile(schema(name))


def validate(name: str, obj) -> None:
    try:
        _validator(name)(obj)
    except fastjsonschema.JsonSchemaException as exc:
        raise PayloadError(f"not a valid {name}: {exc.message}") from None


def _load(payload: bytes, max_bytes: int, what: str) -> dict:
    if len(payload) > max_bytes:
        raise PayloadError(f"{what} of {len(payload)} bytes is over the limit of {max_bytes}")
    try:
        obj = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"{what} is not JSON: {exc}") from None
    except RecursionError:
        raise PayloadError(f"{what} is nested deeper than any schema allows") from None
    if not isinstance(obj, dict):
        raise PayloadError(f"{what} is not a JSON object")
    return obj


def build_batch(batch_id: str, kind: str, agency: str, unit: str, sent_at: str, items: list[dict],
                schema_name: str = BATCH_SCHEMA) -> bytes:
    body = {"schema": schema_name, "batch_id": batch_id, "agency": agency, "unit": unit, "kind": kind,
            "sent_at": sent_at, "items": items}
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class IncomingBatch:
    batch_id: str
    agency: str
    unit: str
    kind: str
    items: list[dict]
    size: int
    schema: str
    sha256: str  # of the payload as received: the signed answer names it


def parse_batch(payload: bytes, max_bytes: int) -> IncomingBatch:
    """A batch as the station receives it, validated and with its images decoded."""
    obj = _load(payload, max_bytes, "batch")
    version = obj.get("schema")
    if not isinstance(version, str) or version not in BATCH_SCHEMAS:
        raise PayloadError(f"batch schema {str(version)[:40]!r} is not supported; this station takes "
                           f"{' and '.join(BATCH_SCHEMAS)}")
    validate(version, obj)
    items = obj["items"]
    field = {"reads": "plate_jpeg", "images": "jpeg"}.get(obj["kind"])
    if field:
        for n, item in enumerate(items):
            try:
                item[field] = base64.b64decode(item[field], validate=True)
            except (binascii.Error, ValueError):
                raise PayloadError(f"item {n}: {field} is not base64") from None
    return IncomingBatch(obj["batch_id"], obj["agency"], obj["unit"], obj["kind"], items, len(payload), version,
                         hashlib.sha256(payload).hexdigest())


def peek_batch(payload: bytes) -> tuple[str | None, str]:
    """The batch id (when one can be found) and the answer's schema of a payload that failed validation,
    so that the refusal can be answered in the unit's version."""
    try:
        obj = json.loads(payload[:16 * 1024 * 1024])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None, ACK_SCHEMA
    if not isinstance(obj, dict):
        return None, ACK_SCHEMA
    value = obj.get("batch_id")
    answer = BATCH_SCHEMAS.get(obj.get("schema"), ACK_SCHEMA) if isinstance(obj.get("schema"), str) else ACK_SCHEMA
    return (value if isinstance(value, str) and len(value) <= 64 else None), answer


@dataclass(frozen=True)
class AckFor:
    """Whom an answer is for: v2 answers name the unit and the batch payload's sha256."""

    schema: str
    agency: str
    unit: str
    batch_sha256: str


def build_ack(to: AckFor, batch_id: str, status: str, at: str, station: str, kind: str | None = None,
              accepted: int = 0, duplicates: int = 0, reason: str = "") -> bytes:
    body: dict = {"schema": to.schema, "batch_id": batch_id, "status": status, "at": at, "station": station[:128]}
    if to.schema != "alpr.ack.v1":
        body.update(agency=to.agency, unit=to.unit, batch_sha256=to.batch_sha256)
    if kind:
        body["kind"] = kind
    if status == "stored":
        body.update(accepted=accepted, duplicates=duplicates)
    if reason:
        body["reason"] = reason[:1000]
    return json.dumps(body, separators=(",", ":")).encode()


def parse_ack(payload: bytes) -> dict:
    """An answer as a unit receives it, of either version (the caller decides which it takes)."""
    obj = _load(payload, 64 * 1024, "acknowledgement")
    version = obj.get("schema")
    if not isinstance(version, str) or version not in BATCH_SCHEMAS.values():
        raise PayloadError(f"acknowledgement schema {str(version)[:40]!r} is not supported")
    validate(version, obj)
    return obj


def open_fleet_message(payload: bytes, signature: str | None, station_key, schema_name: str, what: str,
                       agency: str) -> dict:
    """A message the station signed for the whole fleet (the roster, the officers' plates), checked against the
    station's pinned key, its schema and this unit's agency; PayloadError saying what is wrong."""
    if station_key is None:
        raise PayloadError(f"the {what} cannot be checked: sync.station_key is not set, and an unsigned {what} "
                           "is never taken")
    verify_payload(station_key, payload, signature, what, "the station's")
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PayloadError(f"{what} is not JSON") from None
    validate(schema_name, body)
    if body["agency"] != agency:
        raise PayloadError(f"{what} is for agency {body['agency']!r}, not {agency!r}")
    return body


def build_status(agency: str, unit: str, state: str, at: str, **fields) -> bytes:
    body = {"schema": STATUS_SCHEMA, "agency": agency, "unit": unit, "state": state, "at": at, **fields}
    return json.dumps(body, separators=(",", ":")).encode()


def parse_status(payload: bytes) -> dict:
    obj = _load(payload, 64 * 1024, "status")
    version = obj.get("schema")
    if version not in STATUS_SCHEMAS:
        raise PayloadError(f"status schema {str(version)[:40]!r} is not supported; this station takes "
                           f"{' and '.join(STATUS_SCHEMAS)}")
    validate(version, obj)
    return obj


def sign_payload(key: Ed25519PrivateKey, payload: bytes) -> str:
    return base64.b64encode(key.sign(payload)).decode("ascii")


def verify_payload(key: Ed25519PublicKey, payload: bytes, signature: str | None, what: str, whose: str) -> None:
    """`what` ("batch from car-7", "acknowledgement") must carry a signature that verifies with `whose` key."""
    if not signature:
        raise PayloadError(f"{what} is not signed, and signed ones are required")
    try:
        key.verify(base64.b64decode(signature, validate=True), payload)
    except (InvalidSignature, binascii.Error, ValueError):
        raise PayloadError(f"{what} is wrongly signed: the signature does not verify with {whose} key") from None
