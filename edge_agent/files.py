"""Writing files that hold secrets: whole or not at all, readable by their owner alone, never replaced by
accident."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from edge_agent.errors import EdgeAgentError

PRIVATE_MODE = 0o600
log = logging.getLogger(__name__)


class FileExistsRefusal(EdgeAgentError):
    """A key or certificate is already there; replacing it needs --force."""


def write_atomic(path: Path, data: bytes, mode: int, force: bool = False) -> Path:
    """Write `data` to `path` through a temporary file in the same folder, created with `mode` (so it is
    never readable by others, not even for a moment), then renamed over the old file. Refuses an existing
    file unless `force`; the old file's mode does not carry over."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsRefusal(f"{path}: already exists; give --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # exactly the mode asked, whatever the umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_private(path: Path, data: bytes, force: bool = False) -> Path:
    """A private key or other secret: mode 0600."""
    return write_atomic(path, data, PRIVATE_MODE, force)


# Under a data directory: folders 0750 and files 0640 (the agent's user, and the edge-agent group whose
# members may use the commands), keys 0600; nothing for other users.
DIR_MODE, FILE_MODE = 0o750, 0o640
_narrowed: set[Path] = set()


def private_folder(folder: Path) -> Path:
    """Make `folder` (0750) if it is missing. The first time a process meets it, narrow every mode under it
    that is wider than allowed (left by an older version or a hand copy) and log each change."""
    folder = Path(folder)
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    resolved = folder.resolve()
    if resolved in _narrowed:
        return folder
    _narrowed.add(resolved)
    if resolved.stat().st_mode & (stat.S_ISVTX | stat.S_IWOTH):
        # a shared folder (/tmp): not the agent's to narrow, nor is anything else in it
        log.warning("%s is a folder shared with other users: keep the agent's files in a folder of its own", folder)
        return folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        allowed = DIR_MODE if path.is_dir() else PRIVATE_MODE if path.suffix == ".key" else FILE_MODE
        narrow_mode(path, allowed)
    return folder


def narrow_mode(path: Path, allowed: int, new: bool = False) -> None:
    """Take away any permission bit of `path` beyond `allowed` (never adds one), and log it unless the file
    is `new` (just made by a library that follows the umask alone, such as SQLite)."""
    try:
        mode = path.stat().st_mode & 0o7777
        if mode & ~allowed:
            os.chmod(path, mode & allowed)
            if not new:
                    log.warning("%s: mode %04o was wider than %04o; now %04o", path, mode, allowed, mode & allowed)
    except OSError as exc:
        log.warning("%s: cannot narrow its mode: %s", path, exc.strerror)
