"""The fleet's yearly report at the station in PostgreSQL (issue target: under 5 s with 30 million reads, a
60-car fleet's quarter), and the figures kept at ingest held to a full scan of the reads.

Two agencies share one database. `ingest-pd`'s reads go through the real ingest path (a batch built as a unit
sends it, parsed and validated as the receiver does, `StationStore.store_batch`); a scan of its reads must
give the same figures as the counts. `bulk-pd`'s reads are loaded with COPY, each block with its counts in
the same transaction, counted by the same code ingest uses (`StationStore._count`). The report is then
timed over both.
"""

from __future__ import annotations

import io
import random
import time
import uuid
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from edge_agent.station.store import KINDS, StationStore
from edge_agent.sync.payloads import build_batch, parse_batch
from edge_agent.synthetic import random_plate

ZONE = "America/Los_Angeles"
QUARTER = (datetime(2026, 10, 1, 7, tzinfo=timezone.utc), datetime(2027, 1, 1, 8, tzinfo=timezone.utc))
LISTS = ("STOLEN_VEHICLE", "STOLEN_PLATE", "FELONY_VEHICLE", "WANTED_PERSON", "AMBER_ALERT", "OFFICER")
HIT_EVERY = 700  # about one read in 700 is on a list
COLUMNS = ("agency", "unit", "id", "captured_at", "camera_id", "plate", "confidence", "state", "state_confidence",
           "candidates", "box", "hit_count", "evidence_hold", "batch_id", "received_at")


def _times(rng: np.random.Generator, n: int) -> list[str]:
    start, end = (int(t.timestamp() * 1e6) for t in QUARTER)
    micros = np.sort(rng.integers(start, end, n)).astype("datetime64[us]")
    return [t + "Z" for t in np.datetime_as_string(micros, unit="us").tolist()]


def _hit_lists(rng: random.Random) -> list[str]:
    return [rng.choice(LISTS) for _ in range(1 if rng.random() < 0.9 else 2)]


def ingest(store: StationStore, reads: int, units: int, batch: int = 500, progress: Callable[[str], None] = print) -> float:
    """`reads` reads through the receiver's path; returns the seconds it took."""
    rng, nrng = random.Random(11), np.random.default_rng(11)
    started, done = time.perf_counter(), 0
    per_unit = reads // units
    for u in range(units):
        unit = f"car-{u:02d}"
        times = _times(nrng, per_unit + (reads - per_unit * units if u == units - 1 else 0))
        for i in range(0, len(times), batch):
            items = [{"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "captured_at": t, "camera_id": "front",
                      "plate": random_plate(rng), "confidence": 0.9, "state": "CA", "state_confidence": 0.9,
                      "candidates": [["7ABC123", 0.9]], "box": [1, 2, 3, 4], "evidence_hold": False, "plate_jpeg": "/9j/",
                      "hits": [{"lic": "7ABC123", "lis": "CA", "list": name, "match": "exact"}
                               for name in (_hit_lists(rng) if rng.randrange(HIT_EVERY) == 0 else [])]}
                     for t in times[i:i + batch]]
            payload = build_batch(str(uuid.uuid4()), "reads", "ingest-pd", unit, "2027-01-01T00:00:00Z", items)
            store.store_batch(parse_batch(payload, 1 << 26), "bench")
            done += len(items)
        progress(f"ingest: {done:,} of {reads:,} reads ({time.perf_counter() - started:.0f} s)")
    return time.perf_counter() - started


def bulk_load(store: StationStore, reads: int, units: int, block: int = 250_000,
              progress: Callable[[str], None] = print) -> float:
    """`reads` reads loaded with COPY, each block and its counts in one transaction; returns the seconds."""
    rng, nrng = random.Random(12), np.random.default_rng(12)
    started, done, n = time.perf_counter(), 0, 0
    per_unit = reads // units
    copy_reads = f"COPY reads ({', '.join(COLUMNS)}) FROM STDIN"
    copy_hits = "COPY hits (agency, unit, read_id, n, lic, lis, list, match, nic, source) FROM STDIN"
    for u in range(units):
        unit = f"car-{u:02d}"
        count = per_unit + (reads - per_unit * units if u == units - 1 else 0)
        for first in range(0, count, block):
            times = _times(nrng, min(block, count - first))
            lines, hit_lines, counted = io.StringIO(), io.StringIO(), []
            for t in times:
                n += 1
                rid = f"{n:08x}-0000-4000-8000-{u:012x}"
                lists = _hit_lists(rng) if rng.randrange(HIT_EVERY) == 0 else []
                lines.write(f"bulk-pd\t{unit}\t{rid}\t{t}\tfront\t{random_plate(rng)}\t0.9\tCA\t0.9\t[]\t[1,2,3,4]\t"
                            f"{len(lists)}\t0\tbulk\t2027-01-01T00:00:00Z\n")
                for k, name in enumerate(lists):
                    hit_lines.write(f"bulk-pd\t{unit}\t{rid}\t{k}\t7ABC123\tCA\t{name}\texact\t\thotlist\n")
                counted.append({"captured_at": t, "hits": [{"list": name} for name in lists]})
            with store._tx() as cur:
                with cur.cur.copy(copy_reads) as copy:
                    copy.write(lines.getvalue())
                if hit_lines.tell():
                    with cur.cur.copy(copy_hits) as copy:
                        copy.write(hit_lines.getvalue())
                store._count(cur, "bulk-pd", unit, KINDS["reads"], counted)
            done += len(times)
        progress(f"bulk load: {done:,} of {reads:,} reads ({time.perf_counter() - started:.0f} s)")
    return time.perf_counter() - started


