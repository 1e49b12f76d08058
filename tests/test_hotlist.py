"""Hotlist import: CSV and fixed-width extracts, updates, versions, refusals, officers' entries, signatures."""

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config import HotlistConfig
from edge_agent.errors import HotlistError
from edge_agent.hotlist import HotlistIndex, load_index, parse_hotlist
from edge_agent.hotlist.parse import LISTS, STATES, HotlistFormat
from edge_agent.hotlist.storage import open_hotlist_db
from edge_agent.store import Database
from edge_agent.synthetic import HOTLIST_HEADER, write_hotlist
from conftest import LOGIN, run_cli, shared_path

LAYOUT = HotlistConfig().layout


def _row(plate="7ABC123", state="CA", list_name="STOLEN_VEHICLE", exp="", nic="S100"):
    return [plate, state, "2027", "PC", "HOND", "2015", "SIL", nic, "CA0000000", "26-1", "20260101", exp, list_name, ""]


def _csv(rows, header=HOTLIST_HEADER) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


@pytest.fixture(autouse=True)
def _officers(data_dir: Path, trained):
    """The unit's trained users: checking plates and entering them is an audited access."""
    trained(data_dir, ("ofc1", "officer"), ("ofc.smith", "officer"), ("ofc.jones", "officer"), ("sgt.lee", "supervisor"))


def _check(data_dir: Path, *plates: str, extra=()) -> dict[str, list[dict]]:
    result = run_cli("--data-dir", data_dir, "hotlist", "check", *plates, "--json", *extra, "--user", "ofc1", *LOGIN)
    return {row["plate"]: row["hits"] for row in map(json.loads, result.lines)}


# parsing -------------------------------------------------------------------


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
    parsed = parse_hotlist(data, LAYOUT, "list.csv")
    assert [e.plate for e in parsed.rows] == ["7ABC123", "4DEF456"]
    assert [e.line for e in parsed.errors] == [3, 4, 5, 6, 7, 9]
    messages = " | ".join(str(e) for e in parsed.errors)
    for words in ("plate is empty", "longer than 8", "'ZZ'", "'PARKING'", "outside A-Z", "columns"):
        assert words in messages


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"PLATE,STATE\n7ABC123,CA\n", "header lacks"),
    (bytes(range(256)) * 10, "UTF-8"),
    (_csv([_row("7ABC123"), _row("8ABC123")])[:-30], "truncated"),
    # cut inside the last field (the remarks), so that what is left of the row still parses
    (_csv([_row("7ABC123"), _row("8ABC123")[:-1] + ["ARMED AND DANGEROUS"]])[:-8], "truncated"),
    (_csv([_row("7ABC123")]) + b"8ABC\x00123,CA\n", "NUL"),
    (_csv([_row("")]), "no usable rows"),
])
def test_unusable_files_are_refused(data, words):
    with pytest.raises(HotlistError) as info:
        parse_hotlist(data, LAYOUT, "x.csv")
    assert words in str(info.value) and "list in force stays" in str(info.value)


@settings(max_examples=200)
@given(st.binary(max_size=2000))
def test_parser_never_crashes_on_arbitrary_bytes(data):
    try:
        parsed = parse_hotlist(data, LAYOUT, "fuzz.csv")
    except HotlistError:
        return
    assert all(1 <= len(e.plate) <= 8 for e in parsed.rows)


_plates = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=8)


@settings(max_examples=100)
@given(st.lists(st.tuples(_plates, st.sampled_from(sorted(STATES)), st.sampled_from(LISTS)), min_size=1, max_size=30),
       st.sampled_from(["csv", "fixed"]))
def test_every_good_row_comes_back_as_written(rows, layout):
    if layout == "csv":
        data = _csv([_row(p, s, lst) for p, s, lst in rows])
        fmt = LAYOUT
    else:
        data = "".join(f"{p:<8}{s:<2}{lst:<16}\n" for p, s, lst in rows).encode()
        fmt = HotlistFormat("fixed", fixed_width={"plate": (1, 8), "state": (9, 10), "list": (11, 26)})
    parsed = parse_hotlist(data, fmt)
    assert [(r.plate, r.state, r.list_name) for r in parsed.rows] == rows
    assert parsed.errors == [] and parsed.kind == "full"


# importing -----------------------------------------------------------------


