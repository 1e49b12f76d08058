"""PlateReader: an image in, the plates in it out (text, confidence, box, candidates, state)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_agent.imaging import as_bgr8
from edge_agent.recognise import plate as grammar
from edge_agent.recognise.badges import looks_like_badge
from edge_agent.recognise.formats import rank_by_state_format
from edge_agent.recognise.models import DEFAULT_MANIFEST, load_manifest, verify_model
from edge_agent.recognise.ocr import (
    LineReading,
    RuntimeOptions,
    TextBox,
    TextDetector,
    TextMap,
    TextRecogniser,
    crop_line,
)
from edge_agent.recognise.stacked import stacked_pairs
from edge_agent.records import Candidate, PlateReading


# Detector boxes often clip the first or last character of a small plate;
# a tenth of the line height at each end brings it back without taking in the
# plate frame's bolts and edges.
LINE_MARGIN = 0.1
# Character groups split by a graphic (Louisiana's pelican between TAF and 389)
# come back as two boxes, one of which may reach over the graphic into the other
# group: boxes overlapping by up to this share of their height are joined too.
JOIN_OVERLAP = 0.6


# A line must score this (confidence x plate-likeness x prominence) to be a
# plate at all; a second plate in the frame must score this share of the first.
# Brand badges, signs, stickers and dealer frames score below; a second car's
# plate that does not is read in the next frames, as it comes closer.
MIN_PLATE_SCORE = 0.2
OTHER_PLATE_SHARE = 0.5
# A plate reaches about this share of its main line's width past either end, and this many
# line heights above and below its centre: print within that is on the same plate.
PLATE_AROUND_LINE = 0.3
PLATE_HEIGHTS = 1.3
# Plates are mounted at bumper height, below a car's other text (fleet numbers,
# signs behind it): of two lines that read alike, the lower one is likelier the plate.
LOW_IN_FRAME = 0.1  # at most this much added to a line's score, at the bottom of the frame
# A car's badge (CAMRY, YUKON) is not a plate: with this weight it falls below MIN_PLATE_SCORE,
# beside the plate or on a frame whose plate is hidden. A state name near it is no proof of a
# plate, as the badge often sits just above the plate's own.
BADGE_WEIGHT = 0.25
# A state name printed around a line is evidence that the line is on a plate (a MONTH sticker
# and the number on one plate, a bus's fleet number and its plate): its score grows by a tenth.
STATE_NEAR_BOOST = 1.1
# Digits alone with no state name around them are more often a fleet, house or phone number or a
# camera's stamp than a plate: most states' serials mix letters and digits. (Delaware's and Rhode
# Island's all-digit plates keep their weight where their state name is read.)
ALL_DIGITS_WEIGHT = 0.8
PLATE_CROP_SIDE = 320  # a detected plate's crop is scaled to this width for text detection
# Second reading of uncertain plates: (margin along the line, height factor) of each extra crop.
# The widest reaches past a character the detector's box clipped (7EAV033 read EAV033); in the
# first reading such a margin would take in the plate frame's bolts and edges on every line.
CROP_VARIANTS = ((0.1, 1.15), (0.1, 0.9), (0.3, 1.0))
# The uncertain plate's line is also found again by the detector on a crop around it (this share
# of the line's width to either side, this many line heights above and below), scaled so the line
# is RELOOK_LINE_WIDTH pixels wide; the new box's crops vote too.
RELOOK_MARGIN = (0.6, 1.5)
RELOOK_LINE_WIDTH = 160
RELOOK_MAX_SIDE = 640  # a large plate's crop is scaled down to at most this (no worse than at frame scale)
RECHECK_BELOW = 0.9  # plates read at least this confidently are not read again, unless their line is short:
NUMBER_ASPECT = 2.5  # a plate number's box is about this many of its heights wide, or more
SHORT_LINE = 1.6  # a line's box narrower than this many of its heights may be a part of one
EXTEND_WIDER = 1.3  # and is read again where the box found closer up is at least this much wider
RECHECK_PLATES = 1  # how many of a frame's most plate-like lines may be read again
# The detector boxes a blurred or small plate whole (state name, number, slogan and dealer frame in one
# box), and that box reads as garbage. A plate is about twice as wide as tall, its number across the
# middle: where a box of about that shape reads below BAND_BELOW, bands of it are read too, as lines of
# their own (the number's band between the state name above and the slogan or frame below).
PLATE_SHAPE = (1.2, 2.6)  # width / height of a whole plate's box
NUMBER_BANDS = ((0.2, 0.85), (0.25, 0.8))  # (top, bottom) as shares of the box's height
BAND_BELOW = 0.5
# A frame with no plate read is looked at again where the detector's map rises a little (over
# FAINT_LEVEL) but too little to be boxed: a blurred or small plate. The FAINT_LOOKS most text-like such
# regions are each read on a crop around them, enlarged as for the relook, taking them as part of a
# number at least FAINT_NUMBER of the frame's width.
FAINT_LEVEL = 0.1
FAINT_LOOKS = 2
FAINT_MIN = (12, 4)  # smaller regions (width, height in frame pixels) are noise
FAINT_NUMBER = 0.055


@dataclass(frozen=True)
class RankedLine:
    """A text line that may be a plate: its score, box, first-reading candidates and the state printed near it."""

    score: float
    box: TextBox
    candidates: list[Candidate]
    state: tuple[str, float] | None


@dataclass(frozen=True)
class ReaderSettings:
    runtime: RuntimeOptions = RuntimeOptions()
    detector_max_side: int = 960
    min_confidence: float = 0.25  # below this a line is not reported as a plate
    candidates: int = 5
    max_plates: int = 4
    manifest: Path = DEFAULT_MANIFEST
    plate_detector: Path | None = None  # an ONNX plate detector with a YOLO output layout (yolo.py)
    plate_detector_min_score: float = 0.35
    plate_class: int = -1  # the detector's plate class; -1: every class


class PlateReader:
    def __init__(self, settings: ReaderSettings = ReaderSettings()):
        self.settings = settings
        models = load_manifest(settings.manifest)
        self.detector = TextDetector(verify_model(models["detect"]), settings.runtime, max_side=settings.detector_max_side)
        self.recogniser = TextRecogniser(verify_model(models["recognise"]), settings.runtime)
        self.plate_detector = None
        if settings.plate_detector is not None:
            from edge_agent.recognise.yolo import YoloPlateDetector

            self.plate_detector = YoloPlateDetector(settings.plate_detector, settings.runtime,
                                                    settings.plate_detector_min_score, plate_class=settings.plate_class)

    def read(self, image: np.ndarray) -> list[PlateReading]:
        """Plates in a BGR image, most plate-like first."""
        image = as_bgr8(image)
        if self.plate_detector is not None:
            return self._read_detected_plates(image)
        text_map = self.detector.text_map(image)
        return self._read_text(image, self.detector.boxes(text_map)) or self._read_faint(image, text_map)

    def _read_detected_plates(self, image: np.ndarray) -> list[PlateReading]:
        """The plate detector's boxes, each read by the text path on its own (enlarged) crop."""
        height, width = image.shape[:2]
        plates = []
        for (x, y, w, h), _score in self.plate_detector.detect(image)[: self.settings.max_plates]:
            mx, my = int(0.1 * w), int(0.15 * h)
            x0, y0 = max(0, x - mx), max(0, y - my)
            view = image[y0:min(height, y + h + my), x0:min(width, x + w + mx)]
            if min(view.shape[:2]) < 4:
                continue
            found = self._read_text(view, self.detector.detect(view, PLATE_CROP_SIDE))
            if found:
                plates.append(dataclasses.replace(found[0], box=(x, y, w, h)))
        return plates

    def _read_text(self, image: np.ndarray, detected: list[TextBox]) -> list[PlateReading]:
        """Plates among the image's detected text: the lines that read and look most like plate numbers."""
        boxes = [b for b in detected if _could_hold_text(b)]
        boxes += _joined_neighbours(boxes)
        if not boxes:
            return []
        lines = self._recognise([_line_strip(image, b) for b in boxes])
        candidates = [self._candidates(line) for line in lines]
        bands = [band for box, first in zip(boxes, candidates) if _plate_shaped(box) and _reads_poorly(first)
                 for band in _number_bands(box)]
        if bands:
            band_lines = self._recognise([_line_strip(image, b) for b in bands])
            boxes, lines = boxes + bands, lines + band_lines
            candidates += [self._candidates(line) for line in band_lines]
        found: list[RankedLine] = []
        for box, line, first in zip(boxes, lines, candidates):
            rank = self._plate_rank(box, line, first, boxes, lines, image.shape[0])
            if rank is not None:
                found.append(rank)
        found.sort(key=lambda item: item.score, reverse=True)
        found = _one_per_plate(found)[: self.settings.max_plates]
        if not found:
            return []
        # Uncertain plates are read again from more crops, all in one batch; the
        # crops vote: a character one crop clips or doubles, the others see right.
        # A confident line too short for a plate's number may be a part of it (3127K read as 312 beside
        # its stacked DP): it is looked at closer up too, in case the line goes on.
        unsure = [i for i, ranked in enumerate(found[:RECHECK_PLATES])
                  if ranked.candidates[0].confidence < RECHECK_BELOW or _short(ranked.box)]
        strips = {i: self._second_strips(image, found[i].box, found[i].candidates[0].confidence >= RECHECK_BELOW)
                  for i in unsure}
        again = iter(self._recognise([strip for i in unsure for strip in strips[i]]))
        second = {i: [next(again) for _ in strips[i]] for i in unsure}
        plates = [self._reading(ranked, second.get(i, [])) for i, ranked in enumerate(found)]
        plates = sorted((p for p in plates if p is not None), key=lambda item: item[0], reverse=True)
        if not plates:
            return []
        top = plates[0][0]
        return [r for i, (score, r) in enumerate(plates)
                if score >= MIN_PLATE_SCORE and (i == 0 or score >= OTHER_PLATE_SHARE * top)]

    def _read_faint(self, image: np.ndarray, text_map: TextMap) -> list[PlateReading]:
        """The most confident plate read around the map's faint regions (at most one), or []."""
        best: PlateReading | None = None
        for x, y, w, h in self.detector.faint_regions(text_map, FAINT_LEVEL, FAINT_LOOKS, FAINT_MIN):
            line = max(w, FAINT_NUMBER * image.shape[1])
            around = _view_around(image, (x + (w - line) / 2, y, line, h), line)
            if around is None:
                continue
            view, (x0, y0), side = around
            found = self._read_text(view, self.detector.detect(view, long_side=side))
            if found and (best is None or found[0].confidence > best.confidence):
                bx, by, bw, bh = found[0].box
                best = dataclasses.replace(found[0], box=(bx + x0, by + y0, bw, bh))
        return [best] if best else []

    def _second_strips(self, image: np.ndarray, box: TextBox, confident: bool = False) -> list[np.ndarray]:
        """The strips a plate's line is read again from: the box the detector finds for it closer up,
        with that box's CROP_VARIANTS, and, for an uncertain reading, the line's own box's variants.
        A confident reading is read again only where the closer box goes on past it (EXTEND_WIDER)."""
        closer = self._relook(image, box)
        if confident and (closer is None or TextBox(closer, box.score).width < EXTEND_WIDER * box.width):
            return []
        strips = [] if confident else _second_crops(image, box.quad)
        if closer is not None:
            strips += [crop_line(image, _widened(closer, LINE_MARGIN))] + _second_crops(image, closer)
        return strips

    def _relook(self, image: np.ndarray, box: TextBox) -> np.ndarray | None:
        """The line's box found again by the detector on a crop around it, scaled so that the line is
        RELOOK_LINE_WIDTH pixels wide; or None. At frame scale a small plate's box is coarse: it
        clips a character (7EAV033 read as EAV03), or reaches over an emblem or the stacked
        characters beside the number."""
        x, y, w, h = box.bounds()
        # a short line is looked at as the whole number it may be a part of: its continuation lies past
        # a margin of its own width, and at RELOOK_LINE_WIDTH for its own width the view is needlessly large
        around = _view_around(image, (x, y, w, h), NUMBER_ASPECT * h if _short(box) else w)
        if around is None:
            return None
        view, (x0, y0), side = around
        boxes = self.detector.detect(view, long_side=side)
        boxes += _joined_neighbours(boxes)
        return _same_line((x - x0, y - y0, w, h), boxes, offset=(x0, y0))

    def _recognise(self, strips: list[np.ndarray]) -> list[LineReading]:
        """The strips' readings, with small characters stacked beside a number read as blank."""
        lines = self.recogniser.recognise(strips)
        for strip, line in zip(strips, lines):
            spans = stacked_pairs(strip)
            if spans:
                line.plate_probs = grammar.blank_end_characters(line.plate_probs, spans, line.step_px)
        return lines

    def _reading(self, ranked: RankedLine, second: list[LineReading]) -> tuple[float, PlateReading] | None:
        """The plate a line holds, voted with its second readings if any, with its state (whose serial
        formats rank the candidates); or None."""
        voted = ranked.candidates
        if second:
            voted = _vote([voted] + [self._candidates(line) for line in second], self.settings.candidates)
        if not voted:  # the line passed min_confidence when first read; the vote only splits it
            return None
        state = ranked.state
        if state:
            voted = rank_by_state_format(voted, state[0])[: self.settings.candidates]
        return ranked.score, PlateReading(
            text=voted[0].text,
            confidence=voted[0].confidence,
            box=ranked.box.bounds(),
            candidates=tuple(voted),
            state=state[0] if state else None,
            state_confidence=state[1] if state else 0.0,
        )

    def _candidates(self, line: LineReading) -> list[Candidate]:
        return [
            c for c in grammar.plate_candidates(line.plate_probs, limit=self.settings.candidates * 2, max_length=grammar.MAX_CHARS)
            if grammar.is_valid_plate(c.text)
        ][: self.settings.candidates]

    def _plate_rank(self, box: TextBox, line: LineReading, candidates: list[Candidate], boxes: list[TextBox],
                    lines: list[LineReading], frame_height: int) -> RankedLine | None:
        """How likely a text line (read as `candidates`) is a plate's number (confidence times plate-likeness
        times prominence, a little more the lower it sits in the frame or with a state name around it), or None."""
        if not candidates or candidates[0].confidence < self.settings.min_confidence:
            return None
        likeness = grammar.plate_likeness(candidates[0].text, line.text)
        if likeness == 0:
            return None
        if not any(c.isdigit() for c in line.text) and grammar.spells_state_name(line.text):
            return None  # the state name printed on the plate, not its number
        if looks_like_badge(candidates[0].text):
            likeness *= BADGE_WEIGHT
        score = candidates[0].confidence * likeness * _prominence(box, boxes)
        score *= 1.0 + LOW_IN_FRAME * float(box.quad[:, 1].mean()) / frame_height
        state = _state_near(box, boxes, lines)
        if state:
            score *= STATE_NEAR_BOOST
        elif candidates[0].text.isdigit():
            score *= ALL_DIGITS_WEIGHT
        return RankedLine(score, box, candidates, state)


