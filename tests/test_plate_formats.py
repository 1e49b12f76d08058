"""State serial formats ranking a reading's candidates: pure functions with Hypothesis, then the reader."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.recognise.formats import (
    NO_LETTER_O,
    OFF_FORMAT,
    SERIAL_FORMATS,
    fits,
    fits_state,
    rank_by_state_format,
)
from edge_agent.recognise.runtime import PLATE_ALPHABET
from edge_agent.records import Candidate
from edge_agent.synthetic import render_plate

plates = st.text(alphabet=PLATE_ALPHABET, min_size=2, max_size=8)
states = st.sampled_from(sorted(SERIAL_FORMATS) + ["WY", "ID", "MX"])  # the last three have no formats
candidate_lists = st.lists(
    st.builds(Candidate, plates, st.floats(min_value=0.0, max_value=1.0)), min_size=1, max_size=6,
    unique_by=lambda c: c.text,
).map(lambda cs: sorted(cs, key=lambda c: c.confidence, reverse=True))


def test_the_issues_california_formats_and_others_fit():
    assert fits_state("1ABC234", "CA") and fits_state("1A23456", "CA")
    assert not fits_state("ABC1234", "CA")
    assert fits_state("ABC1234", "NY") and fits_state("ABC1234", "TX")
    assert fits_state("123456", "DE") and not fits_state("A23456", "DE")
    assert fits_state("H507VU", "FL")  # Florida's six characters come in many arrangements
    assert fits_state("ANYTHING", "WY") is None  # county-coded: no format assumed
    # Rhode Island: 123-456, AB-123 and 1AB-234; a 0 where AB-123 has a letter is O
    assert fits_state("123456", "RI") and fits_state("VO820", "RI") and fits_state("1AB234", "RI")
    assert rank_by_state_format([Candidate("V0820", 0.99)], "RI")[0] == Candidate("VO820", 0.99)
    assert fits("1ABC234", "9AAA999") and not fits("1ABC23", "9AAA999")


@given(candidate_lists, states)
def test_ranking_keeps_every_candidate_and_puts_fitting_ones_ahead(candidates, state):
    ranked = rank_by_state_format(candidates, state)
    texts = [c.text for c in ranked]
    assert {c.text for c in candidates} <= set(texts)
    assert len(texts) == len(set(texts))
    added = set(texts) - {c.text for c in candidates}
    # only a candidate's round glyphs spelled as the state's round letter, made to fit: a 0 as O,
    # or a 0 or an O as Q where the state issues no O
    respelled = {("0", "Q"), ("O", "Q")} if state in NO_LETTER_O else {("0", "O")}
    for text in added:
        assert fits_state(text, state)
        assert any(len(c.text) == len(text) and all(a == b or (a, b) in respelled for a, b in zip(c.text, text))
                   for c in candidates)
    if fits_state(ranked[0].text, state) is None:
        assert ranked == candidates
    elif any(fits_state(t, state) for t in texts):
        # a fitting candidate comes first unless one that does not fit is still likelier at a tenth of its confidence
        if not fits_state(ranked[0].text, state):
            original = {c.text: c.confidence for c in candidates}[ranked[0].text]
            assert ranked[0].confidence == pytest.approx(original * OFF_FORMAT, abs=1e-4)
            assert ranked[0].confidence >= max(c.confidence for c in ranked if fits_state(c.text, state))
    else:
        assert ranked == candidates  # a vanity plate: nothing fits, nothing changes
    assert [c.confidence for c in ranked] == sorted((c.confidence for c in ranked), reverse=True)


@given(candidate_lists, states)
def test_fitting_candidates_keep_their_order_and_at_least_their_confidence(candidates, state):
    ranked = {c.text: c.confidence for c in rank_by_state_format(candidates, state)}
    fitting = [c for c in candidates if fits_state(c.text, state)]
    for c in fitting:
        assert ranked[c.text] >= c.confidence  # raised only by the same reading spelled with O
    order = [c.text for c in rank_by_state_format(candidates, state) if c.text in {f.text for f in fitting}]
    assert order == sorted(order, key=lambda t: ranked[t], reverse=True)


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ", min_size=5, max_size=7), st.floats(0.5, 1.0))
def test_a_zero_read_where_the_format_has_a_letter_keeps_its_confidence_spelled_o(text, confidence):
    spelled_o = text.replace("0", "O")
    read = [Candidate(text, confidence), Candidate(spelled_o, confidence / 2)] if spelled_o != text else [Candidate(text, confidence)]
    for state in ("AR", "CA", "NY"):
        ranked = rank_by_state_format(read, state)
        if fits_state(spelled_o, state) and not fits_state(text, state):
            assert ranked[0] == Candidate(spelled_o, confidence)


@given(st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ", min_size=3, max_size=3), st.text(alphabet="0123456789", min_size=3, max_size=3),
       st.integers(0, 2), st.sampled_from("0O"), st.floats(0.5, 1.0))
def test_a_round_glyph_in_a_letter_place_is_q_where_the_state_issues_no_o(letters, digits, at, glyph, confidence):
    read = letters[:at] + glyph + letters[at + 1:] + digits  # AAA999, Mississippi's and Michigan's
    for state in sorted(NO_LETTER_O):
        ranked = rank_by_state_format([Candidate(read, confidence)], state)
        assert ranked[0] == Candidate(letters[:at] + "Q" + letters[at + 1:] + digits, confidence)
        assert not fits_state(read.replace("0", "O"), state)
    # elsewhere the glyph is O
    assert rank_by_state_format([Candidate(read, confidence)], "NY")[0].text[at] == "O"


def test_an_extra_character_that_breaks_the_format_gives_way():
    read = [Candidate("4176NWN", 0.58), Candidate("176NWN", 0.39), Candidate("176NW", 0.13)]
    assert rank_by_state_format(read, "AZ")[0].text == "176NWN"  # Arizona: 999AAA
    assert rank_by_state_format(read, None) == read


def test_zero_where_the_format_has_a_letter_is_spelled_o():
    ranked = rank_by_state_format([Candidate("3550CT", 0.98), Candidate("355QCT", 0.01)], "AR")
    assert ranked[0] == Candidate("355OCT", 0.98)
    # a vanity plate fits no format and keeps its reading, 0 and all
    vanity = [Candidate("G0FAST", 0.97), Candidate("G0FST", 0.02)]
    assert rank_by_state_format(vanity, "CA") == vanity


def test_reader_ranks_by_the_format_of_the_state_printed_on_the_plate(reader):
    (arkansas,) = reader.read(render_plate("NOX218", state="Arkansas"))
    assert (arkansas.text, arkansas.state) == ("NOX218", "AR")
    (new_york,) = reader.read(render_plate("ABO1234", state="New York"))
    assert (new_york.text, new_york.state) == ("ABO1234", "NY")
    # a vanity plate keeps the digit reading, as everywhere else
    (vanity,) = reader.read(render_plate("G0FAST", state="California"))
    assert (vanity.text, vanity.state) == ("G0FAST", "CA")
