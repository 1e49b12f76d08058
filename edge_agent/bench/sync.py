"""Store-and-forward benchmarks: storing reads durably, draining them to a station, a week offline under a cap.

`bench_drain` starts a real Mosquitto and a real `edge-agent station` process on
this machine, fills a unit's database, and times the drain until the station
has acknowledged every read; then it checks the station's count is exact.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edge_agent.bench.broker import LocalBroker
from edge_agent.config import Config, parse_config
from edge_agent.errors import EdgeAgentError
from edge_agent.store import Database
from edge_agent.store.keeper import ReadKeeper
from edge_agent.synthetic import SyntheticReads

Progress = Callable[[str], None]


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def store_reads(db: Database, n: int, hits_every: int, scene: bool, keeper: ReadKeeper | None = None,
                chunk: int = 5000, seed: int = 1, on_chunk: Callable[[int], None] | None = None,
                after_each: Callable[[], None] | None = None) -> float:
    """Store n synthetic reads one durable transaction each; returns the seconds spent storing."""
    synthetic = SyntheticReads(seed, scene=scene)
    spent = 0.0
    done = 0
    while done < n:
        reads = synthetic.make(min(chunk, n - done), hits_every)
        started = time.perf_counter()
        for read in reads:
            if keeper is not None:
                keeper.store(read, None)
            else:
                db.insert_read(read)
            if after_each is not None:
                after_each()
        spent += time.perf_counter() - started
        done += len(reads)
        if on_chunk:
            on_chunk(done)
    return spent


@dataclass
class Link:
    """A broker on this machine and the unit's and station's configuration files for it: plain MQTT, or TLS
    with client certificates from an agency PKI made for the run, the shipped Mosquitto configuration, and
    signed acknowledgements."""

    broker: LocalBroker
    unit: Path
    station: Path

    @classmethod
    def make(cls, folder: Path, tls: bool, sync: str, persistence: bool = False) -> "Link":
        if not tls:
            broker = LocalBroker(folder, persistence=persistence)
            common = f'broker = "{broker.url}"\ninsecure = true\n'  # a broker on this machine alone
            unit_tls = station_tls = ""
        else:
            from edge_agent.pki import Authority

            pki = Authority(folder / "pki")
            pki.init("bench")
            pki.issue("broker", "localhost", hosts=("127.0.0.1",))
            pki.issue("station", "bench-station")
            pki.issue("unit", "bench-1")
            from edge_agent.hotlist.signing import generate_key

            generate_key(folder / "pki", "station-signing")
            etc = folder / "broker-etc"
            etc.mkdir(exist_ok=True)
            for src, dst in (("ca.crt", "ca.crt"), ("crl.pem", "crl.pem"), ("mosquitto.acl", "mosquitto.acl"),
                             ("broker/localhost.crt", "broker.crt"), ("broker/localhost.key", "broker.key")):
                shutil.copy(folder / "pki" / src, etc / dst)
            if not SHIPPED_BROKER.is_file():
                raise EdgeAgentError(f"{SHIPPED_BROKER}: the shipped broker configuration is not here; run the TLS "
                                     "benchmarks from a checkout of the repository")
            shipped = SHIPPED_BROKER.read_text().replace("/etc/mosquitto/edge-agent/", f"{etc}/")
            broker = LocalBroker(folder, persistence=persistence, shipped=shipped)
            common = f'broker = "{broker.url}"\ntls_ca = "{folder / "pki" / "ca.crt"}"\n'
            who = lambda role, name: (f'tls_cert = "{folder / "pki" / role / (name + ".crt")}"\n'  # noqa: E731
                                      f'tls_key = "{folder / "pki" / role / (name + ".key")}"\n')
            unit_tls = who("unit", "bench-1") + f'station_key = "{folder / "pki" / "station-signing.pub"}"\n'
            station_tls = who("station", "bench-station")
        unit, station = folder / "unit.toml", folder / "station.toml"
        unit.write_text(f'[agent]\nunit_id = "bench-1"\nagency = "bench"\ndata_dir = "{folder / "unit"}"\n'
                        f'[storage]\ncap_mb = 0\n[sync]\n{common}{unit_tls}{sync}\n')
        station.write_text(f'[agent]\nagency = "bench"\ndata_dir = "{folder / "station"}"\n[sync]\n{common}{station_tls}'
                           + (f'[station]\nsigning_key = "{folder / "pki" / "station-signing.key"}"\n' if tls else ""))
        return cls(broker, unit, station)

    def start_station(self) -> subprocess.Popen:
        station = subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", str(self.station), "station",
                                    "--name", "bench-station"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True)
        station.stdout.readline()  # it says where it receives once its database is open
        time.sleep(1.0)  # and subscribes right after
        return station


SHIPPED_BROKER = Path(__file__).resolve().parents[2] / "config" / "mosquitto" / "edge-agent.conf"


def bench_drain(reads: int, batch_size: int, in_flight: int, work: Path | None, progress: Progress,
                tls: bool = False) -> dict:
    from edge_agent.config import load_config
    from edge_agent.station.store import StationStore
    from edge_agent.sync import MqttSync

    folder = Path(work) if work else Path(tempfile.mkdtemp(prefix="edge-agent-bench-sync-"))
    folder.mkdir(parents=True, exist_ok=True)
    link = Link.make(folder, tls, f"batch_size = {batch_size}\nmax_in_flight = {in_flight}\nscene_images = false\n")
    config = load_config(link.unit)
    progress(f"storing {reads} reads with plate JPEGs in {folder / 'unit'}")
    with Database.in_data_dir(config.data_dir) as db:
        store_s = store_reads(db, reads, hits_every=100, scene=False)
        plate_mb = db.query("SELECT SUM(LENGTH(jpeg)) FROM read_images")[0][0] / 1048576
    link.broker.start()
    station = None
    try:
        station_db = folder / "station" / "station.sqlite3"
        station = link.start_station()
        progress(f"draining to the station at {link.broker.url}{' (TLS, client certificates, signed answers)' if tls else ''}")
        with Database.in_data_dir(config.data_dir) as db:
            sync = MqttSync(config, db)
            sync.start()
            if not sync.connected.wait(10):
                raise RuntimeError(f"broker {link.broker.url} not reachable")
            started = time.perf_counter()
            result = sync.drain(reconnect_wait=10)
            drain_s = time.perf_counter() - started
            sync.stop()
            waiting = db.stats().waiting
        station.terminate()
        station.wait(30)
        with StationStore(str(station_db)) as store:
            stats = store.stats()
    finally:
        if station is not None and station.poll() is None:
            station.kill()
        link.broker.stop()
    if not work:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "reads": reads, "tls": tls, "plate_jpeg_mb": round(plate_mb, 1),
        "store_s": round(store_s, 2), "store_reads_per_s": round(reads / store_s),
        "drain_s": round(drain_s, 2), "drain_reads_per_s": round(result.reads / drain_s),
        "batches": result.batches, "batch_size": batch_size, "max_in_flight": in_flight,
        "acks_refused": result.acks_refused,
        "unit_waiting": waiting, "station_reads": stats["reads"], "station_reads_with_hits": stats["reads_with_hits"],
        "station_duplicates_refused": stats["duplicates_refused"], "station_count_exact": stats["reads"] == reads,
        "peak_rss_mb": _peak_rss_mb(),
    }


def bench_faults(reads: int, faults: int, seed: int, work: Path | None, progress: Progress, tls: bool = True) -> dict:
    """The exactly-once run: the unit drains with `edge-agent sync --once` processes while, every second or
    so, one of them is killed (SIGKILL), the broker is restarted or the station is killed and started again;
    then the station must hold every read once and the unit none waiting."""
    import random
    import signal
    import sqlite3

    from edge_agent.store.outbox import pending_batches

    rng = random.Random(seed)
    folder = Path(work) if work else Path(tempfile.mkdtemp(prefix="edge-agent-bench-faults-"))
    folder.mkdir(parents=True, exist_ok=True)
    link = Link.make(folder, tls, "batch_size = 20\nmax_in_flight = 2\nack_timeout_s = 3.0\nbackoff_min_s = 0.2\n"
                                  "backoff_max_s = 1.0\nscene_images = false\n", persistence=True)
    unit_dir = folder / "unit"
    with Database.in_data_dir(unit_dir) as db:
        store_reads(db, reads, hits_every=50, scene=False, seed=seed)
        ids = {row[0] for row in db.query("SELECT id FROM reads")}
    counts = {"syncs_killed": 0, "broker_restarts": 0, "stations_killed": 0}
    link.broker.start()
    station = link.start_station()
    unit: subprocess.Popen | None = None
    started = time.monotonic()

    def unit_sync() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", str(link.unit), "sync", "--once",
                                 "--timeout", "30", "--drain-timeout", "600"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def done() -> bool:
        with Database.in_data_dir(unit_dir) as db:
            return db.stats().waiting == 0 and not pending_batches(db, 0)

    try:
        made = 0
        while made < faults or not done():
            if unit is None or unit.poll() is not None:
                unit = unit_sync()
            if made >= faults:
                if unit.poll() is None:
                    time.sleep(0.5)
                continue
            time.sleep(rng.uniform(0.5, 1.5))
            fault = rng.choice(("sync", "sync", "broker", "station"))
            if fault == "sync":
                if unit.poll() is not None:
                    continue  # it had finished: the next turn starts another, then kills it
                unit.send_signal(signal.SIGKILL)
                unit.wait(10)
                counts["syncs_killed"] += 1
            elif fault == "broker":
                link.broker.kill()
                time.sleep(rng.uniform(0.1, 1.0))
                link.broker.start()
                counts["broker_restarts"] += 1
            else:
                station.send_signal(signal.SIGKILL)
                station.wait(10)
                station = link.start_station()
                counts["stations_killed"] += 1
            made += 1
            if made % 10 == 0:
                progress(f"{made} faults: {counts}")
        if unit.poll() is None:
            unit.wait(120)
    finally:
        for proc in (unit, station):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        link.broker.stop()
    with sqlite3.connect(folder / "station" / "station.sqlite3") as c:
        held = [row[0] for row in c.execute("SELECT id FROM reads")]
    with Database.in_data_dir(unit_dir) as db:
        sent = {row[0] for row in db.query("SELECT id FROM reads WHERE sent_at IS NOT NULL")}
        waiting = db.stats().waiting
    if not work:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "reads": reads, "tls": tls, **counts, "seconds": round(time.monotonic() - started, 1),
        "station_reads": len(held), "station_distinct": len(set(held)),
        "lost": len(ids - set(held)), "doubled": len(held) - len(set(held)),
        "marked_sent_but_missing": len(sent - set(held)), "unit_waiting": waiting,
        "exactly_once": set(held) == ids and len(held) == len(ids) and waiting == 0,
    }


def bench_offline_week(reads: int, cap_mb: float, work: Path | None, progress: Progress) -> dict:
    """A unit that never reaches the station: every read stored with its plate and scene JPEG under the cap."""
    folder = Path(work) if work else Path(tempfile.mkdtemp(prefix="edge-agent-bench-week-"))
    config: Config = parse_config({"agent": {"data_dir": str(folder)}, "storage": {"cap_mb": cap_mb}}, "<bench>", folder)
    peak = [0]
    with Database.in_data_dir(config.data_dir) as db:
        keeper = ReadKeeper(db, config.storage, out=progress)

        def measure() -> None:
            peak[0] = max(peak[0], db.used_bytes()[1])

        def report(done: int) -> None:
            progress(f"{done} reads stored, {db.used_bytes()[1] / 1048576:.0f} MB on disk, peak {peak[0] / 1048576:.0f} MB")

        synthetic_scene = len(SyntheticReads(1, scene=True).scene_jpegs[0])
        store_s = store_reads(db, reads, hits_every=50, scene=True, keeper=keeper, chunk=1000,
                              on_chunk=report, after_each=measure)
        stats = db.stats()
        plates = db.query("SELECT COUNT(*) FROM read_images WHERE kind = 'plate'")[0][0]
        hit_images = db.query("SELECT COUNT(*) FROM read_images i JOIN reads r ON r.id = i.read_id"
                              " WHERE r.hit_count > 0")[0][0]
        scenes = db.query("SELECT COUNT(*) FROM read_images WHERE kind = 'scene'")[0][0]
        integrity = db.query("PRAGMA integrity_check")[0][0]
        _, on_disk = db.used_bytes()
    if not work:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "reads": reads, "cap_mb": cap_mb, "offered_mb": round(reads * (synthetic_scene + 8500) / 1048576),
        "peak_on_disk_mb": round(peak[0] / 1048576, 1), "final_on_disk_mb": round(on_disk / 1048576, 1),
        "within_cap": peak[0] <= cap_mb * 1048576,
        "reads_kept": stats.reads, "hits_kept": stats.hits, "plate_images_kept": plates,
        "hit_images_kept": hit_images, "scene_images_kept": scenes, "given_up": keeper.given_up,
        "state": keeper.state, "store_reads_per_s": round(reads / store_s), "integrity": integrity,
    }
