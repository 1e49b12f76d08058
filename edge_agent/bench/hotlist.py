"""`edge-agent bench hotlist`: import time, start-up, memory, lookup latency, misreads found, false hits.

The import and the start-up each run in a fresh process, as they do on a unit,
so their wall time and memory are what a technician and the agent would see.
Lookups are timed inside this process around the same calls `hotlist check`
and the agent make.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from edge_agent.config import Config
from edge_agent.hotlist import load_index
from edge_agent.hotlist.codes import confusion_variants, decode, encode, may_have_dropped
from edge_agent.hotlist.storage import open_hotlist_db

LETTERS, DIGITS = string.ascii_uppercase, string.digits


def random_plate(r: random.Random) -> str:
    """A plate in one of the common US formats, as cars on a California road carry them."""
    k = r.random()
    if k < 0.50:  # California passenger 1ABC234
        return r.choice("123456789") + "".join(r.choices(LETTERS, k=3)) + "".join(r.choices(DIGITS, k=3))
    if k < 0.65:  # California commercial 1A23456
        return r.choice("123456789") + r.choice(LETTERS) + "".join(r.choices(DIGITS, k=5))
    if k < 0.80:  # ABC1234, many states
        return "".join(r.choices(LETTERS, k=3)) + "".join(r.choices(DIGITS, k=4))
    if k < 0.85:  # ABC123, older plates
        return "".join(r.choices(LETTERS, k=3)) + "".join(r.choices(DIGITS, k=3))
    if k < 0.90:  # motorcycles 12A345
        return "".join(r.choices(DIGITS, k=2)) + r.choice(LETTERS) + "".join(r.choices(DIGITS, k=3))
    return "".join(r.choices(LETTERS + DIGITS, k=r.randint(2, 7)))  # vanity


def _percentiles(ns: list[int]) -> dict:
    a = np.array(ns, dtype=np.float64) / 1000.0
    return {"p50_us": round(float(np.percentile(a, 50)), 1), "p99_us": round(float(np.percentile(a, 99)), 1),
            "max_us": round(float(a.max()), 1)}


def _cli(config: Config, data_dir: Path, *args: str) -> list[str]:
    cmd = [sys.executable, "-m", "edge_agent", "--data-dir", str(data_dir)]
    if Path(config.source_file).is_file():
        cmd += ["--config", config.source_file]
    return cmd + list(args)


def bench_hotlist(list_path: Path, config: Config, plates: int = 10_000, seed: int = 7,
                  progress: Callable[[str], None] = lambda s: None) -> dict:
    with tempfile.TemporaryDirectory(prefix="edge-agent-bench-") as tmp:
        data_dir = Path(tmp)
        result: dict = {"list": str(list_path)}

        progress(f"importing {list_path} in a fresh process")
        started = time.perf_counter()
        proc = subprocess.Popen(_cli(config, data_dir, "hotlist", "import", str(list_path), "--json", "--user", "bench"),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"hotlist import failed (exit {proc.returncode})")
        imported = json.loads(out)
        result.update(entries=imported["entries_in_force"], rejected=imported["rejected"],
                      import_s=round(time.perf_counter() - started, 2),
                      import_peak_rss_mb=round(usage.ru_maxrss / 1024, 1))

        progress("starting a fresh process to load the list and match a plate")
        started = time.perf_counter()
        ready = subprocess.run([sys.executable, "-m", "edge_agent.bench.hotlist", str(data_dir)],
                               capture_output=True, text=True, check=True)
        ready_s = time.perf_counter() - started
        ready_info = json.loads(ready.stdout.strip().splitlines()[-1])
        result.update(ready_s=round(ready_s, 3), load_s=ready_info["load_s"],
                      extra_memory_mb=round(ready_info["rss_after_mb"] - ready_info["rss_before_mb"], 1))

        with open_hotlist_db(data_dir) as db:
            index = load_index(db)
        r = random.Random(seed)
        today = datetime.now(timezone.utc).date().toordinal()
        live = np.flatnonzero((index.doj.expires == 0) | (index.doj.expires >= today))
        sample = [decode(int(index.doj.codes[i])) for i in live[[r.randrange(len(live)) for _ in range(plates // 2)]]]
        randoms = []
        while len(randoms) < plates - len(sample):
            p = random_plate(r)
            if not index.exact(p):
                randoms.append(p)
        queries = sample + randoms
        r.shuffle(queries)

        progress(f"timing {len(queries)} exact and misread-tolerant lookups")
        exact_ns, tolerant_ns = [], []
        for p in queries:
            t = time.perf_counter_ns()
            index.exact(p)
            exact_ns.append(time.perf_counter_ns() - t)
        for p in queries:
            t = time.perf_counter_ns()
            index.match(p)
            tolerant_ns.append(time.perf_counter_ns() - t)
        result["exact"] = _percentiles(exact_ns)
        result["misread_tolerant"] = _percentiles(tolerant_ns)

        progress("checking that every single-confusion and dropped-character misread of listed plates is found")
        confusions = found_confusions = drops = found_drops = 0
        for p in sample[:1000]:
            for v in confusion_variants(p):
                confusions += 1
                found_confusions += any(h.lic == p for h in index.match(v))
            for i in range(len(p)):
                v = p[:i] + p[i + 1:]
                if may_have_dropped(v):
                    drops += 1
                    found_drops += any(h.lic == p for h in index.match(v))
        result["confusion_misreads"] = {"tried": confusions, "found": found_confusions}
        result["dropped_char_misreads"] = {"tried": drops, "found": found_drops}

        # "Random plates": strings of seven characters (the length of most US plates) drawn uniformly from A-Z, 0-9.
        uniform = []
        while len(uniform) < plates:
            p = "".join(r.choices(LETTERS + DIGITS, k=7))
            if not index.exact(p):
                uniform.append(p)
        result["random_plates"] = len(uniform)
        result["false_possible_rate"] = round(sum(bool(index.match(p)) for p in uniform) / len(uniform), 4)
        # Plates in the common US formats instead: most of their false hits are single confusions of a
        # listed plate, which no matcher that finds every single-confusion misread can avoid; the floor
        # says how many of them that is.
        while len(randoms) < plates:
            p = random_plate(r)
            if not index.exact(p):
                randoms.append(p)

        def one_confusion_from_list(p: str) -> bool:
            variants = np.array([encode(v) for v in confusion_variants(p)], dtype=np.int64)
            return len(index.doj.positions_of_any(variants)) > 0
        result["format_mix_false_possible_rate"] = round(sum(bool(index.match(p)) for p in randoms) / len(randoms), 4)
        result["format_mix_single_confusion_floor"] = round(sum(map(one_confusion_from_list, randoms)) / len(randoms), 4)
        return result


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _ready(data_dir: str) -> None:
    """What the agent does at start-up to be ready to match: open the database, load the index, match."""
    before = _rss_mb()
    started = time.perf_counter()
    with open_hotlist_db(Path(data_dir)) as db:
        index = load_index(db)
    index.match("7ABC123")
    print(json.dumps({"load_s": round(time.perf_counter() - started, 3), "rss_before_mb": round(before, 1),
                      "rss_after_mb": round(_rss_mb(), 1), "entries": len(index)}))


if __name__ == "__main__":
    _ready(sys.argv[1])
