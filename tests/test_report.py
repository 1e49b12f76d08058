"""The yearly figures as records requests get them: by month, on the unit and for the fleet at the station
(counted at ingest, equal to a scan of what was stored), and printed as HTML and PDF with charts."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_cli
from edge_agent.figures import audit_metrics, chart_series, read_metrics, yearly_figures
from edge_agent.report import charts_svg, to_html
from edge_agent.station.store import MIGRATIONS, StationStore
from edge_agent.sync.payloads import build_batch, parse_batch

OLD = Path(__file__).parent / "data" / "a067301"
LA = "America/Los_Angeles"
LISTS = ("STOLEN_VEHICLE", "FELONY_VEHICLE", "AMBER_ALERT", "OFFICER")


def test_what_a_read_and_an_access_count_for():
    assert read_metrics([]) == ["detections"]
    assert read_metrics(["STOLEN_VEHICLE", "AMBER_ALERT", "STOLEN_VEHICLE"]) == [
        "detections", "hits", "hits:AMBER_ALERT", "hits:STOLEN_VEHICLE"]  # one hit a read, each list once
    assert audit_metrics("search", "  Case  2026-0412 ") == ["searches", "searches:case 2026-0412"]
    assert audit_metrics("export", "x") == ["exports"] and audit_metrics("audit.search", "x") == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.sampled_from(["detections", "hits", "hits:BOLO", "exports"]),
                          st.integers(0, 10**6)), max_size=40))
def test_the_charts_draw_exactly_the_reports_monthly_figures(counts):
    report = yearly_figures(2026, LA, counts, scope="unit", unit="car-7")
    series = chart_series(report)
    assert series["detections"] == [m["detections"] for m in report["months"]]
    assert sum(series["detections"]) + report.get("detections_in_no_month", 0) == report["detections"]
    drawn = {}
    for _, svg in charts_svg(report):
        name = re.search(r'data-series="([a-z_]+)"', svg).group(1)
        drawn[name] = [float(v) for v in re.findall(r'data-value="([0-9.e-]+)"', svg)]
    assert drawn == {k: [float(v) for v in series[k]] for k in ("detections", "hits", "hit_ratio")}


def _read(i: int, at: datetime, lists=()) -> dict:
    return {"id": str(uuid.UUID(int=i)), "captured_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "camera_id": "front",
            "plate": f"7ABC{i % 1000:03d}", "confidence": 0.9, "state": "CA", "state_confidence": 0.9,
            "candidates": [["7ABC123", 0.9]], "box": [1, 2, 3, 4], "evidence_hold": False, "plate_jpeg": "/9j/",
            "hits": [{"lic": "7ABC123", "lis": "CA", "list": name, "match": "exact"} for name in lists]}


def _ingest(store: StationStore, unit: str, kind: str, items: list[dict], schema: str = "alpr.batch.v4") -> tuple[int, int]:
    payload = build_batch(str(uuid.uuid4()), kind, "test-pd", unit, "2026-12-01T00:00:00Z", items, schema)
    return store.store_batch(parse_batch(payload, 1 << 24), "hq")


def _scan(store: StationStore) -> dict:
    """The fleet's detections and hits by list by the agency's month, from a scan of the stored reads."""
    from zoneinfo import ZoneInfo

    from edge_agent.store import from_utc_iso

    zone, out = ZoneInfo(LA), {}
    with store._tx() as cur:
        for captured_at, lists in cur.query(
                "SELECT r.captured_at, (SELECT COUNT(DISTINCT h.list) FROM hits h WHERE h.agency = r.agency"
                " AND h.unit = r.unit AND h.read_id = r.id) FROM reads r"):
            local = from_utc_iso(captured_at).astimezone(zone)
            key = (local.year, local.month)
            out[key + ("detections",)] = out.get(key + ("detections",), 0) + 1
            if lists:
                out[key + ("hits",)] = out.get(key + ("hits",), 0) + 1
        for captured_at, name in cur.query("SELECT DISTINCT r.captured_at, h.list FROM reads r JOIN hits h ON"
                                           " h.agency = r.agency AND h.unit = r.unit AND h.read_id = r.id"):
            local = from_utc_iso(captured_at).astimezone(zone)
            key = (local.year, local.month, f"hits:{name}")
            out[key] = out.get(key, 0) + 1
    return out


def _counted(store: StationStore) -> dict:
    with store._tx() as cur:
        return {(y, m, k): int(n) for y, m, k, n in cur.query(
            "SELECT year, month, metric, SUM(count) FROM counts WHERE metric = 'detections' OR metric = 'hits'"
            " OR substr(metric, 1, 5) = 'hits:' GROUP BY year, month, metric")}


def _fleet(store: StationStore) -> None:
    """Two units' reads across New Year's Eve in California, hits on several lists, a batch delivered twice,
    dispositions and audit records; the figures must count each record once, in the agency's month."""
    eve = datetime(2027, 1, 1, 6, 0, tzinfo=timezone.utc)  # still 2026-12-31 in California
    reads = [_read(i, eve - timedelta(hours=7 * i), LISTS[: i % 5] if i % 7 == 0 else ()) for i in range(300)]
    first = build_batch(str(uuid.uuid4()), "reads", "test-pd", "car-7", "2026-12-01T00:00:00Z", reads[:200])
    assert store.store_batch(parse_batch(first, 1 << 24), "hq") == (200, 0)
    assert store.store_batch(parse_batch(first, 1 << 24), "hq-2") == (0, 200)  # delivered again: not counted again
    assert _ingest(store, "car-7", "reads", reads[150:250]) == (50, 50)
    assert _ingest(store, "car-8", "reads", reads[250:] + [_read(900, eve + timedelta(days=1))]) == (51, 0)
    _ingest(store, "car-7", "dispositions", [
        {"uuid": str(uuid.uuid4()), "alert_uuid": str(uuid.uuid4()), "read_id": reads[0]["id"],
         "disposition": d, "user": "ofc.lee", "at": "2026-11-03T10:00:00Z", "note": ""} for d in ("confirmed", "misread")])
    _ingest(store, "car-8", "audit", [
        {"uuid": str(uuid.uuid4()), "at": "2026-11-03T10:00:00Z", "user": "det.ray", "action": a, "query": "7ABC*",
         "purpose": "case 2026-0412"} for a in ("search", "search", "export", "report")], "alpr.batch.v3")  # an older unit


