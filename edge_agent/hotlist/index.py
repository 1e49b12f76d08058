"""The list in force, in memory, and matching reads against it.

DOJ entries live in sorted numpy arrays keyed by plate code (see codes.py):
about 40 bytes an entry, loaded from the blobs the import stored, so a unit is
ready to match a million entries a fraction of a second after start-up. The
officers' own entries are few and sit beside them: plain plates in a second
table, wildcard plates as compiled patterns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Iterable, Sequence

import numpy as np

from edge_agent.hotlist.codes import PlatePattern, decode, encode, encode_many, misread_codes
from edge_agent.hotlist.parse import LISTS, HotlistRow
from edge_agent.recognise.plate import MAX_CHARS, normalise_plate
from edge_agent.records import Hit

# Strongest first; within one list, a stronger kind of match is shown first.
MATCH_KINDS = ("exact", "state-mismatch", "partial", "misread")
_KIND_RANK = {k: i for i, k in enumerate(MATCH_KINDS)}
_LIST_INDEX = {name: i for i, name in enumerate(LISTS)}
MAX_OTHER_CANDIDATES = 2


def list_priority(list_name: str) -> int:
    return _LIST_INDEX.get(list_name, len(LISTS))


def hit_order(hit: Hit) -> tuple[int, int]:
    """Alert order: list priority first (an Amber alert outranks a stolen plate), then how strong the match is."""
    return list_priority(hit.list_name), _KIND_RANK.get(hit.match, len(MATCH_KINDS))


def _day(iso: str | None) -> int:
    return date.fromisoformat(iso).toordinal() if iso else 0


@dataclass(frozen=True)
class EntryTable:
    """Entries sorted by plate code, as parallel arrays."""

    codes: np.ndarray  # int64, sorted
    ids: np.ndarray  # int64: the entry's row id in the database
    states: np.ndarray  # S2; b"" for "any state"
    lists: np.ndarray  # uint8 index into LISTS
    nics: np.ndarray  # S16
    expires: np.ndarray  # int32 proleptic ordinal of the last day it matches; 0 for never

    BLOBS = ("codes", "ids", "states", "lists", "nics", "expires")
    DTYPES = {"codes": np.int64, "ids": np.int64, "states": "S2", "lists": np.uint8, "nics": "S16", "expires": np.int32}

    @classmethod
    def empty(cls) -> "EntryTable":
        return cls(*(np.zeros(0, dtype=cls.DTYPES[name]) for name in cls.BLOBS))

    @classmethod
    def build(cls, ids: Sequence[int], plates: list[str], states: list[str], lists: list[str],
              nics: list[str], expires: list[str | None], sort: bool = True) -> "EntryTable":
        if not plates:
            return cls.empty()
        table = cls(
            codes=encode_many(plates),
            ids=np.asarray(ids, dtype=np.int64),
            states=np.array(states, dtype="S2"),
            lists=np.array([_LIST_INDEX[x] for x in lists], dtype=np.uint8),
            nics=np.array(nics, dtype="S16"),
            expires=np.array([_day(x) for x in expires], dtype=np.int32),
        )
        return table.sorted() if sort else table

    @classmethod
    def concat(cls, parts: list["EntryTable"]) -> "EntryTable":
        """One sorted table from unsorted parts (an import builds its table batch by batch)."""
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.BLOBS)).sorted()

    def sorted(self) -> "EntryTable":
        order = np.argsort(self.codes, kind="stable")
        return EntryTable(*(getattr(self, name)[order] for name in self.BLOBS))

    @classmethod
    def from_blobs(cls, blobs: dict[str, bytes]) -> "EntryTable":
        return cls(*(np.frombuffer(blobs[name], dtype=cls.DTYPES[name]) for name in cls.BLOBS))

    def to_blobs(self) -> dict[str, bytes]:
        return {name: getattr(self, name).tobytes() for name in self.BLOBS}

    def __len__(self) -> int:
        return len(self.codes)

    def positions(self, code: int) -> range:
        left, right = np.searchsorted(self.codes, [code, code + 1])
        return range(int(left), int(right))

    def positions_of_any(self, codes: np.ndarray) -> np.ndarray:
        """Positions of every entry whose code is in `codes`."""
        n = len(self.codes)
        if n == 0 or len(codes) == 0:
            return np.zeros(0, dtype=np.int64)
        left = np.searchsorted(self.codes, codes, "left")
        found = left < n
        found[found] = self.codes[left[found]] == codes[found]
        if not found.any():
            return np.zeros(0, dtype=np.int64)
        left = left[found]
        right = np.searchsorted(self.codes, codes[found], "right")
        if np.all(right - left == 1):
            return np.unique(left)
        return np.unique(np.concatenate([np.arange(a, b) for a, b in zip(left, right)]))


@dataclass(frozen=True)
class LocalEntry:
    """An officer's entry: a plate or a partial plate with wildcards."""

    id: int
    pattern: PlatePattern
    state: str  # "" when the officer did not give one
    list_name: str
    reason: str
    entered_by: str
    expires: str | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "plate": self.pattern.text, "state": self.state, "list": self.list_name,
                "reason": self.reason, "entered_by": self.entered_by, "expires": self.expires,
                "partial": self.pattern.is_wildcard}


