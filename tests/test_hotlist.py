"""Hotlist import and exact matching."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config import HotlistConfig
from edge_agent.errors import HotlistError
from edge_agent.hotlist import HotlistIndex, parse_hotlist
from edge_agent.synthetic import HOTLIST_HEADER, write_hotlist
from conftest import run_cli, shared_path

COLUMNS = HotlistConfig().columns


def _row(plate="7ABC123", state="CA", list_name="STOLEN_VEHICLE", exp=""):
    return [plate, state, "2027", "PC", "HOND", "2015", "SIL", "S100", "CA0000000", "26-1", "20260101", exp, list_name, ""]


def _csv(rows) -> bytes:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HOTLIST_HEADER)
    writer.writerows(rows)
    return buf.getvalue().encode()


def test_bad_rows_are_reported_by_line_and_good_rows_kept():
    data = _csv([
        _row("7ABC123"),
        _row(""),  # line 3: empty plate
        _row("ABCDEFGHIJK"),  # line 4: too long
        _row("5XYZ999", state="ZZ"),  # line 5: unknown state
        _row("5XYZ998", list_name="PARKING"),  # line 6: unknown list
        _row("5XYÉ997"),  # line 7: non-ASCII
        _row("4DEF 456"),  # spaces are how plates are often entered
    ]) + b"1ABC000,CA\n"  # line 9: too few columns
    parsed = parse_hotlist(data, COLUMNS, "list.csv")
    assert [e.plate for e in parsed.entries] == ["7ABC123", "4DEF456"]
    assert [e.line for e in parsed.errors] == [3, 4, 5, 6, 7, 9]
    messages = " | ".join(str(e) for e in parsed.errors)
    for words in ("plate is empty", "longer than 8", "'ZZ'", "'PARKING'", "outside A-Z", "columns"):
        assert words in messages


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"PLATE,STATE\n7ABC123,CA\n", "header lacks"),
    (bytes(range(256)) * 10, "UTF-8"),
])
def test_unusable_files_are_refused(data, words):
    with pytest.raises(HotlistError) as info:
        parse_hotlist(data, COLUMNS, "x.csv")
    assert words in str(info.value) and "list in force stays" in str(info.value)


@given(st.binary(max_size=2000))
def test_parser_never_crashes_on_arbitrary_bytes(data):
    try:
        parsed = parse_hotlist(data, COLUMNS, "fuzz.csv")
    except HotlistError:
        return
    assert all(1 <= len(e.plate) <= 8 for e in parsed.entries)


def test_expired_entries_stop_matching():
    import datetime

    parsed = parse_hotlist(_csv([_row("7ABC123", exp="20200101"), _row("8ABC123")]), COLUMNS)
    index = HotlistIndex(parsed.entries)
    assert index.match("7ABC123", today=datetime.date(2026, 1, 1)) == []
    assert index.match("8ABC123")[0].match == "exact"


def test_match_labels_state_mismatch_and_orders_by_priority():
    parsed = parse_hotlist(_csv([_row("7ABC123", list_name="STOLEN_PLATE"), _row("7ABC123", list_name="AMBER_ALERT")]), COLUMNS)
    index = HotlistIndex(parsed.entries)
    hits = index.match("7abc-123", "CA")
    assert [h.list_name for h in hits] == ["AMBER_ALERT", "STOLEN_PLATE"]
    assert all(h.match == "exact" for h in hits)
    assert {h.match for h in index.match("7ABC123", "NV")} == {"state-mismatch"}


def test_import_then_check_from_the_command_line(tmp_path: Path, data_dir: Path, monkeypatch):
    csv_path = write_hotlist(tmp_path / "list.csv", {"7ABC123": "STOLEN_VEHICLE", "8LMN905": "AMBER_ALERT"}, others=50)
    imported = run_cli("--data-dir", data_dir, "hotlist", "import", csv_path, "--json", "--user", "tech1")
    assert imported.code == 0, imported.err
    assert json.loads(imported.out)["loaded"] == 52
    checked = run_cli("--data-dir", data_dir, "hotlist", "check", "7ABC123", "1ZZZ999", "--json")
    rows = [json.loads(line) for line in checked.lines]
    assert rows[0] == {"plate": "7ABC123", "hits": [{"lic": "7ABC123", "lis": "CA", "list": "STOLEN_VEHICLE", "match": "exact", "nic": "S100000000"}]}
    assert rows[1] == {"plate": "1ZZZ999", "hits": []}
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("8LMN905\n\n7ABC123\n"))
    stdin = run_cli("--data-dir", data_dir, "hotlist", "check", "--stdin", "--json")
    assert [json.loads(line)["hits"][0]["list"] for line in stdin.lines] == ["AMBER_ALERT", "STOLEN_VEHICLE"]
    # every access is in the audit log with its user
    from edge_agent.store import Database

    with Database.in_data_dir(data_dir) as db:
        actions = [(r["user"], r["action"]) for r in db.query("SELECT user, action FROM audit_log ORDER BY id")]
    assert actions[0] == ("tech1", "hotlist.import")
    assert [a for _, a in actions[1:]] == ["hotlist.check", "hotlist.check"]


def test_refused_file_leaves_the_list_in_force(tmp_path: Path, data_dir: Path):
    good = write_hotlist(tmp_path / "list.csv", {"7ABC123": "STOLEN_VEHICLE"}, others=5)
    assert run_cli("--data-dir", data_dir, "hotlist", "import", good).code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("NOT,A,HOTLIST\n1,2,3\n")
    refused = run_cli("--data-dir", data_dir, "hotlist", "import", bad)
    assert refused.code == 2 and "bad.csv" in refused.err and "header lacks" in refused.err
    checked = run_cli("--data-dir", data_dir, "hotlist", "check", "7ABC123", "--json")
    assert json.loads(checked.out)["hits"][0]["list"] == "STOLEN_VEHICLE"


def test_shared_sample_list_reports_its_malformed_rows(data_dir: Path):
    sample = shared_path("data", "hotlists", "sample-ca-doj.csv")
    result = run_cli("--data-dir", data_dir, "hotlist", "import", sample, "--json")
    assert result.code == 0
    summary = json.loads(result.out)
    assert summary["rejected"] == 25 and summary["loaded"] == 4975
    assert result.err.count("row skipped") == 25
    assert all("line " in line for line in result.err.splitlines())
