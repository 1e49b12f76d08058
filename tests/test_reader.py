"""Plate reading on rendered images, and `edge-agent read`."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.bench import seen_from_the_side, streaked
from edge_agent.recognise.detector import PlateBox, same_plate, with_side_boxes
from edge_agent.recognise.reader import FoundBox
from edge_agent.synthetic import render_plate, render_scene
from conftest import run_cli, shared_path


def _overlaps(box, other) -> bool:
    x, y, w, h = box
    ox, oy, ow, oh = other
    return x < ox + ow and ox < x + w and y < oy + oh and oy < y + h


def test_reads_each_plate_in_a_street_scene(reader):
    scene = render_scene([("7ABC123", "California"), ("4XYZ890", "California"), ("8KLM456", "Nevada")], plate_width=180)
    plates = reader.read(scene)
    by_text = {p.text: p for p in plates}
    assert set(by_text) == {"7ABC123", "4XYZ890", "8KLM456"}
    for p in plates:
        assert p.confidence > 0.8
        assert p.candidates[0].text == p.text
        assert 1 < len(p.candidates) <= 5


def test_box_is_where_the_plate_is(reader):
    scene = np.full((480, 640, 3), 100, np.uint8)
    plate = render_plate("5TRK442", width=240)
    scene[200:320, 300:540] = plate
    (found,) = reader.read(scene)
    assert found.text == "5TRK442"
    assert _overlaps(found.box, (300, 200, 240, 120))


def test_empty_and_tiny_images_give_no_plates(reader):
    assert reader.read(np.zeros((720, 1280, 3), np.uint8)) == []
    assert reader.read(np.full((8, 8, 3), 255, np.uint8)) == []
    assert reader.read(np.full((1, 1), 255, np.uint8)) == []


def test_read_command_prints_json_per_image(tmp_path: Path):
    good = tmp_path / "car.png"
    cv2.imwrite(str(good), render_scene([("6WNP018", "California")], size=(800, 450), plate_width=200))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    result = run_cli("read", good, bad, "--json")
    assert result.code == 1  # some inputs failed
    rows = [json.loads(line) for line in result.lines]
    assert rows[0]["image"] == str(good)
    plate = rows[0]["plates"][0]
    assert plate["text"] == "6WNP018"
    assert set(plate) >= {"text", "confidence", "box", "candidates", "state"}
    assert plate["candidates"][0]["text"] == "6WNP018"
    assert rows[1]["plates"] == [] and "bad.jpg" in rows[1]["error"]
    assert "bad.jpg" in result.err


def test_read_command_fails_when_no_image_is_readable(tmp_path: Path):
    result = run_cli("read", tmp_path / "missing.jpg")
    assert result.code == 1 and "missing.jpg" in result.err


def test_models_command_verifies_manifest():
    result = run_cli("models")
    assert result.code == 0
    assert "plate-detector" in result.out and "plate-reader" in result.out


def _manifest_copy(tmp_path: Path) -> Path:
    """The shipped manifest and model files copied, so a test can alter them."""
    import shutil

    from edge_agent.recognise.models import MODELS_DIR

    folder = tmp_path / "models"
    shutil.copytree(MODELS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    return folder / "manifest.toml"


def test_a_missing_altered_or_misshapen_model_file_stops_start_up_naming_the_file(tmp_path: Path):
    import onnx
    import pytest
    from onnx import TensorProto, helper

    from edge_agent.errors import ModelError
    from edge_agent.recognise.models import sha256_of
    from edge_agent.recognise.reader import PlateReader, ReaderSettings

    manifest = _manifest_copy(tmp_path)
    reader_file = manifest.parent / "plate-reader.onnx"
    original = reader_file.read_bytes()
    reader_file.write_bytes(original[:-10] + b"0" * 10)
    with pytest.raises(ModelError) as info:
        PlateReader(ReaderSettings(manifest=manifest))
    assert "plate-reader.onnx" in str(info.value) and "sha256" in str(info.value)
    reader_file.unlink()
    with pytest.raises(ModelError) as info:
        PlateReader(ReaderSettings(manifest=manifest))
    assert "plate-reader.onnx" in str(info.value) and "missing" in str(info.value)
    # a model of another input size, listed with its true sha256: refused for its shape
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 32, 100])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 32, 100])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, reader_file)
    text = manifest.read_text().replace(_sha_of(manifest, "plate-reader"), sha256_of(reader_file))
    manifest.write_text(text)
    with pytest.raises(ModelError) as info:
        PlateReader(ReaderSettings(manifest=manifest))
    assert "plate-reader.onnx" in str(info.value) and "(N, 3, 48, 128)" in str(info.value)


def _sha_of(manifest: Path, name: str) -> str:
    from edge_agent.recognise.models import load_manifest

    return next(s.sha256 for s in load_manifest(manifest).values() if s.name == name)


def test_the_shipped_models_are_installed_with_the_package_and_listed_with_card_and_licence():
    from edge_agent.recognise.models import MODELS_DIR, load_manifest, verify_model

    specs = {s.name: s for s in load_manifest().values()}
    assert {"plate-detector", "plate-detector-side", "plate-reader", "pp-ocrv6-rec-small"} <= set(specs)
    for spec in specs.values():
        if spec.origin == "wheel":  # the state name's text recogniser, from the pinned rapidocr wheel
            assert spec.package == "rapidocr" and spec.license == "Apache-2.0" and verify_model(spec).is_file()
            continue
        assert spec.origin == "repository" and verify_model(spec).parent == MODELS_DIR
        card = (MODELS_DIR / f"{spec.name}.md").read_text()
        assert spec.sha256 in card and "AGPL-3.0" in card and "validation" in card.lower()
    import configparser

    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    assert "*.onnx" in setup["options.package_data"]["edge_agent.models"]


def test_rendered_plates_of_several_states_are_read_with_a_state(reader):
    from edge_agent.recognise.recogniser import STATE_CODES

    for text, state, code in [("7ABC123", "California", "CA"), ("KLM4567", "Texas", "TX"), ("123ABC", "Nevada", "NV"),
                              ("ABC1234", "New York", "NY"), ("FGH789", "Oregon", "OR")]:
        scene = np.full((720, 1280, 3), 90, np.uint8)
        plate = render_plate(text, state, width=220)
        scene[400:400 + plate.shape[0], 500:500 + plate.shape[1]] = plate
        plates = reader.read(scene)
        assert plates and plates[0].text == text, (text, [p.text for p in plates])
        assert plates[0].state == code and 0.5 < plates[0].state_confidence <= 1, (code, plates[0].state)
        assert plates[0].state in STATE_CODES


def test_a_rendered_california_plate_is_read_as_california(reader):
    # the test renderer draws every state alike: the state comes from the printed name, not the design
    scene = render_scene([("7ABC123", "California")], plate_width=180)
    assert reader.read(scene)[0].state == "CA"


@pytest.mark.parametrize("width", [200, 900, 2400])
def test_a_picture_of_a_plate_is_read_whole_at_any_size(reader, width):
    # another system's crop, or a close photograph of a plate: the detector learned plates in scenes
    (found,) = reader.read(render_plate("4GHT271", width=width))
    assert found.text == "4GHT271"


@pytest.mark.parametrize("yaw, slant", [(45, 10), (60, 8)])
def test_a_picture_of_a_plate_seen_from_the_side_is_read_whole(reader, yaw, slant):
    # a side camera's crop: narrower than a plate's 2:1 (at 60 degrees narrower than 1:1), its lines slanting
    for plate, state in [("7ABC123", "California"), ("ABC1234", "New York")]:
        picture, _ = seen_from_the_side(render_plate(plate, state, width=320), yaw, slant)
        assert picture.shape[1] / picture.shape[0] < 1.3
        assert [p.text for p in reader.read(picture)][:1] == [plate]


def test_a_camera_frame_is_read_by_the_detector_s_boxes_alone(reader):
    scene = render_scene([("7ABC123", "California")], size=(1280, 720), plate_width=160)
    (frame,) = reader.read_frame(scene)
    (picture,) = reader.read(scene)
    assert frame.text == picture.text == "7ABC123" and frame.box == picture.box


def test_a_close_photograph_of_a_car_is_searched_for_its_plate(reader):
    # of a plate's shape, so first read whole as a crop; that reads nothing, so the detector looks
    photo = render_scene([("5TRK442", "California")], size=(300, 200), plate_width=90)
    (found,) = reader.read(photo)
    assert found.text == "5TRK442"
    x, y, w, h = found.box
    assert w < 150 and _overlaps(found.box, (100, 140, 90, 45))


def test_a_big_plate_is_read_once_however_many_boxes_the_detector_puts_on_it(reader):
    photo = render_scene([("5TRK442", "California")], size=(300, 200), plate_width=130)
    assert [p.text for p in reader.read(photo)] == ["5TRK442"]


def test_8k_grey_and_16bit_frames_are_read_or_give_nothing(tmp_path: Path):
    plate = render_plate("6WNP018", width=1400)
    huge = np.full((4320, 7680, 3), 120, np.uint8)
    huge[2000:2000 + plate.shape[0], 3000:3000 + plate.shape[1]] = plate
    grey16 = (cv2.cvtColor(render_scene([("4XYZ890", "California")], size=(800, 450), plate_width=220),
                           cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    blank16 = np.zeros((720, 1280), np.uint16)
    names = []
    for name, image in [("8k.png", huge), ("grey16.png", grey16), ("blank16.png", blank16)]:
        cv2.imwrite(str(tmp_path / name), image)
        names.append(tmp_path / name)
    result = run_cli("read", *names, "--json")
    assert result.code == 0, result.err
    rows = [json.loads(line) for line in result.lines]
    assert rows[0]["plates"][0]["text"] == "6WNP018"
    assert rows[1]["plates"][0]["text"] == "4XYZ890"
    assert rows[2]["plates"] == [] and "error" not in rows[2]


def test_signs_badges_and_sticker_years_are_not_read_as_plates(reader):
    scene = render_scene([("7ABC123", "California")], size=(1280, 720), plate_width=200)
    cv2.putText(scene, "NO PARKING ANY TIME", (60, 120), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 4)
    cv2.putText(scene, "Toyota", (900, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (30, 30, 30), 3)
    cv2.putText(scene, "2012", (1000, 650), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (10, 10, 10), 2)
    assert [p.text for p in reader.read(scene)] == ["7ABC123"]


def test_the_text_reader_reads_only_boxes_where_the_plate_reader_reads_a_plate(reader):
    # the text reader costs eight times the plate reader (0.5 against 0.06 GMAC): a box of bare wall is not
    # worth its time
    scene = np.full((480, 640, 3), 110, np.uint8)
    scene[200:320, 300:540] = render_plate("5TRK442", width=240)
    plate, wall = (300.0, 200.0, 240.0, 120.0), (20.0, 20.0, 200.0, 100.0)
    (plate_probs, _), (wall_probs, _) = reader.outputs(scene, [FoundBox(plate, 0.9), FoundBox(wall, 0.9)])
    assert len(plate_probs) == 2 and len(wall_probs) == 1
    assert reader.candidates(plate_probs)[0].text == "5TRK442" and reader.candidates(wall_probs) is None




def test_the_reader_sees_a_plate_box_as_a_normalised_colour_strip_and_a_grey_image_as_three_equal_channels():
    from edge_agent.recognise.crops import READER_SIZE, reader_input

    plate = render_plate("7ABC123", width=240)
    box = (0.0, 0.0, float(plate.shape[1]), float(plate.shape[0]))
    colour = reader_input(plate, box)
    assert colour.shape == (3, *READER_SIZE) and colour.dtype == np.float32
    assert abs(float(colour.mean())) < 0.5 and not np.allclose(colour[0], colour[2])
    grey = reader_input(cv2.cvtColor(plate, cv2.COLOR_BGR2GRAY), box)
    assert grey.shape == (3, *READER_SIZE)
    assert np.array_equal(grey[0], grey[1]) and np.array_equal(grey[1], grey[2])
    # brighter light reads the same: the strip is normalised by its own level and spread
    brighter = reader_input(cv2.convertScaleAbs(plate, alpha=0.5, beta=100), box)
    assert np.abs(brighter - colour).mean() < 0.15
    # a box wholly outside the image gives a blank strip, not an error
    assert not reader_input(plate, (5000.0, 5000.0, 50.0, 20.0)).any()


def _turned(image: np.ndarray, degrees: float, pad: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The image on a grey canvas `pad` pixels wider each side, turned `degrees` (counter-clockwise) about its
    centre, and the upright box around the turned image."""
    h, w = image.shape[:2]
    canvas = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(90, 90, 90))
    centre = (canvas.shape[1] / 2, canvas.shape[0] / 2)
    turned = cv2.warpAffine(canvas, cv2.getRotationMatrix2D(centre, degrees, 1.0), canvas.shape[1::-1],
                            borderMode=cv2.BORDER_REPLICATE)
    c, s = np.cos(np.deg2rad(degrees)), abs(np.sin(np.deg2rad(degrees)))
    bw, bh = w * c + h * s, w * s + h * c
    return turned, (centre[0] - bw / 2, centre[1] - bh / 2, bw, bh)