def test_the_fleet_figures_are_counted_at_ingest_once_and_equal_a_scan(tmp_path: Path):
    with StationStore(str(tmp_path / "station.sqlite3"), LA) as store:
        _fleet(store)
        assert _counted(store) == _scan(store)
        report = store.yearly_report(2026)
        assert report["detections"] == 300 and store.yearly_report(2027)["detections"] == 1
        assert report["dispositions"] == {"confirmed": 1, "misread": 1}
        assert (report["searches"], report["searches_by_purpose"], report["exports"]) == (2, {"case 2026-0412": 2}, 1)
        assert {u["unit"]: u["detections"] for u in report["units"]} == {"car-7": 250, "car-8": 50}


def test_the_fleet_figures_on_postgresql_equal_a_scan(tmp_path: Path, postgres):
    with StationStore(postgres, LA) as store:
        _fleet(store)
        assert _counted(store) == _scan(store)
        assert store.yearly_report(2026)["hits"] == sum(1 for i in range(300) if i % 7 == 0 and i % 5)


def test_a_station_of_a067301_counts_what_it_held_when_it_is_migrated(tmp_path: Path):
    path = tmp_path / "station.sqlite3"
    shutil.copy(OLD / "station.sqlite3", path)
    with StationStore(str(path), LA) as store:
        assert len(MIGRATIONS) == 9
        held = store.stats()["reads"]
        assert held and _counted(store) == _scan(store)
        assert sum(u["detections"] for y in (2025, 2026, 2027) for u in store.yearly_report(y)["units"]) == held
    with StationStore(str(path), LA) as store:  # opened again: counted once
        assert _counted(store) == _scan(store)


