"""The main job: capture -> recognise -> match -> store -> alert and sync.

Each camera has its own capture thread feeding a small per-camera buffer:
live cameras keep only the newest frame (recognition never falls behind the
road), file sources block so that every frame of a clip is read. One worker
reads plates; a sync thread drains waiting reads whenever a broker is there.
"""

from __future__ import annotations

import collections
import logging
import queue
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from edge_agent.alert import Alerter
from edge_agent.capture import FrameSource, open_source
from edge_agent.capture.gate import MotionGate, Region, read_in
from edge_agent.config import Config
from edge_agent.errors import HotlistError
from edge_agent.hotlist import entry_details, hotlist_generation, import_payload, load_index
from edge_agent.hotlist.storage import open_hotlist_db
from edge_agent.imaging import crop_box, encode_jpeg
from edge_agent.recognise.runtime import RuntimeOptions
from edge_agent.recognise.reader import PlateReader, ReaderSettings
from edge_agent.recognise.tracker import Pass, PlateTracker, TrackerSettings
from edge_agent.records import Frame, PlateReading, Read
from edge_agent.store import Database
from edge_agent.store.keeper import ReadKeeper

log = logging.getLogger(__name__)
Printer = Callable[[str], None]


class FrameBoard:
    """Bounded per-camera frame buffers with one consumer, taken round-robin."""

    def __init__(self, sources: list[FrameSource], file_depth: int = 2):
        self._cond = threading.Condition()
        self._buffers = {s.camera_id: collections.deque(maxlen=1 if s.live else None) for s in sources}
        self._depth = {s.camera_id: 1 if s.live else file_depth for s in sources}
        self._open = {s.camera_id for s in sources}
        self._order = [s.camera_id for s in sources]
        self._next = 0
        self.dropped = 0

    def put(self, frame: Frame, stop: threading.Event) -> None:
        with self._cond:
            buffer = self._buffers[frame.camera_id]
            if buffer.maxlen is None:
                while len(buffer) >= self._depth[frame.camera_id] and not stop.is_set():
                    self._cond.wait(0.2)
            elif len(buffer) == buffer.maxlen:
                self.dropped += 1  # the newest frame wins on a live camera
            buffer.append(frame)
            self._cond.notify_all()

    def finish(self, camera_id: str) -> None:
        with self._cond:
            self._open.discard(camera_id)
            self._cond.notify_all()

    def get(self, stop: threading.Event) -> Frame | None:
        """The next frame, or None once every source has ended and been drained (or on stop)."""
        with self._cond:
            while not stop.is_set():
                for i in range(len(self._order)):
                    camera = self._order[(self._next + i) % len(self._order)]
                    if self._buffers[camera]:
                        self._next = (self._next + i + 1) % len(self._order)
                        frame = self._buffers[camera].popleft()
                        self._cond.notify_all()
                        return frame
                if not self._open:
                    return None
                self._cond.wait(0.2)
        return None


class RepeatFilter:
    """One read per vehicle pass: the same plate on the same camera within the window is the same pass."""

    def __init__(self, window_s: float):
        self.window_s = window_s
        self._last: dict[tuple[str, str], float] = {}

    def is_new(self, camera_id: str, reading: PlateReading, now: float) -> bool:
        texts = {reading.text} | {c.text for c in reading.candidates[:2]}
        new = all(now - self._last.get((camera_id, t), float("-inf")) > self.window_s for t in texts)
        for t in texts:
            self._last[(camera_id, t)] = now
        if len(self._last) > 4096:
            self._last = {k: v for k, v in self._last.items() if now - v <= self.window_s}
        return new


@dataclass
class RunSummary:
    frames: int = 0
    reads: int = 0
    hits: int = 0
    alerts: int = 0
    waiting: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"frames={self.frames} reads={self.reads} hits={self.hits} alerts={self.alerts}"
            f" waiting_to_sync={self.waiting} errors={len(self.errors)} seconds={self.seconds:.1f}"
        )


def reader_settings(config: Config) -> ReaderSettings:
    rc = config.recognition
    return ReaderSettings(
        runtime=RuntimeOptions(providers=rc.providers, intra_op_threads=rc.intra_op_threads,
                               inter_op_threads=rc.inter_op_threads, memory_arena=rc.memory_arena,
                               spin_wait=rc.spin_wait, trt_cache_dir=rc.trt_cache_dir or config.data_dir / "trt-cache",
                               trt_fp16=rc.trt_fp16),
        min_confidence=rc.min_confidence,
        detector_min_score=rc.plate_min_score,
    )


def tracker_settings(config: Config) -> TrackerSettings:
    rc = config.recognition
    return TrackerSettings(max_gap_s=rc.track_max_gap_s, max_wait_s=rc.track_max_wait_s,
                           settle_frames=rc.track_settle_frames)


WHOLE_FRAME = Region()


