"""A throwaway PostgreSQL server in a temporary folder on a free loopback port, for the station's tests and
benchmarks (Debian's postgresql package; run as the postgres user when root, as initdb requires)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from edge_agent.bench.broker import free_port


def postgres_bindir() -> Path | None:
    initdb = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)), None)
    return Path(initdb).resolve().parent if initdb and Path(initdb).exists() else None


@contextmanager
def throwaway_postgres(parent: Path = Path("/tmp"), settings: tuple[str, ...] = ()) -> Iterator[str]:
    """Start a fresh cluster, yield its postgresql:// URL, and remove it all afterwards."""
    bindir = postgres_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
    port = free_port()
    folder = Path(parent) / f"pg-{os.getpid()}-{port}"
    folder.mkdir(parents=True)
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    options = " ".join([f"-p {port}", f"-k {folder}", "-c listen_addresses=127.0.0.1",
                        *(f"-c {s}" for s in settings)])
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "alpr"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w",
                        "-o", options, "start"], check=True, stdout=subprocess.DEVNULL)
        yield f"postgresql://alpr@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(folder, ignore_errors=True)
