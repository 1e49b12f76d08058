"""Plate reading on rendered images, and `edge-agent read`."""

import json
from pathlib import Path

import cv2
import numpy as np

from edge_agent.synthetic import render_plate, render_scene
from conftest import run_cli


def _overlaps(box, other) -> bool:
    x, y, w, h = box
    ox, oy, ow, oh = other
    return x < ox + ow and ox < x + w and y < oy + oh and oy < y + h


def test_reads_each_plate_in_a_street_scene(reader):
    scene = render_scene([("7ABC123", "California"), ("4XYZ890", "California"), ("8KLM456", "Nevada")], plate_width=180)
    plates = reader.read(scene)
    by_text = {p.text: p for p in plates}
    assert set(by_text) == {"7ABC123", "4XYZ890", "8KLM456"}
    assert by_text["8KLM456"].state == "NV"
    assert by_text["7ABC123"].state == "CA"
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
    assert result.code == 0
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
    assert result.code == 2 and "missing.jpg" in result.err


def test_models_command_verifies_manifest():
    result = run_cli("models")
    assert result.code == 0
    assert "text-detector" in result.out and "text-recogniser" in result.out and "Apache-2.0" in result.out


def test_altered_model_file_stops_start_up(tmp_path: Path):
    from edge_agent.errors import ModelError
    from edge_agent.recognise.models import DEFAULT_MANIFEST, load_manifest, verify_model

    spec = load_manifest(DEFAULT_MANIFEST)["detect"]
    import dataclasses

    import pytest

    wrong = dataclasses.replace(spec, sha256="0" * 64)
    with pytest.raises(ModelError) as info:
        verify_model(wrong)
    assert "PP-OCRv6_det_small.onnx" in str(info.value) and "sha256" in str(info.value)
    with pytest.raises(ModelError) as info:
        verify_model(dataclasses.replace(spec, version="0.0.1"))
    assert "rapidocr==0.0.1" in str(info.value)


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


def test_recogniser_cut_to_latin_reads_as_the_full_model():
    from edge_agent.recognise.models import DEFAULT_MANIFEST, load_manifest, verify_model
    from edge_agent.recognise.ocr import PLATE_ALPHABET, RuntimeOptions, TextRecogniser, crop_line, latin_classifier

    path = verify_model(load_manifest(DEFAULT_MANIFEST)["recognise"])
    model, charset = latin_classifier(path)
    assert isinstance(model, bytes) and charset[0] == "<blank>" and len(charset) < 100
    assert set(PLATE_ALPHABET) <= set(charset) and "-" in charset and "a" in charset
    cut = TextRecogniser(path, RuntimeOptions())
    plate = render_plate("8LMN905", width=300)
    h, w = plate.shape[:2]
    quad = np.array([[0, h * 0.25], [w, h * 0.25], [w, h * 0.8], [0, h * 0.8]], np.float32)
    (line,) = cut.recognise([crop_line(plate, quad)])
    assert line.text.replace(" ", "") == "8LMN905"
    assert np.allclose(line.plate_probs.sum(axis=1), 1.0, atol=1e-3)