def _pages(pdf: Path) -> list[Path]:
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(pdf.with_suffix(""))], check=True)
    return sorted(pdf.parent.glob(pdf.stem + "-*.png"))


def test_the_station_report_prints_as_html_and_pdf_with_the_jsons_figures(tmp_path: Path):
    data = tmp_path / "station"
    with StationStore(str(data / "station.sqlite3"), LA) as store:
        _fleet(store)
    request = tmp_path / "request.pdf"
    request.write_bytes(b"%PDF-1.4 written request")
    assert run_cli("--data-dir", data, "station", "sharing", "add", "--agency-name", "Sacramento PD <script>",
                   "--jurisdiction", "CA", "--direction", "share", "--data", "alpr", "--requester", "Lt. Diaz",
                   "--purpose", "auto theft task force", "--approved-by", "Capt. Moss", "--approved-on", "2026-02-01",
                   "--request-file", request).code == 0
    as_json = json.loads(run_cli("--data-dir", data, "station", "report", "--year", "2026", "--json").out)
    assert as_json["scope"] == "fleet" and as_json["detections"] == 300
    assert as_json["sharing"][0]["agency_name"] == "Sacramento PD <script>"
    page = tmp_path / "report.html"
    assert run_cli("--data-dir", data, "station", "report", "--year", "2026", "--format", "html", "--out", page).code == 0
    text = page.read_text()
    assert "<script>" not in text and "Sacramento PD &lt;script&gt;" in text
    drawn = [int(v) for v in re.findall(r'data-series="detections".*?</svg>', text, re.S)[0].split('data-value="')[1:]
             for v in [v.split('"')[0]]]
    assert drawn == [m["detections"] for m in as_json["months"]]
    pdf = tmp_path / "report.pdf"
    done = run_cli("--data-dir", data, "station", "report", "--year", "2026", "--format", "pdf", "--out", pdf)
    assert done.code == 0 and pdf.read_bytes().startswith(b"%PDF")
    pages = _pages(pdf)
    assert len(pages) >= 2
    first = cv2.imread(str(pages[0]))
    # the charts are drawn: the detections bars' blue and the hits bars' red are on the first page
    blue = ((first[..., 0] > 120) & (first[..., 2] < 60)).sum()
    red = ((first[..., 2] > 150) & (first[..., 0] < 80) & (first[..., 1] < 80)).sum()
    assert blue > 200 and red > 50
    assert run_cli("--data-dir", data, "station", "report", "--year", "2026", "--format", "pdf").code == 2
    assert run_cli("--data-dir", data, "station", "report", "--year", "2026", "--format", "html", "--out",
                   tmp_path / "no" / "such" / "r.html").code == 2


def test_a_units_report_prints_too(tmp_path: Path, monkeypatch):
    from datetime import date

    from edge_agent.access import add_user
    from edge_agent.store import Database
    from edge_agent.synthetic import SyntheticReads

    data = tmp_path / "data"
    with Database.in_data_dir(data) as db:
        add_user(db, None, "clerk", "administrator", "clerk-password-1", date.today())
        for r in SyntheticReads(3).make(20, 5):
            db.insert_read(r)
    monkeypatch.setenv("EDGE_AGENT_PASSWORD", "clerk-password-1")
    year = str(datetime.now().year)
    pdf = tmp_path / "unit.pdf"
    done = run_cli("--data-dir", data, "report", "--year", year, "--format", "pdf", "--out", pdf, "--user", "clerk",
                   "--purpose", "PRA 2026-77")
    assert done.code == 0, done.err
    assert _pages(pdf)
    html = to_html(json.loads(run_cli("--data-dir", data, "report", "--year", year, "--json", "--user", "clerk",
                                      "--purpose", "PRA 2026-77").out), "Test PD")
    assert "unit unit-01" in html
    with sqlite3.connect(data / "edge-agent.sqlite3") as c:  # each printing is an audited access
        assert c.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'report' AND user = 'clerk'").fetchone()[0] == 2
