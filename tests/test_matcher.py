"""The matcher: plate codes, misread tolerance, partial plates and priority, hammered with Hypothesis."""

import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from edge_agent.hotlist import HotlistIndex, LocalEntry, parse_pattern
from edge_agent.hotlist.codes import (
    ALPHABET, CONFUSIONS, MIN_DROPPED_READ, confusion_variants, decode, encode, encode_many, may_have_dropped,
    misread_codes,
)
from edge_agent.hotlist.parse import HotlistRow

plates = st.text(alphabet=ALPHABET, min_size=1, max_size=8)
long_plates = st.text(alphabet=ALPHABET, min_size=MIN_DROPPED_READ, max_size=8)


def _index(*entries, local=()) -> HotlistIndex:
    rows = [HotlistRow(i + 1, "", p, s, lst, f"N{i}", None, "{}") for i, (p, s, lst) in enumerate(entries)]
    return HotlistIndex.from_rows(rows, local)


def _filler(n: int, seed: int = 1) -> list[tuple[str, str, str]]:
    r = random.Random(seed)
    return [("".join(r.choices(ALPHABET, k=7)), "CA", "STOLEN_VEHICLE") for _ in range(n)]


@given(plates)
def test_codes_round_trip_and_keep_order_of_length_then_text(plate):
    assert decode(encode(plate)) == plate
    assert list(encode_many([plate])) == [encode(plate)]


@given(plates)
def test_misread_codes_are_exactly_the_confusions_and_insertions(plate):
    expected = {encode(v) for v in confusion_variants(plate)}
    if may_have_dropped(plate):
        expected |= {encode(plate[:i] + ch + plate[i:]) for i in range(len(plate) + 1) for ch in ALPHABET}
    assert set(misread_codes(plate).tolist()) == expected


@settings(max_examples=300)
@given(plates, st.data())
def test_every_single_confusion_of_a_listed_plate_is_found(listed, data):
    index = _index((listed, "CA", "STOLEN_VEHICLE"), *_filler(200))
    variants = confusion_variants(listed)
    assume(variants)
    read = data.draw(st.sampled_from(variants))
    hits = [h for h in index.match(read, "CA") if h.lic == listed]
    assert hits and hits[0].match == "misread"


@settings(max_examples=300)
@given(st.text(alphabet=ALPHABET, min_size=2, max_size=8), st.data())
def test_a_dropped_character_is_found_unless_the_read_is_a_whole_plate(listed, data):
    index = _index((listed, "CA", "STOLEN_VEHICLE"))
    i = data.draw(st.integers(0, len(listed) - 1))
    read = listed[:i] + listed[i + 1:]
    found = any(h.lic == listed and h.match == "misread" for h in index.match(read))
    assert found == may_have_dropped(read)


@settings(max_examples=200)
@given(long_plates, long_plates)
def test_a_misread_hit_is_always_one_confusion_or_one_dropped_character_away(listed, read):
    assume(listed != read)
    hits = _index((listed, "CA", "STOLEN_VEHICLE")).match(read)
    near = listed in confusion_variants(read) or (
        may_have_dropped(read) and any(listed == read[:i] + c + read[i:] for i in range(len(read) + 1) for c in ALPHABET))
    assert bool(hits) == near
    assert all(h.match == "misread" for h in hits)


def test_the_readers_other_candidates_count_as_misreads():
    index = _index(("7ABC123", "CA", "STOLEN_VEHICLE"), ("8XYZ555", "CA", "AMBER_ALERT"))
    hits = index.match("8XYZ558", "CA", candidates=["8XYZ555", "7ABC123"])
    assert [(h.lic, h.match) for h in hits] == [("8XYZ555", "misread"), ("7ABC123", "misread")]


@pytest.mark.parametrize("read, state, kind", [
    ("7ABC123", "CA", "exact"), ("7ABC123", None, "state-mismatch"), ("7ABC123", "NV", "state-mismatch"),
    ("7A8C123", "CA", "misread"), ("7ABC12", "CA", "misread"), ("7O8C123", "CA", None), ("ABC123", "CA", None),
])
def test_match_kinds(read, state, kind):
    index = _index(("7ABC123", "CA", "STOLEN_VEHICLE"))
    hits = index.match(read, state)
    assert (hits[0].match if hits else None) == kind


def test_short_reads_are_not_taken_for_plates_with_a_character_dropped():
    index = _index(("AB1", "CA", "STOLEN_VEHICLE"), ("XY12", "CA", "STOLEN_VEHICLE"))
    assert index.match("AB1", "CA")[0].match == "exact"
    assert index.match("A81", "CA")[0].match == "misread"
    assert index.match("AB", "CA") == [] and index.match("XY1", "CA") == []


def test_hits_come_in_list_priority_order_then_match_strength():
    index = _index(("7ABC123", "CA", "STOLEN_PLATE"), ("7ABC123", "CA", "BOLO"), ("7A8C123", "CA", "AMBER_ALERT"))
    hits = index.match("7ABC123", "CA")
    assert [(h.list_name, h.match) for h in hits] == [
        ("AMBER_ALERT", "misread"), ("STOLEN_PLATE", "exact"), ("BOLO", "exact")]


@given(st.text(alphabet=ALPHABET, min_size=4, max_size=8), st.data())
def test_a_wildcard_pattern_made_from_a_plate_matches_it(plate, data):
    hidden = data.draw(st.sets(st.integers(0, len(plate) - 1), max_size=len(plate) - 3))
    pattern = "".join("?" if i in hidden else c for i, c in enumerate(plate))
    assert parse_pattern(pattern).matches(plate)
    assert parse_pattern(plate[:3] + "*").matches(plate)
    assert not parse_pattern(pattern).matches(plate + "X")


@pytest.mark.parametrize("raw, words", [("*", "at least 3"), ("??", "at least 3"), ("A*B", "at least 3"),
                                        ("", "empty"), ("7AB%", "'%'"), ("123456789", "longer than 8")])
def test_bad_patterns_say_why(raw, words):
    with pytest.raises(ValueError) as info:
        parse_pattern(raw)
    assert words in str(info.value)


def test_partial_plates_match_the_read_and_its_candidates():
    entry = LocalEntry(1, parse_pattern("7AB?12*"), "", "FELONY_VEHICLE", "case 1", "ofc")
    index = _index(*_filler(50), local=[entry])
    assert index.match("7ABX129")[0].match == "partial"
    assert index.match("1XYZ999", candidates=["7ABQ12"])[0].match == "partial"
    assert index.match("7AB12") == []


@given(st.text(min_size=0, max_size=300))
def test_match_never_raises_on_any_text(text):
    index = _index(("7ABC123", "CA", "STOLEN_VEHICLE"))
    assert isinstance(index.match(text, "CA", candidates=[text[::-1]]), list)


def test_confusion_groups_are_symmetric():
    for a, alts in CONFUSIONS.items():
        for b in alts:
            assert a in CONFUSIONS[b]
