"""Alerts for hits: the words an officer hears (pure) and their rendering to a WAV file (espeak-ng)."""

from __future__ import annotations

import functools
import logging
import math
import shutil
import struct
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

from edge_agent.config import AlertConfig
from edge_agent.recognise.plate import US_STATES
from edge_agent.records import Hit, Read

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


def spell_plate(plate: str) -> str:
    return " ".join(PHONETIC.get(c, c) for c in plate)


def state_name(code: str) -> str:
    name = US_STATES.get(code.upper())
    return name.title() if name else {"MX": "Mexico"}.get(code.upper(), code.upper())


def alert_message(hit: Hit) -> str:
    """What the officer hears: list, state and plate in phonetics, the kind of match, and the CLETS reminder."""
    words = [f"{LIST_WORDS.get(hit.list_name, hit.list_name.replace('_', ' ').capitalize())}.",
             f"{state_name(hit.lis)} plate {spell_plate(hit.lic)}."]
    if hit.match == "state-mismatch":
        words.append("Plate matches, state not confirmed.")
    elif hit.match == "misread":
        words.append("Possible misread.")
    elif hit.match == "partial":
        words.append("Partial plate match.")
    words.append(CLETS_REMINDER)
    return " ".join(words)


def alert_line(read: Read, hit: Hit) -> str:
    """The printed line for an alert (and the in-car screen's text)."""
    return (
        f"ALERT {hit.list_name} {hit.match} plate={hit.lic} state={hit.lis} read={read.reading.text}"
        f" camera={read.camera_id} at={read.captured_at.isoformat(timespec='seconds')} read_id={read.id}"
        f" -- {CLETS_REMINDER}"
    )


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
    read_id: str
    hit: Hit
    text: str
    line: str
    wav: Path | None


class SpokenAlerts:
    """Renders each alert as tone + speech into a WAV file, and plays it on the configured ALSA device."""

    SAMPLE_RATE = 22050  # espeak-ng's output rate

    def __init__(self, config: AlertConfig, data_dir: Path):
        self.config = config
        self.wav_dir = config.wav_dir if config.wav_dir.is_absolute() else Path(data_dir) / config.wav_dir
        self.espeak = shutil.which("espeak-ng") if config.speak else None
        if config.speak and not self.espeak:
            log.warning("espeak-ng is not installed: alerts are printed and toned but not spoken (run scripts/setup)")

    def alert(self, read: Read, hit: Hit) -> Alert:
        text = alert_message(hit)
        wav = self.render(text, self.wav_dir / f"{read.id}.wav")
        if wav and self.config.audio_device and shutil.which("aplay"):
            subprocess.Popen(["aplay", "-q", "-D", self.config.audio_device, str(wav)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return Alert(read.id, hit, text, alert_line(read, hit), wav)

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