def test_import_then_check_from_the_command_line(tmp_path: Path, data_dir: Path, monkeypatch):
    csv_path = write_hotlist(tmp_path / "list.csv", {"7ABC123": "STOLEN_VEHICLE", "8LMN905": "AMBER_ALERT"}, others=50)
    imported = run_cli("--data-dir", data_dir, "hotlist", "import", csv_path, "--json", "--user", "tech1")
    assert imported.code == 0, imported.err
    assert json.loads(imported.out)["loaded"] == 52
    hits = _check(data_dir, "7ABC123", "1ZZZ999", extra=("--state", "CA"))
    assert hits["7ABC123"] == [{"lic": "7ABC123", "lis": "CA", "list": "STOLEN_VEHICLE", "match": "exact",
                                "nic": "S100000000", "source": "hotlist"}]
    assert hits["1ZZZ999"] == []
    # without a state read, an exact plate is a state-mismatch: the officer must confirm the state
    assert _check(data_dir, "7ABC123")["7ABC123"][0]["match"] == "state-mismatch"
    monkeypatch.setattr("sys.stdin", io.StringIO("8LMN905\n\n7ABC123\n"))
    stdin = run_cli("--data-dir", data_dir, "hotlist", "check", "--stdin", "--json", "--user", "ofc1", *LOGIN)
    assert [json.loads(line)["hits"][0]["list"] for line in stdin.lines] == ["AMBER_ALERT", "STOLEN_VEHICLE"]
    with Database.in_data_dir(data_dir) as db:
        actions = [(r["user"], r["action"], r["query"]) for r in db.query(
            "SELECT user, action, query FROM audit_log WHERE action LIKE 'hotlist.%' ORDER BY id")]
    assert actions[0][:2] == ("system:hotlist", "hotlist.import") and "by tech1" in actions[0][2]
    assert [(u, a) for u, a, _ in actions[1:]] == [("ofc1", "hotlist.check")] * 3


def test_versions_record_source_counts_and_sha256(tmp_path: Path, data_dir: Path):
    import hashlib

    first = write_hotlist(tmp_path / "a.csv", {"7ABC123": "STOLEN_VEHICLE"}, others=9)
    second = write_hotlist(tmp_path / "b.csv", {"8LMN905": "AMBER_ALERT"}, others=9, seed=4)
    assert run_cli("--data-dir", data_dir, "hotlist", "import", first).code == 0
    assert run_cli("--data-dir", data_dir, "hotlist", "import", second).code == 0
    status = json.loads(run_cli("--data-dir", data_dir, "hotlist", "status", "--json").out)
    assert status["in_force"]["source"] == str(second)
    assert status["in_force"]["sha256"] == hashlib.sha256(second.read_bytes()).hexdigest()
    assert (status["in_force"]["rows_loaded"], status["in_force"]["entries_in_force"]) == (10, 10)
    assert [v["source"] for v in status["versions"]] == [str(second), str(first)]
    # the new list replaced the old one whole
    hits = _check(data_dir, "7ABC123", "8LMN905")
    assert hits["7ABC123"] == [] and hits["8LMN905"][0]["list"] == "AMBER_ALERT"


def test_refused_files_leave_the_list_in_force(tmp_path: Path, data_dir: Path):
    good = write_hotlist(tmp_path / "list.csv", {"7ABC123": "STOLEN_VEHICLE"}, others=99)
    assert run_cli("--data-dir", data_dir, "hotlist", "import", good).code == 0
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("NOT,A,HOTLIST\n1,2,3\n")
    random_bytes = tmp_path / "random.bin"
    random_bytes.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(100_000)))
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as f:  # sparse: 2 GB on paper, nothing on disk
        f.truncate(2 * 1024 ** 3)
    truncated = tmp_path / "truncated.csv"
    truncated.write_bytes(good.read_bytes()[:-25])
    shrunk = tmp_path / "shrunk.csv"  # cut at a line boundary: only a count can tell
    shrunk.write_bytes(b"".join(good.read_bytes().splitlines(keepends=True)[:20]))
    for path, words in [(bad_header, "header lacks"), (random_bytes, "UTF-8"), (huge, "MB limit"),
                        (truncated, "truncated"), (shrunk, "truncated extract"), (tmp_path / "missing.csv", "cannot be read")]:
        refused = run_cli("--data-dir", data_dir, "hotlist", "import", path)
        assert refused.code == 2 and path.name in refused.err and words in refused.err, refused.err
        assert len(refused.err.strip().splitlines()) == 1
        assert _check(data_dir, "7ABC123")["7ABC123"][0]["list"] == "STOLEN_VEHICLE"
    with open_hotlist_db(data_dir) as db:
        assert len(load_index(db)) == 100
    assert run_cli("--data-dir", data_dir, "hotlist", "import", shrunk, "--force").code == 0