@dataclass
class HotlistIndex:
    doj: EntryTable = field(default_factory=EntryTable.empty)
    local: EntryTable = field(default_factory=EntryTable.empty)
    local_entries: dict[int, LocalEntry] = field(default_factory=dict)
    version: int | None = None
    generation: tuple = ()  # what the database looked like when this was loaded

    def __post_init__(self) -> None:
        # Expiry as a day number once, not parsed again for every read.
        self._wildcards = [(e, _day(e.expires) or None) for e in self.local_entries.values() if e.pattern.is_wildcard]

    @classmethod
    def from_rows(cls, rows: Iterable[HotlistRow], local: Iterable[LocalEntry] = (), version: int | None = None) -> "HotlistIndex":
        """An index straight from parsed rows (tests and tools; the agent loads from the database)."""
        rows = list(rows)
        doj = EntryTable.build([r.line for r in rows], [r.plate for r in rows], [r.state for r in rows],
                               [r.list_name for r in rows], [r.nic for r in rows], [r.expires for r in rows])
        return cls(doj, local_table(list(local)), {e.id: e for e in local}, version)

    def __len__(self) -> int:
        return len(self.doj) + len(self.local_entries)

    # matching --------------------------------------------------------------

    def exact(self, plate: str, state: str | None = None, today: date | None = None) -> list[Hit]:
        """Hits whose plate is exactly `plate`: `exact` when the state agrees, else `state-mismatch`."""
        plate = normalise_plate(plate)
        if not 1 <= len(plate) <= MAX_CHARS:
            return []
        hits = self._exact_hits(encode(plate), state, (today or _today()).toordinal())
        return sorted(hits.values(), key=hit_order)

    def _exact_hits(self, code: int, state: str | None, day: int) -> dict[tuple[str, int], Hit]:
        hits = {}
        for table, source in ((self.doj, "hotlist"), (self.local, "local")):
            for pos in table.positions(code):
                if _live(table, pos, day):
                    hits[(source, int(table.ids[pos]))] = self._hit(table, source, pos, _state_kind(table, pos, state))
        return hits

    def match(self, plate: str, state: str | None = None, candidates: Sequence[str] = (),
              today: date | None = None) -> list[Hit]:
        """Every hit for one read, highest priority first, each labelled with its kind of match.

        `candidates` are the reader's other readings of the same plate, best first;
        an entry one OCR confusion or one dropped character away from the read or
        from one of them is a `misread`; an officer's wildcard plate is `partial`.
        """
        text = normalise_plate(plate)
        if not 1 <= len(text) <= MAX_CHARS:
            return []
        day = (today or _today()).toordinal()
        texts = [text]
        for c in candidates:
            c = normalise_plate(c)
            if c and len(c) <= MAX_CHARS and c not in texts and len(texts) <= MAX_OTHER_CANDIDATES:
                texts.append(c)
        code = encode(text)
        hits = self._exact_hits(code, state, day)
        variants = [misread_codes(t) for t in texts]
        variants.extend(np.array([encode(t)], dtype=np.int64) for t in texts[1:])
        near = np.concatenate(variants)
        near = near[near != code]
        for table, source in ((self.doj, "hotlist"), (self.local, "local")):
            for pos in table.positions_of_any(near):
                key = (source, int(table.ids[pos]))
                if key not in hits and _live(table, pos, day):
                    hits[key] = self._hit(table, source, int(pos), "misread")
        for entry, expires in self._wildcards:
            if (expires is None or expires >= day) and any(entry.pattern.matches(t) for t in texts):
                hits[("local", entry.id)] = self._local_hit(entry, "partial")
        return sorted(hits.values(), key=hit_order)

    def _hit(self, table: EntryTable, source: str, pos: int, kind: str) -> Hit:
        entry_id = int(table.ids[pos])
        if source == "local":
            return self._local_hit(self.local_entries[entry_id], kind)
        return Hit(lic=decode(int(table.codes[pos])), lis=table.states[pos].decode(), list_name=LISTS[table.lists[pos]],
                   match=kind, nic=table.nics[pos].decode(), source=source, entry_id=entry_id)

    @staticmethod
    def _local_hit(entry: LocalEntry, kind: str) -> Hit:
        return Hit(lic=entry.pattern.text, lis=entry.state, list_name=entry.list_name, match=kind,
                   nic=f"LOCAL-{entry.id}", source="local", entry_id=entry.id,
                   details={"reason": entry.reason, "entered_by": entry.entered_by})


def local_table(entries: list[LocalEntry]) -> EntryTable:
    plain = [e for e in entries if not e.pattern.is_wildcard]
    return EntryTable.build([e.id for e in plain], [e.pattern.text for e in plain], [e.state for e in plain],
                            [e.list_name for e in plain], [f"LOCAL-{e.id}" for e in plain], [e.expires for e in plain])


def _live(table: EntryTable, pos: int, day: int) -> bool:
    expires = int(table.expires[pos])
    return expires == 0 or expires >= day


def _state_kind(table: EntryTable, pos: int, state: str | None) -> str:
    listed = table.states[pos].decode()
    return "exact" if not listed or (state and state.upper() == listed) else "state-mismatch"


def _today() -> date:
    return datetime.now(timezone.utc).date()
