"""Hotlists: import agency extracts and updates, keep officers' entries, match reads against the list in force.

parse.py reads extracts (pure), codes.py turns plates and their likely misreads
into integers (pure), index.py matches (in memory), storage.py keeps versions in
the database, signing.py checks the station's signature. This module ties them
together for the CLI and the agent.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from edge_agent.config import HotlistConfig
from edge_agent.errors import HotlistError
from edge_agent.hotlist.codes import parse_pattern, query_plate
from edge_agent.hotlist.index import MATCH_KINDS, EntryTable, HotlistIndex, LocalEntry, hit_order, list_priority
from edge_agent.hotlist.parse import (
    LISTS, STATES, HotlistFormat, HotlistRow, HotlistStream, ParsedHotlist, RowError, open_hotlist_file, parse_hotlist,
    read_hotlist_file,
)
from edge_agent.hotlist.storage import (
    HotlistVersion, ImportResult, SignedInfo, active_version, add_local, apply_hotlist, entry_details,
    hotlist_generation, load_index, local_entries, remove_local,
)
from edge_agent.store import Database

__all__ = [
    "LISTS", "STATES", "MATCH_KINDS", "EntryTable", "HotlistConfig", "HotlistError", "HotlistFormat", "HotlistIndex",
    "HotlistRow", "HotlistVersion", "ImportResult", "LocalEntry", "ParsedHotlist", "RowError", "SignedInfo",
    "active_version", "add_local", "apply_hotlist", "entry_details", "hit_order", "hotlist_generation",
    "import_file", "import_payload", "list_priority", "load_index", "local_entries", "open_hotlist_file", "parse_hotlist",
    "parse_pattern", "query_plate", "read_hotlist_file", "remove_local",
]


def import_file(db: Database, config: HotlistConfig, path: Path, user: str, signature: Path | None = None,
                force: bool = False, on_rows=None) -> tuple[HotlistStream, ImportResult]:
    """Import an extract or an update from disk, checking its signature when the unit has a station key."""
    parsed = open_hotlist_file(path, config.layout, config.max_file_mb * 1024 * 1024)
    parsed.on_rows = on_rows
    beside = path.with_name(path.name + ".sig")
    sig_path = signature or (beside if beside.exists() else None)
    signed = None
    if config.public_key is not None:
        from edge_agent.hotlist import signing

        if sig_path is None:
            raise HotlistError(f"{path}: unsigned; this unit takes only lists signed by the station key "
                               f"{config.public_key} (give --signature FILE); the list in force stays")
        try:
            envelope_text = sig_path.read_bytes()
        except OSError as exc:
            raise HotlistError(f"{sig_path}: cannot be read: {exc.strerror or exc}; the list in force stays") from None
        envelope = signing.Envelope.from_json(envelope_text, str(sig_path))
        signed = signing.verify(signing.load_public_key(config.public_key), envelope, parsed.sha256, parsed.kind, str(path))
    elif signature is not None:
        raise HotlistError(f"{path}: a signature was given but hotlist.public_key is not configured to check it")
    return parsed, apply_hotlist(db, parsed, user, signed=signed, force=force, min_fraction=config.min_fraction_of_previous)


def import_payload(db: Database, config: HotlistConfig, payload: bytes, where: str,
                   user: str = "station") -> tuple[ParsedHotlist, ImportResult]:
    """Import a signed list that arrived from the station (envelope line + list). Unsigned lists are refused."""
    from edge_agent.hotlist import signing

    if config.public_key is None:
        raise HotlistError(f"{where}: a list arrived but hotlist.public_key is not configured, so it cannot be "
                           "trusted; the list in force stays")
    envelope, data = signing.unpack(payload, where)
    if len(data) > config.max_file_mb * 1024 * 1024:
        raise HotlistError(f"{where}: {len(data):,} bytes is over hotlist.max_file_mb; the list in force stays")
    # The signature is checked before a byte of the list is parsed.
    signed = signing.verify(signing.load_public_key(config.public_key), envelope, hashlib.sha256(data).hexdigest(),
                            None, where)
    parsed = parse_hotlist(data, config.layout, f"{where} (version {envelope.version})")
    if parsed.kind != envelope.kind:
        raise HotlistError(f"{where}: signed as a {envelope.kind} list but holds a {parsed.kind} list; "
                           "the list in force stays")
    return parsed, apply_hotlist(db, parsed, user, signed=signed, force=True)
