"""`edge-agent bench speed`: recognition speed and memory over a video or a folder of frames.

Frames are decoded ahead of the clock (a capture thread does that in the
agent), then each goes through the region gate, the reader (keeping the state
names it read clearly, as the agent does for each camera) and the tracker as
in `Agent.process`. Latency is wall time per frame; CPU time counts every
thread of the process, so on a 2-core unit a frame can cost more CPU seconds
than wall seconds.
"""

from __future__ import annotations

import statistics
import time
from typing import Iterable, Iterator

import numpy as np

from edge_agent.bench import peak_rss_mb, percentile
from edge_agent.capture import ErrorHandler, open_source
from edge_agent.capture.gate import Region, read_in
from edge_agent.config import camera_for_path
from edge_agent.errors import EdgeAgentError
from edge_agent.recognise.reader import PlateReader
from edge_agent.recognise.statename import NamesSeen
from edge_agent.recognise.tracker import PlateTracker, TrackerSettings


def source_frames(source: str, on_error: ErrorHandler) -> Iterator[np.ndarray]:
    """The frames of a video, a folder of images, one image or a camera, through the agent's own sources
    (unreadable images are reported through `on_error` and skipped)."""
    for frame in open_source(camera_for_path(source, "bench"), on_error).frames():
        yield frame.image


def bench_speed(reader: PlateReader, frames: Iterable[np.ndarray], region: Region = Region(), warmup: int = 2,
                limit: int = 0, tracker_settings: TrackerSettings = TrackerSettings(), side_view: bool = False) -> dict:
    """`side_view`: the frames are a side camera's (`PlateReader.read_frame`)."""
    tracker: PlateTracker[int] = PlateTracker(tracker_settings)
    seen = NamesSeen()  # as the agent keeps for each camera

    def read(image: np.ndarray):
        return reader.read_frame(image, seen=seen, side_view=side_view)

    latencies: list[float] = []
    cpu = 0.0
    passes = []
    sizes: set[tuple[int, int]] = set()
    warm = 0
    wall_start = None
    for index, frame in enumerate(frames):
        if limit and len(latencies) >= limit:
            break
        if warm < warmup:  # ONNX Runtime allocates on its first runs at a size
            read_in(region, read, frame)
            warm += 1
            continue
        sizes.add((frame.shape[1], frame.shape[0]))
        if wall_start is None:
            wall_start = time.perf_counter()
        start, cpu_start = time.perf_counter(), time.process_time()
        readings = read_in(region, read, frame)
        passes += tracker.update("bench", time.perf_counter(), readings, index)
        latencies.append((time.perf_counter() - start) * 1000)
        cpu += time.process_time() - cpu_start
    if not latencies:
        raise EdgeAgentError(f"no frames to time (warm-up takes the first {warmup})")
    wall = time.perf_counter() - wall_start
    passes += tracker.flush(time.perf_counter())
    waits = [p.settled_at - p.first_at for p in passes if p.reason != "flushed"]
    return {
        "frames": len(latencies),
        "frame_sizes": sorted(f"{w}x{h}" for w, h in sizes),
        "fps": round(len(latencies) / wall, 2),
        "median_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "cpu_s_per_frame": round(cpu / len(latencies), 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "passes": len(passes),
        "first_frame_to_read_s_median": round(statistics.median(waits), 3) if waits else None,
        "first_frame_to_read_s_max": round(max(waits), 3) if waits else None,
    }