@settings(max_examples=25, deadline=None)
@given(st.integers(-12, 12), st.sampled_from(["7ABC123", "5TRK442", "8KLM456", "4GHT271"]))
def test_how_far_a_plate_is_turned_is_found_to_a_degree(degrees, text):
    from edge_agent.recognise.crops import plate_tilt

    turned, box = _turned(render_plate(text, width=220), degrees, pad=60)
    assert abs(plate_tilt(turned, box) - degrees) <= 1


@settings(max_examples=200)
@given(st.floats(60, 400), st.floats(1.5, 4.0), st.floats(-20, 20))
def test_the_level_box_of_a_turned_plate_s_upright_box_is_the_plate(width, aspect, degrees):
    from edge_agent.recognise.crops import level_box

    height = width / aspect
    c, s = np.cos(np.deg2rad(degrees)), abs(np.sin(np.deg2rad(degrees)))
    upright = (100.0, 50.0, width * c + height * s, width * s + height * c)
    x, y, w, h = level_box(upright, degrees)
    assert w == pytest.approx(width, rel=1e-6) and h == pytest.approx(height, rel=1e-6)
    assert x + w / 2 == pytest.approx(upright[0] + upright[2] / 2) and y + h / 2 == pytest.approx(upright[1] + upright[3] / 2)