def test_signs_badges_and_sticker_years_are_not_read_as_plates(reader):
    scene = render_scene([("7ABC123", "California")], size=(1280, 720), plate_width=200)
    cv2.putText(scene, "NO PARKING ANY TIME", (60, 120), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 4)
    cv2.putText(scene, "Toyota", (900, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (30, 30, 30), 3)
    cv2.putText(scene, "2012", (1000, 650), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (10, 10, 10), 2)
    assert [p.text for p in reader.read(scene)] == ["7ABC123"]


def test_a_line_reads_the_same_whatever_else_is_in_the_frame(reader):
    from edge_agent.recognise.ocr import crop_line

    plate = render_plate("6WNP018", width=160)
    h, w = plate.shape[:2]
    quad = np.array([[0, h * 0.25], [w, h * 0.25], [w, h * 0.8], [0, h * 0.8]], np.float32)
    strip = crop_line(plate, quad)
    sign = np.full((48, 600, 3), 200, np.uint8)
    cv2.putText(sign, "WESTBOUND ONLY", (5, 38), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 3)
    (alone,) = reader.recogniser.recognise([strip])
    together = reader.recogniser.recognise([sign, strip, strip[:, : strip.shape[1] // 2]])
    assert alone.text == together[1].text
    assert np.allclose(alone.plate_probs, together[1].plate_probs, atol=1e-4)


def test_plate_with_stacked_characters_reads_its_main_line(reader):
    from PIL import Image, ImageDraw

    from edge_agent.synthetic import _font

    # two small letters stacked beside the number, as plate-type or county codes are printed
    picture = Image.new("RGB", (360, 180), (245, 245, 245))
    draw = ImageDraw.Draw(picture)
    draw.rectangle([3, 3, 356, 176], outline=(20, 20, 20), width=4)
    draw.text((30, 40), "D", font=_font(40), fill=(10, 10, 90))
    draw.text((30, 88), "V", font=_font(40), fill=(10, 10, 90))
    draw.text((80, 40), "4521", font=_font(90), fill=(10, 10, 90))
    draw.text((110, 140), "OREGON", font=_font(24), fill=(10, 10, 90))
    plate = cv2.cvtColor(np.array(picture), cv2.COLOR_RGB2BGR)
    scene = np.full((720, 1280, 3), 90, np.uint8)
    scene[300:480, 500:860] = plate
    for image in (plate, scene):
        (found,) = reader.read(image)
        assert found.text == "4521"
        assert found.state == "OR"


def _plate_with_stacked_pairs(number: str, left: str = "", right: str = "") -> np.ndarray:
    """A plate whose small stacked letters stand close against the number, so that the text
    detector takes them into the number's line (Delaware's "PC", Minnesota's "HH")."""
    from PIL import Image, ImageDraw

    from edge_agent.synthetic import _font

    picture = Image.new("RGB", (360, 180), (245, 245, 245))
    draw = ImageDraw.Draw(picture)
    draw.rectangle([3, 3, 356, 176], outline=(20, 20, 20), width=4)
    big, small = _font(70), _font(30)
    x, base = 20, 112
    top = draw.textbbox((0, base), number, font=big, anchor="ls")[1]

    def pair(x: float, letters: str) -> float:
        draw.text((x, top + (base - top) * 0.45), letters[0], font=small, fill=(10, 10, 90), anchor="ls")
        draw.text((x, base), letters[1], font=small, fill=(10, 10, 90), anchor="ls")
        return x + draw.textlength(letters[0], font=small) + 6

    if left:
        x = pair(x, left)
    draw.text((x, base), number, font=big, fill=(10, 10, 90), anchor="ls")
    if right:
        pair(x + draw.textlength(number, font=big) + 4, right)
    draw.text((120, 145), "DELAWARE", font=_font(24), fill=(10, 10, 90))
    return cv2.cvtColor(np.array(picture), cv2.COLOR_RGB2BGR)


def test_letters_stacked_against_the_number_are_not_read_into_it(reader):
    for number, left, right in (("2678", "", "HH"), ("197659", "PC", "")):
        plate = _plate_with_stacked_pairs(number, left, right)
        scene = np.full((720, 1280, 3), 90, np.uint8)
        scene[300:480, 500:860] = plate
        for image in (plate, scene):
            reads = reader.read(image)
            assert reads and reads[0].text == number


def test_stacked_pairs_are_found_beside_the_number_not_in_its_characters(reader):
    from edge_agent.recognise.ocr import crop_line
    from edge_agent.recognise.reader import LINE_MARGIN, _widened
    from edge_agent.recognise.stacked import stacked_pairs

    def strip(plate: np.ndarray) -> np.ndarray:
        boxes = sorted(reader.detector.detect(plate), key=lambda b: b.height, reverse=True)
        return crop_line(plate, _widened(boxes[0].quad, LINE_MARGIN))

    line = strip(_plate_with_stacked_pairs("2678", right="HH"))
    ((x0, _),) = stacked_pairs(line)
    assert x0 > 0.7 * line.shape[1]  # the pair at the right end
    # the holes of 8 and B are pairs one above the other, inside a character
    assert stacked_pairs(strip(_plate_with_stacked_pairs("B8B808"))) == []
    assert stacked_pairs(strip(render_plate("8BB3880", width=360))) == []


def test_sticker_in_the_plates_corner_is_not_the_plate(reader):
    # a month-year sticker reads more confidently than a worn number, but it is small print on the same plate
    plate = render_plate("5KDR662", width=360)
    cv2.rectangle(plate, (300, 8), (352, 40), (40, 160, 240), -1)
    cv2.putText(plate, "12-07", (302, 31), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (10, 10, 10), 2)
    scene = np.full((720, 1280, 3), 90, np.uint8)
    scene[300:480, 460:820] = plate
    for image in (plate, scene):
        reads = reader.read(image)
        assert reads and reads[0].text == "5KDR662"
        assert "1207" not in [r.text for r in reads]


def test_of_two_numbers_that_read_alike_the_lower_comes_first(reader):
    # a fleet number high on a truck's body and the plate at bumper height
    scene = np.full((720, 1280, 3), 200, np.uint8)
    cv2.putText(scene, "4821937", (520, 150), cv2.FONT_HERSHEY_DUPLEX, 1.4, (20, 20, 20), 3)
    plate = render_plate("7TRK405", width=240)
    scene[520:640, 520:760] = plate
    reads = reader.read(scene)
    assert [r.text for r in reads][:1] == ["7TRK405"]


def test_camera_time_stamp_is_not_read_as_a_plate(reader):
    scene = render_scene([("3XYZ288", "California")], size=(1280, 720), plate_width=160)
    cv2.putText(scene, "07:31:26", (1120, 705), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    reads = reader.read(scene)
    assert [r.text for r in reads] == ["3XYZ288"]


def test_groups_split_by_a_graphic_are_joined_even_when_one_box_reaches_over_it():
    from edge_agent.recognise.ocr import TextBox
    from edge_agent.recognise.reader import _joined_neighbours

    def box(x0: float, x1: float, y0: float = 40, y1: float = 135) -> TextBox:
        return TextBox(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), 0.9)

    # Louisiana's TAF [pelican] 389: the detector gives TAF, and a box from the pelican over 389
    taf, pelican_389 = box(5, 149), box(103, 318)
    (joined,) = _joined_neighbours([taf, pelican_389])
    assert joined.bounds() == (5, 40, 313, 95)
    # a box inside another, or one on another line, is not a second group
    assert _joined_neighbours([box(5, 318), box(103, 250)]) == []
    assert _joined_neighbours([taf, box(160, 318, 150, 180)]) == []


def test_a_character_the_detectors_box_clips_is_read_again_from_a_wider_crop(reader):
    from edge_agent.recognise.ocr import TextBox, crop_line
    from edge_agent.recognise.reader import LINE_MARGIN, RankedLine, _second_crops, _widened

    plate = render_plate("7EAV033", width=240)
    h, w = plate.shape[:2]
    ink = np.where((plate[int(h * 0.35):int(h * 0.75), 10:w - 10].min(axis=2) < 120).any(axis=0))[0] + 10
    top, bottom = 0.28 * h, 0.8 * h
    # the box starts 0.45 line heights into the 7, as the detector's did on a real photograph
    left = ink[0] + 0.45 * (bottom - top)
    box = TextBox(np.array([[left, top], [ink[-1], top], [ink[-1], bottom], [left, bottom]], np.float32), 0.9)
    (first,) = reader._recognise([crop_line(plate, _widened(box.quad, LINE_MARGIN))])
    assert first.text == "EAV033"
    second = reader._recognise(_second_crops(plate, box.quad))
    _, reading = reader._reading(RankedLine(1.0, box, reader._candidates(first), None), second)
    assert "7EAV033" in [c.text for c in reading.candidates[:3]]


def test_an_unsure_plates_line_is_found_again_closer_up_and_the_clipped_character_read(reader):
    from edge_agent.recognise.ocr import TextBox, crop_line
    from edge_agent.recognise.reader import LINE_MARGIN, RankedLine, _widened

    # a small plate in a street frame, whose box at frame scale starts inside the 7
    plate = render_plate("7EAV033", width=120)
    h, w = plate.shape[:2]
    scene = np.full((720, 1280, 3), 70, np.uint8)
    scene[420:420 + h, 600:600 + w] = plate
    ink = np.where((plate[int(h * 0.35):int(h * 0.75), 4:w - 4].min(axis=2) < 120).any(axis=0))[0] + 604
    top, bottom = 420 + 0.28 * h, 420 + 0.8 * h
    left = ink[0] + 0.45 * (bottom - top)
    box = TextBox(np.array([[left, top], [ink[-1], top], [ink[-1], bottom], [left, bottom]], np.float32), 0.9)
    (first,) = reader._recognise([crop_line(scene, _widened(box.quad, LINE_MARGIN))])
    assert first.text == "EAV033"

    closer = reader._relook(scene, box)
    x, y, bw, bh = TextBox(closer, 0.9).bounds()
    assert x <= ink[0] and x + bw >= ink[-1] and abs((y + bh / 2) - (top + bottom) / 2) < 0.25 * (bottom - top)
    second = reader._recognise(reader._second_strips(scene, box))
    _, reading = reader._reading(RankedLine(1.0, box, reader._candidates(first), None), second)
    assert reading.text == "7EAV033"


def test_a_confident_line_too_short_for_a_plate_is_read_again_where_it_goes_on(reader):
    from edge_agent.recognise.ocr import TextBox, crop_line
    from edge_agent.recognise.reader import LINE_MARGIN, RankedLine, _widened

    plate = render_plate("3127K", width=120)
    h, w = plate.shape[:2]
    scene = np.full((720, 1280, 3), 70, np.uint8)
    scene[420:420 + h, 600:600 + w] = plate
    rows = plate[int(h * 0.35):int(h * 0.75), 4:w - 4].min(axis=2) < 120
    ink = np.where(rows.any(axis=0))[0] + 604
    gaps = np.where(np.diff(ink) > 1)[0]  # the character runs of ink end at these gaps
    top, bottom = 420 + 0.28 * h, 420 + 0.8 * h
    # the detector's box at frame scale holds only 31 (on a real photograph, 312 of 3127K): the line
    # goes on past a margin of the box's own width, and the whole line found there is mostly not over it
    left, right = ink[0], ink[gaps[1]]

    def box_to(x1: float) -> TextBox:
        return TextBox(np.array([[left, top], [x1, top], [x1, bottom], [left, bottom]], np.float32), 0.9)

    short = box_to(right)
    (first,) = reader._recognise([crop_line(scene, _widened(short.quad, LINE_MARGIN))])
    assert first.text == "31" and first.confidence >= 0.9
    second = reader._recognise(reader._second_strips(scene, short, confident=True))
    _, reading = reader._reading(RankedLine(1.0, short, reader._candidates(first), None), second)
    assert reading.text == "3127K"
    # a confident line that is the whole number is not read again
    assert reader._second_strips(scene, box_to(ink[-1]), confident=True) == []


def test_a_line_found_again_is_the_same_line_not_its_neighbour():
    from edge_agent.recognise.ocr import TextBox
    from edge_agent.recognise.reader import _same_line

    def box(x0: float, y0: float, x1: float, y1: float) -> TextBox:
        return TextBox(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), 0.9)

    line = (40, 50, 100, 30)  # x, y, width, height
    state_name, sticker = box(30, 20, 150, 35), box(150, 50, 170, 60)
    whole, part = box(25, 48, 142, 80), box(40, 50, 90, 80)
    found = _same_line(line, [state_name, sticker, part, whole], offset=(200, 100))
    assert TextBox(found, 0.9).bounds() == (225, 148, 117, 32)
    assert _same_line(line, [state_name, sticker]) is None
    assert _same_line(line, [box(40, 48, 140, 140)]) is None  # the whole plate, not its line
    assert _same_line(line, [box(45, 50, 80, 80)]) is None  # a part of the line
    # a line the detector cut short is only a part of the box found closer up
    assert TextBox(_same_line((40, 50, 30, 30), [whole]), 0.9).bounds() == (25, 48, 117, 32)


def test_of_a_painted_number_and_a_plate_with_no_readable_state_the_plate_comes_first(reader):
    # digits alone are more often a fleet number than a plate; they still read, second
    scene = np.full((720, 1280, 3), (40, 190, 230), np.uint8)
    scene[300:400, 300:500] = render_plate("5RIN962", "", width=200)
    cv2.putText(scene, "219906", (850, 375), cv2.FONT_HERSHEY_DUPLEX, 1.9, (20, 20, 20), 4)
    assert [r.text for r in reader.read(scene)] == ["5RIN962", "219906"]
    # an all-digit plate with its state name keeps its full weight, even one that reads like a date
    (delaware,) = reader.read(render_plate("198606", "Delaware", width=320))
    assert (delaware.text, delaware.state) == ("198606", "DE")


def test_a_vanity_plate_holding_its_states_name_is_read_and_the_name_alone_is_not(reader):
    reads = reader.read(render_plate("TEXASMN", "Texas", width=320))
    assert [(r.text, r.state) for r in reads] == [("TEXASMN", "TX")]
    reads = reader.read(render_plate("IDAHOHI", "Idaho", width=320))
    assert [(r.text.replace("0", "O"), r.state) for r in reads] == [("IDAHOHI", "ID")]  # O and 0: one glyph


def test_of_a_fleet_number_and_a_plate_the_one_with_a_state_name_comes_first(reader):
    # a school bus: its painted number sits lower than its plate and reads as well
    scene = np.full((720, 1280, 3), (40, 190, 230), np.uint8)
    scene[300:400, 300:500] = render_plate("5RIN962", "California", width=200)
    cv2.putText(scene, "219906", (850, 390), cv2.FONT_HERSHEY_DUPLEX, 1.9, (20, 20, 20), 4)
    reads = reader.read(scene)
    assert [(r.text, r.state) for r in reads][:1] == [("5RIN962", "CA")]


def test_a_plate_boxed_whole_is_read_from_the_band_its_number_fills(reader):
    from edge_agent.recognise.ocr import TextBox, crop_line
    from edge_agent.recognise.reader import _reads_poorly

    # a plate in a dealer's frame, whose name runs along the bottom
    plate = render_plate("6TIX874", width=200)
    h, w = plate.shape[:2]
    framed = np.full((h + h // 3, w + 12, 3), 25, np.uint8)
    framed[h // 8:h // 8 + h, 6:6 + w] = plate
    cv2.putText(framed, "DOMINION", (8, framed.shape[0] - 4), cv2.FONT_HERSHEY_DUPLEX, w / 300, (235, 235, 235), 2)
    fh, fw = framed.shape[:2]
    scene = np.full((720, 1280, 3), 90, np.uint8)
    scene[400:400 + fh, 600:600 + fw] = framed
    # the detector boxes a blurred or small plate whole, state name to frame, as if it were one line
    whole = TextBox(np.array([[600, 400], [600 + fw, 400], [600 + fw, 400 + fh], [600, 400 + fh]], np.float32), 0.9)
    (line,) = reader._recognise([crop_line(scene, whole.quad)])
    assert _reads_poorly(reader._candidates(line))
    reads = reader._read_text(scene, [whole])
    # the plate is read once, from a band of the box, and reported where that band lies
    assert [r.text for r in reads] == ["6TIX874"]
    x, y, bw, bh = reads[0].box
    assert 600 <= x and x + bw <= 600 + fw and 400 < y and y + bh < 400 + fh


def test_a_frame_with_nothing_boxed_is_looked_at_again_where_the_text_map_rises_a_little(reader):
    from edge_agent.recognise.ocr import TextMap

    scene = np.full((720, 1280, 3), 90, np.uint8)
    scene[400:460, 600:720] = render_plate("7EAV033", width=120)
    # the detector's map at half the frame's size: a faint rise over a part of the number, nothing boxed;
    # the look around it takes in a whole number's width
    prob = np.zeros((360, 640), np.float32)
    prob[214:222, 325:333] = 0.25
    prob[50:52, 50:52] = 0.25  # a speck too small to be text
    assert reader.detector.faint_regions(TextMap(prob, 2.0, 2.0), 0.1, 2, (12, 4)) == [(650, 428, 16, 16)]
    (found,) = reader._read_faint(scene, TextMap(prob, 2.0, 2.0))
    assert found.text == "7EAV033"
    assert _overlaps(found.box, (600, 400, 120, 60))
    # where the map rose enough to be boxed, there is nothing faint to look at again
    prob[214:222, 318:340] = 0.9
    assert reader._read_faint(scene, TextMap(prob, 2.0, 2.0)) == []
