"""Plate grammar and candidate ranking: pure functions, hammered with Hypothesis."""

import numpy as np
import pytest
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


def _brute_force_likelihood(probs, text):
    """P(text): every path of len(probs) steps over blank + the text's characters, collapsed, summed."""
    import itertools

    from edge_agent.recognise.runtime import PLATE_ALPHABET

    columns = sorted({0} | {1 + PLATE_ALPHABET.index(c) for c in text})
    total = 0.0
    for path in itertools.product(columns, repeat=len(probs)):
        collapsed, prev = [], None
        for col in path:
            if col != prev and col != 0:
                collapsed.append(PLATE_ALPHABET[col - 1])
            prev = col
        if "".join(collapsed) == text:
            total += float(np.prod([probs[t, c] for t, c in enumerate(path)]))
    return total


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from(["A", "AB", "AA", "7A7", "0", "ABA"]))
def test_the_ctc_likelihood_is_the_sum_over_every_path_that_reads_the_text(seed, text):
    from edge_agent.recognise.plate import ctc_log_likelihoods

    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(37) * 0.3, size=5)
    (got,) = np.exp(ctc_log_likelihoods(probs, [text]))
    assert got == pytest.approx(_brute_force_likelihood(probs, text), rel=1e-6, abs=1e-12)


def test_the_ctc_likelihoods_of_a_confident_reading():
    from edge_agent.recognise.plate import ctc_log_likelihoods

    probs = np.full((6, 37), 1e-6)
    for t, col in enumerate([0, 8, 8, 0, 11, 0]):  # blank 7 7 blank A blank
        probs[t, col] = 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    seven_a, sevens_a, a_alone = np.exp(ctc_log_likelihoods(probs, ["7A", "77A", "A"]))
    assert seven_a > 0.99 and sevens_a < 1e-5 and a_alone < 1e-5


def _peaked(path: list[int], steps: int, sure: float = 0.97) -> np.ndarray:
    probs = np.full((steps, 37), (1 - sure) / 36)
    for t, col in enumerate(path):
        probs[t, col] = sure
    return probs


def _columns(text: str, steps: int) -> list[int]:
    """A CTC path spelling `text` with a blank after each character, padded with blanks."""
    path = [c for ch in text for c in (1 + PLATE_ALPHABET.index(ch), 0)]
    return path + [0] * (steps - len(path))


def test_two_readers_that_agree_give_one_confident_candidate():
    from edge_agent.recognise.plate import joint_candidates

    first = _peaked(_columns("7ABC123", 32), 32, sure=0.995)
    second = _peaked(_columns("7ABC123", 20), 20, sure=0.995)  # another reader, another step count
    (best, *rest) = joint_candidates([first, second])
    assert best.text == "7ABC123" and best.confidence > 0.5
    assert all(c.confidence < best.confidence for c in rest)


def test_two_readers_that_disagree_share_the_confidence_and_noise_gets_none():
    from edge_agent.recognise.plate import joint_candidates

    first = _peaked(_columns("7ABC123", 32), 32, sure=0.9)
    second = _peaked(_columns("7ABC128", 20), 20, sure=0.9)
    texts = [c.text for c in joint_candidates([first, second])]
    assert set(texts[:2]) == {"7ABC123", "7ABC128"}
    rng = np.random.default_rng(1)
    noise = [rng.dirichlet(np.ones(37), size=32), rng.dirichlet(np.ones(37), size=20)]
    assert all(c.confidence < 0.05 for c in joint_candidates(noise))


def test_a_reader_weighted_less_counts_for_less_and_at_zero_not_at_all():
    from edge_agent.recognise.plate import joint_candidates

    # the first reader sure of a V that the second, less sure, reads as U
    first = _peaked(_columns("AUP2403", 32), 32, sure=0.99)
    second = _peaked(_columns("AVP2403", 20), 20, sure=0.9)
    assert joint_candidates([first, second])[0].text == "AUP2403"
    assert joint_candidates([first, second], weights=(1.0, 1.0)) == joint_candidates([first, second])
    assert joint_candidates([first, second], weights=(0.3, 1.0))[0].text == "AVP2403"
    assert joint_candidates([first, second], weights=(0.0, 1.0))[0].text == "AVP2403"


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.0, 2.0))
def test_weighted_joint_confidences_are_ranked_and_at_most_one_in_all(seed, weight):
    from edge_agent.recognise.plate import joint_candidates

    rng = np.random.default_rng(seed)
    sets = [rng.dirichlet(np.ones(37) * 0.2, size=32), rng.dirichlet(np.ones(37) * 0.2, size=20)]
    confidences = [c.confidence for c in joint_candidates(sets, weights=(weight, 1.0))]
    assert confidences == sorted(confidences, reverse=True) and sum(confidences) <= 1.0 + 1e-3


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31))
def test_joint_confidences_are_ranked_and_at_most_one_in_all(seed):
    from edge_agent.recognise.plate import joint_candidates

    rng = np.random.default_rng(seed)
    sets = [rng.dirichlet(np.ones(37) * 0.2, size=32), rng.dirichlet(np.ones(37) * 0.2, size=20)]
    found = joint_candidates(sets)
    confidences = [c.confidence for c in found]
    assert confidences == sorted(confidences, reverse=True) and sum(confidences) <= 1.0 + 1e-3
    assert joint_candidates(sets[:1]) == plate_candidates(sets[0], o_as_zero=True)