class Agent:
    HOTLIST_POLL_S = 2.0  # how often the worker looks for a new list in force

    def __init__(self, config: Config, out: Printer = print, reader: PlateReader | None = None):
        self.config = config
        self.out = out
        self.reader = reader or PlateReader(reader_settings(config))
        self.db = Database.in_data_dir(config.data_dir)
        self.hotlist_db = open_hotlist_db(config.data_dir)
        self.hotlist = load_index(self.hotlist_db)
        self._hotlist_checked = time.monotonic()
        self._arrivals: queue.Queue[bytes] = queue.Queue(maxsize=4)
        self.screen = self._screen()
        self.alerter = Alerter(config.alerts, config.data_dir, self.db, self._details, self.screen)
        rc = config.recognition
        self.repeats = RepeatFilter(rc.repeat_window_s)
        self.tracker: PlateTracker[Frame] = PlateTracker(tracker_settings(config))
        self.motion = MotionGate(rc.motion_min_changed) if rc.motion_gate else None
        self.regions = {c.id: Region(*c.region) for c in config.cameras}
        self.summary = RunSummary()
        self.sync = None
        self.keeper = ReadKeeper(self.db, config.storage, out, on_state=self._storage_changed)

    def _storage_changed(self, state: str) -> None:
        if self.sync is not None:
            self.sync.publish_status()  # the station sees a full disk at once

    def status_fields(self) -> dict:
        return {**self.keeper.status(), "waiting": self.db.stats().waiting}

    def _details(self, hit) -> dict:
        return entry_details(self.hotlist_db, hit.entry_id) if hit.source == "hotlist" else {}

    def _screen(self):
        broker = self.config.alerts.screen_broker or self.config.sync.broker
        if not broker:
            return None
        from edge_agent.alert.screen import ScreenPublisher
        from edge_agent.sync import Topics

        a, s = self.config.agent, self.config.sync
        return ScreenPublisher(s, broker, Topics.for_unit(s.topic_prefix, a.agency, a.unit_id).alerts,
                               f"edge-agent-{a.agency}-{a.unit_id}-screen")

    def _error(self, message: str) -> None:
        self.summary.errors.append(message)
        self.out(f"error: {message}")

    def refresh_hotlist(self, force: bool = False) -> None:
        """Swap in the list in force if it changed (an import, an update, an officer's entry); cheap to call often."""
        now = time.monotonic()
        if not force and now - self._hotlist_checked < self.HOTLIST_POLL_S:
            return
        self._hotlist_checked = now
        if hotlist_generation(self.hotlist_db) != self.hotlist.generation:
            self.hotlist = load_index(self.hotlist_db)
            self.out(f"hotlist: version {self.hotlist.version} in force, {len(self.hotlist)} entries")

    def _hotlist_arrived(self, payload: bytes) -> None:
        """Called on the MQTT thread: hand the list to the importer thread, never block the network loop."""
        try:
            self._arrivals.put_nowait(payload)
        except queue.Full:
            log.warning("hotlist update dropped: %d still waiting to be imported", self._arrivals.maxsize)

    def _import_arrivals(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                payload = self._arrivals.get(timeout=0.5)
            except queue.Empty:
                continue
            where = f"hotlist from {self.config.sync.broker}"
            try:
                # A connection of its own: a long import must not hold the lock the recognition worker uses.
                with open_hotlist_db(self.config.data_dir) as db:
                    _, result = import_payload(db, self.config.hotlist, payload, where)
                self.db.audit("station", "hotlist.import", f"signed version {result.signed_version} -> "
                              f"version {result.version} ({result.kind}, {result.entries_in_force} entries)",
                              "hotlist update from the station")
                self.out(f"hotlist: signed version {result.signed_version} imported ({result.kind}, "
                         f"{result.loaded} rows, {result.rejected} rejected)")
                self.refresh_hotlist(force=True)
            except HotlistError as exc:
                self._error(f"hotlist update refused: {exc}")
            except Exception as exc:  # a bad update must never take the agent down
                self._error(f"hotlist update failed: {exc}")

    def run(self, stop: threading.Event | None = None) -> RunSummary:
        stop = stop or threading.Event()
        started = time.monotonic()
        if not self.config.cameras:
            self._error(f"{self.config.source_file}: no [[camera]] configured and no --source given")
        sources = [open_source(c, self._error) for c in self.config.cameras]
        board = FrameBoard(sources)
        threads = [threading.Thread(target=self._capture, args=(s, board, stop), daemon=True, name=f"capture-{s.camera_id}")
                   for s in sources]
        self.keeper.housekeeping()
        sync = self._start_sync(stop)
        if sync is not None:
            threading.Thread(target=self._import_arrivals, args=(stop,), daemon=True, name="hotlist-import").start()
        self.out(f"hotlist: {len(self.hotlist)} entries (version {self.hotlist.version}); cameras: "
                 f"{', '.join(c.id for c in self.config.cameras) or 'none'}")
        for t in threads:
            t.start()
        try:
            while (frame := board.get(stop)) is not None:
                self.process(frame)
                self.keeper.retry()
            self.settle_passes()
        finally:
            stop.set()
            for s in sources:
                s.close()
            for t in threads:
                t.join(timeout=5)
            if sync is not None:
                self._final_sync(sync)
            if self.screen is not None:
                self.screen.close()
            self.keeper.retry()
            if self.keeper.buffer:
                self._error(f"{len(self.keeper.buffer)} reads held in memory could not be stored: the disk is full")
            self.summary.waiting = self.db.stats().waiting
            self.summary.seconds = time.monotonic() - started
            self.db.close()
            self.hotlist_db.close()
        return self.summary

    def _capture(self, source: FrameSource, board: FrameBoard, stop: threading.Event) -> None:
        try:
            for frame in source.frames():
                if stop.is_set():
                    break
                board.put(frame, stop)
        except Exception as exc:  # a camera that fails must not take the agent down
            self._error(f"camera {source.camera_id}: capture failed: {exc}")
        finally:
            board.finish(source.camera_id)

    def process(self, frame: Frame) -> list[Read]:
        """Read one frame's plates; the reads of the vehicle passes that settled with it."""
        self.summary.frames += 1
        self.refresh_hotlist()
        at = frame.captured_at.timestamp()
        readings: list[PlateReading] = []
        if self.motion is None or self.motion.should_read(frame.camera_id, frame.image, at):
            readings = read_in(self.regions.get(frame.camera_id, WHOLE_FRAME), self.reader.read, frame.image)
        return self._record(self.tracker.update(frame.camera_id, at, readings, frame))

    def settle_passes(self) -> list[Read]:
        """The reads of the passes still open (the sources have ended)."""
        return self._record(self.tracker.flush(time.time()))

    def _record(self, passes: list[Pass[Frame]]) -> list[Read]:
        reads = []
        scenes: dict[int, bytes] = {}  # a frame's scene JPEG is encoded once, and only for a new read
        for settled in passes:
            frame, reading = settled.best.frame, settled.reading
            now = time.monotonic()
            if not self.repeats.is_new(frame.camera_id, reading, now):
                continue
            if id(frame) not in scenes:
                scenes[id(frame)] = encode_jpeg(frame.image, self.config.storage.jpeg_quality,
                                                self.config.storage.scene_max_side)
            read = Read(
                id=str(uuid.uuid4()),
                captured_at=frame.captured_at,
                camera_id=frame.camera_id,
                reading=reading,
                plate_jpeg=encode_jpeg(crop_box(frame.image, reading.box), self.config.storage.jpeg_quality),
                scene_jpeg=scenes[id(frame)],
                hits=self.hotlist.match(reading.text, reading.state, [c.text for c in reading.candidates[1:]]),
            )
            hit_ids = self.keeper.store(read, self.hotlist.version)
            self.summary.reads += 1
            self.out(f"read {reading.text} conf={reading.confidence:.2f} state={reading.state or '-'}"
                     f" camera={read.camera_id} frame={frame.index} frames={settled.frames}"
                     f" after={settled.settled_at - settled.first_at:.2f}s")
            if read.hits:
                self.summary.hits += 1
                self._alert(read, hit_ids, now)
            reads.append(read)
        return reads

    def _alert(self, read: Read, hit_ids: list[int] | None, now: float) -> None:
        try:
            alert = self.alerter.on_read(read, hit_ids or [], now)
        except (sqlite3.Error, OSError) as exc:  # a full disk: the officer still has to hear of the hit
            hit = read.hits[0]
            self._error(f"alert for {read.reading.text} ({hit.list_name} {hit.lic} {hit.lis}, {hit.match}) "
                        f"could not be recorded or spoken: {exc}")
            return
        if alert is not None:
            self.summary.alerts += 1
            self.out(alert.line + (f" wav={alert.wav}" if alert.wav else ""))

    def _start_sync(self, stop: threading.Event):
        if not self.config.sync.broker:
            return None
        from edge_agent.sync import MqttSync, SyncBusy

        try:
            sync = self.sync = MqttSync(self.config, self.db, on_hotlist=self._hotlist_arrived, status=self.status_fields)
        except SyncBusy as exc:
            self.out(f"not syncing: {exc}; reads wait in SQLite")
            return None
        sync.start()

        def loop() -> None:
            while not stop.wait(self.config.sync.interval_s):
                try:
                    sync.drain(stop)
                except Exception as exc:  # keep syncing on the next tick; records stay waiting
                    log.warning("sync failed: %s", exc)

        threading.Thread(target=loop, daemon=True, name="sync").start()
        return sync

    def _final_sync(self, sync, wait_s: float = 3.0, drain_s: float = 15.0) -> None:
        if sync.connected.wait(wait_s):
            result = sync.drain(timeout=drain_s)
            if result.reads:
                self.out(f"synced {result.reads} reads to {self.config.sync.broker}")
        else:
            self.out(f"broker {self.config.sync.broker} not reachable: reads wait in SQLite")
        sync.stop()
