"""Alerts for hits: the words an officer hears (pure) and their rendering to a WAV file (espeak-ng)."""

from __future__ import annotations

import functools
import logging
import math
import shutil
import struct
import subprocess
import wave
from dataclasses import dataclass, replace
from typing import Callable, Protocol
from pathlib import Path

from edge_agent.alert.ledger import record_alert
from edge_agent.config import AlertConfig
from edge_agent.hotlist.index import list_priority
from edge_agent.recognise.plate import US_STATES
from edge_agent.records import Hit, Read
from edge_agent.store import Database

log = logging.getLogger(__name__)

# The phonetic alphabet California law enforcement radio uses.
PHONETIC = {
    "A": "Adam", "B": "Boy", "C": "Charles", "D": "David", "E": "Edward", "F": "Frank", "G": "George",
    "H": "Henry", "I": "Ida", "J": "John", "K": "King", "L": "Lincoln", "M": "Mary", "N": "Nora",
    "O": "Ocean", "P": "Paul", "Q": "Queen", "R": "Robert", "S": "Sam", "T": "Tom", "U": "Union",
    "V": "Victor", "W": "William", "X": "X-ray", "Y": "Young", "Z": "Zebra",
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
    "7": "seven", "8": "eight", "9": "nine",
}
LIST_WORDS = {
    "AMBER_ALERT": "Amber alert", "WANTED_PERSON": "Wanted person", "MISSING_PERSON": "Missing person",
    "FELONY_VEHICLE": "Felony vehicle", "STOLEN_VEHICLE": "Stolen vehicle", "STOLEN_PLATE": "Stolen plate",
    "BOLO": "Be on the lookout",
}
CLETS_REMINDER = "Confirm through CLETS before acting."


def speakable(text: str) -> str:
    """Hotlist text as it may be spoken: letters, digits and single spaces alone, so that nothing an
    extract carries (`=1+1`, markup, control characters) reaches the speech engine as anything but words."""
    return " ".join("".join(c if c.isascii() and c.isalnum() else " " for c in text).split())


def spell_plate(plate: str) -> str:
    return " ".join(PHONETIC.get(c, c) for c in plate)


def state_name(code: str) -> str:
    name = US_STATES.get(code.upper())
    return name.title() if name else {"MX": "Mexico"}.get(code.upper(), speakable(code.upper()))


COLOURS = {
    "BLK": "black", "WHI": "white", "SIL": "silver", "GRY": "grey", "BLU": "blue", "RED": "red", "GRN": "green",
    "TAN": "tan", "MAR": "maroon", "GLD": "gold", "BRO": "brown", "YEL": "yellow", "ONG": "orange", "PLE": "purple",
    "BGE": "beige", "PNK": "pink", "TRQ": "turquoise",
}
MAKES = {
    "HOND": "Honda", "TOYT": "Toyota", "FORD": "Ford", "CHEV": "Chevrolet", "NISS": "Nissan", "DODG": "Dodge",
    "HYUN": "Hyundai", "KIA": "Kia", "BMW": "B M W", "VOLK": "Volkswagen", "JEEP": "Jeep", "SUBA": "Subaru",
    "TESL": "Tesla", "MERZ": "Mercedes", "MAZD": "Mazda", "LEXS": "Lexus", "ACUR": "Acura", "AUDI": "Audi",
    "GMC": "G M C", "CHRY": "Chrysler", "INFI": "Infiniti", "MITS": "Mitsubishi", "VOLV": "Volvo", "BUIC": "Buick",
    "CADI": "Cadillac", "LINC": "Lincoln", "RAM": "Ram",
}


def vehicle_words(details: dict) -> str:
    """"Silver Honda." from the list's NCIC colour and make codes; empty when the list gives neither."""
    colour = COLOURS.get(details.get("colour", "").upper(), "")
    make = MAKES.get(details.get("make", "").upper(), speakable(details.get("make", "")).title())
    words = " ".join(w for w in (colour, make) if w)
    return f"{words[0].upper()}{words[1:]}." if words else ""