@pytest.mark.parametrize("degrees", [-12, -6, 6, 12])
def test_the_readers_see_a_turned_plate_level(degrees):
    from edge_agent.recognise.crops import plate_tilt, reader_input, text_reader_input

    plate = render_plate("7ABC123", width=220)
    level, box = _turned(plate, 0, pad=60)
    turned, turned_box = _turned(plate, degrees, pad=60)
    tilt = plate_tilt(turned, turned_box)
    for strip in (reader_input, text_reader_input):
        want = strip(level, box)
        as_seen, levelled = strip(turned, turned_box), strip(turned, turned_box, tilt)
        # resampling leaves a little; unturned, the characters and edges are elsewhere
        assert np.abs(levelled - want).mean() < 0.5 * np.abs(as_seen - want).mean()


def test_a_plate_turned_in_a_camera_frame_is_read_and_its_turn_reported(reader):
    scene = render_scene([("8KLM456", "California")], size=(1280, 720), plate_width=180)
    turned = cv2.warpAffine(scene, cv2.getRotationMatrix2D((640, 360), -14, 1.0), (1280, 720),
                            borderMode=cv2.BORDER_REPLICATE)
    boxes, _, _ = reader.read_boxes(turned, picture=False)
    assert any(abs(b.tilt + 14) <= 1 for b in boxes)
    (found,) = reader.read_frame(turned)
    assert found.text == "8KLM456" and found.confidence > 0.9


