"""The agency's own certificate authority: the broker's, the stations' and the units' certificates, the
revocation list and the broker's access list that follow from them.

A PKI folder (kept at the station, never on a unit) holds:

- `ca.key` (0600) and `ca.crt`: the agency CA (ECDSA P-256), which every broker, station and unit trusts;
- `issued.json`: every certificate issued, with its role, name, serial, expiry and revocation;
- `crl.pem`: the revocation list the broker reads (`crlfile`), valid as long as the CA so that its expiry
  never locks the fleet out;
- `mosquitto.acl`: each station's and unit's topics (`acl_file`), written again at every change;
- `broker/`, `station/`, `unit/`: each holder's `NAME.key` (0600), `NAME.crt` and a copy of `ca.crt`, to
  be carried to the machine that uses them.

The common name is `unit:AGENCY:UNIT`, `station:AGENCY:NAME` or the broker's host name. Mosquitto takes
it as the user name (`use_identity_as_username`), so the access list ties each unit to its own topics:
MQTT subscribers never learn who published, the broker does.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge_agent.errors import EdgeAgentError
from edge_agent.files import write_atomic, write_private

ROLES = ("broker", "station", "unit", "screen")
SERVERS = ("broker", "screen")  # TLS servers: named by their host, certified for server authentication
CA_DAYS = 20 * 365
LEAF_DAYS = 2 * 365
WARN_DAYS = 30  # the selftest and the station warn this long before a certificate expires
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class PkiError(EdgeAgentError):
    pass


@dataclass(frozen=True)
class Issued:
    role: str
    name: str
    common_name: str
    serial: str  # hex
    not_after: str  # ISO 8601, UTC
    revoked_at: str | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def common_name(role: str, agency: str, name: str) -> str:
    if role not in ROLES:
        raise PkiError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    for what, value in (("agency", agency), ("name", name)):
        if role in SERVERS and what == "agency":
            continue
        if not _NAME.match(value):
            raise PkiError(f"{what} {value!r}: use letters, digits, '.', '_' and '-' (at most 63)")
    return name if role in SERVERS else f"{role}:{agency}:{name}"


class Authority:
    """A PKI folder: issue, renew and revoke certificates; keep the CRL and the broker's ACL in step."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    # --- files --------------------------------------------------------------

    @property
    def ca_cert_path(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def crl_path(self) -> Path:
        return self.folder / "crl.pem"

    @property
    def acl_path(self) -> Path:
        return self.folder / "mosquitto.acl"

    def _settings(self) -> dict:
        path = self.folder / "pki.json"
        if not path.is_file():
            raise PkiError(f"{self.folder}: not a PKI folder (run `edge-agent pki init --dir {self.folder}` first)")
        return json.loads(path.read_text())

    def _ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        self._settings()
        try:
            key = serialization.load_pem_private_key((self.folder / "ca.key").read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise PkiError(f"{self.folder}: the CA's key or certificate is unreadable: {exc}") from None
        return key, cert

    def issued(self) -> list[Issued]:
        path = self.folder / "issued.json"
        return [Issued(**row) for row in json.loads(path.read_text())] if path.is_file() else []

    def _save_issued(self, rows: list[Issued]) -> None:
        write_atomic(self.folder / "issued.json", json.dumps([asdict(r) for r in rows], indent=1).encode(), 0o640,
                     force=True)

    # --- the CA -------------------------------------------------------------

    def init(self, agency: str, topic_prefix: str = "alpr/v1", force: bool = False) -> Path:
        common_name("unit", agency, "ca")  # checks the agency's spelling
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"{agency} ALPR CA")])
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        write_private(self.folder / "ca.key", _key_pem(key), force)
        write_atomic(self.ca_cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644, force=True)
        write_atomic(self.folder / "pki.json", json.dumps({"agency": agency, "topic_prefix": topic_prefix}).encode(),
                     0o640, force=True)
        self._save_issued([])
        self._write_crl_and_acl()
        return self.ca_cert_path

    # --- certificates -------------------------------------------------------

    def issue(self, role: str, name: str, days: int = LEAF_DAYS, hosts: tuple[str, ...] = (),
              force: bool = False) -> tuple[Path, Path]:
        """A key and a certificate for a broker (server), station or unit (clients): (key path, cert path)."""
        settings = self._settings()
        cn = common_name(role, settings["agency"], name)
        current = [r for r in self.issued() if r.common_name == cn and r.revoked_at is None]
        if current and not force:
            raise PkiError(f"{role} {name} already has a certificate (serial {current[0].serial}); "
                           f"`edge-agent pki renew {role} {name}` renews it, --force issues a new key")
        key_path = self.folder / role / f"{name}.key"
        key = ec.generate_private_key(ec.SECP256R1())
        write_private(key_path, _key_pem(key), force=force)
        return key_path, self._certify(role, name, cn, key.public_key(), days, hosts)

    def renew(self, role: str, name: str, days: int = LEAF_DAYS) -> Path:
        """A new certificate for the same key (it stays where it is); the old one runs out by itself."""
        cn = common_name(role, self._settings()["agency"], name)
        cert_path = self.folder / role / f"{name}.crt"
        try:
            old = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise PkiError(f"{cert_path}: no certificate to renew ({exc})") from None
        hosts = ()
        try:
            san = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            hosts = tuple(san.get_values_for_type(x509.DNSName)) + tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))
        except x509.ExtensionNotFound:
            pass
        return self._certify(role, name, cn, old.public_key(), days, hosts)

    def _certify(self, role: str, name: str, cn: str, public_key, days: int, hosts: tuple[str, ...]) -> Path:
        ca_key, ca_cert = self._ca()
        now = _now()
        not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if role in SERVERS else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, self._settings()["agency"]),
                                            x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                   .issuer_name(ca_cert.subject).public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
        if role in SERVERS:
            names: list[x509.GeneralName] = []
            for host in hosts or (name,):
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        cert_path = self.folder / role / f"{name}.crt"
        write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644, force=True)
        write_atomic(self.folder / role / "ca.crt", self.ca_cert_path.read_bytes(), 0o644, force=True)
        rows = self.issued() + [Issued(role, name, cn, format(cert.serial_number, "x"), not_after.isoformat())]
        self._save_issued(rows)
        self._write_crl_and_acl()
        return cert_path

    def revoke(self, role: str, name: str) -> list[str]:
        """Revoke every certificate of a holder (a stolen car's unit): the serials revoked. The broker's ACL
        drops its topics at once on a reload (SIGHUP); the CRL refuses its connections from the broker's
        next start."""
        cn = common_name(role, self._settings()["agency"], name)
        when = _now().isoformat()
        rows, revoked = [], []
        for r in self.issued():
            if r.common_name == cn and r.revoked_at is None:
                r = Issued(r.role, r.name, r.common_name, r.serial, r.not_after, when)
                revoked.append(r.serial)
            rows.append(r)
        if not revoked:
            raise PkiError(f"{role} {name}: no certificate in force to revoke")
        self._save_issued(rows)
        self._write_crl_and_acl()
        return revoked

    # --- what the broker reads ----------------------------------------------

    def _write_crl_and_acl(self) -> None:
        ca_key, ca_cert = self._ca()
        now = _now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
                   .last_update(now - dt.timedelta(minutes=5)).next_update(ca_cert.not_valid_after_utc))
        rows = self.issued()
        for r in rows:
            if r.revoked_at:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(int(r.serial, 16))
                    .revocation_date(dt.datetime.fromisoformat(r.revoked_at)).build())
        crl = builder.sign(ca_key, hashes.SHA256())
        write_atomic(self.crl_path, crl.public_bytes(serialization.Encoding.PEM), 0o644, force=True)
        settings = self._settings()
        write_atomic(self.acl_path, broker_acl(settings["topic_prefix"], settings["agency"], rows).encode(), 0o640,
                     force=True)