def alert_message(hit: Hit, plate_read: str | None = None, details: dict | None = None) -> str:
    """What the officer hears: list, state and plate in phonetics, the kind of match, the vehicle, the CLETS reminder.

    A partial match speaks the plate as read (the listed plate has wildcards); every other kind speaks the
    listed plate, which is what the officer runs through CLETS.
    """
    spoken = speakable(plate_read if hit.match == "partial" and plate_read else hit.lic).replace(" ", "")
    where = f"{state_name(hit.lis)} plate" if hit.lis else "Plate"
    words = [f"{LIST_WORDS.get(hit.list_name, speakable(hit.list_name.replace('_', ' ')).capitalize())}.",
             f"{where} {spell_plate(spoken)}."]
    if hit.match == "state-mismatch":
        words.append("Plate matches, state not confirmed.")
    elif hit.match == "misread":
        words.append("Possible misread.")
    elif hit.match == "partial":
        words.append("Partial plate match.")
    vehicle = vehicle_words(details or hit.details or {})
    if vehicle:
        words.append(vehicle)
    words.append(CLETS_REMINDER)
    return " ".join(words)


def alert_line(read: Read, hit: Hit, alert_id: int | None = None, others: int = 0) -> str:
    """The printed line for an alert (and the in-car screen's text)."""
    return (
        f"ALERT{f' #{alert_id}' if alert_id is not None else ''} {hit.list_name} {hit.match} plate={hit.lic}"
        f" state={hit.lis or '-'} read={read.reading.text} camera={read.camera_id}"
        f" at={read.captured_at.isoformat(timespec='seconds')} read_id={read.id}"
        f"{f' (+{others} more hits)' if others else ''} -- {CLETS_REMINDER}"
    )


class AlertSuppressor:
    """One alert per vehicle, not one per camera or per pass while it stays near: the same listed
    plate is not alerted again within the window unless the match is stronger than the last alert's."""

    STRENGTH = {"exact": 0, "state-mismatch": 1, "partial": 2, "misread": 3}

    def __init__(self, window_s: float):
        self.window_s = window_s
        self._last: dict[tuple, tuple[float, int]] = {}

    def should_alert(self, hit: Hit, now: float) -> bool:
        key = (hit.source, hit.entry_id if hit.entry_id is not None else hit.lic, hit.lis, hit.list_name)
        strength = self.STRENGTH.get(hit.match, len(self.STRENGTH))
        last = self._last.get(key)
        if last is not None and now - last[0] < self.window_s and strength >= last[1]:
            return False
        self._last[key] = (now, strength)
        if len(self._last) > 1024:
            self._last = {k: v for k, v in self._last.items() if now - v[0] < self.window_s}
        return True


@functools.lru_cache(maxsize=4)
def tone(sample_rate: int, seconds: float = 0.5, freqs: tuple[float, float] = (880.0, 1320.0)) -> bytes:
    """A two-note alert tone as 16-bit mono PCM."""
    n = int(sample_rate * seconds)
    half = n // 2
    samples = []
    for i in range(n):
        f = freqs[0] if i < half else freqs[1]
        envelope = min(1.0, i / 200, (n - i) / 200)
        samples.append(int(12000 * envelope * math.sin(2 * math.pi * f * i / sample_rate)))
    return struct.pack(f"<{n}h", *samples)


@dataclass(frozen=True)
class Alert:
    id: int
    uuid: str
    read: Read
    hit: Hit
    hits: tuple[Hit, ...]  # every hit of the read, highest priority first; `hit` is hits[0]
    priority: int  # 1 is the most urgent list
    text: str
    line: str
    wav: Path | None

    def to_json(self) -> dict:
        """The message the in-car screen receives."""
        return {
            "schema": "alpr.alert.v1", "alert_id": self.id, "uuid": self.uuid, "read_id": self.read.id,
            "captured_at": self.read.captured_at.isoformat(), "camera_id": self.read.camera_id,
            "plate_read": self.read.reading.text, "state_read": self.read.reading.state,
            "priority": self.priority, "hit": {**self.hit.to_json(), "details": self.hit.details},
            "other_hits": [h.to_json() for h in self.hits[1:]], "message": self.text,
            "clets_reminder": CLETS_REMINDER,
        }