def test_a_text_reader_of_another_shape_stops_start_up_naming_the_file():
    from edge_agent.errors import ModelError
    from edge_agent.recognise.models import MODELS_DIR
    from edge_agent.recognise.recogniser import PlateTextReader

    with pytest.raises(ModelError) as info:
        PlateTextReader(MODELS_DIR / "plate-reader.onnx")  # a (N, 3, 48, 128) input: the CNN's, not a text reader's
    assert "plate-reader.onnx" in str(info.value) and "(N, 3, 48, 160)" in str(info.value)


_BOXES = st.lists(st.builds(lambda x, y, w, h, s: PlateBox((x, y, w, h), s), st.floats(0, 600), st.floats(0, 300),
                            st.floats(4, 200), st.floats(4, 80), st.floats(0.3, 1)), max_size=6)


@given(_BOXES, _BOXES)
def test_the_side_view_detector_adds_only_plates_the_other_did_not_box(ahead, side):
    boxes = with_side_boxes(ahead, side)
    assert boxes[:len(ahead)] == ahead  # where both find a plate, the box from ahead stands
    added = boxes[len(ahead):]
    assert all(b in side and not any(same_plate(b.box, a.box) for a in ahead) for b in added)
    assert all(b in added for b in side if not any(same_plate(b.box, a.box) for a in ahead))


