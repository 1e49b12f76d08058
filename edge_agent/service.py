"""The agent as a systemd service: readiness and watchdog notifications, and the status it publishes.

Notifications use systemd's datagram protocol directly (`$NOTIFY_SOCKET`), so nothing more is installed on a
unit. The watchdog is fed only while `health()` finds the agent's own loop making progress; a part that
hangs where it cannot be restarted in place stops the feeding, and systemd restarts the agent.

The running agent writes its figures to `status.json` in its runtime folder (`$RUNTIME_DIRECTORY`, or
DATA_DIR/run); `edge-agent status` reads them from there.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_agent.files import private_folder, write_atomic

STATUS_FILE = "status.json"
STALE_AFTER_S = 15.0  # a status file older than this was left by an agent that is no longer running
CAMERA_QUIET_S = 5.0  # a working camera with no frame taken by recognition for this long is not progressing


class Notifier:
    """sd_notify(3) without libsystemd. Outside systemd (no $NOTIFY_SOCKET) every call does nothing."""

    def __init__(self, address: str | None = None):
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # an abstract socket
            address = "\0" + address[1:]
        self.address = address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if address else None
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        wanted = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.watchdog_s = int(usec) / 1e6 if wanted else None
        self._last_status = ""
        self._fed_at = float("-inf")

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *lines: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError:
            pass  # systemd gone (shutdown) or a socket we may not write: the agent carries on regardless

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def watchdog(self) -> None:
        now = time.monotonic()
        if now - self._fed_at >= 1.0:  # the loop calls this often; systemd needs it once per WatchdogSec/2
            self._fed_at = now
            self.send("WATCHDOG=1")

    def status(self, line: str) -> None:
        if line != self._last_status:
            self._last_status = line
            self.send(f"STATUS={line}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping: storing the last reads")


@dataclass
class CameraState:
    """One camera as the agent sees it. `state`: starting | ok | out | ended."""

    id: str
    live: bool
    state: str = "starting"
    problem: str = ""
    frames: int = 0  # delivered by the camera
    taken: int = 0  # taken by recognition
    opened: int = 0
    last_frame: float | None = None  # monotonic
    last_taken: float | None = None
    fps: float = 0.0
    _window: list = field(default_factory=list, repr=False)

    @property
    def camera_id(self) -> str:  # what FrameBoard keys its buffers by
        return self.id

    def delivered(self, now: float) -> None:
        self.frames += 1
        self.last_frame = now
        self.state, self.problem = "ok", ""

    def measure(self, now: float) -> None:
        """Frames a second over the last ten seconds; a camera that sends nothing for a while is stalled."""
        if self.state == "ok" and self.last_frame is not None and now - self.last_frame > CAMERA_QUIET_S:
            self.state, self.problem = "stalled", f"no frame for {now - self.last_frame:.0f} s"
        self._window.append((now, self.frames))
        while len(self._window) > 2 and now - self._window[0][0] > 10:
            self._window.pop(0)
        (t0, f0), (t1, f1) = self._window[0], self._window[-1]
        self.fps = (f1 - f0) / (t1 - t0) if t1 > t0 else 0.0

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_") and k not in ("last_frame", "last_taken")}
        out["fps"] = round(self.fps, 1)
        return out


@dataclass(frozen=True)
class WorkerState:
    """What the recognition part is doing: `phase` is idle | read | store, since a monotonic time."""

    phase: str
    since: float


def health(now: float, cameras: list[CameraState], worker: WorkerState, hang_after_s: float,
           store_hung: bool = False) -> list[str]:
    """Why the agent's loop is not making progress; empty when it is (and the watchdog may be fed).

    A camera that is out is not a reason: the agent retries it and reports it, and a restart would not plug
    it back in. A full disk is not one either: a restart frees no space and loses the reads held in memory."""
    problems = []
    if worker.phase != "idle" and now - worker.since > hang_after_s:
        problems.append(f"recognition stuck in {worker.phase} for {now - worker.since:.0f} s")
    if store_hung:
        problems.append("the store does not take writes")
    for c in cameras:
        if c.state == "ok" and c.last_frame is not None and now - c.last_frame < CAMERA_QUIET_S:
            if c.last_taken is None or now - c.last_taken > CAMERA_QUIET_S:
                problems.append(f"camera {c.id}: frames are not reaching recognition")
    return problems


def runtime_folder(data_dir: Path) -> Path:
    folder = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(folder) if folder else Path(data_dir) / "run"


def write_status(folder: Path, status: dict) -> Path:
    private_folder(folder)
    return write_atomic(folder / STATUS_FILE, json.dumps(status, indent=1).encode(), 0o640, force=True)


def read_status(folder: Path, now: float | None = None) -> tuple[dict | None, str]:
    """(the running agent's status, "") or (None, why there is none)."""
    path = Path(folder) / STATUS_FILE
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        return None, f"{path}: no status: the agent is not running (or runs with another data directory)"
    except (OSError, ValueError) as exc:
        return None, f"{path}: cannot be read: {exc}"
    age = (now or time.time()) - status.get("written_at", 0)
    pid = status.get("pid")
    alive = isinstance(pid, int) and Path(f"/proc/{pid}").exists()
    if age > STALE_AFTER_S or not alive:
        return None, f"{path}: the agent stopped writing its status {age:.0f} s ago; it is not running"
    return status, ""


def process_age_s() -> float | None:
    """Seconds since this process started (the kernel's count, so interpreter start-up is included)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu_temperature_c() -> float | None:
    """The SoC temperature where the board reports it (Raspberry Pi, Jetson); None elsewhere."""
    for zone in sorted(Path("/sys/class/thermal").glob("thermal_zone*/temp")):
        try:
            return int(zone.read_text().strip()) / 1000.0
        except (OSError, ValueError):
            continue
    return None


def disk_use(folder: Path) -> dict:
    usage = shutil.disk_usage(folder)
    return {"free_mb": round(usage.free / 1048576), "used_share": round(1 - usage.free / usage.total, 3)}


def status_line(status: dict) -> str:
    """The one line systemd shows: cameras and their rates, reads an hour, hits today, waiting records."""
    cams = " ".join(f"{c['id']}:{c['state'] if c['state'] != 'ok' else format(c['fps'], '.1f') + 'fps'}"
                    for c in status.get("cameras", []))
    return (f"{cams or 'no cameras'}; {status.get('reads_last_hour', 0)} reads/h, {status.get('hits_today', 0)} hits "
            f"today, {status.get('waiting', 0)} waiting to sync")
