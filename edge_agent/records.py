"""The typed records that flow between stages: frames, plate readings, reads and hits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured image. `image` is BGR uint8 and is never copied downstream."""

    camera_id: str
    captured_at: datetime  # UTC
    index: int
    image: np.ndarray = field(repr=False)
    source: str = ""


@dataclass(frozen=True)
class Candidate:
    text: str
    confidence: float


@dataclass(frozen=True)
class PlateReading:
    """A plate the recogniser found in one image."""

    text: str
    confidence: float
    box: tuple[int, int, int, int]  # x, y, width, height in image pixels
    candidates: tuple[Candidate, ...]
    state: str | None = None
    state_confidence: float = 0.0

    def to_json(self) -> dict:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "box": list(self.box),
            "state": self.state,
            "state_confidence": round(self.state_confidence, 3),
            "candidates": [{"text": c.text, "confidence": round(c.confidence, 4)} for c in self.candidates],
        }


@dataclass(frozen=True)
class Hit:
    """A read that matches a hotlist entry."""

    lic: str
    lis: str
    list_name: str
    match: str  # exact | state-mismatch | misread | partial
    nic: str = ""
    source: str = "hotlist"  # hotlist (the agency's list) | local (an officer's entry)
    entry_id: int | None = None
    details: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        return {"lic": self.lic, "lis": self.lis, "list": self.list_name, "match": self.match, "nic": self.nic,
                "source": self.source}


@dataclass(frozen=True)
class Position:
    """The car's position at a read. `fix` is one of FIX_NAMES' values; `no fix` is stored as None."""

    lat: float
    lon: float
    fix: str
    satellites: int | None = None
    speed_kmh: float | None = None
    heading_deg: float | None = None
    age_s: float = 0.0  # how old the fix was when the read was taken

    def to_json(self) -> dict:
        return {"lat": round(self.lat, 7), "lon": round(self.lon, 7), "fix": self.fix, "satellites": self.satellites,
                "speed_kmh": None if self.speed_kmh is None else round(self.speed_kmh, 1),
                "heading_deg": None if self.heading_deg is None else round(self.heading_deg, 1),
                "age_s": round(self.age_s, 2)}


@dataclass
class Read:
    """A plate read as the agent stores and syncs it."""

    id: str
    captured_at: datetime
    camera_id: str
    reading: PlateReading
    plate_jpeg: bytes = field(repr=False, default=b"")
    scene_jpeg: bytes = field(repr=False, default=b"")
    hits: list[Hit] = field(default_factory=list)
    position: Position | None = None  # None: no GPS fix when the read was taken
    clock: str = "system"  # where captured_at came from: one of clock.CLOCK_SOURCES
