"""A technician's tools: the offline install bundle, built here and installed from it alone, and
scripts/provision-unit, which ends in the selftest a provisioning script can trust."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.synthetic import render_drive_by, write_hotlist

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    subprocess.run([str(REPO / "scripts" / "build-bundle"), "--out", str(out)], check=True, capture_output=True,
                   text=True, timeout=900)
    return out


def test_the_bundle_holds_every_wheel_the_models_and_the_service_files_with_checksums(bundle: Path):
    wheels = sorted(p.name for p in (bundle / "wheels").glob("*.whl"))
    pinned = [line.split("==")[0].lower().replace("-", "_") for line in (bundle / "requirements.lock").read_text().splitlines()
              if ";" not in line]  # tomli is for Python 3.10 only
    names = {w.split("-")[0].lower() for w in wheels}
    assert set(pinned) <= names and any(w.startswith("edge_agent-") for w in wheels)
    assert "pytest" not in names and "hypothesis" not in names  # a unit never installs the test tools
    for f in ("systemd/edge-agent.service", "systemd/edge-agent.sysusers", "systemd/edge-agent.tmpfiles",
              "scripts/provision-unit", "config/default.toml"):
        assert (bundle / f).is_file(), f
    check = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_a_unit_provisioned_from_the_bundle_alone_passes_its_selftest(bundle: Path, tmp_path: Path, mosquitto):
    clip = tmp_path / "front.avi"
    render_drive_by(clip, ["7ABC123"], frames_per_car=4)
    hotlist = write_hotlist(tmp_path / "hot.csv", {"5TRK442": "STOLEN_VEHICLE"})
    root = tmp_path / "root"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "", "PIP_CONFIG_FILE": os.devnull}  # no index at all
    result = subprocess.run(
        [str(bundle / "scripts" / "provision-unit"), "--bundle", str(bundle), "--root", str(root),
         "--unit-id", "car-9", "--agency", "test-pd", "--broker", mosquitto.url, "--insecure",
         "--camera", f"front=video:{clip}", "--audio", "null", "--hotlist", str(hotlist), "--screen"],
        capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    assert "PASS  models" in result.stdout and "PASS  camera front" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith(("WARN:", "PASS:"))
    config = root / "etc/edge-agent/config.toml"
    assert config.stat().st_mode & 0o777 == 0o640 and 'unit_id = "car-9"' in config.read_text()
    assert "[screen]\nenabled = true" in config.read_text()
    assert (root / "etc/systemd/system/edge-agent.service").is_file()
    assert "edge-agent:x:" in (root / "etc/passwd").read_text()
    agent = root / "opt/edge-agent/.venv/bin/edge-agent"
    assert agent.is_file()
    # the installed agent reads plates from its own copy of the models
    reads = subprocess.run([str(agent), "--data-dir", str(tmp_path / "d"), "run", "--source", str(clip)],
                           capture_output=True, text=True, timeout=300)
    assert reads.returncode == 0 and "read 7ABC123" in reads.stdout, reads.stderr


def test_a_bad_option_is_named_and_exits_2(tmp_path: Path):
    result = subprocess.run([str(REPO / "scripts" / "provision-unit"), "--unit-id", "car-9", "--agency", "test-pd"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--camera" in result.stderr


def test_every_wheel_resolves_for_a_raspberry_pi(tmp_path: Path):
    """Raspberry Pi OS (bookworm, aarch64, Python 3.11): each pinned package has a wheel (resolution only)."""
    lock = tmp_path / "unit.lock"
    lock.write_text("".join(line + "\n" for line in (REPO / "requirements.lock").read_text().split("# tests")[0]
                            .splitlines() if line and not line.startswith("#") and ";" not in line))
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q", "--disable-pip-version-check",
         "--no-deps", "--target", str(tmp_path / "t"), "--only-binary=:all:", "--implementation", "cp",
         "--python-version", "3.11", "--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_17_aarch64",
         "--platform", "manylinux_2_28_aarch64", "--report", str(report), "-r", str(lock)],
        capture_output=True, text=True, timeout=600)
    if result.returncode != 0 and "Could not find a version" not in result.stderr and "No matching" not in result.stderr:
        pytest.skip(f"PyPI not reachable: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ''}")
    assert result.returncode == 0, result.stderr[-2000:]
    files = [i["download_info"]["url"].rsplit("/", 1)[1] for i in json.loads(report.read_text())["install"]]
    assert len(files) == len(lock.read_text().splitlines())
    assert all(f.endswith("-none-any.whl") or "aarch64" in f for f in files), files
