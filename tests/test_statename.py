"""The issuing state from the name printed on the plate (edge_agent/recognise/statename.py)."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from edge_agent.recognise.statename import (CHANCE_MOST, STATE_CODES, chance_levels, fit_sharpness, found_names,
                                            fuse_states, name_scores, state_scores, substring_distances, _NAMES)
from edge_agent.synthetic import render_plate

LETTERS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=24)


def _best(texts) -> str:
    return STATE_CODES[int(name_scores(texts).argmax())]


def _reference_distance(pattern: str, text: str) -> int:
    """Least edit distance between `pattern` and any substring of `text`, the textbook way."""
    best = len(pattern)
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            part = text[i:j]
            row = list(range(len(part) + 1))
            for a, pc in enumerate(pattern, 1):
                prev, row[0] = row[0], a
                for b, tc in enumerate(part, 1):
                    prev, row[b] = row[b], min(row[b] + 1, row[b - 1] + 1, prev + (pc != tc))
            best = min(best, row[-1])
    return best


@settings(max_examples=40, deadline=None)
@given(LETTERS)
def test_the_approximate_match_agrees_with_the_textbook_distance(text):
    got = substring_distances(text)
    for k in (0, 5, 9, len(_NAMES) - 1):
        assert got[k] == _reference_distance(_NAMES[k][1], text)


@settings(max_examples=60, deadline=None)
@given(LETTERS, LETTERS, st.sampled_from([c for c in STATE_CODES if c not in ("VA", "KS", "WA")]))
def test_a_state_name_printed_among_other_letters_is_found_whole(before, after, code):
    from edge_agent.recognise.plate import US_STATES

    scores = name_scores([before + US_STATES[code].replace(" ", "") + after])
    assert scores[STATE_CODES.index(code)] == 1.0
    assert ((0 <= scores) & (scores <= 1)).all()


def test_printed_names_as_the_recogniser_gives_them():
    assert _best(["JAN California 2012", "DMV.CA.GOV"]) == "CA"
    assert _best(["", "SUNSHINE STATE", "MYFLORIDA.COM"]) == "FL"
    assert _best(["Mlinois 1207"]) == "IL"  # one letter misread
    # a name inside a longer one is the longer one's when that is read as well
    assert _best(["West Virginia", "Wild, Wonderful"]) == "WV"
    assert _best(["Virginia", "Virginia is for lovers"]) == "VA"
    assert _best(["Arkansas", "The Natural State"]) == "AR"
    assert _best(["WASHINGTON, D.C.", "TAXATION WITHOUT REPRESENTATION"]) == "DC"
    assert _best(["Washington", "Evergreen State"]) == "WA"


def test_a_short_name_found_by_chance_in_a_misread_line_is_no_evidence():
    iowa = STATE_CODES.index("IA")
    # a streaked "Louisiana" read as garbage finds three quarters of "IOWA"; so do lines read off other plates
    misread = found_names(["Lriioma"])
    others = np.array([found_names([text]) for text in ("Lriioma", "kmisiana", "HORIDACON AL", "JAN California")])
    truth = [STATE_CODES.index(code) for code in ("LA", "LA", "FL", "CA")]
    chance = chance_levels(others, truth, 0.9)
    assert state_scores(misread, np.zeros(len(_NAMES)))[iowa] == 0.75
    assert state_scores(misread, chance)[iowa] < 0.3
    # a long name is rarely found by chance: one letter dropped still says the state
    assert STATE_CODES[int(state_scores(found_names(["CALIFORNA"]), chance).argmax())] == "CA"
    # a row of the name's own state is not chance
    own = chance_levels(np.array([found_names(["Iowa"])]), [iowa], 0.9)
    assert own[[k for k, (code, _) in enumerate(_NAMES) if code == "IA"]].max() == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(LETTERS, max_size=3), st.lists(st.floats(0.0, CHANCE_MOST), min_size=len(_NAMES), max_size=len(_NAMES)))
def test_a_names_score_beyond_chance_stays_between_0_and_1_and_a_whole_name_is_1(texts, levels):
    chance = np.array(levels)
    scores = state_scores(found_names(texts), chance)
    assert ((0 <= scores) & (scores <= 1)).all()
    assert state_scores(found_names(["XXCALIFORNIAXX"]), chance)[STATE_CODES.index("CA")] == 1.0


def test_nothing_legible_is_no_evidence():
    assert not name_scores([]).any()
    assert not name_scores(["", "12", "J"]).any()  # under three letters: nothing to match


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.001, 1.0), min_size=51, max_size=51), st.lists(st.floats(0.0, 1.0), min_size=51, max_size=51),
       st.floats(0.5, 60))
def test_fusing_gives_a_distribution_and_no_name_leaves_the_head(head, scores, sharpness):
    head = np.array(head) / np.sum(head)
    fused = fuse_states(head, np.array(scores), sharpness)
    assert fused.shape == (51,) and abs(fused.sum() - 1) < 1e-9 and (fused >= 0).all()
    assert np.allclose(fuse_states(head, np.zeros(51), sharpness), head)


def test_a_clearly_read_name_outweighs_a_head_sure_of_another_state():
    head = np.full(51, 1e-9)
    head[STATE_CODES.index("WA")] = 1.0
    fused = fuse_states(head / head.sum(), name_scores(["JAN California 2012"]), 21.5)
    assert STATE_CODES[int(fused.argmax())] == "CA"
    # a name read too poorly to decide only weighs in: the head's choice between the likely ones stands
    head = np.full(51, 0.01)
    head[STATE_CODES.index("DC")] = 0.5
    fused = fuse_states(head / head.sum(), name_scores(["WASHINGT0N 0C"]), 21.5)
    assert STATE_CODES[int(fused.argmax())] in ("DC", "WA")


def test_the_sharpness_fit_is_larger_the_more_the_name_tells():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 51, 300)
    telling = rng.random((300, 51)) * 0.4
    telling[np.arange(300), truth] = 1.0
    noisy = telling.copy()
    noisy[rng.random(300) < 0.3] = rng.random((51,)) * 0.4  # a third with nothing of the name
    assert fit_sharpness(telling, truth) > fit_sharpness(noisy, truth) > 0


@pytest.mark.parametrize("text,state,code", [("NOX218", "Arkansas", "AR"), ("ABO1234", "New York", "NY"),
                                              ("KLM4567", "Texas", "TX"), ("7ABC123", "California", "CA")])
def test_the_agent_reads_the_state_printed_on_a_rendered_plate(reader, text, state, code):
    plate = render_plate(text, state=state, width=300)
    height, width = plate.shape[:2]
    (texts,) = reader.names.read(plate, [(0.0, 0.0, float(width), float(height))])
    assert _best(texts) == code, texts
    (read,) = reader.read(plate)
    assert (read.text, read.state) == (text, code) and read.state_confidence > 0.5


def test_two_plates_in_one_frame_each_get_their_own_state_name(reader):
    scene = np.full((720, 1280, 3), 90, np.uint8)
    boxes = []
    for (x, y), (text, state) in zip(((100, 200), (700, 380)), (("NOX218", "Arkansas"), ("KLM4567", "Texas"))):
        plate = render_plate(text, state=state, width=300)
        scene[y:y + plate.shape[0], x:x + plate.shape[1]] = plate
        boxes.append((float(x), float(y), float(plate.shape[1]), float(plate.shape[0])))
    names = reader.names.read(scene, boxes)
    assert [_best(texts) for texts in names] == ["AR", "TX"]
    assert names == [reader.names.read(scene, [box])[0] for box in boxes]  # each as if read alone


def test_a_plate_too_small_to_show_its_name_is_not_given_to_the_text_recogniser(reader):
    from edge_agent.recognise.reader import STATE_NAME_MIN_HEIGHT

    plate = render_plate("7ABC123", state="California", width=220)
    scene = np.full((720, 1280, 3), 90, np.uint8)
    height = STATE_NAME_MIN_HEIGHT - 4  # boxed under the least height that tells
    small = cv2.resize(plate, (2 * height, height), interpolation=cv2.INTER_AREA)
    assert small.shape[0] < STATE_NAME_MIN_HEIGHT
    scene[400:400 + small.shape[0], 600:600 + small.shape[1]] = small
    calls = []
    original = reader.names.read
    reader.names.read = lambda image, boxes, streaks=None: calls.append(boxes) or original(image, boxes, streaks)
    try:
        reader.read(scene)
    finally:
        del reader.names.read
    assert all(not boxes for boxes in calls)


def test_a_text_recogniser_without_its_character_list_stops_start_up_naming_the_file():
    from edge_agent.errors import ModelError
    from edge_agent.recognise.models import MODELS_DIR
    from edge_agent.recognise.statename import StateNameReader

    with pytest.raises(ModelError) as info:
        StateNameReader(MODELS_DIR / "plate-reader.onnx")  # a (N, 3, 48, 128) input, and no character list
    assert "plate-reader.onnx" in str(info.value) and "character list" in str(info.value)


def test_the_name_recogniser_cut_to_ascii_reads_the_same_letters_as_the_wheel_s_full_one(reader):
    from edge_agent.recognise.models import load_manifest, verify_model
    from edge_agent.recognise.runtime import RuntimeOptions, make_session
    from edge_agent.recognise.statename import band_boxes, greedy_text, letters, text_input

    full = make_session(verify_model(load_manifest()["state-name-reader"]), RuntimeOptions())
    charset = full.get_modelmeta().custom_metadata_map["character"].splitlines()
    cut = reader.names
    assert len(charset) > 18000 and len(cut.charset) == 94 and all(" " < c <= "~" for c in cut.charset)
    read = {}
    for state, text in [("California", "7ABC123"), ("Texas", "KXV4821"), ("New York", "HJK5512"),
                        ("Florida", "QWE R12"), ("Arizona", "ABC1234"), ("Washington", "BZY7788")]:
        plate = render_plate(text, state=state, width=300)
        height, width = plate.shape[:2]
        bands = text_input(plate, band_boxes((0, 0, width, height)))
        (wide,) = full.run(None, {full.get_inputs()[0].name: bands})
        (narrow,) = cut.session.run(None, {cut.input_name: bands})
        assert narrow.shape[2] == 96  # the blank, 94 printable characters, the space
        read[state] = [letters(greedy_text(p, cut.charset)) for p in narrow]
        assert read[state] == [letters(greedy_text(p, charset)) for p in wide]
    assert any(state.upper().replace(" ", "") in "".join(texts) for state, texts in read.items())


def test_a_name_recogniser_that_is_no_onnx_model_stops_start_up_naming_the_file(tmp_path):
    from edge_agent.errors import ModelError
    from edge_agent.recognise.statename import StateNameReader

    broken = tmp_path / "rec.onnx"
    broken.write_bytes(b"not a model at all")
    with pytest.raises(ModelError) as info:
        StateNameReader(broken)
    assert str(broken) in str(info.value)


def test_a_name_recogniser_whose_output_layer_does_not_match_its_character_list_stops_start_up(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edge_agent.errors import ModelError
    from edge_agent.recognise.statename import StateNameReader

    # a real ONNX file: (N, 3, 48, W) in, a product with 5 columns out, but a list of 7 characters (9 columns)
    weights = numpy_helper.from_array(np.zeros((48, 5), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "rec",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 48, "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.metadata_props.add(key="character", value="\n".join("ABCDEFG"))
    path = tmp_path / "rec.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError) as info:
        StateNameReader(path)
    assert str(path) in str(info.value) and "output layer" in str(info.value)


def test_a_unit_configured_without_the_name_reading_gives_the_head_s_state():
    from edge_agent.config import parse_config
    from edge_agent.pipeline import reader_settings
    from edge_agent.recognise.reader import PlateReader

    settings = reader_settings(parse_config({"recognition": {"read_state_names": False}}))
    reader = PlateReader(settings)
    assert reader.names is None
    (read,) = reader.read(render_plate("7ABC123", state="California", width=300))
    assert read.text == "7ABC123" and read.state in STATE_CODES


def test_names_seen_are_kept_for_a_pass_and_the_oldest_go_first():
    from edge_agent.recognise.statename import NamesSeen

    now = [100.0]
    seen = NamesSeen(ttl_s=10.0, size=2, clock=lambda: now[0])
    seen.put("7ABC123", ["CALIFORNIA", ""])
    now[0] += 9.0
    assert seen.get("7ABC123") == ["CALIFORNIA", ""] and seen.get("4XYZ890") is None
    now[0] += 2.0  # the pass is long gone
    assert seen.get("7ABC123") is None
    for plate in ("A1", "B2", "C3"):
        seen.put(plate, ["TEXAS"])
    assert seen.get("A1") is None and seen.get("B2") == seen.get("C3") == ["TEXAS"]


def test_a_plate_s_name_read_clearly_is_not_read_again_on_the_next_frames_of_its_pass(reader):
    from edge_agent.recognise.statename import NamesSeen

    scene = np.full((720, 1280, 3), 90, np.uint8)
    scene[300:450, 500:800] = render_plate("7ABC123", state="California", width=300)
    blank = np.full((720, 1280, 3), 90, np.uint8)  # a plate with no name: nothing to remember
    blank[300:450, 500:800] = render_plate("4XYZ890", state="", width=300)
    calls = []
    original = reader.names.read
    reader.names.read = lambda image, boxes, streaks=None: calls.append(len(boxes)) or original(image, boxes, streaks)
    seen = NamesSeen()
    try:
        alone = reader.read_frame(scene)
        calls.clear()
        frames = [reader.read_frame(scene, seen=seen) for _ in range(3)]
        named_calls = list(calls)
        calls.clear()
        unnamed = [reader.read_frame(blank, seen=seen) for _ in range(2)]
    finally:
        del reader.names.read
    assert [(r.text, r.state) for r in alone] == [("7ABC123", "CA")]
    assert all([(r.text, r.state, r.state_confidence) for r in f] == [(r.text, r.state, r.state_confidence)
                                                                    for r in alone] for f in frames)
    assert seen.get("7ABC123") is not None and seen.get("4XYZ890") is None
    assert len(named_calls) == 3 and named_calls[0] and not any(named_calls[1:])  # the first frame only
    assert [r.text for r in unnamed[1]] == ["4XYZ890"] and len(calls) == 2 and all(calls)  # every frame
