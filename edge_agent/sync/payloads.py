"""The messages between units and the station, checked against the JSON Schemas in `schemas/`.

Both sides use these functions, so what a unit builds is exactly what the
station validates. A payload that does not hold raises `PayloadError` with one
line naming what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import fastjsonschema
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_agent.errors import EdgeAgentError

BATCH_SCHEMA = "alpr.batch.v1"
ACK_SCHEMA = "alpr.ack.v1"
STATUS_SCHEMA = "alpr.status.v1"
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
    if not isinstance(obj, dict):
        raise PayloadError(f"{what} is not a JSON object")
    return obj


def build_batch(batch_id: str, kind: str, agency: str, unit: str, sent_at: str, items: list[dict]) -> bytes:
    body = {"schema": BATCH_SCHEMA, "batch_id": batch_id, "agency": agency, "unit": unit, "kind": kind,
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


def parse_batch(payload: bytes, max_bytes: int) -> IncomingBatch:
    """A batch as the station receives it, validated and with its images decoded."""
    obj = _load(payload, max_bytes, "batch")
    version = obj.get("schema")
    if version != BATCH_SCHEMA:
        raise PayloadError(f"batch schema {str(version)[:40]!r} is not supported; this station takes {BATCH_SCHEMA}")
    validate(BATCH_SCHEMA, obj)
    items = obj["items"]
    field = {"reads": "plate_jpeg", "images": "jpeg"}.get(obj["kind"])
    if field:
        for n, item in enumerate(items):
            try:
                item[field] = base64.b64decode(item[field], validate=True)
            except (binascii.Error, ValueError):
                raise PayloadError(f"item {n}: {field} is not base64") from None
    return IncomingBatch(obj["batch_id"], obj["agency"], obj["unit"], obj["kind"], items, len(payload))


def peek_batch_id(payload: bytes) -> str | None:
    """The batch id of a payload that failed validation, when one can be found, so the refusal can be answered."""
    try:
        obj = json.loads(payload[:16 * 1024 * 1024])
        value = obj.get("batch_id") if isinstance(obj, dict) else None
        return value if isinstance(value, str) and len(value) <= 64 else None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def build_ack(batch_id: str, status: str, at: str, station: str, kind: str | None = None, accepted: int = 0,
              duplicates: int = 0, reason: str = "") -> bytes:
    body: dict = {"schema": ACK_SCHEMA, "batch_id": batch_id, "status": status, "at": at, "station": station[:128]}
    if kind:
        body["kind"] = kind
    if status == "stored":
        body.update(accepted=accepted, duplicates=duplicates)
    if reason:
        body["reason"] = reason[:1000]
    return json.dumps(body, separators=(",", ":")).encode()


def parse_ack(payload: bytes) -> dict:
    obj = _load(payload, 64 * 1024, "acknowledgement")
    validate(ACK_SCHEMA, obj)
    return obj


def build_status(agency: str, unit: str, state: str, at: str, **fields) -> bytes:
    body = {"schema": STATUS_SCHEMA, "agency": agency, "unit": unit, "state": state, "at": at, **fields}
    return json.dumps(body, separators=(",", ":")).encode()


def parse_status(payload: bytes) -> dict:
    obj = _load(payload, 64 * 1024, "status")
    validate(STATUS_SCHEMA, obj)
    return obj


def sign_payload(key: Ed25519PrivateKey, payload: bytes) -> str:
    return base64.b64encode(key.sign(payload)).decode("ascii")


def verify_payload(key: Ed25519PublicKey, payload: bytes, signature: str | None, unit: str) -> None:
    if not signature:
        raise PayloadError(f"batch from {unit} is not signed, and this station requires signed batches")
    try:
        key.verify(base64.b64decode(signature, validate=True), payload)
    except (InvalidSignature, binascii.Error, ValueError):
        raise PayloadError(f"batch from {unit} is wrongly signed: the signature does not verify with {unit}'s key") from None
