"""The audit log at scale: a chain of N records (a busy unit's years) verified from the first."""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from edge_agent.access.audit import GENESIS, record_hash, verify
from edge_agent.store import Database, utc_iso


def bench_audit_verify(records: int = 1_000_000, work: Path | None = None) -> dict:
    work = Path(work or tempfile.mkdtemp(prefix="edge-agent-audit-"))
    with Database.in_data_dir(work) as db:
        start = datetime(2026, 1, 1, tzinfo=timezone.utc)
        prev, rows = GENESIS, []
        for i in range(records):
            uid, at = str(uuid.UUID(int=i + 1)), utc_iso(start + timedelta(seconds=30 * i))
            user, action, query, purpose = f"officer{i % 40}", "search", f"plate 7AB{i % 1000:03d}*", f"case 26-{i % 5000:04d}"
            prev = record_hash(prev, uid, at, user, "car-7", action, query, purpose, i % 7)
            rows.append((uid, at, user, "car-7", action, query, purpose, i % 7, prev))
        with db.transaction() as c:
            c.executemany("INSERT INTO audit_log (uuid, at, user, unit, action, query, purpose, records, hash)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        del rows
        with db._lock:
            started = time.perf_counter()
            verdict = verify(db._conn)
            seconds = time.perf_counter() - started
    return {"records": verdict.records, "intact": verdict.ok, "verify_s": round(seconds, 2),
            "target_s": 10.0, "met": verdict.ok and seconds < 10.0}