def _second_crops(image: np.ndarray, quad: np.ndarray) -> list[np.ndarray]:
    """The strips an uncertain plate is read again from, one for each of CROP_VARIANTS."""
    return [crop_line(image, _widened(_taller(quad, grow), margin)) for margin, grow in CROP_VARIANTS]


def _same_line(line: tuple[int, int, int, int], boxes: list[TextBox], offset: tuple[int, int] = (0, 0)) -> np.ndarray | None:
    """Of `boxes`, the widest that is the text line `line` (x, y, width, height) again: about as tall,
    on the same centre line, at least 0.6 as wide (not a part of it: 031 of 0315771) and over half of
    the line or half of itself (a line the detector cut short, 312 of 3127K, is only a part of the
    box closer up); its quad moved by `offset`, or None."""
    x, y, w, h = line
    best, best_width = None, 0
    for box in boxes:
        bx, by, bw, bh = box.bounds()
        overlap = min(x + w, bx + bw) - max(x, bx)
        if abs(by + bh / 2 - (y + h / 2)) > 0.5 * h or not 0.5 * h <= bh <= 1.6 * h or bw < 0.6 * w \
                or overlap < 0.5 * min(bw, w):
            continue
        if bw > best_width:
            best, best_width = box.quad + np.asarray(offset, dtype=np.float32), bw
    return best