@pytest.mark.shared
@pytest.mark.slow
def test_a_side_camera_reads_photographs_seen_steeply_from_the_side(reader):
    from edge_agent.bench import load_dataset
    from edge_agent.capture import decode_image

    items = load_dataset(shared_path("data", "us-plates", "endtoend"), part="validation")
    frames = [(item.plate, decode_image(item.path)) for item in items]

    def read(yaw: float, slant: float, side_view: bool) -> int:
        return sum(any(r.text == plate for r in reader.read_frame(seen_from_the_side(image, yaw, slant)[0],
                                                                   side_view=side_view)[:1])
                   for plate, image in frames)

    # 2026-12-07: at 60 degrees 24 of 34 with the side-view detector, 13 without (20 while a narrowed plate's
    # strokes could pass for a short streak, before STREAK_SHORTEST); as taken 32 either way
    steep = read(60, 6, True)
    assert steep >= 21 and steep > read(60, 6, False) + 4
    assert read(0, 0, True) >= read(0, 0, False)


@settings(max_examples=30, deadline=None)
@given(st.integers(4, 16), st.sampled_from(["7ABC123", "5TRK442", "8KLM456", "4GHT271"]), st.integers(80, 400))
def test_how_far_a_passing_plate_is_streaked_is_found_to_a_pixel(length, text, width):
    from edge_agent.recognise.crops import STREAK_SHORTEST, STREAK_TALLEST, streak_length

    plate, box = _turned(render_plate(text, width=width), 0, pad=60)
    found = streak_length(streaked(plate, length), box)
    if box[3] > STREAK_TALLEST:  # a plate seen big: its strokes are as wide as streaks, which its readers see shrunk
        assert found == 0
    elif length > STREAK_SHORTEST:
        assert abs(found - length) <= 1
    else:  # as short as a small plate's strokes: left as it is, or found to a pixel
        assert found == 0 or abs(found - length) <= 1


