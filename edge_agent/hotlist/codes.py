"""Plates as integers, and the misreads an OCR makes of them: pure functions, no I/O.

A plate of up to eight characters from A-Z and 0-9 packs into one int64 (base
37, left-aligned, 0 for "no character"), so a million-entry list is one sorted
array that loads in milliseconds and answers a batch of lookups with a single
`searchsorted`. Misread tolerance is then arithmetic on codes: a confusion is
adding (new - old) * 37**k, a dropped character is shifting the tail one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from edge_agent.recognise.plate import CONFUSION_GROUPS, MAX_CHARS, normalise_plate

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BASE = len(ALPHABET) + 1
WIDTH = MAX_CHARS
PLACE = [BASE ** (WIDTH - 1 - i) for i in range(WIDTH)]
_PLACE = np.array(PLACE, dtype=np.int64)
_VALUE = {c: i + 1 for i, c in enumerate(ALPHABET)}
_LUT = np.zeros(256, dtype=np.int64)
for _c, _v in _VALUE.items():
    _LUT[ord(_c)] = _v
_ALL_VALUES = np.arange(1, BASE, dtype=np.int64)

# Characters an OCR mistakes for one another on plates. Each group is symmetric:
# any member may have been read as any other.
CONFUSIONS: dict[str, str] = {}
for _group in CONFUSION_GROUPS:
    for _ch in _group:
        CONFUSIONS[_ch] = CONFUSIONS.get(_ch, "") + _group.replace(_ch, "")


def encode(plate: str) -> int:
    """The code of a normalised plate (1 to 8 characters of A-Z, 0-9)."""
    code = 0
    for i, ch in enumerate(plate):
        code += _VALUE[ch] * PLACE[i]
    return code


def decode(code: int) -> str:
    chars = []
    for place in PLACE:
        value, code = divmod(code, place)
        if value == 0:
            break
        chars.append(ALPHABET[value - 1])
    return "".join(chars)


def encode_many(plates: list[str]) -> np.ndarray:
    """Codes for many normalised plates at once (vectorised; a million in well under a second)."""
    if not plates:
        return np.zeros(0, dtype=np.int64)
    raw = np.array(plates, dtype=f"S{WIDTH}").view(np.uint8).reshape(len(plates), WIDTH)
    return _LUT[raw] @ _PLACE


def confusion_variants(plate: str) -> list[str]:
    """Every plate that differs from `plate` by one OCR confusion."""
    out = []
    for i, ch in enumerate(plate):
        for alt in CONFUSIONS.get(ch, ""):
            out.append(plate[:i] + alt + plate[i + 1:])
    return out


def dropped_variants(plate: str) -> list[str]:
    """Every plate that `plate` could be with one character the OCR dropped (as strings; for tests and benches)."""
    if len(plate) >= WIDTH:
        return []
    return sorted({plate[:i] + ch + plate[i:] for i in range(len(plate) + 1) for ch in ALPHABET})


# A read this short, or shaped like a whole plate of a common format, is not taken for a plate
# with a character missing: against a million entries, one inserted character of any of 36 at any
# position finds a listed plate for about 6% of such reads, and each would be a needless stop.
MIN_DROPPED_READ = 4
COMPLETE_SHAPES = frozenset({"AAA999", "999AAA"})


def shape(plate: str) -> str:
    return "".join("9" if ch.isdigit() else "A" for ch in plate)


def may_have_dropped(plate: str) -> bool:
    return MIN_DROPPED_READ <= len(plate) < WIDTH and shape(plate) not in COMPLETE_SHAPES


def misread_codes(plate: str) -> np.ndarray:
    """Codes of every plate `plate` may be a misread of: one confusion, or one dropped character."""
    code = encode(plate)
    subs = [code + (_VALUE[alt] - _VALUE[ch]) * PLACE[i]
            for i, ch in enumerate(plate) for alt in CONFUSIONS.get(ch, "")]
    n = len(plate)
    if not may_have_dropped(plate):
        return np.array(subs, dtype=np.int64)
    # Inserting x at position p: the head stays, x takes place p, the tail moves one place right.
    bases, places = [], []
    head = 0
    for p in range(n + 1):
        tail = code - head
        bases.append(head + tail // BASE)
        places.append(PLACE[p])
        if p < n:
            head += _VALUE[plate[p]] * PLACE[p]
    inserted = (np.array(bases, dtype=np.int64)[:, None] + np.array(places, dtype=np.int64)[:, None] * _ALL_VALUES).ravel()
    return np.concatenate([np.array(subs, dtype=np.int64), inserted])


# --- wildcard patterns for officers' partial plates -------------------------

_PATTERN_CHARS = re.compile(r"^[A-Z0-9?*]+$")
MIN_LITERALS = 3


@dataclass(frozen=True)
class PlatePattern:
    """A plate as an officer enters it: `?` is one unknown character, `*` any number of them."""

    text: str
    regex: re.Pattern

    @property
    def is_wildcard(self) -> bool:
        return "?" in self.text or "*" in self.text

    def matches(self, plate: str) -> bool:
        return self.regex.fullmatch(plate) is not None


def parse_pattern(raw: str) -> PlatePattern:
    """Validate and compile an officer's plate. Raises ValueError with the reason, for one clear message."""
    text = re.sub(r"[\s-]", "", raw.upper())
    if not text:
        raise ValueError("plate is empty")
    if not _PATTERN_CHARS.match(text):
        bad = sorted(set(re.sub(r"[A-Z0-9?*]", "", text)))
        raise ValueError(f"plate {raw!r} has {''.join(bad)!r}: only A-Z, 0-9 and the wildcards ? and * are allowed")
    text = re.sub(r"\*+", "*", text)
    fixed = len(text.replace("*", ""))
    if fixed > MAX_CHARS:
        raise ValueError(f"plate {raw[:40]!r}{'...' if len(raw) > 40 else ''} is longer than {MAX_CHARS} characters")
    literals = sum(ch.isalnum() for ch in text)
    if (text.count("?") or "*" in text) and literals < MIN_LITERALS:
        raise ValueError(f"plate {raw!r} has {literals} known character(s); a partial plate needs at least "
                         f"{MIN_LITERALS}, or it would match a large share of all cars")
    regex = re.compile("".join("." if ch == "?" else ".*" if ch == "*" else ch for ch in text))
    return PlatePattern(text, regex)


def query_plate(raw: str) -> str:
    """A plate typed or piped in for a lookup, normalised; ValueError with the reason when it cannot be a plate."""
    if not raw.isascii():
        raise ValueError(f"plate {raw[:40]!r} has a character outside A-Z and 0-9")
    plate = normalise_plate(raw)
    if not plate:
        raise ValueError(f"plate {raw[:40]!r} has no letters or digits")
    if len(plate) > MAX_CHARS:
        raise ValueError(f"plate {raw[:40]!r}{'...' if len(raw) > 40 else ''} is {len(plate)} characters; "
                         f"plates have at most {MAX_CHARS}")
    return plate
