"""US plate grammar: pure functions over recogniser output, no I/O.

Plates carry A-Z and 0-9 only, 2 to 8 of them. The recogniser's per-step
distributions (folded onto that alphabet) give each character a confidence and
a runner-up, from which ranked whole-plate candidates are built.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np

from edge_agent.recognise.runtime import PLATE_ALPHABET
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


def looks_like_year(text: str) -> bool:
    """A registration sticker's year (2012) read alone is not a plate: no state issues four-digit serials
    that are this century's years (Delaware's short all-digit numbers stop at 6 digits, but a year alone
    is far likelier a sticker)."""
    return len(text) == 4 and text.isdigit() and 1980 <= int(text) <= 2039


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


def plate_candidates(probs: np.ndarray, limit: int = 5, max_swaps: int = 2, max_length: int | None = None,
                     o_as_zero: bool = True) -> list[Candidate]:
    """Ranked whole-plate strings from per-step probabilities (column 0 = blank, then PLATE_ALPHABET).

    Each character's runner-up may replace it, or the character may be dropped
    (its step read as blank); a candidate's confidence is the product of its
    characters' probabilities, so the list is ranked by how likely the whole
    string is, not by its best character. With `o_as_zero`, letter O is read as digit 0 (see above).
    """
    merged = _o_read_as_zero(probs) if o_as_zero else probs
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
    if o_as_zero and any(seen_o) and limit > 1:
        spelled = "".join("O" if o else c for o, c in zip(seen_o, best_text))
        rank = min(O_VARIANT_RANK, len(candidates))
        below = candidates[rank - 1].confidence if rank else 1.0
        after = candidates[rank].confidence if rank < len(candidates) else 0.0
        candidates = [c for c in candidates if c.text != spelled]
        candidates.insert(rank, Candidate(spelled, round((below + after) / 2, 4)))
        candidates = candidates[:limit]
    return candidates


def ctc_log_likelihoods(probs: np.ndarray, texts: list[str]) -> np.ndarray:
    """log P(text) under per-step probabilities (T, 1 + len(PLATE_ALPHABET); column 0 the blank) for each
    text: the sum over every CTC path that collapses to it (the forward algorithm), all texts at once."""
    steps = probs.shape[0]
    longest = max((len(t) for t in texts), default=0)
    width = 2 * longest + 1
    # each text's extended label: blank, c1, blank, c2, ..., blank; padded with blanks past its end
    labels = np.zeros((len(texts), width), np.int64)
    lengths = np.array([2 * len(t) + 1 for t in texts])
    for k, text in enumerate(texts):
        labels[k, 1:2 * len(text):2] = [1 + PLATE_ALPHABET.index(c) for c in text]
    # a step may skip the blank between two characters that differ
    skip = np.zeros_like(labels, bool)
    skip[:, 2:] = (labels[:, 2:] != 0) & (labels[:, 2:] != labels[:, :-2])
    inside = np.arange(width)[None, :] < lengths[:, None]
    logp = np.log(np.maximum(probs, 1e-30))
    alpha = np.full((len(texts), width), -np.inf)
    alpha[:, 0] = logp[0, 0]
    alpha[:, 1] = np.where(lengths > 1, logp[0, labels[:, 1]], -np.inf)
    for t in range(1, steps):
        stay = alpha
        advance = np.concatenate([np.full((len(texts), 1), -np.inf), alpha[:, :-1]], axis=1)
        jump = np.concatenate([np.full((len(texts), 2), -np.inf), alpha[:, :-2]], axis=1)
        jump = np.where(skip, jump, -np.inf)
        alpha = np.logaddexp(np.logaddexp(stay, advance), jump) + logp[t, labels]
        alpha = np.where(inside, alpha, -np.inf)
    rows = np.arange(len(texts))
    last = alpha[rows, lengths - 1]
    before = np.where(lengths > 1, alpha[rows, np.maximum(lengths - 2, 0)], -np.inf)
    return np.logaddexp(last, before)


def character_log_odds(plates: Iterable[str]) -> dict[str, float]:
    """How much likelier each character of PLATE_ALPHABET is on a plate than at random: the log of its share
    of the characters of `plates`, times the alphabet's size. Each count has a half added, so a character
    never seen is rare, not impossible."""
    counts = Counter(c for plate in plates for c in plate if c in PLATE_ALPHABET)
    total = sum(counts.values()) + 0.5 * len(PLATE_ALPHABET)
    return {c: round(float(np.log((counts[c] + 0.5) / total * len(PLATE_ALPHABET))), 3) for c in PLATE_ALPHABET}


def joint_candidates(prob_sets: list[np.ndarray], limit: int = 5, o_as_zero: bool = True,
                     weights: Sequence[float] | None = None, log_odds: Mapping[str, float] | None = None,
                     prior_weight: float = 0.0) -> list[Candidate]:
    """Ranked whole-plate strings from several readers' per-step probabilities (their step counts may
    differ): every reader's candidates (`plate_candidates`), each scored by how likely every reader finds it
    (its CTC likelihood, over all its paths). The readers are taken as independent experts: a candidate's
    confidence is the product of their likelihoods over that sum for all candidates plus the chance that
    the plate is none of them (the product of what each reader leaves outside the candidates). Readers
    that agree give a high confidence; print that neither reads as one string (a sign, a badge) a low one.
    `weights`: each reader's likelihoods raised to its weight (1 for all when None), so a reader surer than
    it is right counts for less. `log_odds` (`character_log_odds`) and `prior_weight`: what the candidates
    hold together is shared among them in proportion to their likelihood times exp(`prior_weight` x the sum
    of their characters' log odds), so that of two strings the readers find alike the one made of the
    characters plates are made of (digits more than I, Z or Q) comes first; the chance that the plate is
    none of them is unchanged. One reader gives its own candidates unchanged."""
    if len(prob_sets) == 1:
        return plate_candidates(prob_sets[0], limit, o_as_zero=o_as_zero)
    texts = list(dict.fromkeys(c.text for probs in prob_sets
                               for c in plate_candidates(probs, limit, o_as_zero=o_as_zero) if c.text))
    if not texts:
        return []
    seen = [_o_read_as_zero(p) if o_as_zero else p for p in prob_sets]
    log_likelihoods = np.array([ctc_log_likelihoods(p, texts) for p in seen])
    power = np.ones(len(seen)) if weights is None else np.asarray(weights, float)
    joint = np.exp(power @ log_likelihoods)
    outside = np.clip(1.0 - np.exp(log_likelihoods).sum(axis=1), 0.0, 1.0)
    none_of_them = float(np.prod(outside ** power))
    confidence = joint / (joint.sum() + none_of_them)
    if log_odds is not None and prior_weight:
        prior = prior_weight * np.array([sum(log_odds.get(c, 0.0) for c in text) for text in texts])
        shared = confidence * np.exp(prior - prior.max())
        if shared.sum() > 0:
            confidence = shared * (confidence.sum() / shared.sum())
    order = np.argsort(-confidence, kind="stable")[:limit]
    return [Candidate(texts[i], round(float(confidence[i]), 4)) for i in order]


# A reading less sure than this is not reported as a plate (`is_a_plate`; `recognition.min_confidence`).
MIN_CONFIDENCE = 0.25


def is_a_plate(prob_sets: list[np.ndarray], first: Candidate, min_confidence: float, o_as_zero: bool = True) -> bool:
    """Whether a box whose first joint candidate is `first` holds a plate: that candidate is at least
    `min_confidence` sure, or every reader on its own reads a plate (not a sticker's year) that sure, the
    readers differing on which (the low joint confidence says so)."""
    if first.confidence >= min_confidence:
        return True
    for probs in prob_sets:
        own = [c for c in plate_candidates(probs, 1, o_as_zero=o_as_zero) if is_valid_plate(c.text)]
        if not own or own[0].confidence < min_confidence or looks_like_year(own[0].text):
            return False
    return len(prob_sets) > 1


# Characters a reader (or a person) easily takes for each other; the misread matching of hotlists and the
# misread-tolerant search both use these.
CONFUSION_GROUPS = ("O0DQ", "I1T7", "B8", "S5", "Z2", "G6", "A4", "UV")
CONFUSION_KEY = {ch: group[0] for group in CONFUSION_GROUPS for ch in group[1:]}


def confusion_key_sql(column: str) -> str:
    """SQL computing a plate's confusion key (each easily confused character as its group's first), so a
    misread-tolerant search runs in SQLite, and an expression index can hold it."""
    expr = column
    for ch, first in sorted(CONFUSION_KEY.items()):
        expr = f"replace({expr}, '{ch}', '{first}')"
    return expr
