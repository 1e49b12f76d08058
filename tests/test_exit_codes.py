"""Exit codes a script can trust: 0 only when the command did what was asked, 1 when it ran but failed in part
or whole, 2 for usage and configuration errors."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import LOGIN, free_port, run_cli


def test_checking_plates_with_no_hotlist_loaded_is_a_failure(tmp_path: Path, trained):
    trained(tmp_path / "data")
    result = run_cli("--data-dir", tmp_path / "data", "hotlist", "check", "7ABC123", "--json", "--user", "admin", *LOGIN)
    assert result.code == 1 and "no hotlist has been imported" in result.err


def test_station_stats_on_a_mistyped_data_directory_creates_nothing(tmp_path: Path):
    result = run_cli("--data-dir", tmp_path / "statoin", "station", "stats")
    assert result.code == 2 and "no station database" in result.err and "statoin" in result.err
    assert not (tmp_path / "statoin" / "station.sqlite3").exists()


def test_sync_once_to_a_refused_connection_says_so_at_once(tmp_path: Path):
    config = tmp_path / "unit.toml"
    config.write_text(f'[agent]\ndata_dir = "{tmp_path / "unit"}"\n'
                      f'[sync]\nbroker = "mqtt://127.0.0.1:{free_port()}"\ninsecure = true\n')
    started = time.monotonic()
    result = run_cli("--config", config, "sync", "--once", "--timeout", "10")
    assert result.code == 1 and "not reachable" in result.err
    assert time.monotonic() - started < 5


def test_a_data_directory_that_is_a_file_or_a_database_that_cannot_be_reached_is_one_message(tmp_path: Path):
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("")
    result = run_cli("--data-dir", not_a_folder, "stats")
    assert result.code == 2 and "is not a folder" in result.err and "Traceback" not in result.err
    url = f"postgresql://clerk:s3cret@127.0.0.1:{free_port()}/alpr"
    result = run_cli("--data-dir", tmp_path / "station", "station", "stats", "--db", url)
    assert result.code == 2 and "cannot connect to PostgreSQL" in result.err
    assert "s3cret" not in result.err and "clerk:***@" in result.err
