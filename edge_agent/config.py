"""Configuration: parsed and validated once, at the edge, into typed objects.

Every problem is reported as one `ConfigError` naming the file, the key and
what is wrong. Relative paths are taken relative to the config file's folder,
so a unit's config works whatever directory the service starts in.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from datetime import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from edge_agent.errors import ConfigError
from edge_agent.recognise.detector import MIN_SCORE
from edge_agent.recognise.plate import MIN_CONFIDENCE
from edge_agent.recognise.runtime import RuntimeOptions
from edge_agent.recognise.tracker import TrackerSettings
from edge_agent.tomlcompat import tomllib

log = logging.getLogger(__name__)

SOURCE_KINDS = ("file", "folder", "video", "v4l2", "rtsp", "gstreamer", "picamera2")
DEFAULT_CONFIG_PATHS = (Path("/etc/edge-agent/config.toml"),)
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class CameraConfig:
    id: str
    source: str  # one of SOURCE_KINDS
    path: Path | None = None  # file, folder, video
    device: int | str = 0  # v4l2 index or /dev/videoN
    url: str = ""  # rtsp
    pipeline: str = ""  # gstreamer
    width: int = 0  # 0 keeps the camera's default
    height: int = 0
    max_fps: float = 0.0  # 0: as fast as recognition takes them
    frame_stride: int = 1  # file and video sources: read every Nth frame
    loop: bool = False  # video: start again at the end (soak runs, a bench camera), never ending
    region: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # left, top, right, bottom as fractions
    side_view: bool = False  # looks out to the side (parked cars): plates seen steeply from the side are searched too


@dataclass(frozen=True)
class AgentConfig:
    unit_id: str = "unit-01"
    agency: str = "agency"
    data_dir: Path = Path("data")
    time_zone: str = "America/Los_Angeles"  # the agency's years and months in its reports


@dataclass(frozen=True)
class RecognitionConfig:
    # the library's defaults (recognise/), named once there
    providers: tuple[str, ...] = RuntimeOptions.providers
    intra_op_threads: int = RuntimeOptions.intra_op_threads
    inter_op_threads: int = RuntimeOptions.inter_op_threads
    memory_arena: bool = RuntimeOptions.memory_arena
    spin_wait: bool = RuntimeOptions.spin_wait
    trt_cache_dir: Path | None = None  # TensorRT engine cache; default DATA_DIR/trt-cache
    trt_fp16: bool = RuntimeOptions.trt_fp16
    min_confidence: float = MIN_CONFIDENCE
    repeat_window_s: float = 10.0  # the same plate on the same camera within this is one pass
    track_max_wait_s: float = TrackerSettings.max_wait_s  # a pass's read is given at most this long after it shows
    track_max_gap_s: float = TrackerSettings.max_gap_s  # a plate unseen this long has left the picture
    track_settle_frames: int = TrackerSettings.settle_frames  # this many frames agreeing settle a pass early
    plate_min_score: float = MIN_SCORE  # the plate detector's boxes scoring below this are not plates
    read_state_names: bool = True  # read the state's printed name beside the state head (about 10 ms a plate)
    motion_gate: bool = False  # skip frames in which nothing moved (parked); off while patrolling
    motion_min_changed: float = 0.002  # share of a 160x90 picture that must change
    hang_after_s: float = 3.0  # a read taking longer than this has hung: a new recognition part takes over


KNOWN_PROVIDERS = ("CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider",
                   "OpenVINOExecutionProvider", "CoreMLExecutionProvider", "ROCMExecutionProvider",
                   "DmlExecutionProvider", "XnnpackExecutionProvider", "ACLExecutionProvider",
                   "ArmNNExecutionProvider", "QNNExecutionProvider")


HOTLIST_FIELDS = ("action", "plate", "state", "list", "nic", "ori", "oca", "entered", "expires", "remarks",
                  "make", "year", "colour", "plate_type")


@dataclass(frozen=True)
class HotlistConfig:
    format: str = "csv"  # csv (a header names the columns) | fixed (fields at fixed positions)
    # CSV: the header name of each field in the agency's extract; the DOJ/NCIC layout by default.
    columns: dict[str, str] = field(
        default_factory=lambda: {
            "action": "ACTION", "plate": "LIC", "state": "LIS", "list": "LIST", "nic": "NIC", "ori": "ORI",
            "oca": "OCA", "entered": "DOE", "expires": "EXP", "remarks": "MIS",
            "make": "VMA", "year": "VYR", "colour": "VCO", "plate_type": "LIT",
        }
    )
    # fixed: field -> (first, last) character positions, 1-based and inclusive.
    fixed_width: dict[str, tuple[int, int]] = field(default_factory=dict)
    date_format: str = "%Y%m%d"
    public_key: Path | None = None  # station's Ed25519 key (PEM); when set, every list must be signed with it
    min_fraction_of_previous: float = 0.5  # a full list this much smaller than the one in force is refused
    max_file_mb: int = 512

    @property
    def layout(self):
        from edge_agent.hotlist.parse import HotlistFormat

        return HotlistFormat(self.format, dict(self.columns), dict(self.fixed_width), self.date_format)


@dataclass(frozen=True)
class AlertConfig:
    speak: bool = True
    voice: str = "en-us"
    wav_dir: Path = Path("alerts")  # relative to the data directory
    audio_device: str = ""  # ALSA device for aplay; empty writes the WAV without playing it
    realert_after_s: float = 300.0  # the same listed plate is not alerted again within this, unless the match got stronger
    screen_broker: str = ""  # MQTT broker the in-car screen listens on; empty: the sync broker, if any


@dataclass(frozen=True)
class StorageConfig:
    jpeg_quality: int = 85
    scene_max_side: int = 1280
    cap_mb: float = 8192.0  # the database stays within this; records are given up in a fixed order (0: no cap)
    retention_days: float = 30.0  # sent reads older than this are purged, except those on evidence hold (0: never)
    scene_retention_days: float = 0.0  # scene images of sent reads without hits go sooner (0: with their read)
    hit_retention_days: float = 0.0  # sent reads that hit a list are kept this long instead (0: as other reads)
    audit_retention_days: float = 730.0  # audit records the station holds go after this, behind a checkpoint (0: never)
    memory_buffer_reads: int = 500  # reads held in memory while the disk refuses writes


@dataclass(frozen=True)
class SyncConfig:
    broker: str = ""  # mqtt://host:port or mqtts://host:port; empty keeps reads waiting
    topic_prefix: str = "alpr/v1"
    batch_size: int = 200  # reads (or alerts, dispositions, audit records) in one batch
    image_batch_size: int = 20  # scene images in one batch
    scene_images: bool = True  # send scene images too (after the reads; they may wait)
    interval_s: float = 2.0
    max_in_flight: int = 4  # batches published and not yet acknowledged by the station
    ack_timeout_s: float = 30.0  # a batch with no acknowledgement after this goes out again
    retry_refused_after_s: float = 3600.0  # a batch the station refused is tried again after this
    backoff_min_s: float = 1.0  # reconnect delays double from this to backoff_max_s, with jitter
    backoff_max_s: float = 60.0
    session_expiry_s: float = 86400.0  # the broker keeps acknowledgements for an absent unit this long
    username: str = ""
    password: str = ""
    tls_ca: Path | None = None  # CA certificate for mqtts:// (default: the system's)
    tls_cert: Path | None = None  # this unit's client certificate (PEM)
    tls_key: Path | None = None  # and its private key
    signing_key: Path | None = None  # this unit's Ed25519 key; when set, every batch is signed with it
    station_key: Path | None = None  # the station's Ed25519 public key: only acknowledgements it signed are taken
    password_file: Path | None = None  # the password in a file of its own (0600), not in the configuration
    insecure: bool = False  # allow plain mqtt:// (a closed test network); every client then warns as it starts


@dataclass(frozen=True)
class GpsConfig:
    port: str = ""  # the receiver's serial device (/dev/ttyACM0, /dev/serial0); empty: reads carry no position
    baud: int = 9600
    max_age_s: float = 3.0  # a fix older than this is no fix
    max_clock_skew_s: float = 5.0  # the system clock further than this from GPS time gives way to GPS time


@dataclass(frozen=True)
class StationConfig:
    database: str = ""  # a path (SQLite) or a postgresql:// URL; empty: DATA_DIR/station.sqlite3
    share_group: str = "stations"  # receivers in one group share the fleet's batches (MQTT 5 shared subscriptions)
    unit_keys: Path | None = None  # folder of UNIT.pub keys; when set, only batches signed by their unit are taken
    max_batch_mb: float = 16.0  # larger batches are refused
    signing_key: Path | None = None  # the station's Ed25519 key: signs every acknowledgement
    hotlist: Path | None = None  # a signed list (FILE.sig beside it) published, retained, to the fleet
    hotlist_poll_s: float = 10.0  # how often the list file is checked for a new version
    retention_days: float = 365.0  # reads older than this are purged by `station purge`, except evidence (0: never)
    minimum_retention_days: float = 365.0  # the department's floor: a shorter retention_days is refused


@dataclass(frozen=True)
class ScreenConfig:
    enabled: bool = False  # serve the officer's screen (a web page) while `run` runs
    listen: str = "127.0.0.1:8080"  # host:port; a display on the unit uses loopback, the car's terminal HTTPS
    tls_cert: Path | None = None  # the screen's certificate from the agency PKI (PEM); needed off loopback
    tls_key: Path | None = None
    insecure: bool = False  # plain HTTP off loopback (a closed bench network); the agent then warns as it starts
    lock_after_s: float = 300.0  # a session without a touch for this long locks: log in again
    live_reads: int = 50  # the newest reads the live view shows (and replays to a browser that reconnects)
    theme: str = "auto"  # auto (night from sunset to sunrise at the car's position), day or night
    home: tuple[float, float] = (38.5816, -121.4944)  # where the sun is reckoned without a GPS fix (lat, lon)


@dataclass(frozen=True)
class Config:
    agent: AgentConfig = AgentConfig()
    cameras: tuple[CameraConfig, ...] = ()
    recognition: RecognitionConfig = RecognitionConfig()
    hotlist: HotlistConfig = HotlistConfig()
    alerts: AlertConfig = AlertConfig()
    storage: StorageConfig = StorageConfig()
    sync: SyncConfig = SyncConfig()
    station: StationConfig = StationConfig()
    gps: GpsConfig = GpsConfig()
    screen: ScreenConfig = ScreenConfig()
    source_file: str = "<defaults>"

    @property
    def data_dir(self) -> Path:
        return self.agent.data_dir

    def with_overrides(self, data_dir: Path | None = None, broker: str | None = None, source: str | None = None) -> "Config":
        cfg = self
        if data_dir is not None:
            cfg = dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, data_dir=Path(data_dir)))
        if broker is not None:
            cfg = dataclasses.replace(cfg, sync=take_credentials(cfg.sync, broker, "--broker", "sync.broker"))
            require_tls(broker, cfg.sync.insecure, "--broker", "sync.broker")
        if source is not None:
            cfg = dataclasses.replace(cfg, cameras=(camera_for_path(source),))
        return cfg


def camera_for_path(source: str, camera_id: str = "cli") -> CameraConfig:
    """A camera from a command-line source: a file, a folder, a video, an rtsp:// URL or a device number."""
    if source.startswith(("rtsp://", "rtsps://", "http://", "https://")):
        return CameraConfig(id=camera_id, source="rtsp", url=source)
    if source.isdigit() or source.startswith("/dev/video"):
        return CameraConfig(id=camera_id, source="v4l2", device=int(source) if source.isdigit() else source)
    path = Path(source)
    if path.is_dir():
        return CameraConfig(id=camera_id, source="folder", path=path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return CameraConfig(id=camera_id, source="file", path=path)
    return CameraConfig(id=camera_id, source="video", path=path)


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def redact_url(url: str) -> str:
    """The URL as it may be shown or logged: a password in it becomes ***."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    host = parsed.netloc.rpartition("@")[2]
    return parsed._replace(netloc=f"{parsed.username}:***@{host}").geturl()


def validate_broker_url(url: str, file: str, key: str) -> None:
    if not url:
        return
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
        raise ConfigError(file, key, f"{redact_url(url)!r} is not a broker URL of the form mqtt://host:port or mqtts://host:port")
    try:
        _ = parsed.port  # urlparse checks the port only when asked
    except ValueError:
        raise ConfigError(file, key, f"{redact_url(url)!r} has an invalid port") from None


def _check_certificate(path: Path | None, file: str, key: str) -> None:
    if path is None:
        return
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(path.read_bytes())
    except (ValueError, OSError) as exc:
        raise ConfigError(file, key, f"{path} is not a PEM certificate ({exc})") from None


def _check_private(path: Path | None, file: str, key: str) -> None:
    """A private key that other users can read is refused: it may already be copied."""
    if path is None:
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(file, key, f"{path} can be read or changed by other users (mode {mode:04o}); "
                                     f"make it the agent's alone: chmod 600 {path}")


def require_tls(url: str, insecure: bool, file: str, key: str) -> None:
    """A plain mqtt:// broker only where the configuration says sync.insecure = true."""
    if url and urlparse(url).scheme == "mqtt" and not insecure:
        raise ConfigError(file, key, f"{redact_url(url)!r} is plain MQTT: reads, plates and acknowledgements would "
                                     "travel unencrypted to a broker nobody checked. Use mqtts:// with the agency's "
                                     "certificates, or set sync.insecure = true on a closed test network")


def take_credentials(sync: "SyncConfig", url: str, file: str, key: str) -> "SyncConfig":
    """`sync` with `url` as its broker. Credentials in the URL are used (never silently dropped), and the
    broker kept without them, so that no message or log line shows the password; a URL whose credentials
    disagree with sync.username and sync.password is refused."""
    validate_broker_url(url, file, key)
    parsed = urlparse(url)
    if parsed.username is None:
        return dataclasses.replace(sync, broker=url)
    user, password = unquote(parsed.username), unquote(parsed.password or "")
    if (sync.username and sync.username != user) or (sync.password and password and sync.password != password):
        raise ConfigError(file, key, f"{redact_url(url)!r} names credentials other than sync.username and "
                                     "sync.password; give them in one place")
    clean = parsed._replace(netloc=parsed.netloc.rpartition("@")[2]).geturl()
    return dataclasses.replace(sync, broker=clean, username=user, password=password or sync.password)


def find_config(explicit: str | os.PathLike | None) -> Path | None:
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("EDGE_AGENT_CONFIG")
    if env:
        return Path(env)
    return next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)


