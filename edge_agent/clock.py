"""Time that can be trusted on a board with no battery clock.

A Raspberry Pi starts at the time of its last shutdown, or in 1970, until NTP or GPS set it. A read's time
is evidence, so every read says where its time came from:

- "system": the system clock, judged sane (not before this software was built, and within
  `max_skew_s` of GPS time when GPS has time);
- "gps": the system clock disagreed with GPS by more than `max_skew_s`; the time is GPS time;
- "unsure": no sane time exists (the system clock is before the build date and there is no GPS time).

Purges and TLS sync wait while the clock is unsure: a purge would throw away the wrong records, and a
certificate check against 1970 fails.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

# No sane clock reads earlier than the day this software was built.
BUILT = datetime(2026, 12, 3, tzinfo=timezone.utc)
CLOCK_SOURCES = ("system", "gps", "unsure")


def judge_time(system: datetime, satellite: datetime | None, max_skew_s: float = 5.0,
               built: datetime = BUILT) -> tuple[datetime, str]:
    """(the time to use, where it came from: one of CLOCK_SOURCES) for a system clock reading."""
    if satellite is not None and satellite >= built:
        if abs((system - satellite).total_seconds()) > max_skew_s:
            return satellite, "gps"
        return system, "system"
    if system < built:
        return system, "unsure"
    return system, "system"


class TrustedClock:
    """Judges each time against GPS (when a receiver is configured) and remembers the last verdict."""

    def __init__(self, satellite: Callable[[], datetime | None] | None = None, max_skew_s: float = 5.0,
                 system: Callable[[], datetime] | None = None, built: datetime = BUILT):
        self._satellite = satellite or (lambda: None)
        self._system = system or (lambda: datetime.now(timezone.utc))
        self.max_skew_s = max_skew_s
        self.built = built
        self.source = "unsure"
        self.skew_s: float | None = None  # system minus GPS, when GPS has time

    def correct(self, system_time: datetime) -> tuple[datetime, str]:
        """A time read from the system clock (a frame's capture time), judged now."""
        now = self._system()
        sat = self._satellite()
        self.skew_s = None if sat is None else (now - sat).total_seconds()
        _, source = judge_time(now, sat, self.max_skew_s, self.built)
        self.source = source
        if source == "gps":
            return system_time - timedelta(seconds=self.skew_s), source
        return system_time, source

    def now(self) -> tuple[datetime, str]:
        return self.correct(self._system())

    def sane(self) -> bool:
        return self.now()[1] != "unsure"
