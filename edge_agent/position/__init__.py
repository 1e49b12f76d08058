"""Where the car is, and what time it is by the satellites: NMEA 0183 from a serial GPS receiver.

`PositionTracker` is the pure part: it takes sentences (GGA, RMC, VTG from any talker) and knows the
latest fix and its age. `GpsReceiver` is the I/O at the edge: a thread that reads a serial port through
pyserial, feeds the tracker, and opens the port again, with back-off, whenever the receiver is unplugged
or says nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import pynmea2

from edge_agent.records import Position

log = logging.getLogger(__name__)

KNOTS_TO_KMH = 1.852
# GGA fix quality: 0 none, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 dead reckoning (estimated)
FIX_NAMES = {0: "none", 1: "gps", 2: "dgps", 3: "pps", 4: "rtk", 5: "rtk-float", 6: "estimated", 7: "manual", 8: "simulated"}


@dataclass(frozen=True)
class SatelliteTime:
    """UTC as an RMC sentence with a valid fix gave it, and the monotonic clock when the sentence arrived."""

    utc: datetime
    received: float


class PositionTracker:
    """The latest fix from the sentences fed to it. Not thread-safe by itself; GpsReceiver locks around it."""

    def __init__(self, max_age_s: float = 3.0):
        self.max_age_s = max_age_s
        self._lat = self._lon = None
        self._fix, self._sats = 0, None
        self._speed = self._heading = None
        self._at = None  # monotonic time of the last sentence with a fix
        self.time: SatelliteTime | None = None
        self.sentences = 0
        self.rejected = 0
        self.last_problem = ""

    def feed(self, line: str | bytes, now: float) -> bool:
        """Take one line; False (and `last_problem` says why) when it is not a sentence we can use."""
        if isinstance(line, bytes):
            line = line.decode("ascii", errors="replace")
        line = line.strip()
        if not line.startswith(("$", "!")):
            return self._reject(f"not an NMEA sentence: {line[:40]!r}")
        if "*" not in line[-4:]:
            return self._reject(f"no checksum (cut short?): {line[:40]!r}")
        try:
            msg = pynmea2.parse(line, check=True)
        except pynmea2.ChecksumError:
            return self._reject(f"checksum error: {line[:40]!r}")
        except (pynmea2.ParseError, ValueError, TypeError, AttributeError) as exc:
            return self._reject(f"cannot be parsed ({exc.__class__.__name__}): {line[:40]!r}")
        try:
            return self._take(msg, now)
        except (ValueError, TypeError, AttributeError) as exc:  # a field out of range or empty where it matters
            return self._reject(f"bad field ({exc}): {line[:40]!r}")

    def _reject(self, why: str) -> bool:
        self.rejected += 1
        self.last_problem = why
        return False

    def _take(self, msg, now: float) -> bool:
        kind = msg.sentence_type
        self.sentences += 1
        if kind == "GGA":
            quality = int(msg.gps_qual or 0)
            self._fix = quality
            if quality > 0 and msg.lat and msg.lon:
                self._lat, self._lon, self._at = float(msg.latitude), float(msg.longitude), now
                self._sats = int(msg.num_sats) if msg.num_sats else None
            return True
        if kind == "RMC":
            if msg.status != "A":  # "V": the receiver says this is not a valid fix
                return True
            if msg.lat and msg.lon:
                self._lat, self._lon, self._at = float(msg.latitude), float(msg.longitude), now
                self._fix = self._fix or 1
            if msg.spd_over_grnd not in (None, ""):
                self._speed = float(msg.spd_over_grnd) * KNOTS_TO_KMH
            if msg.true_course not in (None, ""):
                self._heading = float(msg.true_course)
            if msg.datestamp and msg.timestamp:
                utc = datetime.combine(msg.datestamp, msg.timestamp).replace(tzinfo=timezone.utc)
                self.time = SatelliteTime(utc, now)
            return True
        if kind == "VTG":
            if msg.spd_over_grnd_kmph not in (None, ""):
                self._speed = float(msg.spd_over_grnd_kmph)
            if msg.true_track not in (None, ""):
                self._heading = float(msg.true_track)
            return True
        return True  # GSA, GSV and the rest: valid, nothing we need

    def position(self, now: float) -> Position | None:
        """The fix, if there is one no older than max_age_s; None means "no fix" and is stored so."""
        if self._at is None or self._fix == 0 or now - self._at > self.max_age_s:
            return None
        return Position(self._lat, self._lon, FIX_NAMES.get(self._fix, "gps"), self._sats, self._speed,
                        self._heading, age_s=max(0.0, now - self._at))

    def satellite_time(self, now: float) -> datetime | None:
        """UTC now by the satellites, from the last valid RMC sentence and the monotonic time since it."""
        if self.time is None or now - self.time.received > 60:
            return None
        return self.time.utc + (datetime.fromtimestamp(now, timezone.utc) - datetime.fromtimestamp(self.time.received, timezone.utc))


Opener = Callable[[], object]  # returns an object with readline() and close(), like serial.Serial


def serial_opener(port: str, baud: int) -> Opener:
    def open_port():
        import serial

        return serial.Serial(port, baud, timeout=1.0)

    return open_port


class GpsReceiver:
    """Reads a GPS receiver on a thread for as long as the agent runs.

    States: "starting", "no fix", "fix", "silent" (the port is open and says nothing usable), "out" (the
    port cannot be opened: unplugged, busy or absent). Each change is logged once, not per sentence."""

    SILENT_AFTER_S = 5.0

    def __init__(self, port: str, baud: int = 9600, max_age_s: float = 3.0, opener: Opener | None = None,
                 backoff_min_s: float = 1.0, backoff_max_s: float = 30.0):
        self.port = port
        self.tracker = PositionTracker(max_age_s)
        self._open = opener or serial_opener(port, baud)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self.state = "starting"
        self.problem = ""
        self.reopened = 0

    def start(self) -> "GpsReceiver":
        self._thread = threading.Thread(target=self._run, daemon=True, name="gps")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def position(self) -> Position | None:
        with self._lock:
            return self.tracker.position(time.monotonic())

    def satellite_time(self) -> datetime | None:
        with self._lock:
            return self.tracker.satellite_time(time.monotonic())

    def _set(self, state: str, problem: str = "") -> None:
        if state != self.state:
            (log.warning if state in ("out", "silent") else log.info)(
                "gps %s: %s%s", self.port, state, f" ({problem})" if problem else "")
        self.state, self.problem = state, problem

    def _run(self) -> None:
        delay = self.backoff_min_s
        while not self._stop.is_set():
            try:
                port = self._open()
            except Exception as exc:  # SerialException, OSError: unplugged, busy, no such device
                self._set("out", f"cannot open: {exc}")
                self._stop.wait(delay)
                delay = min(self.backoff_max_s, delay * 2)
                continue
            delay = self.backoff_min_s
            try:
                self._read(port)
            except Exception as exc:  # the receiver was pulled out while we read
                self._set("out", f"read failed: {exc}")
            finally:
                try:
                    port.close()
                except Exception:
                    pass
            self.reopened += 1
            self._stop.wait(self.backoff_min_s)

    def _read(self, port) -> None:
        heard = time.monotonic()
        while not self._stop.is_set():
            line = port.readline()
            now = time.monotonic()
            if line:
                with self._lock:
                    ok = self.tracker.feed(line, now)
                    fix = self.tracker.position(now) is not None
                if ok:
                    heard = now
                    self._set("fix" if fix else "no fix")
                    continue
            if now - heard > self.SILENT_AFTER_S:
                self._set("silent", self.tracker.last_problem or "no sentences")
                if not line:
                    return  # open the port again: some adapters need it after a replug