def broker_acl(prefix: str, agency: str, issued: list[Issued]) -> str:
    """Mosquitto's access list: a unit publishes only under its own prefix and reads only its own
    acknowledgements and alerts and the fleet's hotlist and roster; only stations acknowledge and publish to the
    fleet.
    Revoked holders get no lines, so everything is denied them."""
    lines = ["# written by `edge-agent pki`; edit the PKI, not this file", ""]
    base = f"{prefix}/{agency}"
    seen = set()
    for r in issued:
        if r.revoked_at or r.role in SERVERS or r.common_name in seen:
            continue
        seen.add(r.common_name)
        lines.append(f"user {r.common_name}")
        if r.role == "unit":
            own = f"{base}/{r.name}"
            lines += [f"topic write {own}/batch", f"topic write {own}/status", f"topic readwrite {own}/alerts",
                      f"topic read {own}/ack", f"topic read {base}/hotlist", f"topic read {base}/roster",
                      f"topic read {base}/plates"]
        else:
            lines += [f"topic read {base}/+/batch", f"topic read {base}/+/status", f"topic write {base}/+/ack",
                      f"topic readwrite {base}/hotlist", f"topic readwrite {base}/roster",
                      f"topic readwrite {base}/plates"]
        lines.append("")
    return "\n".join(lines) + "\n"


def certificate_expires(path: Path | None) -> dt.datetime | None:
    """When a PEM certificate expires; None for no file or an unreadable one."""
    if path is None:
        return None
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None


def expiry_warnings(paths: list[Path], within_days: int = WARN_DAYS, now: dt.datetime | None = None) -> list[str]:
    """One line for each certificate that has expired or expires within `within_days`."""
    now = now or _now()
    out = []
    for path in paths:
        try:
            cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
        except (OSError, ValueError):
            out.append(f"{path}: not a readable PEM certificate")
            continue
        left = cert.not_valid_after_utc - now
        if left.total_seconds() <= 0:
            out.append(f"{path}: certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
        elif left <= dt.timedelta(days=within_days):
            out.append(f"{path}: certificate expires on {cert.not_valid_after_utc:%Y-%m-%d}, in {left.days} days; "
                       f"renew it (`edge-agent pki renew`)")
    return out


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
