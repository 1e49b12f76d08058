"""Reads, images, hits and audit records are reached only through the storage and access layers: a query on
those tables anywhere else in the product is a way around the audit log, and fails here."""

import re
from pathlib import Path

EDGE_AGENT = Path(__file__).resolve().parent.parent / "edge_agent"
GUARDED = ("reads", "read_images", "hits", "audit_log")
# the storage layer (with the agent's own system parts: sync outbox, retention), the access layer for
# people, the station's own store, and the benchmarks, which build and count synthetic data
ALLOWED = ("store/", "access/", "station/store.py", "bench/")
SQL = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|DELETE\s+FROM)\s+(" + "|".join(GUARDED) + r")\b", re.I)


def test_no_code_outside_the_layers_queries_reads_images_hits_or_the_audit_log():
    offenders = []
    for path in sorted(EDGE_AGENT.rglob("*.py")):
        where = path.relative_to(EDGE_AGENT).as_posix()
        if where.startswith(ALLOWED):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if SQL.search(line):
                offenders.append(f"edge_agent/{where}:{n}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)
