"""Plate grammar and candidate ranking: pure functions, hammered with Hypothesis."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.recognise.runtime import PLATE_ALPHABET
from edge_agent.recognise.plate import is_valid_plate, normalise_plate, plate_candidates

plates = st.text(alphabet=PLATE_ALPHABET, min_size=2, max_size=8)


def ctc_probs(text: str, confidence: float, runner_up: str | None = None) -> np.ndarray:
    """Per-step distributions as the recogniser gives them: blank, char, blank, char..."""
    steps = []
    for ch in text:
        blank = np.full(37, 0.0)
        blank[0] = 1.0
        step = np.full(37, (1 - confidence) / 36)
        step[1 + PLATE_ALPHABET.index(ch)] = confidence
        if runner_up:
            alt = (PLATE_ALPHABET.index(ch) + 1) % 36
            step[:] = 0.0
            step[1 + PLATE_ALPHABET.index(ch)] = confidence
            step[1 + alt] = 1 - confidence
        steps += [blank, step]
    steps.append(np.eye(37)[0])
    return np.array(steps)


@given(st.text())
def test_normalise_keeps_only_plate_characters_and_is_idempotent(text):
    once = normalise_plate(text)
    assert all(c in PLATE_ALPHABET for c in once)
    assert normalise_plate(once) == once


@given(plates)
def test_normalise_ignores_spaces_dashes_and_case(plate):
    spaced = "-".join(plate[i : i + 3] for i in range(0, len(plate), 3)).lower()
    assert normalise_plate(spaced) == plate
    assert is_valid_plate(plate)


@given(plates, st.floats(min_value=0.55, max_value=0.99))
def test_first_candidate_is_the_best_path_with_letter_o_read_as_zero(plate, confidence):
    candidates = plate_candidates(ctc_probs(plate, confidence))
    assert candidates[0].text == plate.replace("O", "0")
    scores = [c.confidence for c in candidates]
    assert scores == sorted(scores, reverse=True)
    assert len({c.text for c in candidates}) == len(candidates)


@given(plates.filter(lambda p: len(p) >= 3 and "O" not in p), st.data())
def test_a_character_read_from_an_emblem_may_be_dropped_but_never_first(plate, data):
    # one step read as a character with blank close behind it: an emblem or bolt between characters
    at = data.draw(st.integers(0, len(plate) - 1))
    probs = ctc_probs(plate, 0.99)
    step = probs[2 * at + 1]
    step[:] = 0.0
    step[1 + PLATE_ALPHABET.index(plate[at])] = 0.55
    step[0] = 0.45
    candidates = plate_candidates(probs)
    assert candidates[0].text == plate
    assert plate[:at] + plate[at + 1:] in [c.text for c in candidates[:3]]


@given(st.text(alphabet=PLATE_ALPHABET.replace("O", ""), min_size=2, max_size=8), st.floats(min_value=0.51, max_value=0.7))
@settings(max_examples=50)
def test_runner_up_characters_give_the_next_candidates(plate, confidence):
    candidates = plate_candidates(ctc_probs(plate, confidence, runner_up="next"), limit=3)
    assert candidates[0].text == plate
    # the second candidate differs from the first in exactly one character
    if len(candidates) > 1:
        assert sum(a != b for a, b in zip(candidates[0].text, candidates[1].text)) == 1


def test_letter_o_the_recogniser_saw_is_the_second_candidate():
    candidates = plate_candidates(ctc_probs("NOX218", 0.9), limit=5)
    assert candidates[0].text == "N0X218"
    assert candidates[1].text == "NOX218"
    assert [c.text for c in candidates].count("NOX218") == 1


def test_repeated_characters_survive_ctc_collapse():
    candidates = plate_candidates(ctc_probs("7AAB001", 0.95))
    assert candidates[0].text == "7AAB001"


def _two_way(first: str, p_first: float, second: str) -> np.ndarray:
    step = np.zeros(37)
    step[1 + PLATE_ALPHABET.index(first)] = p_first
    step[1 + PLATE_ALPHABET.index(second)] = 1 - p_first
    return np.array([np.eye(37)[0], step, np.eye(37)[0]])


def test_letter_o_is_read_as_zero_with_the_o_spelling_kept_as_a_candidate():
    # O and 0 are one glyph on most US plates: the read says 0, the O the recogniser saw stays in the list
    assert [c.text for c in plate_candidates(_two_way("O", 0.97, "0"))][:2] == ["0", "O"]
    assert [c.text for c in plate_candidates(_two_way("0", 0.6, "O"))][0] == "0"
    assert plate_candidates(_two_way("B", 0.6, "8"))[0].text == "B"
