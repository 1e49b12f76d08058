"""The parsers at the boundary, hammered with documents built from their schemas and then mutated: each either
takes the input or refuses it with its own error, never anything else."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.config import parse_config
from edge_agent.errors import ConfigError, HotlistError
from edge_agent.hotlist.parse import parse_hotlist
from edge_agent.config import HotlistConfig
from edge_agent.store import Database
from edge_agent.store.outbox import batch_items, take_batch
from edge_agent.sync.payloads import AckFor, PayloadError, build_ack, build_batch, parse_ack, parse_batch
from edge_agent.synthetic import HOTLIST_HEADER, write_hotlist
from conftest import seed_reads

JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _mutations(doc: dict):
    """A strategy of documents one step off `doc`: a key dropped, a value of another type, an unknown key,
    a value wrapped deep, a string stretched."""
    keys = sorted(doc)
    return st.one_of(
        st.sampled_from(keys).map(lambda k: {x: v for x, v in doc.items() if x != k}),
        st.tuples(st.sampled_from(keys), JUNK).map(lambda kv: {**doc, kv[0]: kv[1]}),
        st.tuples(st.text(min_size=1, max_size=10), JUNK).map(lambda kv: {**doc, kv[0]: kv[1]}),
        st.tuples(st.sampled_from(keys), st.integers(1, 3000)).map(
            lambda kd: {**doc, kd[0]: json.loads("[" * kd[1] + "1" + "]" * kd[1]) if kd[1] < 900 else "x" * kd[1]}),
        st.just(doc),
    )


def _valid_batch(tmp: Path) -> dict:
    seed_reads(tmp, 2, hits_every=2)
    with Database.in_data_dir(tmp) as db:
        batch = take_batch(db)
        return json.loads(build_batch(batch.id, batch.kind, "pd", "car-7", "2026-11-21T08:00:00Z", batch_items(db, batch)))


def test_batches_from_the_schema_mutated_are_taken_or_refused(tmp_path: Path):
    doc = _valid_batch(tmp_path / "unit")
    item = doc["items"][0]

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_mutations(doc), _mutations(item), st.integers(0, 200))
    def check(batch, read, cut):
        for candidate in ({**batch}, {**doc, "items": [read]}):
            payload = json.dumps(candidate).encode()
            for data in (payload, payload[: len(payload) - cut]):
                try:
                    parse_batch(data, 1 << 20)
                except PayloadError:
                    pass

    check()


def test_acknowledgements_from_the_schema_mutated_are_taken_or_refused():
    doc = json.loads(build_ack(AckFor("alpr.ack.v2", "pd", "car-7", "a" * 64), "11111111-2222-3333-4444-555555555555",
                               "stored", "2026-11-21T08:00:00Z", "hq", "reads", 3, 0))

    @settings(max_examples=300, deadline=None)
    @given(_mutations(doc), st.integers(0, 40))
    def check(ack, cut):
        payload = json.dumps(ack).encode()
        for data in (payload, payload[: len(payload) - cut]):
            try:
                parse_ack(data)
            except PayloadError:
                pass

    check()


def test_hotlists_mutated_byte_by_byte_are_taken_or_refused(tmp_path: Path):
    good = write_hotlist(tmp_path / "hot.csv", {"7ABC123": "STOLEN_VEHICLE"}, others=5).read_bytes()
    layout = HotlistConfig().layout

    @settings(max_examples=300, deadline=None)
    @given(st.integers(0, len(good) - 1), st.binary(max_size=8), st.integers(0, len(good)))
    def check(at, splice, cut):
        data = (good[:at] + splice + good[at + len(splice):])[: max(1, cut)]
        try:
            parsed = parse_hotlist(data, layout, "hot.csv")
        except HotlistError:
            return
        assert all(r.plate.isalnum() and len(r.plate) <= 8 for r in parsed.rows)
        assert data.endswith((b"\n", b"\r"))  # a file cut short is never taken

    check()
    assert HOTLIST_HEADER[0].encode() in good


def test_configurations_mutated_are_taken_or_refused_with_the_key_named(tmp_path: Path):
    doc = {"agent": {"unit_id": "car-7", "agency": "pd", "data_dir": str(tmp_path)},
           "recognition": {"min_confidence": 0.3, "plate_min_score": 0.3},
           "sync": {"broker": "mqtts://broker.example:8883", "batch_size": 100},
           "storage": {"retention_days": 30.0, "jpeg_quality": 85}}

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(sorted(doc)), st.data())
    def check(section, data):
        raw = {**doc, section: data.draw(_mutations(doc[section]))}
        try:
            parse_config(raw, "unit.toml", tmp_path)
        except ConfigError as exc:
            assert exc.file == "unit.toml" and exc.key

    check()
