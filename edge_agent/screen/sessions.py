"""The screen's logins: a session per browser, its CSRF token, and the lock after a time without a touch.

Sessions live in memory: a restarted agent asks everyone to log in again, which is what the policy wants.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from edge_agent.access import Session


@dataclass
class ScreenSession:
    token: str
    csrf: str
    access: Session
    last_touch: float
    live_audited: bool = False
    cameras_audited: bool = False
    started: float = field(default_factory=time.monotonic)


def idle_locked(last_touch: float, now: float, lock_after_s: float) -> bool:
    return now - last_touch >= lock_after_s


class ScreenSessions:
    MAX = 32  # browsers logged in at once; the oldest session goes first

    def __init__(self, lock_after_s: float, clock=time.monotonic):
        self.lock_after_s = lock_after_s
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, ScreenSession] = {}

    def start(self, access: Session) -> ScreenSession:
        session = ScreenSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32), access, self.clock())
        with self._lock:
            if len(self._sessions) >= self.MAX:
                oldest = min(self._sessions.values(), key=lambda s: s.last_touch)
                del self._sessions[oldest.token]
            self._sessions[session.token] = session
        return session

    def find(self, token: str | None, touch: bool = True) -> tuple[ScreenSession | None, str]:
        """The live session for a cookie's token, or None and why not (for the page to say)."""
        if not token:
            return None, "not logged in"
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None, "the session has ended: log in again"
            now = self.clock()
            if idle_locked(session.last_touch, now, self.lock_after_s):
                del self._sessions[token]
                return None, f"locked after {self.lock_after_s / 60:g} min without use: log in again"
            if touch:
                session.last_touch = now
            return session, ""

    def end(self, token: str | None) -> ScreenSession | None:
        with self._lock:
            return self._sessions.pop(token or "", None)

    @staticmethod
    def csrf_ok(session: ScreenSession, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(session.csrf, presented)
