"""Configuration is validated once; every problem is one line naming file, key and what is wrong."""

from pathlib import Path

import pytest

from edge_agent.config import load_config, parse_config
from edge_agent.errors import ConfigError
from conftest import REPO, run_cli


def test_shipped_configs_parse():
    default = load_config(REPO / "config" / "default.toml")
    assert default.cameras[0].source == "v4l2"
    assert default.hotlist.columns["plate"] == "LIC"
    demo = load_config(REPO / "config" / "demo.toml")
    assert demo.cameras[0].source == "video"
    # relative paths are relative to the config file, wherever the agent starts
    assert demo.cameras[0].path == REPO / ".demo" / "drive-by.avi"
    assert demo.data_dir == REPO / ".demo" / "data"


def test_no_config_gives_defaults():
    assert parse_config({}).recognition.min_confidence == 0.25


@pytest.mark.parametrize(
    "toml, key, words",
    [
        ("[agent]\nunit_idd = 'x'\n", "agent.unit_idd", "unknown key"),
        ("[recognition]\nmin_confidence = 'high'\n", "recognition.min_confidence", "must be a number"),
        ("[recognition]\nmin_confidence = 3\n", "recognition.min_confidence", "between 0 and 1"),
        ("[[camera]]\nid = 'front'\nsource = 'webcam'\n", "camera[0].source", "is not one of"),
        ("[[camera]]\nid = 'front'\nsource = 'video'\n", "camera[0].path", "is required"),
        ("[[camera]]\nsource = 'video'\n", "camera[0].id", "is required"),
        ("[[camera]]\nid = 'right'\nsource = 'v4l2'\nside_view = 'yes'\n", "camera[0].side_view", "true or false"),
        ("[sync]\nbroker = 'http://x'\n", "sync.broker", "mqtt://host:port"),
        ("[sync]\nbroker = 'mqtt://broker.example'\n", "sync.broker", "sync.insecure = true"),
        ("[alerts]\nscreen_broker = 'mqtt://tablet'\n", "alerts.screen_broker", "plain MQTT"),
        ("[sync]\nbroker = 'mqtts://u:pw@h'\nusername = 'v'\n", "sync.broker", "u:***@h"),
        ("[alerts]\nscreen_broker = 'mqtt://u:pw@h'\n", "alerts.screen_broker", "sync.username"),
        ("[alerts]\nspeak = 'yes'\n", "alerts.speak", "true or false"),
        ("[hotlist.columns]\nplates = 'LIC'\n", "hotlist.columns.plates", "unknown field"),
        ("[camras]\n", "camras", "unknown section"),
        ("[agent\n", "-", "not valid TOML"),
    ],
)
def test_bad_config_names_file_key_and_problem(tmp_path: Path, toml: str, key: str, words: str):
    path = tmp_path / "unit.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path)
    assert info.value.key == key
    assert words in info.value.problem


def test_cli_reports_bad_config_in_one_line_with_status_2(tmp_path: Path):
    path = tmp_path / "unit.toml"
    path.write_text("[storage]\njpeg_quality = 500\n")
    result = run_cli("--config", path, "stats")
    assert result.code == 2
    assert result.err.strip().count("\n") == 0
    assert str(path) in result.err and "storage.jpeg_quality" in result.err


def test_cli_reports_missing_config(tmp_path: Path):
    result = run_cli("run", "--config", tmp_path / "nope.toml")
    assert result.code == 2
    assert "nope.toml" in result.err and "file not found" in result.err


def test_data_dir_option_overrides_config(tmp_path: Path):
    path = tmp_path / "unit.toml"
    path.write_text("[agent]\ndata_dir = 'configured'\n")
    result = run_cli("--config", path, "--data-dir", tmp_path / "other", "stats", "--json")
    assert result.code == 0, result.err
    assert (tmp_path / "other" / "edge-agent.sqlite3").is_file()
    assert not (tmp_path / "configured").exists()


def test_a_broker_url_with_credentials_is_used_and_never_shown_with_its_password():
    from edge_agent.config import redact_url

    config = parse_config({"sync": {"broker": "mqtts://car-7:p%40ss@broker.example:8883"}})
    assert config.sync.broker == "mqtts://broker.example:8883"
    assert (config.sync.username, config.sync.password) == ("car-7", "p@ss")
    assert redact_url("mqtts://car-7:p%40ss@broker.example:8883") == "mqtts://car-7:***@broker.example:8883"
    assert redact_url("mqtt://broker.example") == "mqtt://broker.example"
    with pytest.raises(ConfigError) as info:
        parse_config({"sync": {"broker": "mqtts://car-7:p%40ss@broker.example:99999"}})
    assert "p%40ss" not in str(info.value) and "p@ss" not in str(info.value)


def test_a_plain_broker_is_taken_only_when_configured_and_every_client_says_so(caplog):
    import logging

    from edge_agent.config import SyncConfig
    from edge_agent.sync import mqtt_client

    refused = run_cli("sync", "--once", "--broker", "mqtt://127.0.0.1:1883")
    assert refused.code == 2 and "sync.insecure = true" in refused.err
    with caplog.at_level(logging.WARNING, logger="edge_agent.sync.link"):
        mqtt_client("x", SyncConfig(broker="mqtt://127.0.0.1:1883", insecure=True))
        assert "INSECURE: plain MQTT to 127.0.0.1:1883" in caplog.text
        caplog.clear()
        mqtt_client("x", SyncConfig(broker="mqtts://127.0.0.1:8883"))
        assert "INSECURE" not in caplog.text


def test_the_broker_password_may_come_from_a_private_file(tmp_path: Path):
    secret = tmp_path / "broker.password"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    config = parse_config({"sync": {"username": "car-7", "password_file": str(secret)}}, "u.toml", tmp_path)
    assert config.sync.password == "s3cret"
    secret.chmod(0o644)
    with pytest.raises(ConfigError) as info:
        parse_config({"sync": {"password_file": str(secret)}}, "u.toml", tmp_path)
    assert info.value.key == "sync.password_file" and "chmod 600" in info.value.problem
    secret.chmod(0o600)
    with pytest.raises(ConfigError, match="not both"):
        parse_config({"sync": {"password": "x", "password_file": str(secret)}}, "u.toml", tmp_path)


def test_config_check_names_every_problem_at_once_with_the_nearest_known_key(tmp_path: Path):
    path = tmp_path / "unit.toml"
    path.write_text('[agent]\nunit_idd = "x"\n[recognition]\nmin_confidence = 3\n[[camera]]\nid = "front"\n'
                    'source = "webcam"\n[sync]\nbrokr = "mqtts://h"\nbatch_size = 5000\n[camras]\n')
    result = run_cli("config", "check", path)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    keys = [line.split(": ")[2] for line in lines[:-1]]
    assert sorted(keys) == sorted(["camras", "agent.unit_idd", "camera[0].source", "recognition.min_confidence",
                                   "sync.brokr", "sync.batch_size"])
    assert "did you mean 'unit_id'?" in result.err and "did you mean 'broker'?" in result.err
    assert "did you mean 'camera'?" in result.err and lines[-1].endswith("6 problems")
    good = run_cli("config", "check", REPO / "config" / "default.toml")
    assert good.code == 0 and good.out.strip().endswith(": ok")
    (tmp_path / "broken.toml").write_text("[agent\n")
    broken = run_cli("config", "check", tmp_path / "broken.toml")
    assert broken.code == 2 and "not valid TOML" in broken.err