def test_expired_entries_stop_matching():
    import datetime

    parsed = parse_hotlist(_csv([_row("7ABC123", exp="20200101"), _row("8ABC123")]), LAYOUT)
    index = HotlistIndex.from_rows(parsed.rows)
    assert index.match("7ABC123", "CA", today=datetime.date(2026, 1, 1)) == []
    assert index.match("7ABC123", "CA", today=datetime.date(2019, 12, 31))[0].match == "exact"
    assert index.match("8ABC123", "CA")[0].match == "exact"


def test_update_adds_and_clears_on_top_of_the_list_in_force(tmp_path: Path, data_dir: Path):
    full = _csv([_row("7ABC123", nic="S1"), _row("5TRK442", nic="S2"), _row("6WNP018", nic="S3")])
    (tmp_path / "full.csv").write_bytes(full)
    assert run_cli("--data-dir", data_dir, "hotlist", "import", tmp_path / "full.csv").code == 0
    delta = _csv([["CLEAR", *_row("5TRK442", nic="S2")], ["ADD", *_row("8LMN905", list_name="AMBER_ALERT", nic="A9")],
                  ["CLEAR", *_row("1NOT000", nic="S9")], ["FROB", *_row("2XYZ222")]], header=["ACTION", *HOTLIST_HEADER])
    (tmp_path / "delta.csv").write_bytes(delta)
    applied = run_cli("--data-dir", data_dir, "hotlist", "import", tmp_path / "delta.csv", "--json")
    assert applied.code == 0, applied.err
    summary = json.loads(applied.out)
    assert (summary["kind"], summary["added"], summary["cleared"], summary["rejected"]) == ("delta", 1, 1, 1)
    assert summary["entries_in_force"] == 3
    assert "line 4: CLEAR 1NOT000 CA S9: no such entry in force" in applied.err
    assert "line 5: action 'FROB'" in applied.err
    hits = _check(data_dir, "7ABC123", "5TRK442", "8LMN905", extra=("--exact-only",))
    assert hits["7ABC123"] and not hits["5TRK442"] and hits["8LMN905"][0]["list"] == "AMBER_ALERT"


def test_update_needs_a_list_in_force(tmp_path: Path, data_dir: Path):
    (tmp_path / "delta.csv").write_bytes(_csv([["ADD", *_row("8LMN905")]], header=["ACTION", *HOTLIST_HEADER]))
    refused = run_cli("--data-dir", data_dir, "hotlist", "import", tmp_path / "delta.csv")
    assert refused.code == 2 and "no full list is in force" in refused.err


def test_fixed_width_extract_from_configuration(tmp_path: Path, data_dir: Path):
    config = tmp_path / "unit.toml"
    config.write_text(f"""
[agent]
data_dir = "{data_dir}"
[hotlist]
format = "fixed"
date_format = "%Y-%m-%d"
[hotlist.fixed_width]
plate = [1, 8]
state = [9, 10]
list = [11, 30]
nic = [31, 40]
expires = [41, 50]
""")
    records = [("7ABC123", "CA", "STOLEN_VEHICLE", "S000000001", ""), ("3TDM067", "WA", "FELONY_VEHICLE", "F000000002", "2099-12-31"),
               ("9OLD001", "CA", "STOLEN_PLATE", "S000000003", "2001-01-01")]
    text = "".join(f"{p:<8}{s:<2}{lst:<20}{nic:<10}{exp:<10}".rstrip() + "\n" for p, s, lst, nic, exp in records)
    (tmp_path / "list.txt").write_text(text + "SHORT\n")
    imported = run_cli("--config", config, "hotlist", "import", tmp_path / "list.txt", "--json")
    assert imported.code == 0, imported.err
    assert json.loads(imported.out)["loaded"] == 3 and "line 4" in imported.err
    hits = _check(data_dir, "7ABC123", "3TDM067", "9OLD001", extra=("--state", "WA"))
    assert hits["7ABC123"][0]["match"] == "state-mismatch"
    assert hits["3TDM067"][0] == {"lic": "3TDM067", "lis": "WA", "list": "FELONY_VEHICLE", "match": "exact",
                                  "nic": "F000000002", "source": "hotlist"}
    assert hits["9OLD001"] == []  # expired


