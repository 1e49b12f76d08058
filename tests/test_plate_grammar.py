"""Plate grammar and candidate ranking: pure functions, hammered with Hypothesis."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.recognise.ocr import PLATE_ALPHABET
from edge_agent.recognise.plate import (
    blank_end_characters,
    ctc_characters,
    is_valid_plate,
    looks_like_date,
    looks_like_time,
    normalise_plate,
    plate_candidates,
    plate_likeness,
    spells_state_name,
    state_from_text,
)
from edge_agent.recognise.plate import US_STATES

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


@given(plates, st.lists(st.tuples(st.integers(0, 150), st.integers(0, 40)), max_size=3))
def test_print_beside_the_number_is_read_as_blank_only_at_its_ends(plate, spans):
    # ctc_probs puts character i at step 2i + 1: x = (2i + 1.5) * 8 with 8 strip pixels a step
    spans = [(x, x + width) for x, width in spans]
    probs = ctc_probs(plate, 0.9)
    steps = [step for step, _ in ctc_characters(probs)]
    kept = [step for step, _ in ctc_characters(blank_end_characters(probs, spans, 8.0))]
    assert kept and kept == steps[steps.index(kept[0]):steps.index(kept[0]) + len(kept)]  # a run of the line, never empty
    for step in set(steps) - set(kept):
        assert any(x0 - 4 <= (step + 0.5) * 8 <= x1 + 4 for x0, x1 in spans)


def test_stacked_print_at_either_end_leaves_the_number():
    probs = ctc_probs("F3887H", 0.95)  # characters centred at x = 12, 28, 44, 60, 76, 92
    assert plate_candidates(blank_end_characters(probs, [(6, 18)], 8.0))[0].text == "3887H"
    assert plate_candidates(blank_end_characters(probs, [(6, 18), (86, 99)], 8.0))[0].text == "3887"
    assert plate_candidates(blank_end_characters(probs, [(40, 48)], 8.0))[0].text == "F3887H"  # inside: kept
    assert blank_end_characters(probs, [], 8.0) is probs


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


def test_dash_between_character_groups_folds_onto_the_blank():
    from edge_agent.recognise.ocr import fold_to_plate_alphabet, plate_columns

    charset = ["<blank>", "A", "-", "4", "v", "·"]
    columns, fold = plate_columns(charset)
    # A, then a dash the recogniser is sure of, then 4 and a lower-case v
    probs = np.array([[0, 0.9, 0.1, 0, 0, 0], [0.1, 0.05, 0.8, 0.05, 0, 0], [0, 0, 0.1, 0.9, 0, 0], [0, 0, 0, 0, 0.7, 0.3]])
    folded = fold_to_plate_alphabet(probs.astype(np.float32), columns, fold)
    assert folded.shape == (4, 37)
    assert np.allclose(folded.sum(axis=1), 1.0)
    assert folded[1].argmax() == 0  # the dash is a gap, not a character
    assert plate_candidates(folded)[0].text == "A4V"


def test_repeated_characters_survive_ctc_collapse():
    candidates = plate_candidates(ctc_probs("7AAB001", 0.95))
    assert candidates[0].text == "7AAB001"


def test_plate_likeness_prefers_plates_to_signs():
    assert plate_likeness("7ABC123", "7ABC123") == 1.0
    assert plate_likeness("METRO", "Metro") < 0.3
    assert plate_likeness("3148455900", "314-845-5900") == 0.0  # too long for a plate
    assert plate_likeness("7ABC123", "7ABC-123") > 0.9


def test_a_stray_lower_case_mark_beside_a_number_is_not_a_word():
    # West Virginia's 7524 with a graphic at its left read as "s"
    assert plate_likeness("7524", "s7524") > 0.8 * plate_likeness("7524", "7524")
    assert plate_likeness("TOYOTA", "Toyota") < 0.3


def test_clock_times_are_not_plates_even_cut_off():
    assert plate_likeness("07312", "07:31:2") <= 0.2  # a camera's stamp, cut off at the frame's edge
    assert plate_likeness("1432", "14 : 32") <= 0.2
    assert plate_likeness("7FR971", "7FR-971") == 1.0


def test_a_whole_date_stamp_weighs_less_than_six_digits_that_read_like_a_date():
    # 20140502 is a camera's stamp; 198606 may be a plate (Delaware, Rhode Island)
    assert plate_likeness("20140502", "20140502") <= 0.1
    assert 0.1 < plate_likeness("198606", "198606") <= 0.2


def test_state_names_are_found_despite_ocr_slips():
    assert state_from_text("California")[0] == "CA"
    assert state_from_text("CALIFORNlA")[0] == "CA"
    assert state_from_text("Texas")[0] == "TX"
    assert state_from_text("visit FLORIDA.com")[0] == "FL"
    assert state_from_text("7ABC123") is None
    assert state_from_text("Metro") is None


def test_longer_state_name_wins_and_slogans_name_the_state():
    assert state_from_text("West Virginia")[0] == "WV"
    assert state_from_text("Virginia")[0] == "VA"
    assert state_from_text("Washington, D.C.")[0] == "DC"
    assert state_from_text("Washington")[0] == "WA"
    assert state_from_text("Land of Lincoln")[0] == "IL"
    assert state_from_text("10,000 lakes")[0] == "MN"
    assert state_from_text("Live Free or Die")[0] == "NH"


def _two_way(first: str, p_first: float, second: str) -> np.ndarray:
    step = np.zeros(37)
    step[1 + PLATE_ALPHABET.index(first)] = p_first
    step[1 + PLATE_ALPHABET.index(second)] = 1 - p_first
    return np.array([np.eye(37)[0], step, np.eye(37)[0]])


@given(st.sampled_from(sorted(US_STATES.values())), st.sampled_from(["", "lower", "slip"]))
def test_a_state_name_however_printed_is_a_state_name(name, how):
    text = name.lower() if how == "lower" else name
    if how == "slip" and len(name) >= 10:  # one letter misread in a long name
        text = name[:3] + ("X" if name[3] != "X" else "Y") + name[4:]
    assert spells_state_name(text)


def test_a_vanity_plate_that_holds_a_state_name_is_not_one():
    assert spells_state_name("CALIFORNlA") and spells_state_name("Land of Lincoln")
    assert not spells_state_name("IDAHOHI")  # IDAHO HI on an Idaho plate
    assert not spells_state_name("TEXASMAN")
    assert not spells_state_name("7ABC123") and not spells_state_name("Metro")


def test_letter_o_is_read_as_zero_with_the_o_spelling_kept_as_a_candidate():
    # O and 0 are one glyph on most US plates: the read says 0, the O the recogniser saw stays in the list
    assert [c.text for c in plate_candidates(_two_way("O", 0.97, "0"))][:2] == ["0", "O"]
    assert [c.text for c in plate_candidates(_two_way("0", 0.6, "O"))][0] == "0"
    assert plate_candidates(_two_way("B", 0.6, "8"))[0].text == "B"


def test_sticker_years_and_camera_stamps_are_not_plate_like():
    for stamp in ("2012", "201405", "20140428", "073126", "14062514"):
        assert looks_like_date(stamp) or looks_like_time(stamp), stamp
        assert plate_likeness(stamp, stamp) <= 0.2
    for plate in ("1049338", "197659", "7364", "988526"):
        assert not looks_like_date(plate) and not looks_like_time(plate), plate
