"""Storing reads as the agent makes them: the storage cap, retention, and a full disk.

When the disk refuses a write, the read waits in a bounded memory buffer and
the agent goes on reading plates and alerting; the buffer is written out as soon
as the disk takes writes again. If the buffer overflows, the oldest read that
hit no list is lost first (and counted). SQLite rolls the refused transaction
back, so what was stored before stays intact.
"""

from __future__ import annotations

import collections
import logging
import sqlite3
import time
from typing import Callable

from edge_agent.config import StorageConfig
from edge_agent.records import Read
from edge_agent.store import Database
from edge_agent.store.retention import CapPolicy, enforce_cap, purge_expired

log = logging.getLogger(__name__)
SQLITE_FULL, SQLITE_IOERR = 13, 10


def is_storage_full(exc: sqlite3.Error) -> bool:
    """A write refused for want of space (or by a failing disk), as opposed to a bug."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code == SQLITE_FULL or code & 0xFF == SQLITE_IOERR
    text = str(exc).lower()
    return "full" in text or "disk i/o error" in text


class ReadKeeper:
    RETRY_S = 2.0  # how often a full disk is tried again
    PURGE_EVERY_S = 3600.0

    def __init__(self, db: Database, config: StorageConfig, out: Callable[[str], None] = print,
                 on_state: Callable[[str], None] | None = None, clock_sane: Callable[[], bool] = lambda: True):
        self.db = db
        self.clock_sane = clock_sane  # a purge by age waits for a clock that can be trusted
        self.config = config
        self.out = out
        self.on_state = on_state or (lambda state: None)
        self.policy = CapPolicy.for_cap(config.cap_mb) if config.cap_mb > 0 else None
        # the cap is looked at after this many image bytes are stored, not after every read; a quarter of the
        # room the policy keeps under the cap
        self._check_every = (self.policy.cap_bytes - self.policy.high) // 4 if self.policy else float("inf")
        self._since_check = 0
        if self.policy is not None:
            db.limit_wal(self.policy.wal_bytes)
        self.buffer: collections.deque[tuple[Read, int | None]] = collections.deque()
        self.dropped = 0
        self.state = "ok"  # ok | full | over-cap
        self._retry_at = 0.0
        self._purge_at = 0.0
        self.given_up: dict[str, int] = {}
        self.purged = 0

    def store(self, read: Read, hotlist_version: int | None) -> list[int] | None:
        """Store the read; its hits' row ids, or None when it waits in memory for the disk."""
        now = time.monotonic()
        if self.buffer and now < self._retry_at:
            self._hold(read, hotlist_version)
            return None
        if self.buffer and not self._flush():
            self._hold(read, hotlist_version)
            return None
        try:
            hit_ids = self.db.insert_read(read, hotlist_version)
        except sqlite3.Error as exc:
            if not is_storage_full(exc):
                raise
            self._full(exc)
            self._hold(read, hotlist_version)
            return None
        self._since_check += len(read.plate_jpeg) + len(read.scene_jpeg)
        if self._since_check >= self._check_every or now >= self._purge_at:
            self.housekeeping(now)
        return hit_ids

    def _hold(self, read: Read, version: int | None) -> None:
        if len(self.buffer) >= max(1, self.config.memory_buffer_reads):
            victim = next((i for i, (r, _) in enumerate(self.buffer) if not r.hits), 0)
            del self.buffer[victim]
            self.dropped += 1
        self.buffer.append((read, version))

    def _full(self, exc: Exception) -> None:
        self._retry_at = time.monotonic() + self.RETRY_S
        if self.state != "full":
            self.state = "full"
            self.out(f"error: storage full ({exc}): reads are held in memory, up to {self.config.memory_buffer_reads}")
            self.on_state(self.state)

    def _flush(self) -> bool:
        stored = 0
        while self.buffer:
            read, version = self.buffer[0]
            try:
                self.db.insert_read(read, version)
            except sqlite3.IntegrityError:
                pass  # stored already: the failure came after the commit
            except sqlite3.Error as exc:
                if not is_storage_full(exc):
                    raise
                self._full(exc)
                return False
            self.buffer.popleft()
            stored += 1
        self.state = "ok"
        self.out(f"storage: writable again; {stored} reads held in memory are stored"
                 + (f", {self.dropped} were lost while it was full" if self.dropped else ""))
        self.on_state(self.state)
        return True

    def retry(self) -> None:
        """Called when idle: write the buffer out if the disk takes writes again."""
        if self.buffer and time.monotonic() >= self._retry_at:
            self._flush()

    def housekeeping(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._since_check = 0
        try:
            if self.policy is not None:
                result = enforce_cap(self.db, self.policy)
                for what, n in result.given_up.items():
                    self.given_up[what] = self.given_up.get(what, 0) + n
                state = "over-cap" if result.over_cap else "ok"
                if state != self.state:
                    self.state = state
                    if state == "over-cap":
                        self.out(f"error: storage is over its cap of {self.config.cap_mb:g} MB with nothing left "
                                 "that may be given up (unsent hits, evidence)")
                    self.on_state(state)
            if now >= self._purge_at and self.clock_sane():
                self._purge_at = now + self.PURGE_EVERY_S
                if self.config.retention_days > 0:
                    self.purged += purge_expired(self.db, self.config.retention_days,
                                                 scene_retention_days=self.config.scene_retention_days,
                                                 hit_retention_days=self.config.hit_retention_days,
                                                 audit_retention_days=self.config.audit_retention_days)
        except sqlite3.Error as exc:
            if not is_storage_full(exc):
                raise
            log.warning("storage housekeeping deferred: %s", exc)

    def status(self) -> dict:
        used, _ = self.db.used_bytes()
        fields = {"storage": self.state, "buffered_in_memory": len(self.buffer), "dropped": self.dropped,
                  "storage_used_mb": round(used / 1048576, 1)}
        if self.config.cap_mb > 0:
            fields["storage_cap_mb"] = self.config.cap_mb
        return fields
