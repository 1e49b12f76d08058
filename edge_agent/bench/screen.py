"""`bench screen`: what the officer's screen costs the agent, and how soon a hit shows in the page.

An agent (no cameras: reads come from a synthetic source, stored, alerted and published exactly as a camera's
would be) runs twice in this process: once without the screen, once with it and a logged-in headless
Chromium watching the live view. The agent's CPU time is taken from getrusage over each phase, so the
browser (its own processes) is counted apart; the screen's cost is the difference between the two runs.
Each hit's delay is measured in the page: from the moment the read was stored (its `stored_at`) to the
frame in which the hit view was drawn.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Callable

from edge_agent.errors import EdgeAgentError

PASSWORD = "bench-password-1"


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _agent(folder: Path, screen: bool):
    from edge_agent.access import add_user, login
    from edge_agent.config import parse_config
    from edge_agent.pipeline import Agent
    from edge_agent.store import Database

    config = parse_config({"agent": {"unit_id": "bench-car", "data_dir": str(folder)},
                           "alerts": {"speak": False},
                           "screen": {"enabled": screen, "listen": "127.0.0.1:0"}}, "<bench screen>", folder)
    with Database.for_config(config) as db:
        add_user(db, None, "admin", "administrator", PASSWORD, date.today())
        admin = login(db, "admin", PASSWORD, "bench set-up")
        add_user(db, admin, "ofc1", "officer", PASSWORD, date.today())
    return Agent(config, out=lambda line: None, reader_factory=lambda: None)


class _Status:
    """The agent's status, published every STATUS_EVERY_S as its supervisor does."""

    def __init__(self, agent):
        self.agent, self.stop = agent, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.agent.STATUS_EVERY_S):
            self.agent._publish_status()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def _burst(agent, reads, rate: float) -> float:
    """Keep the reads at `rate` a second; the CPU seconds it took the process."""
    started, cpu = time.monotonic(), _cpu_s()
    for i, read in enumerate(reads):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        agent.keep(read, time.monotonic())
    return _cpu_s() - cpu


def _idle(seconds: float) -> float:
    cpu = _cpu_s()
    time.sleep(seconds)
    return _cpu_s() - cpu


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        raise EdgeAgentError("bench screen needs Debian's chromium and chromium-driver (scripts/setup installs them)")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(arg)
    options.binary_location = chromium
    return webdriver.Chrome(options=options, service=Service(driver))


def _log_in(browser, url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(url + "/")
    deadline = time.monotonic() + 20
    while not browser.find_element(By.ID, "login").is_displayed():
        if time.monotonic() > deadline:
            raise EdgeAgentError("the screen's login page did not show")
        time.sleep(0.1)
    browser.find_element(By.ID, "login-user").send_keys("ofc1")
    browser.find_element(By.ID, "login-password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    while not browser.execute_script("return typeof caughtUp !== 'undefined' && caughtUp"):
        if time.monotonic() > deadline:
            raise EdgeAgentError("the screen's live view did not start")
        time.sleep(0.1)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_screen(seconds: float = 30.0, rate: float = 20.0, hits_every: int = 5, idle_s: float = 30.0,
                 work: Path | None = None, progress: Callable[[str], None] = print) -> dict:
    from edge_agent.synthetic import SyntheticReads

    n = int(seconds * rate)
    source = SyntheticReads(seed=23, scene=True)
    folder = Path(work) if work else Path(tempfile.mkdtemp(prefix="bench-screen-"))
    out: dict = {"rate": rate, "seconds": seconds, "reads": n, "hits_every": hits_every}
    try:
        progress(f"without the screen: {n} reads at {rate:g} a second, then {idle_s:g} s idle")
        agent = _agent(folder / "without", screen=False)
        status = _Status(agent)
        base_burst = _burst(agent, source.make(n, hits_every, step_s=1 / rate), rate)
        base_idle = _idle(idle_s)
        status.close()
        agent.db.close()

        progress("with the screen and a browser watching the live view")
        agent = _agent(folder / "with", screen=True)
        server = agent._start_screen()
        status = _Status(agent)
        browser = _browser()
        try:
            _log_in(browser, server.url)
            screen_idle = _idle(idle_s)
            reads = source.make(n, hits_every, step_s=1 / rate)
            screen_burst = _burst(agent, reads, rate)
            time.sleep(2.0)
            figures = browser.execute_script("return window.screenFigures")
            shown = browser.execute_script("return document.querySelectorAll('#reads li').length")
        finally:
            browser.quit()
            status.close()
            server.stop()
            agent.db.close()
        hits = sum(1 for r in reads if r.hits)
        delays = figures["hitVisibleMs"]
        out.update({
            "hits": hits, "hits_seen": len(delays), "cards_shown": shown,
            "hit_visible_ms_median": round(statistics.median(delays), 1) if delays else None,
            "hit_visible_ms_p95": round(_percentile(delays, 0.95), 1) if delays else None,
            "hit_visible_ms_max": round(max(delays), 1) if delays else None,
            "idle_cpu_pct_without": round(100 * base_idle / idle_s, 2),
            "idle_cpu_pct_with": round(100 * screen_idle / idle_s, 2),
            "burst_cpu_pct_without": round(100 * base_burst / seconds, 2),
            "burst_cpu_pct_with": round(100 * screen_burst / seconds, 2),
        })
        out["screen_idle_cpu_pct"] = round(out["idle_cpu_pct_with"] - out["idle_cpu_pct_without"], 2)
        out["screen_burst_cpu_pct"] = round(out["burst_cpu_pct_with"] - out["burst_cpu_pct_without"], 2)
        out["targets_met"] = bool(delays and len(delays) == hits and out["hit_visible_ms_median"] < 500
                                  and out["hit_visible_ms_p95"] < 500 and out["screen_idle_cpu_pct"] < 5
                                  and out["screen_burst_cpu_pct"] < 10)
        return out
    finally:
        if work is None:
            shutil.rmtree(folder, ignore_errors=True)