def test_a_streak_that_a_sensors_noise_hides_is_still_the_likeliest_to_a_pixel():
    from edge_agent.bench import through_a_sensor
    from edge_agent.recognise.crops import likeliest_streak, streak_length

    rng = np.random.default_rng(1)
    plates = [_turned(render_plate(["7ABC123", "5TRK442", "8KLM456", "4GHT271"][i % 4],
                                   width=int(rng.integers(60, 160))), 0, pad=60) for i in range(40)]
    for length in (7, 9, 12, 15):
        seen = [(through_a_sensor(streaked(plate, length)), box) for plate, box in plates]
        sure = sum(abs(streak_length(image, box) - length) <= 1 for image, box in seen)
        likeliest = sum(abs(likeliest_streak(image, box) - length) <= 1 for image, box in seen)
        # 2026-12-08: within a pixel, `streak_length` found 22 / 12 / 4 / 0 of the 40, the likeliest 40 / 39 / 39 / 40
        assert likeliest >= 36 and likeliest > sure


def test_a_plate_seen_big_has_its_streak_found_in_its_small_print(reader):
    from edge_agent.bench import LOOKS
    from edge_agent.recognise.crops import STREAK_TALLEST, streak_length

    found = {"streaked": 0, "sharp": 0, "blurred": 0}
    for i, state in enumerate(["California", "Texas", "New York", "Florida", "Ohio", "Arizona"]):
        plate, box = _turned(render_plate(["7ABC123", "5TRK442", "8KLM456"][i % 3], state=state, width=360), 0, pad=60)
        # the window's strokes say nothing
        assert box[3] > STREAK_TALLEST and streak_length(streaked(plate, 9), box) == 0
        for look, image in (("streaked", streaked(plate, 9)), ("sharp", plate), ("blurred", LOOKS["blur"](plate))):
            (boxed,) = reader.found_boxes(image, [(box, 1.0)])
            found[look] += abs(boxed.streak - 9) <= 1 if look == "streaked" else boxed.streak > 0
    # 2026-12-08: of 185 train crops over 80 px high, streaked 9 px: both bands found 9 in all; as taken,
    # none; blurred, one band found a short streak in 17, both in 1 (at 6 and 9 px: not kept)
    assert found == {"streaked": 6, "sharp": 0, "blurred": 0}


def test_a_sharp_plate_is_not_taken_for_a_streaked_one_at_any_size():
    from edge_agent.recognise.crops import streak_length

    rng = np.random.default_rng(1)
    found = 0
    for i in range(60):
        width = int(rng.integers(40, 160))  # far to near: strokes 2-8 px wide
        plate, box = _turned(render_plate(["7ABC123", "5TRK442", "8KLM456", "4GHT271"][i % 4], width=width), 0, pad=60)
        found += streak_length(plate, box) > 0
    # 2026-12-07: none (16 when streaks of 3-5 px were undone too: a small plate's strokes pass for them)
    assert found <= 2


def test_rows_averaged_find_a_streak_that_a_sensors_noise_hides(monkeypatch):
    from edge_agent.bench import through_a_sensor
    from edge_agent.recognise import crops

    rng = np.random.default_rng(1)
    plates = [_turned(render_plate(["7ABC123", "5TRK442", "8KLM456", "4GHT271"][i % 4],
                                   width=int(rng.integers(60, 160))), 0, pad=60) for i in range(40)]

    def found(rows: int, length: int) -> int:
        monkeypatch.setattr(crops, "STREAK_ROWS", rows)
        if not length:
            return sum(crops.streak_length(through_a_sensor(plate), box) > 0 for plate, box in plates)
        return sum(abs(crops.streak_length(through_a_sensor(streaked(plate, length)), box) - length) <= 1
                   for plate, box in plates)

    # 2026-12-07: streaked 9 px through noise and JPEG, found in 12 of the 40 from single rows, 17 from rows
    # averaged 3 at a time; sharp ones in none either way
    assert found(3, 9) > found(1, 9) + 2
    assert found(3, 0) == found(1, 0) == 0


