"""The generic OCR call the plate models are measured against: rapidocr with its default settings on the
whole frame, timed in a process of its own (so neither side's memory or thread pools touch the other's).

    python -m edge_agent.bench.generic SOURCE [LIMIT]   -> one JSON line
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import time

from edge_agent.errors import EdgeAgentError

WARMUP = 2


def time_generic_ocr(source: str, limit: int = 0) -> dict:
    """Run this module in a child process over `source`; its figures."""
    done = subprocess.run([sys.executable, "-m", "edge_agent.bench.generic", str(source), str(limit)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise EdgeAgentError(f"generic OCR baseline failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    from rapidocr import RapidOCR

    from edge_agent.bench import percentile
    from edge_agent.bench.speed import source_frames

    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    source, limit = argv[0], int(argv[1]) if len(argv) > 1 else 0
    engine = RapidOCR()
    times, cpu, warm = [], 0.0, 0
    for frame in source_frames(source, lambda message: print(message, file=sys.stderr)):
        if limit and len(times) >= limit:
            break
        if warm < WARMUP:  # as for our reader: the first runs at a size allocate
            engine(frame)
            warm += 1
            continue
        start, cpu_start = time.perf_counter(), time.process_time()
        engine(frame)
        times.append((time.perf_counter() - start) * 1000)
        cpu += time.process_time() - cpu_start
    if not times:
        print("no frames to time", file=sys.stderr)
        return 1
    print(json.dumps({"frames": len(times), "median_ms": round(statistics.median(times), 1),
                      "p95_ms": round(percentile(times, 0.95), 1), "cpu_s_per_frame": round(cpu / len(times), 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
