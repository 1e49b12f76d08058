"""US plate grammar: pure functions over recogniser output, no I/O.

Plates carry A-Z and 0-9 only, 2 to 8 of them. The recogniser's per-step
distributions (folded onto that alphabet) give each character a confidence and
a runner-up, from which ranked whole-plate candidates are built.
"""

from __future__ import annotations

import difflib
import heapq
import itertools
import re
import numpy as np

from edge_agent.recognise.ocr import PLATE_ALPHABET
from edge_agent.records import Candidate

MIN_CHARS, MAX_CHARS = 2, 8
_NON_PLATE = re.compile(r"[^A-Z0-9]")

US_STATES = {
    "AL": "ALABAMA", "AK": "ALASKA", "AZ": "ARIZONA", "AR": "ARKANSAS", "CA": "CALIFORNIA",
    "CO": "COLORADO", "CT": "CONNECTICUT", "DE": "DELAWARE", "DC": "DISTRICT OF COLUMBIA",
    "FL": "FLORIDA", "GA": "GEORGIA", "HI": "HAWAII", "ID": "IDAHO", "IL": "ILLINOIS",
    "IN": "INDIANA", "IA": "IOWA", "KS": "KANSAS", "KY": "KENTUCKY", "LA": "LOUISIANA",
    "ME": "MAINE", "MD": "MARYLAND", "MA": "MASSACHUSETTS", "MI": "MICHIGAN", "MN": "MINNESOTA",
    "MS": "MISSISSIPPI", "MO": "MISSOURI", "MT": "MONTANA", "NE": "NEBRASKA", "NV": "NEVADA",
    "NH": "NEW HAMPSHIRE", "NJ": "NEW JERSEY", "NM": "NEW MEXICO", "NY": "NEW YORK",
    "NC": "NORTH CAROLINA", "ND": "NORTH DAKOTA", "OH": "OHIO", "OK": "OKLAHOMA", "OR": "OREGON",
    "PA": "PENNSYLVANIA", "RI": "RHODE ISLAND", "SC": "SOUTH CAROLINA", "SD": "SOUTH DAKOTA",
    "TN": "TENNESSEE", "TX": "TEXAS", "UT": "UTAH", "VT": "VERMONT", "VA": "VIRGINIA",
    "WA": "WASHINGTON", "WV": "WEST VIRGINIA", "WI": "WISCONSIN", "WY": "WYOMING",
}
# Canada and Mexico appear on California hotlists too.
OTHER_JURISDICTIONS = {"MX", "BC", "AB", "ON", "QC"}
# Plates often print the state as a slogan or web address instead of, or
# beside, its name; these count too (the mottos states have put on plates).
_STATE_ALIASES = {
    "AK": ["NORTH TO THE FUTURE", "THE LAST FRONTIER"],
    "AL": ["HEART OF DIXIE", "STARS FELL ON ALABAMA", "SWEET HOME ALABAMA"],
    "AR": ["THE NATURAL STATE"],
    "AZ": ["GRAND CANYON STATE"],
    "CA": ["DMV CA GOV"],
    "CO": ["COLORFUL COLORADO"],
    "CT": ["CONSTITUTION STATE"],
    "DC": ["WASHINGTON DC", "TAXATION WITHOUT REPRESENTATION", "CELEBRATE DIVERSITY"],
    "DE": ["THE FIRST STATE"],
    "FL": ["SUNSHINE STATE", "MYFLORIDA COM"],
    "GA": ["PEACH STATE"],
    "HI": ["ALOHA STATE"],
    "ID": ["FAMOUS POTATOES", "SCENIC IDAHO"],
    "IL": ["LAND OF LINCOLN"],
    "IN": ["CROSSROADS OF AMERICA", "IN GOD WE TRUST"],
    "KY": ["UNBRIDLED SPIRIT"],
    "LA": ["SPORTSMANS PARADISE", "SPORTSMAN S PARADISE"],
    "MA": ["THE SPIRIT OF AMERICA"],
    "ME": ["VACATIONLAND"],
    "MI": ["PURE MICHIGAN", "GREAT LAKES"],
    "MN": ["EXPLORE MINNESOTA", "10000 LAKES"],
    "MO": ["SHOW ME STATE"],
    "MS": ["MAGNOLIA STATE"],
    "MT": ["BIG SKY COUNTRY", "TREASURE STATE"],
    "NC": ["FIRST IN FLIGHT", "FIRST IN FREEDOM"],
    "ND": ["PEACE GARDEN STATE", "DISCOVER THE SPIRIT"],
    "NH": ["LIVE FREE OR DIE"],
    "NJ": ["GARDEN STATE"],
    "NM": ["LAND OF ENCHANTMENT"],
    "NV": ["SILVER STATE", "HOME MEANS NEVADA"],
    "NY": ["EMPIRE STATE"],
    "OH": ["BIRTHPLACE OF AVIATION", "HEART OF IT ALL"],
    "OK": ["NATIVE AMERICA", "EXPLORE OKLAHOMA"],
    "OR": ["PACIFIC WONDERLAND"],
    "PA": ["VISITPA", "KEYSTONE STATE"],
    "RI": ["OCEAN STATE"],
    "SC": ["WHILE I BREATHE I HOPE"],
    "SD": ["GREAT FACES GREAT PLACES", "MOUNT RUSHMORE"],
    "TN": ["VOLUNTEER STATE"],
    "TX": ["LONE STAR STATE"],
    "UT": ["LIFE ELEVATED", "GREATEST SNOW ON EARTH"],
    "VA": ["VIRGINIA IS FOR LOVERS"],
    "VT": ["GREEN MOUNTAIN STATE"],
    "WA": ["EVERGREEN STATE"],
    "WI": ["AMERICAS DAIRYLAND"],
    "WV": ["WILD WONDERFUL"],
}