def _view_around(image: np.ndarray, bounds: tuple[float, float, float, float],
                 line: float) -> tuple[np.ndarray, tuple[int, int], int] | None:
    """The view around a line (x, y, width, height) taken for a number `line` pixels long: RELOOK_MARGIN
    of `line` to either side and of the line's height above and below; the view's corner in the image;
    and the detector's long side for the view that makes `line` RELOOK_LINE_WIDTH pixels. None where the
    view is too small to look at."""
    x, y, w, h = bounds
    height, width = image.shape[:2]
    across, up = RELOOK_MARGIN
    x0, y0 = max(0, int(x - across * line)), max(0, int(y - up * h))
    view = image[y0:min(height, int(y + h + up * h)), x0:min(width, int(x + w + across * line))]
    if min(view.shape[:2]) < 8 or line < 1:
        return None
    return view, (x0, y0), min(RELOOK_MAX_SIDE, int(max(view.shape[:2]) * RELOOK_LINE_WIDTH / line))


def _taller(quad: np.ndarray, by: float) -> np.ndarray:
    """The quad grown about its centre line to `by` times its height."""
    if by == 1.0:
        return quad
    top, bottom = (quad[0] + quad[1]) / 2, (quad[3] + quad[2]) / 2
    grow = (bottom - top) * (by - 1.0) / 2
    return np.array([quad[0] - grow, quad[1] - grow, quad[2] + grow, quad[3] + grow], dtype=np.float32)


