"""A real Mosquitto on a free loopback port, for the benchmarks and the test suite."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_binary() -> str | None:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return binary if Path(binary).exists() else None


class LocalBroker:
    """Mosquitto started (and stopped or killed) by its caller; a restart keeps the port.

    `extra` lines replace anonymous access, for TLS or passwords. `shipped` is a whole configuration (the
    one in config/mosquitto/, its file paths pointed where the caller keeps them) run as it is but for its
    listener, moved to the free loopback port, and its persistence.
    """

    def __init__(self, workdir: Path, extra: str = "", persistence: bool = False, shipped: str | None = None):
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (scripts/setup installs it)")
        self.binary = binary
        self.port = free_port()
        self.workdir = Path(workdir)
        self.scheme = "mqtts" if "certfile" in extra else "mqtt"
        self.conf = self.workdir / f"mosquitto-{self.port}.conf"
        store = f"persistence true\npersistence_location {self.workdir}/\n" if persistence else "persistence false\n"
        # started as root, mosquitto would drop to its own user, which cannot read private folders
        store += "user root\n" if os.geteuid() == 0 else ""
        if shipped is not None:
            self.scheme = "mqtts"
            lines = [line for line in shipped.splitlines() if not line.startswith(("persistence", "listener"))]
            at = lines.index(next(line for line in lines if line.startswith("protocol")))
            lines.insert(at, f"listener {self.port} 127.0.0.1")
            self.conf.write_text("\n".join(lines) + f"\n{store}log_dest stderr\n")
        else:
            self.conf.write_text(
                f"listener {self.port} 127.0.0.1\n{extra or 'allow_anonymous true'}\n{store}log_dest stderr\n"
                "max_queued_messages 100000\n"
            )
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.workdir / "mosquitto.log", "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
