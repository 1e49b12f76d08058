"""Long commands show progress: a bar on a terminal, plain lines in a journal; logs as text or JSON."""

import io
import json
from pathlib import Path

from edge_agent.progress import Progress
from conftest import free_port, run_cli


def test_a_journal_gets_plain_lines_with_count_share_and_rate():
    out = io.StringIO()
    with Progress("importing list.csv", 40_000, "rows", out, every_s=0.0) as bar:
        for _ in range(4):
            bar.update(10_000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("importing list.csv: 40000/40000 rows (100%), ")
    assert "\r" not in out.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar():
    tty = Terminal()
    with Progress("bench accuracy", 10, "images", tty) as bar:
        for _ in range(10):
            bar.update()
    drawn = tty.getvalue()
    assert "bench accuracy" in drawn and "|" in drawn and "\r" in drawn


def test_log_lines_can_be_json_objects(tmp_path: Path):
    config = tmp_path / "unit.toml"
    config.write_text(f'[agent]\ndata_dir = "d"\n[sync]\nbroker = "mqtt://127.0.0.1:{free_port()}"\ninsecure = true\n')
    result = run_cli("--log-format", "json", "--config", config, "sync", "--once")
    assert result.code == 1
    lines = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(entry) for entry in lines)
    assert any(entry["level"] == "warning" and "INSECURE" in entry["message"] for entry in lines)