def _vote(readings: list[list[Candidate]], limit: int) -> list[Candidate]:
    """Candidates of several crops of one line, by summed confidence over the crops."""
    scores: dict[str, float] = {}
    for candidates in readings:
        for c in candidates:
            scores[c.text] = scores.get(c.text, 0.0) + c.confidence
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:limit]
    return [Candidate(text, round(score / len(readings), 4)) for text, score in ranked]


def _widened(quad: np.ndarray, by: float) -> np.ndarray:
    """The quad grown along its baseline by `by` of its height at each end."""
    along = quad[1] - quad[0]
    length = float(np.linalg.norm(along))
    if length < 1:
        return quad
    height = float(np.linalg.norm(quad[3] - quad[0]))
    step = along / length * by * height
    return np.array([quad[0] - step, quad[1] + step, quad[2] + step, quad[3] - step], dtype=np.float32)


def _short(box: TextBox) -> bool:
    """Whether a line is too short for a whole plate number: it may be a part of one."""
    return box.width < SHORT_LINE * box.height


def _line_strip(image: np.ndarray, box: TextBox) -> np.ndarray:
    """A line's strip for its first reading, a LINE_MARGIN wider at each end than its box."""
    return crop_line(image, _widened(box.quad, LINE_MARGIN))


def _reads_poorly(candidates: list[Candidate]) -> bool:
    return not candidates or candidates[0].confidence < BAND_BELOW