def test_shared_sample_list_and_update(data_dir: Path):
    sample = shared_path("data", "hotlists", "sample-ca-doj.csv")
    result = run_cli("--data-dir", data_dir, "hotlist", "import", sample, "--json")
    assert result.code == 0
    summary = json.loads(result.out)
    assert summary["rejected"] == 25 and summary["loaded"] == 4975
    assert result.err.count("row skipped") == 25
    assert all("line " in line for line in result.err.splitlines())
    delta = shared_path("data", "hotlists", "sample-ca-doj-delta.csv")
    rows = list(csv.DictReader(delta.open()))
    applied = run_cli("--data-dir", data_dir, "hotlist", "import", delta, "--json")
    assert applied.code == 0, applied.err
    summary = json.loads(applied.out)
    assert summary["kind"] == "delta" and summary["added"] == sum(r["ACTION"] == "ADD" for r in rows)
    cleared = [r for r in rows if r["ACTION"] == "CLEAR"]
    added = [r for r in rows if r["ACTION"] == "ADD"]
    hits = _check(data_dir, cleared[0]["LIC"], added[0]["LIC"], extra=("--exact-only",))
    assert not any(h["nic"] == cleared[0]["NIC"] for h in hits[cleared[0]["LIC"]])
    assert any(h["nic"] == added[0]["NIC"] for h in hits[added[0]["LIC"]])


def test_bad_plates_on_the_command_line_get_one_clear_message(tmp_path: Path, data_dir: Path):
    good = write_hotlist(tmp_path / "list.csv", {"7ABC123": "STOLEN_VEHICLE"}, others=5)
    assert run_cli("--data-dir", data_dir, "hotlist", "import", good).code == 0
    long = run_cli("--data-dir", data_dir, "hotlist", "check", "A" * 200, "7ABC123", "--user", "ofc1", *LOGIN)
    assert long.code == 2 and "200 characters; plates have at most 8" in long.err
    assert "7ABC123: STOLEN_VEHICLE" in long.out
    for plate, words in [("*", "at least 3"), ("7*", "at least 3"), ("A" * 200, "longer than 8"), ("7AB#12", "'#'")]:
        added = run_cli("--data-dir", data_dir, "hotlist", "add", plate, "--reason", "x", "--user", "ofc1", *LOGIN)
        assert added.code == 2 and words in added.err and "nothing was added" in added.err
    with open_hotlist_db(data_dir) as db:
        assert len(load_index(db)) == 6


# officers' entries -----------------------------------------------------------


def test_officer_adds_a_partial_plate_and_removes_it(data_dir: Path):
    added = run_cli("--data-dir", data_dir, "hotlist", "add", "7ab?12*", "--list", "FELONY_VEHICLE",
                    "--reason", "case 26-1234 armed robbery", "--user", "ofc.smith", *LOGIN, "--json")
    assert added.code == 0, added.err
    entry = json.loads(added.out)
    assert entry["plate"] == "7AB?12*" and entry["partial"] is True
    exact = run_cli("--data-dir", data_dir, "hotlist", "add", "5TRK442", "--state", "NV", "--reason", "BOLO 26-9",
                    "--user", "ofc.jones", *LOGIN, "--json")
    stolen = run_cli("--data-dir", data_dir, "hotlist", "add", "7AB?12*", "--list", "STOLEN_VEHICLE", "--reason",
                     "case 26-1235", "--user", "ofc.smith", *LOGIN)
    assert stolen.code == 2 and "a partial plate is entered only for a major crime" in stolen.err
    assert "STOLEN_VEHICLE needs the whole plate" in stolen.err
    hits = _check(data_dir, "7ABC123", "7ABX12", "7AB123", "5TRK442", extra=("--state", "NV"))
    assert hits["7ABC123"] == [{"lic": "7AB?12*", "lis": "", "list": "FELONY_VEHICLE", "match": "partial",
                                "nic": f"LOCAL-{entry['id']}", "source": "local"}]
    assert hits["7ABX12"][0]["match"] == "partial"
    assert hits["7AB123"] == []  # ? needs one character
    assert hits["5TRK442"][0]["match"] == "exact" and hits["5TRK442"][0]["source"] == "local"
    listed = run_cli("--data-dir", data_dir, "hotlist", "local", "--json")
    assert [json.loads(line)["entered_by"] for line in listed.lines] == ["ofc.smith", "ofc.jones"]
    removed = run_cli("--data-dir", data_dir, "hotlist", "remove", entry["id"], "--user", "sgt.lee", *LOGIN)
    assert removed.code == 0
    assert _check(data_dir, "7ABC123")["7ABC123"] == []
    again = run_cli("--data-dir", data_dir, "hotlist", "remove", entry["id"], "--user", "sgt.lee", *LOGIN)
    assert again.code == 2 and "already removed by sgt.lee" in again.err
    assert json.loads(exact.out)["state"] == "NV"
    with Database.in_data_dir(data_dir) as db:
        audit = [(r["user"], r["action"], r["purpose"]) for r in db.query("SELECT * FROM audit_log ORDER BY id")]
        entered = db.query("SELECT query FROM audit_log WHERE action = 'hotlist.add'")[0][0]
    assert ("ofc.smith", "hotlist.add", "test patrol") in audit and "case 26-1234 armed robbery" in entered
    assert ("sgt.lee", "hotlist.remove", "test patrol") in audit