def normalise_plate(text: str) -> str:
    """Upper case, A-Z and 0-9 only: how a plate is compared everywhere in the agent."""
    return _NON_PLATE.sub("", text.upper())


def is_valid_plate(text: str) -> bool:
    return MIN_CHARS <= len(text) <= MAX_CHARS and not _NON_PLATE.search(text)


# Letter O and digit 0 are one glyph on most US plates (states leave O out of
# their serial formats, or print both alike), so they are read as 0; where the
# recogniser saw an O the O spelling is kept as a lower-ranked candidate.
_ZERO = 1 + PLATE_ALPHABET.index("0")
_LETTER_O = 1 + PLATE_ALPHABET.index("O")
O_VARIANT_RANK = 1  # the O spelling's place in the candidate list (0 = first)


def _o_read_as_zero(probs: np.ndarray) -> np.ndarray:
    """A copy of `probs` with the letter O's probability given to the digit 0."""
    merged = probs.copy()
    merged[:, _ZERO] += merged[:, _LETTER_O]
    merged[:, _LETTER_O] = 0.0
    return merged


def looks_like_date(text: str) -> bool:
    """Years on registration stickers (2012) and dates stamped by cameras (20140428, 201405) are not plates."""
    if not text.isdigit() or len(text) < 4 or not 1980 <= int(text[:4]) <= 2039:
        return False
    if len(text) >= 6 and not 1 <= int(text[4:6]) <= 12:
        return False
    return len(text) < 8 or 1 <= int(text[6:8]) <= 31


def looks_like_time(text: str) -> bool:
    """Times of day stamped by cameras (073126, 14062514) are not plates."""
    if not text.isdigit() or len(text) not in (6, 8):
        return False
    return int(text[0:2]) < 24 and int(text[2:4]) < 60 and int(text[4:6]) < 60


def ctc_runs(probs: np.ndarray) -> list[tuple[int, int, int]]:
    """The best CTC path's characters: (first step, step after the last, column) of each."""
    best = probs.argmax(axis=1)
    runs: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, len(best) + 1):
        if i == len(best) or best[i] != best[start]:
            if best[start] != 0:
                runs.append((start, i, int(best[start])))
            start = i
    return runs


def ctc_characters(probs: np.ndarray) -> list[tuple[int, int]]:
    """Collapse the best CTC path: for each emitted character, the step where it peaks and its column."""
    return [(start + int(probs[start:end, col].argmax()), col) for start, end, col in ctc_runs(probs)]