def _plate_shaped(box: TextBox) -> bool:
    """Whether a box may hold a whole plate: about twice as wide as tall, tall enough for a band of it to read."""
    return box.height >= 12 and PLATE_SHAPE[0] <= box.width / box.height <= PLATE_SHAPE[1]


def _number_bands(box: TextBox) -> list[TextBox]:
    """The bands of a whole plate's box that its number may fill (NUMBER_BANDS), each a line of its own."""
    q = box.quad
    return [TextBox(np.array([q[0] + (q[3] - q[0]) * top, q[1] + (q[2] - q[1]) * top,
                              q[1] + (q[2] - q[1]) * bottom, q[0] + (q[3] - q[0]) * bottom], dtype=np.float32),
                    box.score, plate=box)
            for top, bottom in NUMBER_BANDS]


def _one_per_plate(ranked: list[RankedLine]) -> list[RankedLine]:
    """The best ranked of the lines on each plate: a whole plate's box and its number bands are one plate."""
    seen: set[int] = set()
    kept = []
    for line in ranked:
        plate = id(line.box.plate or line.box)
        if plate not in seen:
            seen.add(plate)
            kept.append(line)
    return kept


def _could_hold_text(box: TextBox) -> bool:
    return box.height >= 6 and box.width >= 6


def _joined_neighbours(boxes: list[TextBox]) -> list[TextBox]:
    """Character groups the detector split at a gap, a sticker or a graphic ("832 AXV", "TAF 389")
    joined into one line: the second group starts and ends right of the first."""
    joined = []
    for a in boxes:
        for b in boxes:
            if a is b:
                continue
            ha, hb = a.height, b.height
            h = max(ha, hb)
            gap = b.quad[0, 0] - a.quad[1, 0]
            centre_a, centre_b = a.quad[:, 1].mean(), b.quad[:, 1].mean()
            if abs(ha - hb) < 0.3 * h and abs(centre_a - centre_b) < 0.3 * h and -JOIN_OVERLAP * h <= gap <= 1.5 * h \
                    and b.quad[0, 0] > a.quad[0, 0] and b.quad[1, 0] > a.quad[1, 0]:
                quad = np.array([a.quad[0], b.quad[1], b.quad[2], a.quad[3]], dtype=np.float32)
                joined.append(TextBox(quad, min(a.score, b.score)))
    return joined


