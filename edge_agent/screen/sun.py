"""Day or night for the screen's theme: the sun's height at the car's position (astral)."""

from __future__ import annotations

from datetime import datetime

from astral import Observer
from astral.sun import elevation

# the sun's centre this far below the horizon: past sunset (refraction and the sun's radius)
SUNSET_ELEVATION = -0.833


def is_night(lat: float, lon: float, at: datetime) -> bool:
    return elevation(Observer(latitude=lat, longitude=lon), at) < SUNSET_ELEVATION


def theme(setting: str, lat: float, lon: float, at: datetime) -> str:
    """The theme a page starts in: the configured one, or in `auto` night from sunset to sunrise."""
    if setting in ("day", "night"):
        return setting
    return "night" if is_night(lat, lon, at) else "day"
