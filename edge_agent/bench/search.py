"""Searching a unit's 30 days of reads (about 90,000): full, partial and misread-tolerant plates."""

from __future__ import annotations

import random
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from edge_agent.access import ReadQuery, add_user, login, search_reads
from edge_agent.store import Database, utc_iso
from edge_agent.synthetic import random_plate

PASSWORD = "bench-password-1"


def bench_search(reads: int = 90_000, repeats: int = 5, work: Path | None = None) -> dict:
    work = Path(work or tempfile.mkdtemp(prefix="edge-agent-search-"))
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    with Database.in_data_dir(work) as db:
        rows = []
        for i in range(reads):
            at = now - timedelta(seconds=30 * 86400 * i / reads)
            rows.append((f"r{i}", utc_iso(at), "front", "7ABC123" if i % 9000 == 0 else random_plate(rng), 0.9,
                         "CA", 0.9, "[]", "[0,0,1,1]", 0, 38.5 + rng.random() * 0.2, -121.5 + rng.random() * 0.2))
        with db.transaction() as c:
            c.executemany("INSERT INTO reads (id, captured_at, camera_id, plate, confidence, state, state_confidence,"
                          " candidates, box, hit_count, lat, lon) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        add_user(db, None, "admin", "administrator", PASSWORD, date.today())
        session = login(db, "admin", PASSWORD, "benchmark")
        queries = {"full": ReadQuery("7ABC123"), "partial": ReadQuery("7AB*"),
                   "tolerant": ReadQuery("7A8C1Z3", tolerant=True),
                   "partial_last_week_near": ReadQuery("7*", since=now - timedelta(days=7), near=(38.6, -121.4, 5.0))}
        out = {"reads": reads}
        for name, q in queries.items():
            times, found = [], 0
            for _ in range(repeats):
                started = time.perf_counter()
                found = len(search_reads(db, session, q))
                times.append((time.perf_counter() - started) * 1000)
            out[f"{name}_ms"] = round(sorted(times)[len(times) // 2], 1)
            out[f"{name}_found"] = found
    out["target_ms"] = 200
    out["met"] = all(v < 200 for k, v in out.items() if k.endswith("_ms") and k != "target_ms")
    return out