def _prominence(box: TextBox, boxes: list[TextBox]) -> float:
    """1 for the tallest text on its plate, less for smaller print on the same plate (stickers,
    serials, counties, slogans): print is on a line's plate when it lies within the plate's
    reach around that line."""
    x, y, w, h = box.bounds()
    cx, cy = x + w / 2, y + h / 2
    tallest = h
    for other in boxes:
        if other is box.plate:
            continue  # a number band's own plate
        ox, oy, ow, oh = other.bounds()
        if oh > tallest and ow >= oh and ox - PLATE_AROUND_LINE * ow <= cx <= ox + (1 + PLATE_AROUND_LINE) * ow \
                and abs(cy - (oy + oh / 2)) <= PLATE_HEIGHTS * oh:
            tallest = oh
    return (h / tallest) ** 2


def _state_near(box: TextBox, boxes: list[TextBox], lines: list[LineReading]) -> tuple[str, float] | None:
    """A state name printed above or below the plate's characters, within about the plate's width."""
    x, y, w, h = box.bounds()
    best: tuple[str, float] | None = None
    for other, line in zip(boxes, lines):
        if other is box:
            continue
        ox, oy, ow, oh = other.bounds()
        cx, cy = ox + ow / 2, oy + oh / 2
        if not (x - 0.25 * w <= cx <= x + 1.25 * w and y - 1.5 * h <= cy <= y + 2.5 * h):
            continue
        state = grammar.state_from_text(line.text)
        if state and (best is None or state[1] > best[1]):
            best = state
    return best
