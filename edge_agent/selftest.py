"""`edge-agent selftest`: what a technician checks before a car leaves the garage, as PASS, WARN or FAIL.

FAIL means the unit cannot do its job (no models, no place to store reads, a broker that refuses it, no sane
clock); WARN means it works with less (a camera or the GPS out, no audio device, an old hotlist). Each check
runs on its own and none raises: one broken part never hides what the others would say.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edge_agent.config import Config

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
SELFTEST_PLATE = "7TST123"


@dataclass(frozen=True)
class Check:
    name: str
    result: str  # PASS | WARN | FAIL
    detail: str

    def to_json(self) -> dict:
        return {"check": self.name, "result": self.result, "detail": self.detail}


def run_selftest(config: Config, camera_wait_s: float = 5.0, gps_wait_s: float = 5.0) -> list[Check]:
    checks: list[Check] = []
    for name, fn in (("storage", lambda: _storage(config)), ("models", _models),
                     ("cameras", lambda: _cameras(config, camera_wait_s)),
                     ("gps and clock", lambda: _gps_and_clock(config, gps_wait_s)),
                     ("broker", lambda: _broker(config)), ("certificates", lambda: _certificates(config)),
                     ("hotlist", lambda: _hotlist(config)), ("audio", lambda: _audio(config))):
        try:
            checks.extend(fn())
        except Exception as exc:  # a check that breaks is a failed check, not a traceback
            checks.append(Check(name, FAIL, f"the check itself failed: {exc!r}"))
    return checks


def _storage(config: Config) -> list[Check]:
    from edge_agent.files import private_folder

    folder = Path(config.data_dir)
    try:
        private_folder(folder)
        probe = folder / ".selftest-write"
        block = os.urandom(1 << 20)
        started = time.perf_counter()
        with open(probe, "wb") as fh:
            for _ in range(8):
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
        rate = 8 / max(1e-6, time.perf_counter() - started)
        probe.unlink()
    except OSError as exc:
        return [Check("storage", FAIL, f"{folder}: cannot write: {exc.strerror or exc}")]
    free_mb = shutil.disk_usage(folder).free / 1048576
    out = [Check("disk space", FAIL if free_mb < 100 else WARN if free_mb < 1024 else PASS,
                 f"{free_mb:.0f} MB free under {folder}")]
    out.append(Check("disk write speed", WARN if rate < 5 else PASS, f"{rate:.1f} MB/s written and synced"))
    return out


def _models() -> list[Check]:
    from edge_agent.recognise.models import load_manifest, verify_model
    from edge_agent.recognise.reader import PlateReader
    from edge_agent.synthetic import render_scene

    specs = load_manifest()
    for spec in specs.values():
        verify_model(spec)
    reader = PlateReader()
    scene = render_scene([(SELFTEST_PLATE, "California")], size=(1280, 720), seed=7)
    readings = reader.read_frame(scene)
    texts = [r.text for r in readings]
    if SELFTEST_PLATE in texts:
        return [Check("models", PASS, f"{len(specs)} models verified (sha256); read the rendered plate {SELFTEST_PLATE}")]
    return [Check("models", FAIL, f"models verified, but the rendered plate {SELFTEST_PLATE} was read as {texts or 'nothing'}")]


def _cameras(config: Config, wait_s: float) -> list[Check]:
    from edge_agent.capture import open_source

    if not config.cameras:
        return [Check("cameras", FAIL, f"{config.source_file}: no [[camera]] configured")]
    out = []
    for camera in config.cameras:
        problems: list[str] = []
        source = open_source(camera, problems.append)
        got: list = []

        def first_frame(source=source, got=got) -> None:
            try:
                for frame in source.frames():
                    got.append(frame)
                    break
            except Exception as exc:
                problems.append(str(exc))

        t = threading.Thread(target=first_frame, daemon=True)
        started = time.monotonic()
        t.start()
        t.join(wait_s)
        source.close()
        if got:
            h, w = got[0].image.shape[:2]
            out.append(Check(f"camera {camera.id}", PASS, f"first frame {w}x{h} after {time.monotonic() - started:.1f} s"))
        else:
            why = problems[-1] if problems else f"no frame within {wait_s:.0f} s"
            out.append(Check(f"camera {camera.id}", WARN, f"{why}; the agent keeps trying it"))
    return out


def _gps_and_clock(config: Config, wait_s: float) -> list[Check]:
    from edge_agent.clock import BUILT, TrustedClock

    gps = None
    out = []
    if config.gps.port:
        from edge_agent.position import GpsReceiver

        gps = GpsReceiver(config.gps.port, config.gps.baud, config.gps.max_age_s).start()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and (gps.position() is None or gps.satellite_time() is None):
            time.sleep(0.1)
        fix = gps.position()
        if fix is not None:
            out.append(Check("gps", PASS, f"{fix.fix} fix at {fix.lat:.5f}, {fix.lon:.5f}"
                                          f"{f' from {fix.satellites} satellites' if fix.satellites else ''}"))
        else:
            problem = gps.problem or gps.tracker.last_problem or "no fix"
            out.append(Check("gps", WARN, f"{config.gps.port}: {gps.state}: {problem}; reads are stored without position"))
    else:
        out.append(Check("gps", WARN, "no gps.port configured: reads carry no position"))
    clock = TrustedClock(gps.satellite_time if gps else None, config.gps.max_clock_skew_s)
    at, source = clock.now()
    if gps is not None:
        gps.stop()
    if source == "unsure":
        out.append(Check("clock", FAIL, f"the system clock reads {at:%Y-%m-%d %H:%M} UTC, before this software was "
                                        f"built ({BUILT:%Y-%m-%d}), and there is no GPS time: reads are marked "
                                        "unsure, purges and TLS sync wait"))
    elif source == "gps":
        out.append(Check("clock", WARN, f"the system clock is {clock.skew_s:+.0f} s off GPS time; reads take GPS time"))
    else:
        skew = "" if clock.skew_s is None else f", {clock.skew_s:+.1f} s from GPS time"
        out.append(Check("clock", PASS, f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC{skew}"))
    return out


def _broker(config: Config) -> list[Check]:
    from edge_agent.config import redact_url
    from edge_agent.sync.link import mqtt_client, why_down

    s = config.sync
    if not s.broker:
        return [Check("broker", WARN, "no sync.broker configured: reads wait in SQLite")]
    client, host, port = mqtt_client(f"edge-agent-{config.agent.agency}-{config.agent.unit_id}-selftest", s)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(client, userdata, flags, reason, properties=None):
        if reason.is_failure:
            refused.append(str(reason))
        else:
            connected.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except (OSError, ValueError) as exc:
        return [Check("broker", FAIL, f"{redact_url(s.broker)}: {why_down(s, host, port, str(exc))}")]
    client.loop_start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not connected.is_set() and not refused:
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    if connected.is_set():
        how = "with the unit's certificate" if s.tls_cert else "TLS" if s.broker.startswith("mqtts") else "INSECURE plain MQTT"
        return [Check("broker", PASS if s.broker.startswith("mqtts") else WARN, f"{redact_url(s.broker)}: connected ({how})")]
    why = refused[0] if refused else why_down(s, host, port, "no answer within 5 s")
    return [Check("broker", FAIL, f"{redact_url(s.broker)}: {why}")]


def _certificates(config: Config) -> list[Check]:
    from edge_agent.pki import expiry_warnings

    paths = [p for p in (config.sync.tls_cert, config.sync.tls_ca, config.screen.tls_cert) if p is not None]
    if not paths:
        return []
    warnings = expiry_warnings(paths)
    if warnings:
        return [Check("certificates", WARN if "expired" not in " ".join(warnings) else FAIL, "; ".join(warnings))]
    return [Check("certificates", PASS, f"{len(paths)} certificates valid for more than 30 days")]


def _hotlist(config: Config) -> list[Check]:
    from edge_agent.hotlist.storage import active_version, hotlist_age_s, open_hotlist_db

    with open_hotlist_db(config.data_dir) as db:
        version, age = active_version(db), hotlist_age_s(db)
    if version is None:
        return [Check("hotlist", FAIL, "no hotlist loaded: no read can be checked (edge-agent hotlist import)")]
    age_h = age / 3600
    signed = (f"signed version {version.signed_version}" if version.signed_version is not None
              else "NOT signed (hotlist.public_key is not set)")
    result = PASS if age_h <= 24 and version.signed_version is not None else WARN
    return [Check("hotlist", result, f"version {version.id}, {version.entries_in_force} entries, {age_h:.1f} h old, {signed}")]


def _audio(config: Config) -> list[Check]:
    from edge_agent.alert import SpokenAlerts

    device = config.alerts.audio_device
    if not device:
        return [Check("audio", WARN, "no alerts.audio_device: alerts are written as WAV files but not played")]
    if not shutil.which("aplay"):
        return [Check("audio", FAIL, "aplay is not installed (apt install alsa-utils)")]
    wav = SpokenAlerts(config.alerts, config.data_dir).render("self test", Path(config.data_dir) / "alerts" / "selftest.wav")
    try:
        done = subprocess.run(["aplay", "-q", "-D", device, str(wav)], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return [Check("audio", FAIL, f"{device}: aplay did not finish within 15 s")]
    if done.returncode != 0:
        return [Check("audio", FAIL, f"{device}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'aplay failed'}")]
    return [Check("audio", PASS, f"{device}: the test tone and voice played")]


def summary(checks: list[Check]) -> str:
    worst = FAIL if any(c.result == FAIL for c in checks) else WARN if any(c.result == WARN for c in checks) else PASS
    return f"{worst}: {sum(c.result == PASS for c in checks)} pass, {sum(c.result == WARN for c in checks)} warn, " \
           f"{sum(c.result == FAIL for c in checks)} fail"
