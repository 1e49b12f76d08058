"""Alert wording (pure) and the WAV an officer hears."""

import shutil
import uuid
import wave
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edge_agent.alert import SpokenAlerts, alert_message, spell_plate
from edge_agent.config import AlertConfig
from edge_agent.records import Candidate, Hit, PlateReading, Read


def test_message_uses_the_phonetic_alphabet_and_the_clets_reminder():
    hit = Hit("7ABC123", "CA", "STOLEN_VEHICLE", "exact")
    assert alert_message(hit) == (
        "Stolen vehicle. California plate seven Adam Boy Charles one two three. Confirm through CLETS before acting."
    )
    assert "Possible misread." in alert_message(Hit("7ABC123", "CA", "AMBER_ALERT", "misread"))
    assert alert_message(Hit("1XY", "NV", "AMBER_ALERT", "state-mismatch")).startswith("Amber alert. Nevada plate one X-ray Young.")
    assert spell_plate("O0") == "Ocean zero"


def test_alert_renders_tone_and_speech_to_a_wav(tmp_path: Path):
    if not shutil.which("espeak-ng"):
        pytest.fail("espeak-ng is not installed (scripts/setup installs it)")
    alerts = SpokenAlerts(AlertConfig(), tmp_path)
    reading = PlateReading("7ABC123", 0.99, (0, 0, 10, 5), (Candidate("7ABC123", 0.99),), "CA", 1.0)
    read = Read(str(uuid.uuid4()), datetime.now(timezone.utc), "front", reading)
    alert = alerts.alert(read, Hit("7ABC123", "CA", "STOLEN_VEHICLE", "exact"))
    assert alert.wav == tmp_path / "alerts" / f"{read.id}.wav"
    with wave.open(str(alert.wav)) as w:
        seconds = w.getnframes() / w.getframerate()
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
    assert seconds > 3.0  # half a second of tone, then several seconds of speech
    assert "STOLEN_VEHICLE" in alert.line and read.id in alert.line and "CLETS" in alert.line