@pytest.mark.parametrize("length", [7, 9, 13])
def test_the_readers_see_a_streaked_plate_as_it_was_before_it_was_streaked(length):
    from edge_agent.recognise.crops import reader_input, streak_length, text_reader_input

    sharp, box = _turned(render_plate("7ABC123", width=110), 0, pad=60)
    seen = streaked(sharp, length)
    streak = streak_length(seen, box)
    for strip in (reader_input, text_reader_input):
        want = strip(sharp, box)
        as_seen, undone = strip(seen, box), strip(seen, box, 0.0, streak)
        # 2026-12-07: 0.40-0.60 of the streaked strip's difference from the sharp one is left
        assert np.abs(undone - want).mean() < 0.65 * np.abs(as_seen - want).mean()


def test_a_plate_streaked_as_it_passes_a_camera_is_read(reader):
    scene = render_scene([("8KLM456", "California")], size=(1280, 720), plate_width=90)
    seen = streaked(scene, 11)
    boxes, _, _ = reader.read_boxes(seen, picture=False)
    assert any(abs(b.streak - 11) <= 1 for b in boxes)
    (found,) = reader.read_frame(seen)
    assert found.text == "8KLM456"


def test_a_plate_whose_streak_a_sensors_noise_hides_is_read_on_a_second_look(reader):
    import dataclasses

    from edge_agent.bench import through_a_sensor
    from edge_agent.recognise.reader import PlateReader

    once = PlateReader(dataclasses.replace(reader.settings, second_look_score=2.0))  # no box is that sure
    texts = ["7ABC123", "5TRK442", "8KLM456", "4GHT271", "6XYZ890", "3MNP417"]
    hidden = first = second = 0
    for i in range(12):
        scene = render_scene([(texts[i % 6], "California")], size=(1280, 720), seed=i, plate_width=70 + 8 * (i % 6))
        seen = through_a_sensor(streaked(scene, 9))
        boxes, _, _ = once.read_boxes(seen, picture=False)
        hidden += not any(box.streak for box in boxes)
        first += any(r.text == texts[i % 6] for r in once.read_frame(seen)[:1])
        second += any(r.text == texts[i % 6] for r in reader.read_frame(seen)[:1])
    # 2026-12-08: the streak found in none of the 12; 4 read at once, 11 on a second look
    assert hidden >= 8 and second >= 9 and second > first + 4
    sharp = render_scene([("8KLM456", "California")], size=(1280, 720), plate_width=90)
    assert [r.text for r in reader.read_frame(sharp)] == [r.text for r in once.read_frame(sharp)] == ["8KLM456"]


@pytest.mark.shared
@pytest.mark.slow
def test_validation_frames_streaked_as_they_pass_are_read(reader):
    import dataclasses

    from edge_agent.bench import LOOKS, load_dataset
    from edge_agent.capture import decode_image
    from edge_agent.recognise.crops import streak_length
    from edge_agent.recognise.reader import PlateReader

    items = load_dataset(shared_path("data", "us-plates", "endtoend"), part="validation")
    taken = [decode_image(item.path) for item in items]
    left = PlateReader(dataclasses.replace(reader.settings, undo_streaks=False))

    def read(by, images) -> int:
        return sum(any(r.text == item.plate for r in by.read_frame(image)[:1]) for item, image in zip(items, images))

    # 2026-12-08: streaked 9 px, 29 of 34 with streaks undone, 9 left as they are; streaked and noisy, 20 and
    # 10 (14 before boxes that read as nothing had a second look); as taken 32 either way, a streak found in none
    passing = [LOOKS["motion9"](image) for image in taken]
    undone = read(reader, passing)
    assert undone >= 20 and undone > read(left, passing) + 10
    noisy = [LOOKS["motion9-noisy"](image) for image in taken]
    assert read(reader, noisy) > read(left, noisy) + 5
    # as taken, a streak is found in few plates (a sharp plate's strokes, all one width, can look like a short
    # one), and the frames read as well as with streaks left alone
    assert sum(streak_length(image, item.box) > 0 for item, image in zip(items, taken)) <= 5
    assert read(reader, taken) >= read(left, taken) >= 31
