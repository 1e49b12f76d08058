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
from pathlib import Path
from typing import Callable

from edge_agent.bench.broker import LocalBroker
from edge_agent.config import Config, parse_config
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


def bench_drain(reads: int, batch_size: int, in_flight: int, work: Path | None, progress: Progress) -> dict:
    from edge_agent.station.store import StationStore
    from edge_agent.sync import MqttSync

    folder = Path(work) if work else Path(tempfile.mkdtemp(prefix="edge-agent-bench-sync-"))
    folder.mkdir(parents=True, exist_ok=True)
    broker = LocalBroker(folder)
    url = broker.url
    config = parse_config({"agent": {"unit_id": "bench-1", "agency": "bench", "data_dir": str(folder / "unit")},
                           "sync": {"broker": url, "batch_size": batch_size, "max_in_flight": in_flight,
                                    "scene_images": False, "insecure": True},  # a broker on this machine alone
                           "storage": {"cap_mb": 0}}, "<bench>", folder)
    progress(f"storing {reads} reads with plate JPEGs in {folder / 'unit'}")
    with Database.in_data_dir(config.data_dir) as db:
        store_s = store_reads(db, reads, hits_every=100, scene=False)
        plate_mb = db.query("SELECT SUM(LENGTH(jpeg)) FROM read_images")[0][0] / 1048576
    broker.start()
    station = None
    try:
        station_db = folder / "station" / "station.sqlite3"
        station_config = folder / "station.toml"
        station_config.write_text("[sync]\ninsecure = true\n")
        station = subprocess.Popen([sys.executable, "-m", "edge_agent", "--config", str(station_config), "--data-dir",
                                    str(folder / "station"), "station", "--broker", url, "--name", "bench-station"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        station.stdout.readline()  # it says where it receives once its database is open
        time.sleep(1.0)  # and subscribes right after
        progress(f"draining to the station at {url}")
        with Database.in_data_dir(config.data_dir) as db:
            sync = MqttSync(config, db)
            sync.start()
            if not sync.connected.wait(10):
                raise RuntimeError(f"broker {url} not reachable")
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
        broker.stop()
    if not work:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "reads": reads, "plate_jpeg_mb": round(plate_mb, 1),
        "store_s": round(store_s, 2), "store_reads_per_s": round(reads / store_s),
        "drain_s": round(drain_s, 2), "drain_reads_per_s": round(result.reads / drain_s),
        "batches": result.batches, "batch_size": batch_size, "max_in_flight": in_flight,
        "unit_waiting": waiting, "station_reads": stats["reads"], "station_reads_with_hits": stats["reads_with_hits"],
        "station_duplicates_refused": stats["duplicates_refused"], "station_count_exact": stats["reads"] == reads,
        "peak_rss_mb": _peak_rss_mb(),
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
