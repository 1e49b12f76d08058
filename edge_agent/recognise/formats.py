"""Serial formats of US standard-issue plates, used to rank a reading's candidates.

Pure functions, no I/O. A pattern spells each position as `A` (a letter), `9` (a
digit) or `?` (either): California's 1ABC234 is `9AAA999`. Each state lists the
formats of its standard passenger issues of the last few decades (plates stay on
the road for twenty years and more), from the published serial formats, not
from any photographs. States whose serials are county-coded or vary too much to
list (Alabama, Idaho, Maine, Massachusetts, Montana, Nebraska, South Dakota,
Utah, West Virginia, Wyoming) have no entry: no format is assumed for them.
Vanity and specialty plates follow no format, so a format only ranks the
candidates of one reading; it never rejects a reading. It settles what the
recogniser left open: a state name or graphic read as an extra character
(Arizona's cactus as a leading 4: 4176NWN, where 176NWN fits 999AAA), and O
against 0 (N0X218 in Arkansas is NOX218).
"""

from __future__ import annotations

from edge_agent.records import Candidate

SERIAL_FORMATS: dict[str, tuple[str, ...]] = {
    "AK": ("AAA999",),
    "AR": ("AAA99A", "999AAA", "AAA999"),
    "AZ": ("AAA9999", "999AAA", "AAA999", "???9??"),
    "CA": ("9AAA999", "9A99999", "AAA999", "999AAA"),
    "CO": ("AAAA99", "AAA999", "999AAA"),
    "CT": ("AA99999", "999AAA"),
    "DC": ("AA9999",),
    "DE": ("9", "99", "999", "9999", "99999", "999999"),
    "FL": ("??????",),
    "GA": ("AAA9999", "AAA999"),
    "HI": ("AAA999",),
    "IA": ("AAA999", "999AAA"),
    "IL": ("A999999", "AA99999"),
    "IN": ("999AAA", "9999AAA", "AAA999"),
    "KS": ("999AAA", "9999AAA"),
    "KY": ("999AAA", "AAA999"),
    "LA": ("AAA999",),
    "MD": ("9AA9999", "AAA999"),
    "MI": ("AAA9999", "AAA999", "999AAA"),
    "MN": ("AAA999", "999AAA"),
    "MO": ("AA9A9A", "AAA999", "999AAA"),
    "MS": ("AAA9999", "AAA999"),
    "NC": ("AAA9999", "AAA999"),
    "ND": ("999AAA", "AAA999"),
    "NH": ("9999999", "999999"),
    "NJ": ("A99AAA", "AAA99A", "AAA999"),
    "NM": ("AAA999", "999AAA"),
    "NV": ("999AAA",),
    "NY": ("AAA9999", "AAA999"),
    "OH": ("AAA9999", "AAA999"),
    "OK": ("AAA999", "999AAA"),
    "OR": ("999AAA", "AAA999"),
    "PA": ("AAA9999", "AAA999"),
    "RI": ("999999", "99999", "AA999", "9AA999"),
    "SC": ("AAA999", "999AAA"),
    "TN": ("AAA9999", "999AAA"),
    "TX": ("AAA9999", "AA9A999", "999AAA", "AAA999"),
    "VA": ("AAA9999", "AAA999"),
    "VT": ("AAA999", "999AAA"),
    "WA": ("AAA9999", "999AAA"),
    "WI": ("AAA9999", "999AAA", "AAA999"),
}

# States whose standard serials leave out the letter O (Mississippi, Michigan, as plate
# spotters record the letters each state issues): their Q, whose tail is small, reads as O or 0,
# so a round glyph where the format has a letter is Q there.
NO_LETTER_O = frozenset({"MI", "MS"})

# A candidate that fits none of its state's formats counts for this share of its
# confidence while another candidate of the same reading does fit.
OFF_FORMAT = 0.1


def fits(text: str, pattern: str) -> bool:
    """Whether `text` has the format `pattern` (A a letter, 9 a digit, ? either)."""
    return len(text) == len(pattern) and all(
        p == "?" or (p == "9") == c.isdigit() for c, p in zip(text, pattern)
    )


def fits_state(text: str, state: str | None) -> bool | None:
    """Whether `text` has one of the state's serial formats; None when no format is known for it."""
    formats = SERIAL_FORMATS.get(state or "")
    if formats is None:
        return None
    if state in NO_LETTER_O and "O" in text:
        return False
    return any(fits(text, p) for p in formats)


def o_spelling_to_fit(text: str, state: str | None) -> str | None:
    """`text` with digit 0 read as letter O where one of the state's formats has a letter
    (3550CT in Arkansas, 999AAA: 355OCT), or as Q in a state that issues no O (0 or OTA827 in
    Mississippi: QTA827); or None when no format fits that way."""
    letter, round_glyphs = ("Q", "0O") if state in NO_LETTER_O else ("O", "0")
    for pattern in SERIAL_FORMATS.get(state or "", ()):
        if len(pattern) == len(text) and any(c in round_glyphs for c in text):
            spelled = "".join(letter if c in round_glyphs and p == "A" else c for c, p in zip(text, pattern))
            if spelled != text and fits(spelled, pattern):
                return spelled
    return None


def rank_by_state_format(candidates: list[Candidate], state: str | None) -> list[Candidate]:
    """Candidates re-ranked by the serial formats of the plate's state.

    A candidate whose 0 stands where the state's format has a letter is also
    spelled with O there (the two are one glyph on most plates). With no known
    format for the state, or when no candidate fits one (a vanity plate), the
    list is returned as it came. Otherwise candidates that do not fit count for
    OFF_FORMAT of their confidence: a fitting one comes first unless the
    recogniser found it ten times less likely.
    """
    if SERIAL_FORMATS.get(state or "") is None:
        return candidates
    scored: dict[str, float] = {}
    fitting: set[str] = set()
    for c in candidates:
        if fits_state(c.text, state):
            fitting.add(c.text)
            scored[c.text] = max(scored.get(c.text, 0.0), c.confidence)
            continue
        scored.setdefault(c.text, round(c.confidence * OFF_FORMAT, 4))
        spelled = o_spelling_to_fit(c.text, state)
        if spelled:  # one glyph: the same reading, spelled to fit
            fitting.add(spelled)
            scored[spelled] = max(scored.get(spelled, 0.0), c.confidence)
    if not fitting:
        return candidates  # a vanity plate
    # a fitting candidate wins a tie
    ranked = sorted(scored.items(), key=lambda item: (item[1], item[0] in fitting), reverse=True)
    return [Candidate(text, confidence) for text, confidence in ranked]
