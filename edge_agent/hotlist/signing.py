"""Signed hotlist updates: the station signs, every unit checks before a list replaces the one in force.

The signature covers the list's sha256, its version and whether it is a full
list or an update, so a list cannot be swapped, replayed as a newer one, or
turned from an update into a replacement. The envelope is a small JSON object
that travels beside the list: `FILE.sig` on disk, the first line of the
payload over MQTT.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_agent.errors import HotlistError
from edge_agent.files import FileExistsRefusal, write_atomic, write_private
from edge_agent.hotlist.storage import SignedInfo

SCHEMA = "alpr.hotlist-signature.v1"
_KEPT = "the list in force stays"


@dataclass(frozen=True)
class Envelope:
    version: int
    kind: str  # full | delta
    sha256: str
    source: str
    signature: str  # base64

    def message(self) -> bytes:
        body = {"schema": SCHEMA, "version": self.version, "kind": self.kind, "sha256": self.sha256, "source": self.source}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> str:
        return json.dumps({"schema": SCHEMA, "version": self.version, "kind": self.kind, "sha256": self.sha256,
                           "source": self.source, "signature": self.signature}, sort_keys=True)

    @classmethod
    def from_json(cls, text: bytes | str, where: str) -> "Envelope":
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
                raise ValueError(f"not a {SCHEMA} object")
            version = raw["version"]
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise ValueError("version must be a positive whole number")
            if raw["kind"] not in ("full", "delta"):
                raise ValueError("kind must be full or delta")
            return cls(version, raw["kind"], str(raw["sha256"]), str(raw.get("source", "")), str(raw["signature"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise HotlistError(f"{where}: signature envelope is unreadable ({exc}); {_KEPT}") from None


def generate_key(directory: Path, name: str = "hotlist-signing", force: bool = False) -> tuple[Path, Path]:
    """An Ed25519 key pair, NAME.key (0600, stays where it signs) and NAME.pub (goes to whoever checks).
    An existing key is replaced only with `force`.

    The station's hotlist key signs lists for every unit; a unit's own key signs the batches it sends.
    """
    private = Ed25519PrivateKey.generate()
    key_path, pub_path = directory / f"{name}.key", directory / f"{name}.pub"
    if pub_path.exists() and not force:
        raise FileExistsRefusal(f"{pub_path}: already exists; give --force to replace the key pair")
    write_private(key_path, private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()), force)
    write_atomic(pub_path, private.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo), 0o644, True)
    return key_path, pub_path


def _load_key(path: Path, load, kind: type, what: str):
    try:
        key = load(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise HotlistError(f"{path}: not a readable PEM {what}: {exc}") from None
    if not isinstance(key, kind):
        raise HotlistError(f"{path}: is not an Ed25519 {what}")
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    return _load_key(path, lambda data: serialization.load_pem_private_key(data, password=None), Ed25519PrivateKey,
                     "private key")


def load_public_key(path: Path) -> Ed25519PublicKey:
    return _load_key(path, serialization.load_pem_public_key, Ed25519PublicKey, "public key")


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, sha256: str, version: int, kind: str, source: str) -> Envelope:
    unsigned = Envelope(version, kind, sha256, source, "")
    return Envelope(version, kind, sha256, source, base64.b64encode(key.sign(unsigned.message())).decode())


def verify(key: Ed25519PublicKey, envelope: Envelope, sha256: str, kind: str | None, where: str) -> SignedInfo:
    """Check the envelope against the list it came with. HotlistError says what does not hold."""
    try:
        key.verify(base64.b64decode(envelope.signature, validate=True), envelope.message())
    except (InvalidSignature, ValueError):
        raise HotlistError(f"{where}: signature does not verify with the station key {key_id(key)}; {_KEPT}") from None
    if envelope.sha256 != sha256:
        raise HotlistError(f"{where}: the list's sha256 {sha256[:16]}... is not the signed {envelope.sha256[:16]}...; {_KEPT}")
    if kind is not None and envelope.kind != kind:
        raise HotlistError(f"{where}: signed as a {envelope.kind} list but the file is a {kind} list; {_KEPT}")
    return SignedInfo(envelope.version, key_id(key))


def pack(envelope: Envelope, data: bytes) -> bytes:
    """The MQTT payload for a signed list: the envelope on the first line, the list after it."""
    return envelope.to_json().encode() + b"\n" + data


def signed_payload(path: Path, signature: Path) -> tuple[Envelope, bytes]:
    """A list and its envelope, read from disk and packed for MQTT."""
    try:
        data, envelope_text = path.read_bytes(), signature.read_bytes()
    except OSError as exc:
        raise HotlistError(f"{exc.filename}: {exc.strerror}") from None
    envelope = Envelope.from_json(envelope_text, str(signature))
    return envelope, pack(envelope, data)


def unpack(payload: bytes, where: str) -> tuple[Envelope, bytes]:
    head, sep, data = payload.partition(b"\n")
    if not sep or len(head) > 4096:
        raise HotlistError(f"{where}: payload has no signature envelope line; {_KEPT}")
    return Envelope.from_json(head, where), data