def test_character_odds_say_which_characters_plates_are_made_of():
    from edge_agent.recognise.plate import character_log_odds

    odds = character_log_odds(["7ABC123", "4XYZ560", "1AB2345", "8CDE901"])
    assert set(odds) == set(PLATE_ALPHABET)
    assert odds["1"] > odds["A"] > odds["Q"] and np.isfinite(odds["Q"])  # Q never seen: rare, not impossible
    assert character_log_odds(["ABC"]) == character_log_odds(["CBA"])  # counts, not places


def _reads(text: str, steps: int, sure: float, where: int, other: str, other_p: float) -> np.ndarray:
    """A reader sure of `text` but for the character at `where`, which it takes for `other` at `other_p`."""
    probs = _peaked(_columns(text, steps), steps, sure=sure)
    step = 2 * where
    probs[step] = (1 - sure) / 36
    probs[step, 1 + PLATE_ALPHABET.index(text[where])] = sure - other_p
    probs[step, 1 + PLATE_ALPHABET.index(other)] = other_p
    return probs


def test_of_two_strings_the_readers_find_alike_the_one_of_plate_characters_comes_first():
    from edge_agent.recognise.plate import character_log_odds, joint_candidates

    # both readers torn between a letter I and a digit 1 at the start, the I a little likelier
    sets = [_reads("I96XJY", 32, 0.99, 0, "1", 0.45), _reads("I96XJY", 20, 0.99, 0, "1", 0.45)]
    odds = character_log_odds(["196XJY", "7ABC123", "1AB2345", "4XYZ560"])
    plain = joint_candidates(sets)
    assert plain[0].text == "I96XJY"
    assert joint_candidates(sets, log_odds=odds, prior_weight=0.0) == plain
    ranked = joint_candidates(sets, log_odds=odds, prior_weight=0.75)
    assert [c.text for c in ranked[:2]] == ["196XJY", "I96XJY"]
    # shared out among the candidates: what they hold together, against none of them, is as before
    assert abs(sum(c.confidence for c in ranked) - sum(c.confidence for c in plain)) < 1e-3


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.0, 3.0), st.lists(st.sampled_from(PLATE_ALPHABET), min_size=1, max_size=40))
def test_confidences_ranked_with_the_character_prior_stay_ranked_and_keep_their_total(seed, weight, seen):
    from edge_agent.recognise.plate import character_log_odds, joint_candidates

    rng = np.random.default_rng(seed)
    sets = [rng.dirichlet(np.ones(37) * 0.2, size=32), rng.dirichlet(np.ones(37) * 0.2, size=20)]
    ranked = joint_candidates(sets, limit=50, log_odds=character_log_odds(["".join(seen)]), prior_weight=weight)
    plain = joint_candidates(sets, limit=50)
    confidences = [c.confidence for c in ranked]
    assert confidences == sorted(confidences, reverse=True)
    assert {c.text for c in ranked} == {c.text for c in plain}
    assert abs(sum(confidences) - sum(c.confidence for c in plain)) < 1e-3 * (1 + len(plain))


def test_a_box_is_a_plate_where_each_reader_reads_one_though_they_differ_and_not_where_one_reads_noise():
    from edge_agent.recognise.plate import is_a_plate, joint_candidates
    from edge_agent.records import Candidate

    first = _peaked(_columns("W00", 32), 32, sure=0.99)
    second = _peaked(_columns("NM100", 20), 20, sure=0.99)
    best = joint_candidates([first, second])[0]
    assert best.confidence < 0.25 and is_a_plate([first, second], best, 0.25)
    noise = np.random.default_rng(3).dirichlet(np.ones(37), size=20)
    best = joint_candidates([first, noise])[0]
    assert not is_a_plate([first, noise], best, 0.25)
    year = _peaked(_columns("2012", 20), 20, sure=0.99)  # a sticker's year is no plate, however sure
    assert not is_a_plate([_peaked(_columns("2012", 32), 32, sure=0.99), year], Candidate("2012", 0.1), 0.25)