def scan_matches_counts(store: StationStore, agency: str) -> tuple[bool, dict]:
    """The agency's detections, hits and hits by list per month from a full scan of its reads, against the
    counts kept at ingest."""
    with store._tx() as cur:
        local = f"(r.captured_at::timestamptz AT TIME ZONE '{ZONE}')"
        scan: dict[tuple, int] = {}
        for y, m, reads_n, hit_reads in cur.query(
                f"SELECT EXTRACT(YEAR FROM {local})::int, EXTRACT(MONTH FROM {local})::int, COUNT(*),"
                " COUNT(*) FILTER (WHERE r.hit_count > 0) FROM reads r WHERE r.agency = ? GROUP BY 1, 2", (agency,)):
            scan[(y, m, "detections")] = reads_n
            if hit_reads:
                scan[(y, m, "hits")] = hit_reads
        for y, m, name, k in cur.query(
                f"SELECT EXTRACT(YEAR FROM {local})::int, EXTRACT(MONTH FROM {local})::int, h.list,"
                " COUNT(DISTINCT (h.unit, h.read_id)) FROM reads r JOIN hits h ON h.agency = r.agency AND"
                " h.unit = r.unit AND h.read_id = r.id WHERE r.agency = ? GROUP BY 1, 2, 3", (agency,)):
            scan[(y, m, f"hits:{name}")] = k
        counted = {(y, m, k): int(n) for y, m, k, n in cur.query(
            "SELECT year, month, metric, SUM(count) FROM counts WHERE agency = ? AND (metric = 'detections'"
            " OR metric = 'hits' OR substr(metric, 1, 5) = 'hits:') GROUP BY year, month, metric", (agency,))}
    return scan == counted, {"scanned_detections": sum(v for (_, _, k), v in scan.items() if k == "detections"),
                             "counted_detections": sum(v for (_, _, k), v in counted.items() if k == "detections")}


def bench_fleet(reads: int = 30_000_000, ingested: int = 1_000_000, units: int = 60, db: str | None = None,
                repeats: int = 5, progress: Callable[[str], None] = print) -> dict:
    from edge_agent.bench.pgserver import throwaway_postgres

    settings = ("fsync=off", "synchronous_commit=off", "shared_buffers=1GB", "max_wal_size=8GB",
                "maintenance_work_mem=512MB")
    server = nullcontext(db) if db else throwaway_postgres(settings=settings)
    out: dict = {"reads": reads, "ingested": ingested, "units": units}
    with server as url, StationStore(url, ZONE) as store:
        out["ingest_s"] = round(ingest(store, ingested, units, progress=progress), 1)
        out["ingest_reads_per_s"] = round(ingested / out["ingest_s"])
        equal, detail = scan_matches_counts(store, "ingest-pd")
        out["ingest_counts_equal_scan"] = equal
        out.update(detail)
        out["bulk_load_s"] = round(bulk_load(store, reads - ingested, units, progress=progress), 1)
        with store._tx() as cur:
            cur.execute("ANALYZE")
            out["reads_in_database"] = cur.query("SELECT COUNT(*) FROM reads")[0][0]
        times, report = [], {}
        for _ in range(repeats):
            started = time.perf_counter()
            report = store.yearly_report(2026)
            times.append(time.perf_counter() - started)
        out["report_s_median"] = round(sorted(times)[len(times) // 2], 3)
        out["report_s_max"] = round(max(times), 3)
        out["report_detections_2026"] = report["detections"]
        out["report_hits_2026"] = report["hits"]
    out["postgres_settings"] = list(settings) if not db else "as given"
    out["target_s"] = 5.0
    out["met"] = (out["report_s_max"] < 5.0 and out["ingest_counts_equal_scan"] and out["reads_in_database"] == reads
                  and out["report_detections_2026"] == reads)
    return out
