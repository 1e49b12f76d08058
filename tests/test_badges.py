"""Car badges (makes, models, trims) are not plates: the name list with Hypothesis, then the reader."""

import cv2
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.bench import paint_out
from edge_agent.recognise.badges import MIN_BADGE_LETTERS, VEHICLE_BADGES, looks_like_badge
from edge_agent.recognise.ocr import PLATE_ALPHABET
from edge_agent.synthetic import render_scene

badges = st.sampled_from(sorted(VEHICLE_BADGES))


def test_badges_read_with_the_recognisers_slips_are_badges():
    assert looks_like_badge("CAMRY")
    assert looks_like_badge("YUK0N")  # 0 for O
    assert looks_like_badge("EXPL0RER")
    assert looks_like_badge("HYUNDA")  # the end cut off by the frame
    assert looks_like_badge("IMPALALT")  # IMPALA LT, the trim read on


def test_plates_and_vanity_plates_that_only_resemble_a_name_are_not():
    for text in ("7ABC123", "5RIN962", "NEILDMND", "G0FAST", "STANG", "MYCAMRY", "CAMARY", "GOLF", "BIGCHEESE"):
        assert not looks_like_badge(text), text


@given(badges)
def test_every_listed_name_is_a_badge_however_its_os_and_is_are_read(name):
    assert looks_like_badge(name)
    assert looks_like_badge(name.replace("O", "0").replace("I", "1"))


@given(st.text(alphabet=PLATE_ALPHABET, min_size=2, max_size=8))
def test_a_read_with_a_digit_other_than_0_1_5_or_under_five_characters_is_never_a_badge(text):
    if len(text) < MIN_BADGE_LETTERS or any(c in "2346789" for c in text):
        assert not looks_like_badge(text)


def _car_with_badge():
    scene = render_scene([("7ABC123", "California")], size=(1280, 720), plate_width=200, seed=0)
    # dark letters on the boot lid, above the plate (render_scene puts the plate at 540, 486)
    cv2.putText(scene, "CAMRY", (575, 440), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (40, 40, 40), 3)
    return scene


def test_a_badge_above_the_plate_is_not_a_second_plate(reader):
    assert [p.text for p in reader.read(_car_with_badge())] == ["7ABC123"]


def test_a_badge_is_not_read_when_the_plate_is_hidden(reader):
    from edge_agent.recognise import reader as module

    scene = _car_with_badge()
    paint_out(scene, (540, 486, 200, 100))
    assert reader.read(scene) == []
    # the recogniser does read the badge: only the badge rule keeps it out
    weight = module.BADGE_WEIGHT
    try:
        module.BADGE_WEIGHT = 1.0
        assert [p.text for p in reader.read(scene)] == ["CAMRY"]
    finally:
        module.BADGE_WEIGHT = weight