class SpokenAlerts:
    """Renders each alert as tone + speech into a WAV file, and plays it on the configured ALSA device."""

    SAMPLE_RATE = 22050  # espeak-ng's output rate

    def __init__(self, config: AlertConfig, data_dir: Path):
        self.config = config
        self.wav_dir = config.wav_dir if config.wav_dir.is_absolute() else Path(data_dir) / config.wav_dir
        self.espeak = shutil.which("espeak-ng") if config.speak else None
        self.playing: subprocess.Popen | None = None  # the last alert sent to aplay
        if config.speak and not self.espeak:
            log.warning("espeak-ng is not installed: alerts are printed and toned but not spoken (run scripts/setup)")

    def speak(self, text: str, name: str) -> Path | None:
        """Render tone + speech to `{wav_dir}/{name}.wav` and start playing it; never raises."""
        try:
            wav = self.render(text, self.wav_dir / f"{name}.wav")
        except OSError as exc:
            log.warning("alert WAV could not be written: %s", exc)
            return None
        if wav and self.config.audio_device and shutil.which("aplay"):
            try:
                # Not waited for: the alert plays while recognition goes on.
                self.playing = subprocess.Popen(["aplay", "-q", "-D", self.config.audio_device, str(wav)],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            except OSError as exc:
                log.warning("aplay failed: %s", exc)
        return wav

    def render(self, text: str, path: Path) -> Path | None:
        path.parent.mkdir(parents=True, exist_ok=True)
        speech = b""
        rate = self.SAMPLE_RATE
        if self.espeak:
            spoken = path.with_suffix(".speech.wav")
            try:
                subprocess.run([self.espeak, "-v", self.config.voice, "-s", "165", "-w", str(spoken), text],
                               check=True, capture_output=True, timeout=30)
                with wave.open(str(spoken), "rb") as w:
                    rate = w.getframerate()
                    speech = w.readframes(w.getnframes())
            except (subprocess.SubprocessError, OSError, wave.Error) as exc:
                log.warning("espeak-ng failed, alert is toned but not spoken: %s", exc)
            finally:
                spoken.unlink(missing_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(tone(rate) + b"\x00\x00" * (rate // 5) + speech)
        return path


class Screen(Protocol):
    def publish(self, message: dict) -> None: ...


class Alerter:
    """Turns a stored read's hits into at most one alert: suppression, the alert record, speech, the screen."""

    def __init__(self, config: AlertConfig, data_dir: Path, db: Database,
                 details: Callable[[Hit], dict] = lambda hit: {}, screen: Screen | None = None):
        self.config = config
        self.db = db
        self.details = details
        self.screen = screen
        self.spoken = SpokenAlerts(config, data_dir)
        self.suppressor = AlertSuppressor(config.realert_after_s)
        self.suppressed = 0

    def on_read(self, read: Read, hit_ids: list[int], now: float) -> Alert | None:
        if not read.hits:
            return None
        top = read.hits[0]  # hits come highest priority first
        if not self.suppressor.should_alert(top, now):
            self.suppressed += 1
            return None
        hit = replace(top, details={**self.details(top), **top.details})
        text = alert_message(hit, read.reading.text)
        others = len(read.hits) - 1
        alert_id, alert_uuid = record_alert(self.db, read, hit, hit_ids[0] if hit_ids else None, text, others)
        wav = self.spoken.speak(text, f"alert-{alert_id}")
        alert = Alert(alert_id, alert_uuid, read, hit, tuple([hit, *read.hits[1:]]), list_priority(hit.list_name) + 1,
                      text, alert_line(read, hit, alert_id, others), wav)
        if self.screen is not None:
            try:
                self.screen.publish(alert.to_json())
            except Exception as exc:  # the screen is a convenience; the spoken alert has gone out
                log.warning("alert %s not published for the screen: %s", alert_id, exc)
        return alert