# signatures ----------------------------------------------------------------


def test_signed_lists_only_when_the_unit_has_a_station_key(tmp_path: Path, data_dir: Path):
    keys = tmp_path / "keys"
    assert run_cli("hotlist", "keygen", "--out", keys).code == 0
    config = tmp_path / "unit.toml"
    config.write_text(f'[agent]\ndata_dir = "{data_dir}"\n[hotlist]\npublic_key = "{keys / "hotlist-signing.pub"}"\n')
    v1 = write_hotlist(tmp_path / "v1.csv", {"7ABC123": "STOLEN_VEHICLE"}, others=20)
    v2 = write_hotlist(tmp_path / "v2.csv", {"8LMN905": "AMBER_ALERT"}, others=20, seed=5)
    unsigned = run_cli("--config", config, "hotlist", "import", v1)
    assert unsigned.code == 2 and "unsigned" in unsigned.err
    assert run_cli("--config", config, "hotlist", "sign", v1, "--key", keys / "hotlist-signing.key", "--version", 5).code == 0
    assert run_cli("--config", config, "hotlist", "import", v1).code == 0  # v1.csv.sig is found beside it
    assert _check(data_dir, "7ABC123")["7ABC123"]
    # an older version, a tampered list and another key's signature are all refused
    assert run_cli("--config", config, "hotlist", "sign", v2, "--key", keys / "hotlist-signing.key", "--version", 4).code == 0
    older = run_cli("--config", config, "hotlist", "import", v2)
    assert older.code == 2 and "not newer than version 5" in older.err
    assert run_cli("--config", config, "hotlist", "sign", v2, "--key", keys / "hotlist-signing.key", "--version", 6).code == 0
    v2.write_bytes(v2.read_bytes().replace(b"AMBER_ALERT", b"STOLEN_PLATE"))
    tampered = run_cli("--config", config, "hotlist", "import", v2)
    assert tampered.code == 2 and "is not the signed" in tampered.err
    other = tmp_path / "other"
    run_cli("hotlist", "keygen", "--out", other)
    v3 = write_hotlist(tmp_path / "v3.csv", {"8LMN905": "AMBER_ALERT"}, others=20, seed=6)
    run_cli("--config", config, "hotlist", "sign", v3, "--key", other / "hotlist-signing.key", "--version", 7)
    forged = run_cli("--config", config, "hotlist", "import", v3)
    assert forged.code == 2 and "does not verify" in forged.err
    assert _check(data_dir, "7ABC123")["7ABC123"] and not _check(data_dir, "8LMN905")["8LMN905"]


def test_bench_hotlist_reports_every_figure(tmp_path: Path):
    listed = write_hotlist(tmp_path / "list.csv", {"7ABC123": "STOLEN_VEHICLE"}, others=3000)
    result = run_cli("bench", "hotlist", "--list", listed, "--plates", 400, "--json")
    assert result.code == 0, result.err
    figures = json.loads(result.out)
    assert figures["entries"] == 3001 and figures["import_s"] > 0 and figures["ready_s"] > 0
    assert figures["extra_memory_mb"] >= 0 and figures["exact"]["p99_us"] > 0 and figures["misread_tolerant"]["p99_us"] > 0
    assert figures["confusion_misreads"]["found"] == figures["confusion_misreads"]["tried"] > 0
    assert figures["dropped_char_misreads"]["found"] == figures["dropped_char_misreads"]["tried"] > 0
    assert 0 <= figures["false_possible_rate"] < 0.01
