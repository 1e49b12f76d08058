"""A recognition part that fails, and one that hangs: how long until recognition is back at work, and
whether every vehicle of the clip is still read. The faults are injected around the real reader."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from edge_agent.config import parse_config

PLATES = ["7ABC123", "5TRK442", "8LMN905"]


class _Faulty:
    def __init__(self, real, mode: str, on_call: int = 8):
        self.real, self.mode, self.on_call = real, mode, on_call
        self.calls = 0
        self.fault_at = self.back_at = None
        self.release = threading.Event()

    def read_frame(self, image, seen=None, side_view=False):
        self.calls += 1
        if self.calls == self.on_call:
            self.fault_at = time.monotonic()
            if self.mode == "fail":
                raise RuntimeError("injected failure")
            self.release.wait(60)  # hangs, as a stuck driver call would
        elif self.fault_at is not None and self.back_at is None:
            self.back_at = time.monotonic()
        return self.real.read_frame(image, seen=seen, side_view=side_view)


def bench_restart(work: Path | None = None) -> dict:
    from edge_agent.pipeline import Agent
    from edge_agent.recognise.reader import PlateReader
    from edge_agent.synthetic import render_drive_by

    work = Path(work or tempfile.mkdtemp(prefix="edge-agent-restart-"))
    clip = work / "clip.avi"
    render_drive_by(clip, PLATES, frames_per_car=10)
    real = PlateReader()
    out = {}
    for mode in ("fail", "hang"):
        faulty = _Faulty(real, mode)
        config = parse_config({"agent": {"data_dir": str(work / f"data-{mode}")},
                               "camera": [{"id": "front", "source": "video", "path": str(clip)}],
                               "alerts": {"speak": False}}, "<restart bench>", work)
        agent = Agent(config, out=lambda line: None, reader=faulty)
        summary = agent.run()
        faulty.release.set()
        out[mode] = {"back_after_s": round(faulty.back_at - faulty.fault_at, 2), "restarts": agent.restarts,
                     "vehicles_read": summary.reads, "vehicles": len(PLATES)}
    out["hang_after_s"] = config.recognition.hang_after_s
    out["met"] = all(out[m]["back_after_s"] < 5.0 and out[m]["vehicles_read"] == len(PLATES) for m in ("fail", "hang"))
    return out
