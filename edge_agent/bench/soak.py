"""The soak run: the agent for an hour (or `minutes`) on two cameras, a looping video and an MJPEG stream
that is unplugged and plugged back every few minutes; memory, threads and open files sampled each minute.

Pass criteria (issue 21): memory within 10% of its value after warm-up, no growth of threads or file
descriptors, and every pass of the looping video read once per loop (the loop is longer than the repeat
window, so each loop's cars are new passes).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from edge_agent.bench.broker import free_port
from edge_agent.bench.mjpeg import MjpegCamera
from edge_agent.config import parse_config

SOAK_PLATES = ["7ABC123", "5TRK442", "8LMN905", "6XYZ789", "4JKL321", "9PQR654"]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _counts() -> tuple[int, int]:
    return len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))


def bench_soak(minutes: float = 60.0, warmup_minutes: float = 5.0, outage_every_s: float = 180.0,
               outage_s: float = 20.0, work: Path | None = None, progress: Callable[[str], None] = print) -> dict:
    from edge_agent.pipeline import Agent
    from edge_agent.synthetic import render_drive_by, render_scene

    work = Path(work or tempfile.mkdtemp(prefix="edge-agent-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / "loop.avi"
    frames_per_car = 14
    render_drive_by(clip, SOAK_PLATES, frames_per_car=frames_per_car)
    fps = 5.0  # paces the loop (about 20 s) to be longer than the 10 s repeat window
    stream = MjpegCamera(free_port(), [render_scene([("2MJP456", "California")], size=(1280, 720), seed=i)
                                       for i in range(4)], fps=5.0)
    stream.start()
    config = parse_config({
        "agent": {"unit_id": "soak", "agency": "bench", "data_dir": str(work / "data")},
        "camera": [{"id": "loop", "source": "video", "path": str(clip), "loop": True, "max_fps": fps},
                   {"id": "stream", "source": "rtsp", "url": stream.url}],
        "alerts": {"speak": False},
    }, "<soak>", work)
    agent = Agent(config, out=lambda line: None)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), name="soak-agent")
    started = time.monotonic()
    runner.start()
    samples = []
    outages = 0
    next_outage = started + outage_every_s
    try:
        while (elapsed := time.monotonic() - started) < minutes * 60:
            now = time.monotonic()
            if now >= next_outage:
                stream.stop()
                time.sleep(outage_s)
                stream.start()
                outages += 1
                next_outage = time.monotonic() + outage_every_s
            if not samples or elapsed - samples[-1]["t_s"] >= 60:
                threads, fds = _counts()
                cams = {c.id: c.taken for c in agent.cameras}
                samples.append({"t_s": round(elapsed), "rss_mb": round(_rss_mb(), 1), "threads": threads, "fds": fds,
                                "frames": agent.summary.frames, "reads": agent.summary.reads, "taken": cams})
                progress(f"soak {elapsed / 60:.0f}/{minutes:g} min: rss {samples[-1]['rss_mb']} MB, "
                         f"{threads} threads, {fds} fds, {agent.summary.reads} reads")
            time.sleep(1.0)
    finally:
        stop.set()
        runner.join(30)
        stream.stop()
    from edge_agent.store import Database

    with Database.in_data_dir(config.data_dir) as db:
        per_plate = {r[0]: r[1] for r in db.query(
            "SELECT plate, COUNT(*) FROM reads WHERE camera_id = 'loop' GROUP BY plate")}
        stream_reads = db.query("SELECT COUNT(*) FROM reads WHERE camera_id = 'stream'")[0][0]
    loop_frames = agent.cameras[0].taken
    import cv2

    video = cv2.VideoCapture(str(clip))
    clip_frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT)) or len(SOAK_PLATES) * frames_per_car
    video.release()
    loops = loop_frames / clip_frames
    after = [s for s in samples if s["t_s"] >= warmup_minutes * 60]
    base = after[0] if after else samples[-1]
    rss_spread = max(abs(s["rss_mb"] - base["rss_mb"]) / base["rss_mb"] for s in after) if after else 0.0
    return {
        "minutes": minutes, "outages": outages, "samples": samples,
        "rss_after_warmup_mb": base["rss_mb"], "rss_max_deviation": round(rss_spread, 3),
        "threads_after_warmup": base["threads"], "threads_max": max(s["threads"] for s in after) if after else None,
        "fds_after_warmup": base["fds"], "fds_max": max(s["fds"] for s in after) if after else None,
        "loops": round(loops, 2), "reads_per_plate_on_loop": per_plate, "stream_reads": stream_reads,
        "recognition_restarts": agent.restarts,
        "memory_ok": rss_spread <= 0.10,
        "no_growth": bool(after) and max(s["threads"] for s in after) <= base["threads"] + 2
        and max(s["fds"] for s in after) <= base["fds"] + 4,
        "every_pass_once": bool(per_plate) and all(abs(n - loops) <= 1 for n in per_plate.values())
        and set(per_plate) == set(SOAK_PLATES),
    }
