"""`edge-agent selftest` as a technician runs it in the garage: a PASS/WARN/FAIL table and an exit code that a
provisioning script can use."""

import json
from pathlib import Path

from edge_agent.synthetic import render_drive_by, write_hotlist
from conftest import free_port, run_cli


def _table(out: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in out.splitlines()[:-1]:
        result, rest = line.split("  ", 1)
        name, _, detail = rest.strip().partition("  ")
        rows[name.strip()] = (result, detail.strip())
    return rows


def test_a_unit_ready_for_the_road_passes_with_warnings_named(tmp_path: Path, mosquitto, talking_gps):
    clip = tmp_path / "drive-by.avi"
    render_drive_by(clip, ["7ABC123"], frames_per_car=4)
    link = talking_gps
    config = tmp_path / "unit.toml"
    config.write_text(f'[agent]\nunit_id = "car-7"\nagency = "test-pd"\ndata_dir = "data"\n'
                      f'[[camera]]\nid = "front"\nsource = "video"\npath = "{clip}"\n'
                      f'[alerts]\naudio_device = "null"\n[gps]\nport = "{link.path}"\n'
                      f'[sync]\nbroker = "{mosquitto.url}"\ninsecure = true\n')
    assert run_cli("--config", config, "hotlist", "import",
                   write_hotlist(tmp_path / "hot.csv", {"5TRK442": "STOLEN_VEHICLE"})).code == 0
    result = run_cli("--config", config, "selftest")
    assert result.code == 0, result.out
    rows = _table(result.out)
    for name in ("disk space", "disk write speed", "models", "camera front", "gps", "clock", "audio"):
        assert rows[name][0] == "PASS", (name, rows[name])
    assert rows["broker"] == ("WARN", f"{mosquitto.url}: connected (INSECURE plain MQTT)")
    assert rows["hotlist"][0] == "WARN" and "NOT signed" in rows["hotlist"][1]
    assert "first frame" in rows["camera front"][1] and "fix at 38.57" in rows["gps"][1]
    assert result.out.splitlines()[-1].startswith("WARN:")


def test_what_is_wrong_is_named_and_the_exit_code_says_fail(tmp_path: Path):
    config = tmp_path / "unit.toml"
    config.write_text(f'[agent]\ndata_dir = "data"\n'
                      f'[[camera]]\nid = "rear"\nsource = "rtsp"\nurl = "rtsp://127.0.0.1:{free_port()}/s"\n'
                      f'[alerts]\naudio_device = "hw:9,0"\n[gps]\nport = "{tmp_path / "no-gps"}"\n'
                      f'[sync]\nbroker = "mqtt://127.0.0.1:{free_port()}"\ninsecure = true\n')
    result = run_cli("--config", config, "selftest", "--json")
    assert result.code == 1
    checks = {c["check"]: (c["result"], c["detail"]) for c in json.loads(result.out)["checks"]}
    assert checks["camera rear"][0] == "WARN" and "cannot open" in checks["camera rear"][1]
    assert checks["gps"][0] == "WARN" and "no-gps" in checks["gps"][1] and "out" in checks["gps"][1]
    assert checks["broker"][0] == "FAIL" and "refused" in checks["broker"][1].lower()
    assert checks["hotlist"][0] == "FAIL" and "no hotlist loaded" in checks["hotlist"][1]
    assert checks["audio"][0] == "FAIL" and "hw:9,0" in checks["audio"][1]
    assert checks["models"][0] == "PASS"


def test_the_broker_check_connects_with_the_units_certificate(tmp_path: Path):
    from conftest import Mosquitto
    from test_sync import _certificates

    certs = tmp_path / "pki"
    certs.mkdir()
    _certificates(certs)
    for key in certs.glob("*.key"):
        key.chmod(0o600)
    broker = Mosquitto(tmp_path, extra=(
        f"cafile {certs / 'ca.crt'}\ncertfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
        "require_certificate true\nuse_identity_as_username true\nallow_anonymous false"))
    broker.start()
    try:
        def check(tls: str) -> dict:
            config = tmp_path / "unit.toml"
            config.write_text(f'[agent]\nunit_id = "car-7"\nagency = "test-pd"\ndata_dir = "data"\n'
                              f'[sync]\nbroker = "{broker.url}"\n{tls}\n')
            out = json.loads(run_cli("--config", config, "selftest", "--json").out)
            return {c["check"]: (c["result"], c["detail"]) for c in out["checks"]}

        good = check(f'tls_ca = "{certs / "ca.crt"}"\ntls_cert = "{certs / "car-7.crt"}"\ntls_key = "{certs / "car-7.key"}"')
        assert good["broker"] == ("PASS", f"{broker.url}: connected (with the unit's certificate)")
        assert good["certificates"][0] in ("PASS", "WARN")
        none = check(f'tls_ca = "{certs / "ca.crt"}"')
        assert none["broker"][0] == "FAIL"
    finally:
        broker.stop()