def blank_end_characters(probs: np.ndarray, spans: list[tuple[int, int]], step_px: float) -> np.ndarray:
    """`probs` with the characters at either end of the line that lie in one of `spans` (x ranges
    in the strip, `step_px` strip pixels a step) read as blank: print beside the number that is not
    part of it. Characters inside the line are kept, and so is at least one."""
    if not spans:
        return probs
    merged = _o_read_as_zero(probs)  # the characters plate_candidates reads
    runs = ctc_runs(merged)
    tolerance = step_px / 2

    def inside(run: tuple[int, int, int]) -> bool:
        start, end, col = run
        x = (start + int(merged[start:end, col].argmax()) + 0.5) * step_px
        return any(x0 - tolerance <= x <= x1 + tolerance for x0, x1 in spans)

    first, last = 0, len(runs)
    while first < last - 1 and inside(runs[first]):
        first += 1
    while last - 1 > first and inside(runs[last - 1]):
        last -= 1
    dropped = runs[:first] + runs[last:]
    if not dropped:
        return probs
    out = probs.copy()
    for start, end, _ in dropped:
        out[start:end] = 0.0
        out[start:end, 0] = 1.0
    return out


def plate_candidates(probs: np.ndarray, limit: int = 5, max_swaps: int = 2, max_length: int | None = None) -> list[Candidate]:
    """Ranked whole-plate strings from per-step probabilities (column 0 = blank, then PLATE_ALPHABET).

    Each character's runner-up may replace it, or the character may be dropped
    (its step read as blank); a candidate's confidence is the product of its
    characters' probabilities, so the list is ranked by how likely the whole
    string is, not by its best character.
    """
    merged = _o_read_as_zero(probs)
    chars = ctc_characters(merged)
    if not chars or (max_length is not None and len(chars) > max_length):
        return []  # swaps keep the length, so a line too long for a plate has no plate candidates
    best_text, best_p, alt_text, alt_p, blank_p = [], [], [], [], []
    for step, col in chars:
        dist = merged[step]
        best_text.append(PLATE_ALPHABET[col - 1])
        best_p.append(float(dist[col]))
        blank_p.append(float(dist[0]))
        rest = dist[1:].copy()
        rest[col - 1] = -1.0
        alt = int(rest.argmax())
        alt_text.append(PLATE_ALPHABET[alt])
        alt_p.append(max(float(rest[alt]), 1e-6))
    base = float(np.prod(best_p))
    scored = [("".join(best_text), base)]
    positions = range(len(chars))
    for swaps in range(1, max_swaps + 1):
        for combo in itertools.combinations(positions, swaps):
            text = list(best_text)
            p = base
            for pos in combo:
                text[pos] = alt_text[pos]
                p *= alt_p[pos] / max(best_p[pos], 1e-6)
            scored.append(("".join(text), p))
    # an emblem or bolt between characters read as one: the path where that step is blank instead
    # (dropping either of two like characters gives one string; it keeps the likelier path, so
    # no dropped reading outranks the best path)
    dropped: dict[str, float] = {}
    for pos in positions:
        text = "".join(best_text[:pos] + best_text[pos + 1:])
        dropped[text] = max(dropped.get(text, 0.0), base * blank_p[pos] / max(best_p[pos], 1e-6))
    scored.extend(dropped.items())
    top = heapq.nlargest(limit, scored, key=lambda item: item[1])
    candidates = [Candidate(text, round(min(1.0, p), 4)) for text, p in top]
    seen_o = [col == _ZERO and probs[step, _LETTER_O] > probs[step, _ZERO] for step, col in chars]
    if any(seen_o) and limit > 1:
        spelled = "".join("O" if o else c for o, c in zip(seen_o, best_text))
        rank = min(O_VARIANT_RANK, len(candidates))
        below = candidates[rank - 1].confidence if rank else 1.0
        after = candidates[rank].confidence if rank < len(candidates) else 0.0
        candidates = [c for c in candidates if c.text != spelled]
        candidates.insert(rank, Candidate(spelled, round((below + after) / 2, 4)))
        candidates = candidates[:limit]
    return candidates


