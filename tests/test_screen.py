"""The officer's screen in a real browser: Debian's headless Chromium, driven through its chromedriver, against
a real agent (`edge-agent run`, screen on) reading a rendered drive-by clip with a listed plate in it.

The tests share one agent and one browser, and run in order: log in, see the hit, record what came of it,
then the ways in that must be refused. Screenshots of the live, hit, night and camera views are saved in
build/screenshots/.
"""

from __future__ import annotations

import csv
import http.client
import json
import shutil
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from conftest import REPO, TRAINED_PASSWORD, write_config
from edge_agent.store import Database

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
SHOTS = REPO / "build" / "screenshots"
LISTED = "7ABC123"
MARKUP = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
needs_browser = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian's chromium and chromium-driver are not "
                                                                     "installed (scripts/setup installs them)")


def _hotlist(path: Path) -> Path:
    from edge_agent.synthetic import HOTLIST_HEADER

    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HOTLIST_HEADER)
        out.writerow([LISTED, "CA", "2027", "PC", "HOND", "2015", "SIL", "S100000001", "CA0000000", "26-000001",
                      "20260101", "", "STOLEN_VEHICLE", MARKUP])
        out.writerow(["4FGH567", "CA", "2027", "PC", "TOYT", "2019", "BLK", "S100000002", "CA0000000", "26-000002",
                      "20260101", "", "FELONY_VEHICLE", "SYNTHETIC"])
    return path


class Unit:
    """A running agent with its screen on, and the browser looking at it."""

    def __init__(self, folder: Path, proc: subprocess.Popen, url: str, lines: list[str]):
        self.folder, self.proc, self.url, self.lines = folder, proc, url, lines
        self.driver = None

    def db(self) -> Database:
        return Database.in_data_dir(self.folder / "data")

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        """An HTTP request from outside the page (a forged or replayed one), with the browser's cookie."""
        host = self.url.split("//", 1)[1]
        conn = http.client.HTTPConnection(host, timeout=10)
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in self.driver.get_cookies())
        conn.request(method, path, json.dumps(body) if body is not None else None,
                     {"content-type": "application/json", "cookie": cookie, **(headers or {})})
        response = conn.getresponse()
        data = json.loads(response.read() or b"{}")
        conn.close()
        return response.status, data


