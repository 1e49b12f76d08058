"""The main job: capture -> recognise -> match -> store -> alert and sync.

Each camera has its own capture thread feeding a small per-camera buffer:
live cameras keep only the newest frame (recognition never falls behind the
road), file sources block so that every frame of a clip is read. One worker
reads plates; a sync thread drains waiting reads whenever a broker is there.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from edge_agent import __version__
from edge_agent.access import hotlist_imported, system_session
from edge_agent.alert import Alerter
from edge_agent.capture import open_source
from edge_agent.capture.gate import MotionGate, Region, read_in
from edge_agent.clock import TrustedClock
from edge_agent.config import CameraConfig, Config
from edge_agent.errors import HotlistError
from edge_agent.hotlist import entry_details, hotlist_generation, import_payload, load_index
from edge_agent.hotlist.storage import hotlist_age_s, open_hotlist_db
from edge_agent.imaging import boxed, crop_box, encode_jpeg
from edge_agent.recognise.runtime import RuntimeOptions
from edge_agent.recognise.reader import PlateReader, ReaderSettings
from edge_agent.recognise.statename import NamesSeen
from edge_agent.recognise.tracker import Pass, PlateTracker, TrackerSettings
from edge_agent.records import Frame, PlateReading, Read
from edge_agent.service import (CameraState, Notifier, WorkerState, cpu_temperature_c, disk_use, health,
                                process_age_s, runtime_folder, status_line, write_status)
from edge_agent.store import Database, age_s, utc_iso
from edge_agent.screen.feed import ReadFeed, status_strip
from edge_agent.store.keeper import ReadKeeper

log = logging.getLogger(__name__)
Printer = Callable[[str], None]


LIVE_SOURCES = ("v4l2", "rtsp", "gstreamer", "picamera2")  # run until stopped; the others end


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds)


class FrameBoard:
    """Bounded per-camera frame buffers with one consumer, taken round-robin."""

    def __init__(self, sources: list, file_depth: int = 2):
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
        read_state_names=rc.read_state_names,
    )


def tracker_settings(config: Config) -> TrackerSettings:
    rc = config.recognition
    return TrackerSettings(max_gap_s=rc.track_max_gap_s, max_wait_s=rc.track_max_wait_s,
                           settle_frames=rc.track_settle_frames)


WHOLE_FRAME = Region()


class Agent:
    HOTLIST_POLL_S = 2.0  # how often the worker looks for a new list in force

    def __init__(self, config: Config, out: Printer = print, reader: PlateReader | None = None,
                 reader_factory: Callable[[], PlateReader] | None = None, notifier: Notifier | None = None):
        self.config = config
        self.out = out
        self._new_reader = reader_factory or (lambda: reader or PlateReader(reader_settings(config)))
        self.reader = self._new_reader()
        self.gps = None
        if config.gps.port:
            from edge_agent.position import GpsReceiver

            self.gps = GpsReceiver(config.gps.port, config.gps.baud, config.gps.max_age_s).start()
        self.clock = TrustedClock(self.gps.satellite_time if self.gps else None, config.gps.max_clock_skew_s)
        self.notifier = notifier or Notifier()
        from edge_agent.pki import certificate_expires

        expires = certificate_expires(config.sync.tls_cert)
        self._certificate_expires = utc_iso(expires) if expires else None
        self.cameras: list[CameraState] = []
        self._camera_by_id: dict[str, CameraState] = {}
        self._worker: threading.Thread | None = None
        self._generation = 0
        self._finished = threading.Event()
        self.worker_state = WorkerState("idle", time.monotonic())
        self.restarts = 0
        self.first_frame_s: float | None = None  # cold start: process start to the first frame read
        self._problems: list[str] = []
        self._started = time.monotonic()
        self._status_at = 0.0
        self.db = Database.for_config(config)
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
        self._names_seen: dict[str, NamesSeen] = collections.defaultdict(NamesSeen)  # by camera
        self.regions = {c.id: Region(*c.region) for c in config.cameras}
        self.side_views = {c.id for c in config.cameras if c.side_view}
        self.summary = RunSummary()
        self.sync = None
        self.keeper = ReadKeeper(self.db, config.storage, out, on_state=self._storage_changed,
                                 clock_sane=self.clock.sane)
        # the officer's screen (screen.enabled): what it is pushed, and each camera's last frame and plates
        self.feed = ReadFeed(config.screen.live_reads) if config.screen.enabled else None
        self.screen_server = None
        self._last_seen: dict[str, tuple[Frame, list[PlateReading]]] = {}

    def _storage_changed(self, state: str) -> None:
        if self.sync is not None:
            self.sync.publish_status()  # the station sees a full disk at once

    def status_fields(self) -> dict:
        """What the unit's retained status tells the station (alpr.status.v2)."""
        waiting, lag = self._waiting()
        return {**self.keeper.status(), "waiting": waiting, "version": __version__,
                "hotlist_version": self.hotlist.version, "certificate_expires": self._certificate_expires,
                "clock": self.clock.now()[1], "sync_lag_s": lag}

    def _waiting(self, activity: dict | None = None) -> tuple[int, float]:
        """Reads waiting to sync, and how long the oldest of them has waited (s)."""
        row = activity or self.db.activity(utc_iso(), utc_iso())
        return row["waiting"], round(max(0.0, age_s(row["oldest_waiting"]) or 0.0), 1)

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
                hotlist_imported(self.db, system_session("hotlist", self.config.agent.unit_id),
                                 f"signed version {result.signed_version} from the station", result)
                self.out(f"hotlist: signed version {result.signed_version} imported ({result.kind}, "
                         f"{result.loaded} rows, {result.rejected} rejected)")
                self.refresh_hotlist(force=True)
            except HotlistError as exc:
                self._error(f"hotlist update refused: {exc}")
            except Exception as exc:  # a bad update must never take the agent down
                self._error(f"hotlist update failed: {exc}")

    def run(self, stop: threading.Event | None = None) -> RunSummary:
        """Run until every source has ended (files, videos) or `stop` is set (SIGTERM): live cameras never end.

        Parts and how each comes back: a camera thread reopens its camera with back-off for as long as the agent
        runs; the recognition part is restarted in place when it fails, and when it hangs in a read (a Python
        thread cannot be killed: the hung one is left behind, and its successor owns the state); sync reconnects
        by itself. A part hung where it cannot be replaced (the store) stops the watchdog, and systemd restarts
        the agent."""
        stop = stop or threading.Event()
        started = time.monotonic()
        if not self.config.cameras:
            self._error(f"{self.config.source_file}: no [[camera]] configured and no --source given")
        self.cameras = [CameraState(c.id, c.source in LIVE_SOURCES) for c in self.config.cameras]
        self._camera_by_id = {c.id: c for c in self.cameras}
        board = FrameBoard(self.cameras)
        threads = [threading.Thread(target=self._capture, args=(c, state, board, stop), daemon=True,
                                    name=f"capture-{c.id}") for c, state in zip(self.config.cameras, self.cameras)]
        self.keeper.housekeeping()
        sync = self._start_sync(stop)
        screen = self._start_screen()
        if sync is not None:
            threading.Thread(target=self._import_arrivals, args=(stop,), daemon=True, name="hotlist-import").start()
        self.out(f"hotlist: {len(self.hotlist)} entries (version {self.hotlist.version}); cameras: "
                 f"{', '.join(c.id for c in self.config.cameras) or 'none'}")
        for t in threads:
            t.start()
        self._start_worker(board, stop)
        self.notifier.ready(f"reading {len(self.cameras)} cameras")
        try:
            while not self._finished.is_set() and not stop.wait(self.SUPERVISE_S):
                self._supervise(board, stop)
        finally:
            self.notifier.stopping()
            stop.set()
            worker = self._worker
            if worker is not None:
                worker.join(timeout=2)
            if worker is None or not worker.is_alive():
                self.settle_passes()
            for t in threads:
                t.join(timeout=2)
            if self.gps is not None:
                self.gps.stop()
            if sync is not None:
                self._final_sync(sync)
            if self.screen is not None:
                self.screen.close()
            if screen is not None:
                screen.stop()
            self.keeper.retry()
            if self.keeper.buffer:
                self._error(f"{len(self.keeper.buffer)} reads held in memory could not be stored: the disk is full")
            self.summary.waiting = self.db.stats().waiting
            self.summary.seconds = time.monotonic() - started
            self._publish_status(final=True)
            self.db.close()
            self.hotlist_db.close()
        return self.summary

    # the supervised parts ----------------------------------------------------

    SUPERVISE_S = 0.2
    STATION_STATUS_S = 60.0
    STATUS_EVERY_S = 2.0

    def _capture(self, camera: CameraConfig, state: CameraState, board: FrameBoard, stop: threading.Event) -> None:
        """One camera for as long as the agent runs: a live camera that is absent, busy or unplugged is opened
        again with back-off, and its state says why it is out; a file or video source ends once."""
        delay = self.CAMERA_BACKOFF_S[0]
        problems: list[str] = []
        while not stop.is_set():
            problems.clear()
            source = open_source(camera, problems.append if state.live else self._error)
            state.opened += 1
            before = state.frames
            try:
                for frame in source.frames():
                    if stop.is_set():
                        break
                    state.delivered(time.monotonic())
                    board.put(frame, stop)
            except Exception as exc:  # a camera that fails must not take the agent down
                problems.append(f"camera {camera.id}: capture failed: {exc}")
                if not state.live:
                    self._error(problems[-1])
            finally:
                source.close()
            if not state.live or stop.is_set():
                break
            why = problems[-1] if problems else f"camera {camera.id}: stream ended"
            if state.state != "out" or state.problem != why:
                self.out(f"warning: {why}; trying again every {self.CAMERA_BACKOFF_S[1]:.0f} s at most")
            state.state, state.problem = "out", why
            delay = self.CAMERA_BACKOFF_S[0] if state.frames > before else min(self.CAMERA_BACKOFF_S[1], delay * 2)
            stop.wait(delay)
        state.state = "ended" if not state.live else state.state
        board.finish(camera.id)

    CAMERA_BACKOFF_S = (1.0, 30.0)

    def _start_worker(self, board: FrameBoard, stop: threading.Event) -> None:
        self._generation += 1
        self._worker = threading.Thread(target=self._work, args=(board, stop, self._generation), daemon=True,
                                        name=f"recognise-{self._generation}")
        self.worker_state = WorkerState("idle", time.monotonic())
        self._worker.start()

    def _work(self, board: FrameBoard, stop: threading.Event, generation: int) -> None:
        """The recognition part: frames -> plates -> passes -> stored reads and alerts."""
        try:
            while generation == self._generation:
                frame = board.get(stop)
                if frame is None:
                    if not stop.is_set():
                        self.settle_passes()
                        self._finished.set()
                    return
                now = time.monotonic()
                camera = self._camera_by_id.get(frame.camera_id)
                if camera is not None:
                    camera.taken, camera.last_taken = camera.taken + 1, now
                self.worker_state = WorkerState("read", now)
                readings = self._readings(frame)
                if self.feed is not None:  # a reference, not a copy: drawn only when a technician looks
                    self._last_seen[frame.camera_id] = (frame, readings)
                if self.first_frame_s is None:
                    self.first_frame_s = process_age_s()
                    if self.first_frame_s is not None:
                        self.out(f"first frame read {self.first_frame_s:.1f} s after the agent started")
                if generation != self._generation:
                    return  # replaced while this read hung: the state is its successor's now
                self.worker_state = WorkerState("store", time.monotonic())
                self._track(frame, readings)
                self.keeper.retry()
                self.worker_state = WorkerState("idle", time.monotonic())
        except Exception as exc:
            if generation == self._generation:
                self.worker_state = WorkerState("failed", time.monotonic())
                self._error(f"recognition failed: {exc!r}; restarting it")
                log.exception("recognition failed")

    def _supervise(self, board: FrameBoard, stop: threading.Event) -> None:
        now = time.monotonic()
        w = self.worker_state
        hang = self.config.recognition.hang_after_s
        if self._worker is not None and not self._worker.is_alive() and not self._finished.is_set():
            self.restarts += 1
            self._start_worker(board, stop)
        elif w.phase == "read" and now - w.since > hang:
            self.restarts += 1
            self._error(f"recognition hung in a read for {now - w.since:.1f} s; started a new one beside it")
            self.reader = self._new_reader()
            self._start_worker(board, stop)
        store_hung = w.phase == "store" and now - w.since > max(hang, 10.0)
        problems = health(now, self.cameras, self.worker_state, hang, store_hung)
        if not problems:
            self.notifier.watchdog()
        elif problems != self._problems:
            self.out(f"warning: not feeding the watchdog: {'; '.join(problems)}")
        self._problems = problems
        if now - self._status_at >= self.STATUS_EVERY_S:
            self._publish_status()

    def status(self) -> dict:
        """The figures `edge-agent status` shows and the systemd status line sums up."""
        now = time.monotonic()
        for c in self.cameras:
            c.measure(now)
        since_hour = utc_iso(datetime.now(timezone.utc) - timedelta(hours=1))
        today = utc_iso(datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0))
        row = self.db.activity(since_hour, today)
        waiting, lag = self._waiting(row)
        _, clock = self.clock.now()
        position = self.gps.position() if self.gps is not None else None
        return {
            "written_at": time.time(), "pid": os.getpid(), "agency": self.config.agent.agency,
            "unit": self.config.agent.unit_id, "version": __version__, "up_s": round(now - self._started, 1),
            "cameras": [c.to_json() for c in self.cameras],
            "reads_last_hour": row["recent"], "hits_today": row["hits_today"], "waiting": waiting,
            "sync": {"broker": self.config.sync.broker or None,
                     "connected": bool(self.sync is not None and self.sync.connected.is_set()),
                     "lag_s": lag},
            "hotlist": {"version": self.hotlist.version, "entries": len(self.hotlist),
                        "age_s": _rounded(hotlist_age_s(self.hotlist_db))},
            "storage": self.keeper.status(), "disk": disk_use(self.config.data_dir),
            "cpu_temp_c": cpu_temperature_c(), "clock": clock, "clock_skew_s": self.clock.skew_s,
            "gps": None if self.gps is None else {"port": self.gps.port, "state": self.gps.state,
                                                  "problem": self.gps.problem,
                                                  "position": position.to_json() if position else None},
            "screen": self.screen_server.url if self.screen_server is not None else None,
            "recognition": {"restarts": self.restarts, "frames": self.summary.frames, "reads": self.summary.reads,
                            "first_frame_s": self.first_frame_s},
            "health": self._problems,
        }

    def _publish_status(self, final: bool = False) -> None:
        self._status_at = time.monotonic()
        try:
            status = self.status()
            if final:
                status["pid"] = None  # `status` then says the agent is not running
            write_status(runtime_folder(self.config.data_dir), status)
            self.notifier.status(status_line(status))
            if self.feed is not None:
                self.feed.publish_status(status_strip(status, self._theme(status)))
        except Exception as exc:  # the figures are a courtesy; they never stop the agent
            log.warning("status not written: %s", exc)

    # the officer's screen ----------------------------------------------------

    def _start_screen(self):
        if self.feed is None:
            return None
        from edge_agent.screen.app import ScreenContext
        from edge_agent.screen.server import ScreenServer

        def hotlist_changed() -> None:
            self._hotlist_checked = float("-inf")  # an officer's plate matches from the next frame

        ctx = ScreenContext(self.config, self.db, self.hotlist_db, self.feed,
                            tuple(c.id for c in self.config.cameras), self.camera_picture, hotlist_changed)
        server = self.screen_server = ScreenServer(ctx, self.out).start()
        self.out(f"screen: {server.url}")
        return server

    def _theme(self, status: dict) -> str:
        from edge_agent.screen.sun import theme

        position = ((status.get("gps") or {}).get("position")) or {}
        lat, lon = (position["lat"], position["lon"]) if "lat" in position else self.config.screen.home
        return theme(self.config.screen.theme, lat, lon, datetime.now(timezone.utc))

    def camera_picture(self, camera_id: str) -> bytes | None:
        """The camera's last frame read, with the plates found in it boxed and labelled (for aiming it)."""
        seen = self._last_seen.get(camera_id)
        if seen is None:
            return None
        frame, readings = seen
        return encode_jpeg(boxed(frame.image, readings, self.regions.get(camera_id, WHOLE_FRAME)), 80, 960)

    def _readings(self, frame: Frame) -> list[PlateReading]:
        self.summary.frames += 1
        self.refresh_hotlist()
        at = frame.captured_at.timestamp()
        if self.motion is None or self.motion.should_read(frame.camera_id, frame.image, at):
            seen, side = self._names_seen[frame.camera_id], frame.camera_id in self.side_views
            return read_in(self.regions.get(frame.camera_id, WHOLE_FRAME),
                           lambda image: self.reader.read_frame(image, seen=seen, side_view=side), frame.image)
        return []

    def process(self, frame: Frame) -> list[Read]:
        """Read one frame's plates; the reads of the vehicle passes that settled with it."""
        return self._track(frame, self._readings(frame))

    def _track(self, frame: Frame, readings: list[PlateReading]) -> list[Read]:
        return self._record(self.tracker.update(frame.camera_id, frame.captured_at.timestamp(), readings, frame))

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
            captured_at, clock = self.clock.correct(frame.captured_at)
            reads.append(self.keep(Read(
                id=str(uuid.uuid4()),
                captured_at=captured_at,
                clock=clock,
                position=self.gps.position() if self.gps is not None else None,
                camera_id=frame.camera_id,
                reading=reading,
                plate_jpeg=encode_jpeg(crop_box(frame.image, reading.box), self.config.storage.jpeg_quality),
                scene_jpeg=scenes[id(frame)],
                hits=self.hotlist.match(reading.text, reading.state, [c.text for c in reading.candidates[1:]]),
            ), now, f" frame={frame.index} frames={settled.frames} after={settled.settled_at - settled.first_at:.2f}s"))
        return reads

    def keep(self, read: Read, now: float, how: str = "") -> Read:
        """A new read stored, alerted if it hit a list, and shown on the screen."""
        hit_ids = self.keeper.store(read, self.hotlist.version)
        stored_at = time.time()
        self.summary.reads += 1
        reading = read.reading
        self.out(f"read {reading.text} conf={reading.confidence:.2f} state={reading.state or '-'}"
                 f" camera={read.camera_id}{how}")
        alert = None
        if read.hits:
            self.summary.hits += 1
            alert = self._alert(read, hit_ids, now)
        if self.feed is not None:
            self.feed.publish_read(read, alert, stored_at)
        return read

    def _alert(self, read: Read, hit_ids: list[int] | None, now: float):
        try:
            alert = self.alerter.on_read(read, hit_ids or [], now)
        except (sqlite3.Error, OSError) as exc:  # a full disk: the officer still has to hear of the hit
            hit = read.hits[0]
            self._error(f"alert for {read.reading.text} ({hit.list_name} {hit.lic} {hit.lis}, {hit.match}) "
                        f"could not be recorded or spoken: {exc}")
            return None
        if alert is not None:
            self.summary.alerts += 1
            self.out(alert.line + (f" wav={alert.wav}" if alert.wav else ""))
        return alert

    def _start_sync(self, stop: threading.Event):
        if not self.config.sync.broker:
            return None
        from edge_agent.sync import MqttSync, SyncBusy

        try:
            sync = self.sync = MqttSync(self.config, self.db, on_hotlist=self._hotlist_arrived, status=self.status_fields)
        except SyncBusy as exc:
            self.out(f"not syncing: {exc}; reads wait in SQLite")
            return None

        def loop() -> None:
            # a certificate cannot be checked against 1970: TLS sync waits for a sane clock
            if self.config.sync.broker.startswith("mqtts:") and not self.clock.sane():
                self.out("warning: the clock is not set (no NTP or GPS time yet); sync waits for it")
                while not self.clock.sane():
                    if stop.wait(self.config.sync.interval_s):
                        return
            sync.start()
            told = time.monotonic()
            while not stop.wait(self.config.sync.interval_s):
                try:
                    if time.monotonic() - told > self.STATION_STATUS_S:
                        told = time.monotonic()
                        sync.publish_status()  # the station's `station units` stays current
                    sync.drain(stop)
                except Exception as exc:  # keep syncing on the next tick; records stay waiting
                    log.warning("sync failed: %s", exc)

        threading.Thread(target=loop, daemon=True, name="sync").start()
        return sync

    def _final_sync(self, sync, wait_s: float = 2.0, drain_s: float = 5.0) -> None:
        """A last drain on the way out, kept short: systemd allows 10 s from SIGTERM, and what is not sent
        waits in SQLite for the next start."""
        if sync.connected.wait(wait_s):
            result = sync.drain(timeout=drain_s)
            if result.reads:
                self.out(f"synced {result.reads} reads to {self.config.sync.broker}")
        else:
            self.out(f"broker {self.config.sync.broker} not reachable: reads wait in SQLite")
        sync.stop()