# Plates carry no colons; cameras stamp the time of day with them ("07:31:2", cut off at the frame's edge).
_CLOCK = re.compile(r"\d\s?:\s?\d")


def plate_likeness(text: str, raw: str) -> float:
    """How much a recognised line looks like a US plate rather than other text, 0..1.

    `text` is the normalised candidate, `raw` what the recogniser printed over its
    full character set: lower-case words and punctuation-heavy strings are signs,
    dealer frames and slogans, not plates.
    """
    n = len(text)
    if not MIN_CHARS <= n <= MAX_CHARS:
        return 0.0
    weight = {2: 0.2, 3: 0.3, 4: 0.6}.get(n, 1.0)
    if looks_like_date(text) or looks_like_time(text) or _CLOCK.search(raw):
        # a whole date or time (20140502) is a camera's stamp; six digits may be a plate that reads like one
        weight *= 0.1 if n == 8 else 0.2
    if not any(c.isdigit() for c in raw or text):  # the raw line: 0 in a candidate may be a word's O
        weight *= 0.6
    # lower case over all the line's characters, digits too: a word is mostly lower case, while a
    # graphic beside a number read as one lower-case letter ("s7524") is not a word
    characters = [c for c in raw if c.isalnum()]
    if characters:
        lower = sum(1 for c in characters if c.islower()) / len(characters)
        weight *= 1.0 - 0.8 * lower
    noise = sum(1 for c in raw if not (c.isalnum() or c in " -·.")) / max(1, len(raw))
    weight *= 1.0 - min(1.0, 2 * noise)
    if sum(1 for c in raw if c in " -·.") > 2:
        weight *= 0.5
    return weight


def _state_names() -> list[tuple[str, str]]:
    names = [(name.replace(" ", ""), code) for code, name in US_STATES.items()]
    for code, aliases in _STATE_ALIASES.items():
        names.extend(("".join(c for c in alias if "A" <= c <= "Z"), code) for alias in aliases)
    return names


_STATE_NAMES = _state_names()


def _letters(text: str) -> str:
    return "".join(c for c in text.upper() if "A" <= c <= "Z")


def _spelling_ratio(letters: str, name: str, min_ratio: float) -> float:
    """How closely `letters` spell `name` (difflib's ratio), or 0 when its cheap upper bounds are
    already under `min_ratio` (they rule out most of the ~150 names before the real ratio)."""
    matcher = difflib.SequenceMatcher(None, letters, name)
    if matcher.real_quick_ratio() < min_ratio or matcher.quick_ratio() < min_ratio:
        return 0.0
    return matcher.ratio()


def state_from_text(text: str, min_ratio: float = 0.8) -> tuple[str, float] | None:
    """The state whose name a text line spells, allowing OCR slips ("CALIFORNlA"), with a 0..1 score."""
    letters = _letters(text)
    if len(letters) < 4:
        return None
    best: tuple[str, float] | None = None
    best_key = None
    for name, code in _STATE_NAMES:
        if name in letters:
            # a name inside a longer line ("VISIT FLORIDA.COM") still names the state
            ratio = 1.0 if len(letters) <= len(name) + 6 else 0.9
        else:
            ratio = _spelling_ratio(letters, name, min_ratio)
        # the longer of two names that fit wins: WEST VIRGINIA, not VIRGINIA;
        # WASHINGTON DC, not WASHINGTON
        key = (ratio, len(name))
        if ratio >= min_ratio and (best_key is None or key > best_key):
            best, best_key = (code, ratio), key
    return best


def spells_state_name(text: str, min_ratio: float = 0.9) -> bool:
    """Whether a line is a state's name or motto and nothing more, allowing OCR slips ("CALIFORNlA");
    not a line that holds one among other letters (IDAHOHI, a vanity plate)."""
    letters = _letters(text)
    return len(letters) >= 4 and any(_spelling_ratio(letters, name, min_ratio) >= min_ratio for name, _ in _STATE_NAMES)