@pytest.fixture(scope="module")
def unit(tmp_path_factory):
    from edge_agent.access import add_user, login
    from edge_agent.synthetic import render_drive_by

    folder = tmp_path_factory.mktemp("screen")
    render_drive_by(folder / "drive-by.avi", ["5TRK442", "3XYZ789", LISTED], frames_per_car=6)
    config = write_config(folder / "unit.toml", """
[agent]
unit_id = "car-7"
agency = "test-pd"
data_dir = "data"

[[camera]]
id = "front"
source = "video"
path = "drive-by.avi"
loop = true
max_fps = 5

[recognition]
repeat_window_s = 2.0

[alerts]
speak = false

[screen]
enabled = true
listen = "127.0.0.1:0"
""")
    with Database.in_data_dir(folder / "data") as db:
        add_user(db, None, "admin", "administrator", TRAINED_PASSWORD, date.today())
        admin = login(db, "admin", TRAINED_PASSWORD, "setting up the test")
        for name, role in (("ofc1", "officer"), ("sgt2", "supervisor"), ("tech1", "technician")):
            add_user(db, admin, name, role, TRAINED_PASSWORD, date.today())
    imported = subprocess.run([sys.executable, "-m", "edge_agent", "--config", str(config), "hotlist", "import",
                               str(_hotlist(folder / "hot.csv")), "--user", "admin"], cwd=REPO, capture_output=True,
                              text=True, env={**__import__("os").environ, "EDGE_AGENT_PASSWORD": TRAINED_PASSWORD})
    assert imported.returncode == 0, imported.stderr
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", str(config), "run"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    url = None
    deadline = time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("screen: "):
            url = line.split()[1]
    assert url, "".join(lines)
    import threading

    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    deadline = time.monotonic() + 20
    status = None
    while time.monotonic() < deadline and not (status and status.code == 0):  # the status file comes every 2 s
        status = subprocess.run([sys.executable, "-m", "edge_agent", "--config", str(config), "status"], cwd=REPO,
                                capture_output=True, text=True)
        status.code = status.returncode
        time.sleep(0.5)
    assert f"screen: {url}" in status.stdout, status.stdout + status.stderr
    u = Unit(folder, proc, url, lines)
    yield u
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(unit):
    if not (CHROMIUM and DRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/setup installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_script_timeout(15)
    unit.driver = driver
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait_for(check, timeout: float = 20.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting: {what}")


def set_theme(driver, wanted: str) -> None:
    """Press the theme button until the page shows `wanted`: one press turns day to night and back."""
    for _ in range(2):
        if driver.execute_script("return document.documentElement.dataset.theme") == wanted:
            return
        by_id(driver, "theme-button").click()
    assert driver.execute_script("return document.documentElement.dataset.theme") == wanted


def by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def log_in(driver, url: str, user: str, password: str = TRAINED_PASSWORD, purpose: str = "patrol") -> None:
    driver.get(url + "/")
    wait_for(lambda: by_id(driver, "login").is_displayed(), what="the login page")
    for field, value in (("login-user", user), ("login-password", password), ("login-purpose", purpose)):
        by_id(driver, field).clear()
        by_id(driver, field).send_keys(value)
    by_id(driver, "login-button").click()


def audit(unit: Unit, user: str) -> list[tuple[str, str, str]]:
    with unit.db() as db:
        from edge_agent.access import search_audit, login

        auditor = login(db, "admin", TRAINED_PASSWORD, "test: what the screen audited")
        rows = search_audit(db, auditor, user=user)
    return [(r["action"], r["query"], r["purpose"]) for r in rows]


# --- in the browser ----------------------------------------------------------


@needs_browser
def test_a_wrong_password_is_refused_with_the_reason_and_no_plate_is_shown(unit, browser):
    log_in(browser, unit.url, "ofc1", "not-the-password")
    message = wait_for(lambda: by_id(browser, "login-message").text, what="the refusal")
    assert "wrong password" in message
    assert not by_id(browser, "app").is_displayed()
    status, data = unit.request("GET", "/api/alerts")  # no session: nothing
    assert status == 401 and data["error"] == "not logged in"


@needs_browser
def test_the_officer_sees_the_hit_and_records_what_came_of_it(unit, browser):
    log_in(browser, unit.url, "ofc1")
    wait_for(lambda: by_id(browser, "hit").is_displayed(), 40, "the hit view")
    assert by_id(browser, "hit-plate").text == LISTED
    assert by_id(browser, "hit-list").text == "Stolen vehicle"
    assert "Confirm through CLETS" in by_id(browser, "hit-clets").text
    assert "seven Adam Boy Charles" in by_id(browser, "hit-words").text  # the words the officer heard
    wait_for(lambda: browser.execute_script("return document.getElementById('hit-scene').naturalWidth") > 0,
             what="the scene image")
    browser.save_screenshot(str(SHOTS / "hit.png"))
    buttons = [b.get_attribute("data-disposition") for b in by_id(browser, "hit-buttons").find_elements("tag name", "button")]
    from edge_agent.alert.ledger import DISPOSITIONS

    assert buttons == list(DISPOSITIONS)
    sizes = browser.execute_script("return [...document.querySelectorAll('#hit-buttons button')].map("
                                   "b => [b.offsetWidth, b.offsetHeight])")
    assert all(w >= 48 and h >= 48 for w, h in sizes)
    # policy: not pursued needs a note
    browser.find_element("css selector", '#hit-buttons button[data-disposition="not-pursued"]').click()
    assert "needs a note" in wait_for(lambda: by_id(browser, "hit-message").text)
    browser.find_element("css selector", '#hit-buttons button[data-disposition="confirmed"]').click()
    assert wait_for(lambda: "recorded: confirmed by ofc1" in by_id(browser, "hit-message").text, what="the record")
    with unit.db() as db:
        rows = db.query("SELECT a.plate_read, d.disposition, d.user FROM dispositions d JOIN alerts a"
                        " ON a.id = d.alert_id")
    assert [tuple(r) for r in rows] == [(LISTED, "confirmed", "ofc1")]
    actions = [a for a, _, _ in audit(unit, "ofc1")]
    assert actions.count("screen.live") == 1 and "screen.alert" in actions and "alerts.ack" in actions
    assert all(p == "patrol" for a, _, p in audit(unit, "ofc1") if a.startswith(("screen", "alerts")))


@needs_browser
def test_markup_in_the_hotlist_and_in_notes_is_shown_as_text_never_run(unit, browser):
    entry = by_id(browser, "hit-entry").text
    assert MARKUP in entry
    assert browser.execute_script("return window.pwned") is None
    by_id(browser, "hit-note").send_keys("<b>bold</b><script>window.pwned=3</script>")
    browser.find_element("css selector", '#hit-buttons button[data-disposition="no-action"]').click()
    wait_for(lambda: "recorded: no-action" in by_id(browser, "hit-message").text, what="the second record")
    history = by_id(browser, "hit-history").text
    assert "<b>bold</b><script>window.pwned=3</script>" in history
    assert browser.execute_script("return window.pwned") is None
    with unit.db() as db:  # a later disposition is a new entry; the first stays
        rows = db.query("SELECT disposition, user FROM dispositions ORDER BY id")
    assert [tuple(r) for r in rows] == [("confirmed", "ofc1"), ("no-action", "ofc1")]


@needs_browser
def test_forged_replayed_and_wrong_disposition_requests_are_refused_and_nothing_is_stored_twice(unit, browser):
    def first_alert():
        with unit.db() as db:
            rows = db.query("SELECT id FROM alerts ORDER BY id LIMIT 1")
        return rows[0][0] if rows else None

    alert_id = wait_for(first_alert, 40, "an alert")
    if not browser.execute_script("return typeof me !== 'undefined' && me && me.csrf"):
        log_in(browser, unit.url, "ofc1")
        wait_for(lambda: browser.execute_script("return me && me.csrf"), what="the login")
    request = {"disposition": "misread", "note": "", "request_id": str(uuid.uuid4())}
    csrf = browser.execute_script("return me.csrf")
    # no token: a request another page made with the officer's cookie
    status, data = unit.request("POST", f"/api/alerts/{alert_id}/dispositions", request)
    assert status == 403 and "token" in data["error"]
    # the token, from another site
    status, data = unit.request("POST", f"/api/alerts/{alert_id}/dispositions", request,
                                {"x-csrf-token": csrf, "origin": "http://evil.example"})
    assert status == 403 and "another site" in data["error"]
    # the page's own request, sent twice: stored once
    first = unit.request("POST", f"/api/alerts/{alert_id}/dispositions", request, {"x-csrf-token": csrf})
    again = unit.request("POST", f"/api/alerts/{alert_id}/dispositions", request, {"x-csrf-token": csrf})
    assert first[0] == again[0] == 200 and not first[1]["repeated"] and again[1]["repeated"]
    # an alert that does not exist, a disposition that is not one
    status, data = unit.request("POST", "/api/alerts/99999/dispositions", {**request, "request_id": str(uuid.uuid4())},
                                {"x-csrf-token": csrf})
    assert status == 403 and "there is no alert 99999" in data["error"]
    status, data = unit.request("POST", f"/api/alerts/{alert_id}/dispositions",
                                {"disposition": "arrested", "request_id": str(uuid.uuid4())}, {"x-csrf-token": csrf})
    assert status == 403 and "not one of" in data["error"]
    with unit.db() as db:
        rows = db.query("SELECT disposition FROM dispositions WHERE disposition = 'misread' AND alert_id = ?",
                        (alert_id,))
    assert len(rows) == 1


@needs_browser
def test_a_browser_that_drops_and_reconnects_loses_nothing_and_shows_nothing_twice(unit, browser):
    by_id(browser, "hit-close").click()
    before = browser.execute_script("return [...document.querySelectorAll('#reads li')].map(li => li.dataset.readId)")
    assert before and len(set(before)) == len(before)
    browser.execute_script("events.close(); listen();")  # the link drops; a new stream replays what was kept
    time.sleep(2)
    after = browser.execute_script("return [...document.querySelectorAll('#reads li')].map(li => li.dataset.readId)")
    assert len(set(after)) == len(after)
    assert set(before) <= set(after)
    set_theme(browser, "day")  # the sun at the test's position may call for night at this hour
    browser.save_screenshot(str(SHOTS / "live.png"))
    sizes = browser.execute_script("return [...document.querySelectorAll('button, input, select')].filter(e => "
                                   "e.offsetParent).map(e => [e.id || e.textContent, e.offsetWidth, e.offsetHeight])")
    assert sizes and all(w >= 48 and h >= 48 for _, w, h in sizes), sizes  # touch targets
    # a past read opened from the live view: its scene, audited each time
    plain = browser.execute_script("return [...document.querySelectorAll('#reads li:not(.is-hit)')].map(li => li.dataset.readId)")
    browser.find_element("css selector", f'#reads li[data-read-id="{plain[0]}"]').click()
    wait_for(lambda: by_id(browser, "read").is_displayed() and
             browser.execute_script("return document.getElementById('read-scene').naturalWidth") > 0, what="the read")
    assert ("screen.read", f"read {plain[0]}") in [(a, q.split(":")[0]) for a, q, _ in audit(unit, "ofc1")]
    by_id(browser, "read-close").click()
    set_theme(browser, "night")
    browser.save_screenshot(str(SHOTS / "night.png"))
    plate_px = browser.execute_script("return parseFloat(getComputedStyle(document.querySelector('#reads .plate')).fontSize)")
    assert plate_px >= 32
    set_theme(browser, "day")


@needs_browser
def test_an_officers_partial_plate_matches_at_once(unit, browser):
    by_id(browser, "tab-plates").click()
    by_id(browser, "plate-text").send_keys("5TRK44?")
    by_id(browser, "plate-reason").send_keys("case 26-0042 <i>robbery</i>")
    from selenium.webdriver.support.select import Select

    Select(by_id(browser, "plate-list")).select_by_value("FELONY_VEHICLE")
    by_id(browser, "plate-add").click()
    wait_for(lambda: "it matches from now on" in by_id(browser, "message").text, what="the plate added")
    by_id(browser, "tab-live").click()
    wait_for(lambda: by_id(browser, "hit").is_displayed() and by_id(browser, "hit-plate").text == "5TRK442", 40,
             "the officer's plate matching")
    assert by_id(browser, "hit-list").text == "Felony vehicle"
    assert "case 26-0042 <i>robbery</i>" in by_id(browser, "hit-entry").text
    by_id(browser, "hit-close").click()


@needs_browser
def test_the_lock_button_ends_the_session(unit, browser):
    by_id(browser, "lock-button").click()
    wait_for(lambda: by_id(browser, "login").is_displayed(), what="the login page")
    status, data = unit.request("GET", "/api/alerts")
    assert status == 401
    assert not browser.execute_script("return document.querySelector('#app').offsetParent")


@needs_browser
def test_the_technician_sees_each_camera_with_its_plate_boxes_and_no_plates_list(unit, browser):
    log_in(browser, unit.url, "tech1", purpose="aiming cameras, install 26-11")
    wait_for(lambda: by_id(browser, "app").is_displayed(), what="the technician's screen")
    tabs = [b.get_attribute("data-view") for b in by_id(browser, "tabs").find_elements("tag name", "button")]
    assert tabs == ["cameras"]
    wait_for(lambda: browser.execute_script("return document.querySelector('#pictures img').naturalWidth") > 0,
             what="the camera picture")
    browser.save_screenshot(str(SHOTS / "cameras.png"))
    status, data = unit.request("GET", "/api/alerts")  # a technician reads no hits
    assert status == 403 and "role technician may not" in data["error"]
    assert "screen.cameras" in [a for a, _, _ in audit(unit, "tech1")]
    by_id(browser, "lock-button").click()


# --- without a browser ---------------------------------------------------------


def test_a_session_locks_after_the_idle_time_and_a_touch_keeps_it():
    from edge_agent.access import Session
    from edge_agent.screen.sessions import ScreenSessions

    now = [1000.0]
    sessions = ScreenSessions(300, clock=lambda: now[0])
    s = sessions.start(Session("ofc1", "officer", "patrol"))
    now[0] += 299
    assert sessions.find(s.token)[0] is s  # a touch
    now[0] += 299
    assert sessions.find(s.token, touch=False)[0] is s  # the live stream does not count as a touch
    now[0] += 1
    found, why = sessions.find(s.token)
    assert found is None and "locked after 5 min without use" in why
    assert sessions.find(s.token)[1] == "the session has ended: log in again"
    assert not sessions.csrf_ok(s, None) and not sessions.csrf_ok(s, "x") and sessions.csrf_ok(s, s.csrf)


def test_night_follows_the_sun_at_the_cars_position():
    from edge_agent.screen.sun import theme

    sacramento = (38.58, -121.49)
    assert theme("auto", *sacramento, datetime(2026, 6, 21, 19, 0, tzinfo=timezone.utc)) == "day"  # noon PDT
    assert theme("auto", *sacramento, datetime(2026, 6, 21, 5, 0, tzinfo=timezone.utc)) == "night"  # 22:00 PDT
    assert theme("auto", *sacramento, datetime(2026, 12, 21, 1, 30, tzinfo=timezone.utc)) == "night"  # 17:30 PST
    assert theme("night", *sacramento, datetime(2026, 6, 21, 19, 0, tzinfo=timezone.utc)) == "night"


def test_the_screen_off_the_units_own_display_needs_https_or_says_it_is_insecure(tmp_path: Path):
    from edge_agent.config import parse_config
    from edge_agent.errors import ConfigError

    with pytest.raises(ConfigError, match="reachable from the car's network"):
        parse_config({"screen": {"enabled": True, "listen": "0.0.0.0:8443"}})
    assert parse_config({"screen": {"listen": "0.0.0.0:8443", "insecure": True}}).screen.insecure
    assert parse_config({"screen": {"listen": "[::1]:8080"}}).screen.listen == "[::1]:8080"
    for bad, words in (({"listen": "8080"}, "is not host:port"), ({"theme": "dusk"}, "not one of auto, day, night"),
                       ({"lock_after_s": 1}, "at least 10 seconds"), ({"home": [95, 0]}, "not a latitude"),
                       ({"tls_cert": str(tmp_path / "none.crt"), "tls_key": str(tmp_path / "none.key")}, "is not a file")):
        with pytest.raises(ConfigError, match=words):
            parse_config({"screen": bad}, "unit.toml", tmp_path)


def test_the_screen_is_served_over_https_with_a_certificate_from_the_agency_pki(tmp_path: Path):
    import ssl
    import urllib.request

    from edge_agent.config import parse_config
    from edge_agent.pki import Authority
    from edge_agent.screen.app import ScreenContext
    from edge_agent.screen.feed import ReadFeed
    from edge_agent.screen.server import ScreenServer
    from edge_agent.hotlist.storage import open_hotlist_db

    pki = Authority(tmp_path / "pki")
    pki.init("test-pd")
    key, cert = pki.issue("screen", "car-7.mdt", hosts=("127.0.0.1",))
    config = parse_config({"agent": {"data_dir": str(tmp_path / "data")},
                           "screen": {"enabled": True, "listen": "127.0.0.1:0", "tls_cert": str(cert),
                                      "tls_key": str(key)}}, "unit.toml", tmp_path)
    with Database.for_config(config) as db, open_hotlist_db(config.data_dir) as hot:
        server = ScreenServer(ScreenContext(config, db, hot, ReadFeed()), out=lambda line: None).start()
        try:
            assert server.url.startswith("https://127.0.0.1:")
            trusting = ssl.create_default_context(cafile=str(pki.ca_cert_path))
            with urllib.request.urlopen(server.url + "/", context=trusting, timeout=10) as page:
                assert page.status == 200 and b"/static/screen.js" in page.read()
                assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            with pytest.raises(urllib.error.URLError):  # a browser that does not know the agency's CA is warned
                urllib.request.urlopen(server.url + "/", context=ssl.create_default_context(), timeout=10)
        finally:
            server.stop()


def test_the_live_stream_replays_what_a_browser_missed_and_stops_before_a_locked_session_sees_a_plate(tmp_path: Path):
    """Without a browser: the stream as the page's EventSource reads it, over HTTP."""
    from edge_agent.access import add_user
    from edge_agent.config import parse_config
    from edge_agent.hotlist.storage import open_hotlist_db
    from edge_agent.screen.app import COOKIE, ScreenContext
    from edge_agent.screen.feed import ReadFeed
    from edge_agent.screen.server import ScreenServer
    from edge_agent.synthetic import SyntheticReads

    config = parse_config({"agent": {"data_dir": str(tmp_path / "data")},
                           "screen": {"enabled": True, "listen": "127.0.0.1:0", "lock_after_s": 60}}, "unit.toml", tmp_path)
    reads = SyntheticReads(seed=5).make(4)
    now = [1000.0]
    with Database.for_config(config) as db, open_hotlist_db(config.data_dir) as hot:
        add_user(db, None, "admin", "administrator", TRAINED_PASSWORD, date.today())
        feed = ReadFeed(keep=10)
        ctx = ScreenContext(config, db, hot, feed)
        ctx.sessions.clock = lambda: now[0]
        server = ScreenServer(ctx, out=lambda line: None).start()
        host = server.url.split("//", 1)[1]
        try:
            conn = http.client.HTTPConnection(host, timeout=10)
            conn.request("POST", "/api/login", json.dumps({"user": "admin", "password": TRAINED_PASSWORD,
                                                           "purpose": "patrol"}), {"content-type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200
            cookie = response.headers["set-cookie"].split(";")[0]
            assert cookie.startswith(COOKIE) and "HttpOnly" in response.headers["set-cookie"]
            response.read()

            def stream(last_id: str | None = None):
                c = http.client.HTTPConnection(host, timeout=10)
                c.request("GET", "/api/events", headers={"cookie": cookie, **({"last-event-id": last_id} if last_id else {})})
                r = c.getresponse()
                assert r.status == 200 and r.headers["content-type"].startswith("text/event-stream")
                return c, r

            def events_until(r, kind: str) -> list[tuple[str, str, dict]]:
                out, fields = [], {}
                while True:
                    line = r.readline().decode().rstrip("\n")
                    if line:
                        key, _, value = line.partition(": ")
                        fields[key] = value
                        continue
                    if "event" in fields:
                        out.append((fields.get("id", ""), fields["event"], json.loads(fields.get("data", "{}"))))
                        if fields["event"] == kind:
                            return out
                    fields = {}

            for read in reads[:2]:
                feed.publish_read(read)
            c1, r1 = stream()
            first = events_until(r1, "ready")
            assert [e[2].get("plate") for e in first if e[1] == "read"] == [reads[0].reading.text, reads[1].reading.text]
            last_id = [e[0] for e in first if e[1] == "read"][-1]
            c1.close()  # the link drops; two reads are stored meanwhile
            for read in reads[2:]:
                feed.publish_read(read)
            c2, r2 = stream(last_id)
            again = events_until(r2, "ready")
            assert [e[2]["plate"] for e in again if e[1] == "read"] == [r.reading.text for r in reads[2:]]
            now[0] += 61  # nobody touched the screen for longer than lock_after_s
            feed.publish_read(SyntheticReads(seed=6).make(1)[0])
            [(_, kind, data)] = events_until(r2, "locked")
            assert kind == "locked" and "locked after 1 min without use" in data["why"]
            assert r2.readline() == b""  # the stream ends: the plate published after the lock never went out
            c2.close()
        finally:
            server.stop()
    with Database.for_config(config) as db:
        watched = db.query("SELECT COUNT(*) FROM audit_log WHERE action = 'screen.live' AND user = 'admin'")[0][0]
    assert watched == 1  # the live view, audited once for the session however often it reconnects


@needs_browser
def test_bench_screen_measures_every_hit_in_the_page_and_the_screens_cpu(tmp_path: Path):
    from edge_agent.bench.screen import bench_screen

    result = bench_screen(seconds=2.0, rate=10.0, hits_every=5, idle_s=1.0, work=tmp_path, progress=lambda line: None)
    assert result["reads"] == 20 and result["hits"] == 4 and result["hits_seen"] == 4
    assert result["hit_visible_ms_median"] > 0 and result["cards_shown"] == 20
    for key in ("screen_idle_cpu_pct", "screen_burst_cpu_pct", "idle_cpu_pct_with", "burst_cpu_pct_without"):
        assert isinstance(result[key], float)