def load_config(path: str | os.PathLike | None) -> Config:
    """Read and validate a config file; with no file, the built-in defaults."""
    found = find_config(path)
    if found is None:
        return Config()
    name = str(found)
    try:
        raw = tomllib.loads(found.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(name, "-", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(name, "-", f"cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "-", f"not valid TOML: {exc}") from None
    return parse_config(raw, name, found.resolve().parent)


def parse_config(raw: dict[str, Any], file: str = "<config>", base: Path = Path(".")) -> Config:
    sections = {"agent", "camera", "recognition", "hotlist", "alerts", "storage", "sync", "station", "gps", "screen"}
    for key in raw:
        if key not in sections:
            raise ConfigError(file, key, f"unknown section{_nearest(key, sections)} (expected one of {', '.join(sorted(sections))})")
    agent = _section(AgentConfig, raw.get("agent", {}), file, "agent", base)
    if not _ID.match(agent.unit_id):
        raise ConfigError(file, "agent.unit_id", "must be 1-64 letters, digits, '.', '_' or '-'")
    if not _ID.match(agent.agency):
        raise ConfigError(file, "agent.agency", "must be 1-64 letters, digits, '.', '_' or '-'")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(agent.time_zone)
    except (KeyError, ValueError, OSError):
        raise ConfigError(file, "agent.time_zone", f"{agent.time_zone!r} is not a time zone (America/Los_Angeles)") from None
    cameras_raw = raw.get("camera", [])
    if not isinstance(cameras_raw, list):
        raise ConfigError(file, "camera", "must be an array of tables ([[camera]])")
    cameras = tuple(_camera(c, file, f"camera[{i}]", base) for i, c in enumerate(cameras_raw))
    ids = [c.id for c in cameras]
    if len(set(ids)) != len(ids):
        raise ConfigError(file, "camera.id", f"camera ids must be unique, got {ids}")
    recognition = _section(RecognitionConfig, raw.get("recognition", {}), file, "recognition", base)
    if not 0 <= recognition.min_confidence <= 1:
        raise ConfigError(file, "recognition.min_confidence", "must be between 0 and 1")
    if not 0 < recognition.plate_min_score < 1:
        raise ConfigError(file, "recognition.plate_min_score", "must be between 0 and 1")
    if not recognition.providers:
        raise ConfigError(file, "recognition.providers", "needs at least one ONNX Runtime execution provider")
    for provider in recognition.providers:
        if provider not in KNOWN_PROVIDERS:
            raise ConfigError(file, "recognition.providers", f"{provider!r} is not an ONNX Runtime execution provider "
                                                             f"(expected one of {', '.join(KNOWN_PROVIDERS)})")
    if recognition.track_settle_frames < 1:
        raise ConfigError(file, "recognition.track_settle_frames", "must be at least 1")
    if not 0 < recognition.track_max_wait_s <= 5:
        raise ConfigError(file, "recognition.track_max_wait_s", "must be above 0 and at most 5 seconds")
    if not 0 < recognition.motion_min_changed < 1:
        raise ConfigError(file, "recognition.motion_min_changed", "must be between 0 and 1")
    hotlist = _hotlist(raw.get("hotlist", {}), file, base)
    alerts = _section(AlertConfig, raw.get("alerts", {}), file, "alerts", base)
    storage = _section(StorageConfig, raw.get("storage", {}), file, "storage", base)
    if not 10 <= storage.jpeg_quality <= 100:
        raise ConfigError(file, "storage.jpeg_quality", "must be between 10 and 100")
    validate_broker_url(alerts.screen_broker, file, "alerts.screen_broker")
    if urlparse(alerts.screen_broker).username is not None:
        raise ConfigError(file, "alerts.screen_broker", f"{redact_url(alerts.screen_broker)!r} carries credentials; "
                                                        "the screen publisher uses sync.username and sync.password")
    sync = _section(SyncConfig, raw.get("sync", {}), file, "sync", base)
    sync = take_credentials(sync, sync.broker, file, "sync.broker")
    require_tls(sync.broker, sync.insecure, file, "sync.broker")
    require_tls(alerts.screen_broker, sync.insecure, file, "alerts.screen_broker")
    for key in ("batch_size", "image_batch_size", "max_in_flight"):
        if not 1 <= getattr(sync, key) <= 1000:
            raise ConfigError(file, f"sync.{key}", "must be between 1 and 1000")
    if sync.backoff_min_s <= 0 or sync.backoff_max_s < sync.backoff_min_s:
        raise ConfigError(file, "sync.backoff_max_s", "backoff_min_s must be above 0 and backoff_max_s at least as large")
    for key in ("tls_ca", "tls_cert", "tls_key", "signing_key", "station_key", "password_file"):
        path = getattr(sync, key)
        if path is not None and not path.is_file():
            raise ConfigError(file, f"sync.{key}", f"{path} is not a file")
    if (sync.tls_cert is None) != (sync.tls_key is None):
        raise ConfigError(file, "sync.tls_cert", "tls_cert and tls_key go together")
    for key in ("tls_ca", "tls_cert"):
        _check_certificate(getattr(sync, key), file, f"sync.{key}")
    for key in ("tls_key", "signing_key", "password_file"):
        _check_private(getattr(sync, key), file, f"sync.{key}")
    if sync.password_file is not None:
        if sync.password:
            raise ConfigError(file, "sync.password_file", "give the password or password_file, not both")
        sync = dataclasses.replace(sync, password=sync.password_file.read_text().strip())
    station = _section(StationConfig, raw.get("station", {}), file, "station", base)
    if station.database and not station.database.startswith(("postgresql://", "postgres://")):
        path = Path(os.path.expanduser(station.database))
        station = dataclasses.replace(station, database=str(path if path.is_absolute() else base / path))
    if station.unit_keys is not None and not station.unit_keys.is_dir():
        raise ConfigError(file, "station.unit_keys", f"{station.unit_keys} is not a folder")
    if station.signing_key is not None and not station.signing_key.is_file():
        raise ConfigError(file, "station.signing_key", f"{station.signing_key} is not a file")
    _check_private(station.signing_key, file, "station.signing_key")
    if not _ID.match(station.share_group):
        raise ConfigError(file, "station.share_group", "must be 1-64 letters, digits, '.', '_' or '-'")
    if 0 < station.retention_days < station.minimum_retention_days:
        raise ConfigError(file, "station.retention_days",
                          f"{station.retention_days:g} days is under the minimum of {station.minimum_retention_days:g}"
                          " (station.minimum_retention_days): the station keeps its data at least that long")
    gps = _section(GpsConfig, raw.get("gps", {}), file, "gps", base)
    if gps.baud not in (4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800):
        raise ConfigError(file, "gps.baud", f"{gps.baud} is not a serial speed a GPS receiver uses (4800 to 460800)")
    for key in ("max_age_s", "max_clock_skew_s"):
        if getattr(gps, key) <= 0:
            raise ConfigError(file, f"gps.{key}", "must be above 0")
    screen = _screen(raw.get("screen", {}), file, base)
    return Config(agent, cameras, recognition, hotlist, alerts, storage, sync, station, gps, screen, source_file=file)


def _screen(raw: Any, file: str, base: Path) -> ScreenConfig:
    screen = _section(ScreenConfig, raw, file, "screen", base)
    host, _, port = screen.listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: a free port (tests)
        raise ConfigError(file, "screen.listen", f"{screen.listen!r} is not host:port (127.0.0.1:8080)")
    if (screen.tls_cert is None) != (screen.tls_key is None):
        raise ConfigError(file, "screen.tls_cert", "tls_cert and tls_key go together")
    for key in ("tls_cert", "tls_key"):
        path = getattr(screen, key)
        if path is not None and not path.is_file():
            raise ConfigError(file, f"screen.{key}", f"{path} is not a file")
    _check_certificate(screen.tls_cert, file, "screen.tls_cert")
    _check_private(screen.tls_key, file, "screen.tls_key")
    if screen.tls_cert is None and not screen.insecure and not is_loopback(host):
        raise ConfigError(file, "screen.listen", f"{screen.listen} is reachable from the car's network: plates and "
                                                 "logins would travel in the clear. Give screen.tls_cert and "
                                                 "screen.tls_key from the agency PKI, or set screen.insecure = true "
                                                 "on a closed bench network")
    if screen.lock_after_s < 10:
        raise ConfigError(file, "screen.lock_after_s", "must be at least 10 seconds")
    if not 1 <= screen.live_reads <= 500:
        raise ConfigError(file, "screen.live_reads", "must be between 1 and 500")
    if screen.theme not in THEMES:
        raise ConfigError(file, "screen.theme", f"{screen.theme!r} is not one of {', '.join(THEMES)}")
    lat, lon = screen.home
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ConfigError(file, "screen.home", f"{screen.home} is not a latitude and longitude")
    return screen


THEMES = ("auto", "day", "night")


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _hotlist(raw: Any, file: str, base: Path) -> HotlistConfig:
    if not isinstance(raw, dict):
        raise ConfigError(file, "hotlist", "must be a table")
    tables = {k: raw[k] for k in ("columns", "fixed_width") if k in raw}
    plain = _section(HotlistConfig, {k: v for k, v in raw.items() if k not in tables}, file, "hotlist", base)
    if plain.format not in ("csv", "fixed"):
        raise ConfigError(file, "hotlist.format", f"{plain.format!r} is not csv or fixed")
    if not 0 <= plain.min_fraction_of_previous <= 1:
        raise ConfigError(file, "hotlist.min_fraction_of_previous", "must be between 0 and 1")
    if plain.public_key is not None and not plain.public_key.is_file():
        raise ConfigError(file, "hotlist.public_key", f"{plain.public_key} is not a file")
    columns = dict(HotlistConfig().columns)
    for key, value in tables.get("columns", {}).items():
        if key not in HOTLIST_FIELDS:
            raise ConfigError(file, f"hotlist.columns.{key}",
                              f"unknown field{_nearest(key, HOTLIST_FIELDS)} (expected one of {', '.join(HOTLIST_FIELDS)})")
        if not isinstance(value, str):
            raise ConfigError(file, f"hotlist.columns.{key}", "must be a column name (\"\" if the extract has none)")
        columns[key] = value
    columns = {k: v for k, v in columns.items() if v}
    fixed: dict[str, tuple[int, int]] = {}
    for key, value in tables.get("fixed_width", {}).items():
        where = f"hotlist.fixed_width.{key}"
        if key not in HOTLIST_FIELDS:
            raise ConfigError(file, where, f"unknown field (expected one of {', '.join(HOTLIST_FIELDS)})")
        if (not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                or not 1 <= value[0] <= value[1]):
            raise ConfigError(file, where, f"must be [first, last] character positions (1-based), got {value!r}")
        fixed[key] = (value[0], value[1])
    if plain.format == "fixed":
        missing = [f for f in ("plate", "state", "list") if f not in fixed]
        if missing:
            raise ConfigError(file, "hotlist.fixed_width", f"format = \"fixed\" needs positions for {', '.join(missing)}")
    for f in ("plate", "state", "list"):
        if f not in columns:
            raise ConfigError(file, f"hotlist.columns.{f}", "is required")
    try:
        datetime.strptime(datetime(2026, 1, 31).strftime(plain.date_format), plain.date_format)
    except ValueError:
        raise ConfigError(file, "hotlist.date_format", f"{plain.date_format!r} is not a usable strftime format") from None
    return dataclasses.replace(plain, columns=columns, fixed_width=fixed)


def _camera(raw: Any, file: str, where: str, base: Path) -> CameraConfig:
    if not isinstance(raw, dict):
        raise ConfigError(file, where, "must be a table")
    for required in ("id", "source"):
        if required not in raw:
            raise ConfigError(file, f"{where}.{required}", "is required")
    camera = _section(CameraConfig, raw, file, where, base)
    if not _ID.match(camera.id):
        raise ConfigError(file, f"{where}.id", "must be 1-64 letters, digits, '.', '_' or '-'")
    if camera.source not in SOURCE_KINDS:
        raise ConfigError(file, f"{where}.source", f"{camera.source!r} is not one of {', '.join(SOURCE_KINDS)}")
    needs = {"file": "path", "folder": "path", "video": "path", "rtsp": "url", "gstreamer": "pipeline"}.get(camera.source)
    if needs and not getattr(camera, needs):
        raise ConfigError(file, f"{where}.{needs}", f"is required for source = {camera.source!r}")
    if camera.frame_stride < 1:
        raise ConfigError(file, f"{where}.frame_stride", "must be at least 1")
    left, top, right, bottom = camera.region
    if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
        raise ConfigError(file, f"{where}.region", f"must be [left, top, right, bottom] with 0 <= left < right <= 1 "
                                                   f"and 0 <= top < bottom <= 1, got {list(camera.region)}")
    return camera


# Keys earlier versions read, and why they went.
RETIRED_KEYS = {
    "recognition": {
        "detector_max_side": "the plate detector sees every frame at one size",
        "plate_detector": "the agent ships its own trained plate detector",
        "plate_detector_min_score": "see recognition.plate_min_score",
        "plate_class": "the agent ships its own trained plate detector",
    },
}


def _nearest(key: str, known) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def config_problems(raw: dict[str, Any], file: str, base: Path) -> list[ConfigError]:
    """Every problem of a configuration at once: parse, and after each error take the key it names (or the
    table holding it) out and parse again, until it parses or nothing more can be taken out."""
    import copy

    raw = copy.deepcopy(raw)
    problems: list[ConfigError] = []
    taken: set[str] = set()
    for _ in range(200):
        try:
            parse_config(raw, file, base)
            return problems
        except ConfigError as exc:
            if exc.key not in taken:  # not the echo of a key taken out for an earlier problem
                problems.append(exc)
            taken.add(exc.key)
            if not _drop(raw, exc.key):
                return problems
    return problems


def _drop(raw: dict, key: str) -> bool:
    """Remove `key` (agent.unit_id, camera[1].path, hotlist.columns.plate) from the raw tables; where the key
    itself is not there (a required key missing), the table that should hold it. False when nothing went."""
    path: list = []
    for part in key.split("."):
        name, _, index = part.partition("[")
        path.append(name)
        if index:
            path.append(int(index.rstrip("]")))
    for cut in range(len(path), 0, -1):
        *parents, last = path[:cut]
        node: Any = raw
        try:
            for p in parents:
                node = node[p]
            del node[last]
            return True
        except (KeyError, IndexError, TypeError):
            continue
    return False


def _section(cls: type, raw: Any, file: str, where: str, base: Path):
    """Build dataclass `cls` from a TOML table, checking names and types field by field."""
    if not isinstance(raw, dict):
        raise ConfigError(file, where, "must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        if key in RETIRED_KEYS.get(where, ()):
            # a unit upgraded with its old config file keeps running; the key no longer does anything
            log.warning("%s: %s.%s is no longer used (%s); it is ignored", file, where, key, RETIRED_KEYS[where][key])
            continue
        if key not in fields:
            raise ConfigError(file, f"{where}.{key}", f"unknown key{_nearest(key, fields)} (expected one of {', '.join(fields)})")
        values[key] = _coerce(value, fields[key], file, f"{where}.{key}", base)
    return cls(**values)


def _coerce(value: Any, f: dataclasses.Field, file: str, key: str, base: Path) -> Any:
    default = f.default if f.default is not dataclasses.MISSING else None
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if "Path" in kind:
        if not isinstance(value, str) or not value:
            raise ConfigError(file, key, "must be a non-empty path string")
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else Path(os.path.normpath(base / path))
    if kind.startswith("tuple[float"):
        n = kind.count("float")
        if (not isinstance(value, list) or len(value) != n
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            shape = "[latitude, longitude]" if n == 2 else "[left, top, right, bottom] as fractions of the frame"
            raise ConfigError(file, key, f"must be {shape}, got {value!r}")
        return tuple(float(v) for v in value)
    if kind.startswith("tuple"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(file, key, "must be a list of strings")
        return tuple(value)
    if kind == "bool" or isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(file, key, f"must be true or false, got {value!r}")
        return value
    if kind == "int | str":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(file, key, f"must be a number or a device path, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(file, key, f"must be a whole number, got {value!r}")
        if value < 0:
            raise ConfigError(file, key, f"must not be negative, got {value}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(file, key, f"must be a number, got {value!r}")
        if value < 0:
            raise ConfigError(file, key, f"must not be negative, got {value}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(file, key, f"must be a string, got {value!r}")
        return value
    return value
