"""PlateReader: an image in, the plates in it out (text, confidence, box, candidates, state).

Models trained or fine-tuned by `training/` do the work: the plate detector finds plate boxes in the whole
frame; the plate reader (characters and state) and the plate text reader (characters) read every box in one
batch each; the PP-OCR recogniser of the rapidocr wheel reads the state's printed name (`statename.py`).
What stays beside them is general knowledge: the candidate lattice over the readers' per-step probabilities
(`plate.joint_candidates`), the state's serial formats (`formats.rank_by_state_format`), and the tracker's
vote across frames (`tracker.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np

from edge_agent.imaging import as_bgr8
from edge_agent.recognise import crops
from edge_agent.recognise.crops import likeliest_streak, plate_tilt, streak_in_bands, streak_length
from edge_agent.recognise.detector import MIN_SCORE, PlateDetector, same_plate, with_side_boxes
from edge_agent.recognise.formats import rank_by_state_format
from edge_agent.recognise.models import DEFAULT_MANIFEST, load_manifest, require, verify_model
from edge_agent.recognise.plate import (MIN_CONFIDENCE, is_a_plate, is_valid_plate, joint_candidates, looks_like_year,
                                       plate_candidates)
from edge_agent.recognise.recogniser import STATE_CODES, PlateRecogniser, PlateTextReader
from edge_agent.recognise.statename import (NamesSeen, StateNameReader, band_boxes, fuse_states, name_decides,
                                            name_scores)
from edge_agent.recognise.runtime import RuntimeOptions
from edge_agent.records import PlateReading

# A picture that is itself a plate (a crop from another system's detector, a photograph of a plate) is read
# whole: the detector learned plates in scenes, at most a third of its input wide, and a crop enlarged to
# its input is three times that. A picture of a plate's shape, at any size, may be such a picture: a plate
# is 2:1, and seen from the side it is narrower and its slanting lines make it taller (1.1:1 at 45 degrees).
CROP_ASPECT = (1.0, 3.5)
# The rules beside the models, each fitted by `scripts/train rules` on the train part of the shared
# photographs (never the validation part, where they are reported; see docs/reading.md):
# - the state's serial formats re-rank a reading's candidates only where the state head is at least this
#   sure (a format of the wrong state would push the right reading down);
# - whether letter O is read as digit 0 (one glyph on most plates) with the O spelling kept second;
# - how sharply the state's printed name, where it is read, outweighs the state head (statename.py), and
#   the least plate height (pixels) at which reading it tells the state better than chance;
# - the weight of the plate reader's likelihoods beside the text reader's in the candidates' confidence
#   (`plate.joint_candidates`), fitted on train plates read by readers trained without them: both readers
#   have learned the train part by heart, and on it every weight reads alike;
# - how common each character is on the train part's plates (`plate.character_log_odds`), and how much that
#   counts in ranking the candidates (`plate.joint_candidates`), fitted as the weight above;
# - the least detector score at which a box that read as nothing is given a second look for a faint streak
#   (`read_unsure_streaks`): where, on the train part's frames as taken, boxes of every score above it are
#   the labelled plate at least as often as not (`fit_rules.fit_second_look_score`).
STATE_FOR_FORMAT = 0.95
O_AS_ZERO = False
STATE_NAME_SHARPNESS = 22.0
STATE_NAME_MIN_HEIGHT = 20
PLATE_READER_WEIGHT = 0.1
CHARACTER_PRIOR_WEIGHT = 0.75
SECOND_LOOK_SCORE = 0.55
CHARACTER_LOG_ODDS = {
    "0": 0.891, "1": 0.764, "2": 0.706, "3": 0.669, "4": 0.631, "5": 0.605, "6": 0.651, "7": 0.486, "8": 0.456,
    "9": 0.508, "A": 0.441, "B": -0.118, "C": -0.027, "D": -0.399, "E": -0.28, "F": -0.381, "G": -0.313,
    "H": -0.399, "I": -0.846, "J": -0.714, "K": -0.454, "L": -0.313, "M": -0.28, "N": -0.248, "O": -2.275,
    "P": -0.454, "Q": -1.445, "R": -0.435, "S": -0.576, "T": -0.264, "U": -0.576, "V": -0.666, "W": -0.399,
    "X": -0.642, "Y": -0.739, "Z": -0.714,
}


class FoundBox(NamedTuple):
    """A box to read: where (x, y, width, height), how sure the detector is (1 for a whole picture), by how
    many degrees the plate in it is turned (`crops.plate_tilt`; it is read level) and how many pixels it is
    streaked as it passed (`crops.streak_length`; undone before it is read)."""

    box: tuple[float, float, float, float]
    score: float
    tilt: float = 0.0
    streak: int = 0


@dataclass(frozen=True)
class ReaderSettings:
    runtime: RuntimeOptions = RuntimeOptions()
    min_confidence: float = MIN_CONFIDENCE
    detector_min_score: float = MIN_SCORE
    candidates: int = 5
    max_plates: int = 4
    manifest: Path = DEFAULT_MANIFEST
    state_for_format: float = STATE_FOR_FORMAT
    o_as_zero: bool = O_AS_ZERO
    read_state_names: bool = True  # read the state's printed name beside the state head
    state_name_sharpness: float = STATE_NAME_SHARPNESS
    state_name_min_height: float = STATE_NAME_MIN_HEIGHT
    plate_reader_weight: float = PLATE_READER_WEIGHT  # the text reader's is 1
    character_prior_weight: float = CHARACTER_PRIOR_WEIGHT
    character_log_odds: Mapping[str, float] = field(default_factory=lambda: dict(CHARACTER_LOG_ODDS))
    level_tilted: bool = True  # read a plate turned in the picture level (`crops.plate_tilt`)
    undo_streaks: bool = True  # undo a passing plate's motion blur before it is read (`crops.streak_length`)
    second_look_score: float = SECOND_LOOK_SCORE  # `read_unsure_streaks`


class PlateReader:
    def __init__(self, settings: ReaderSettings = ReaderSettings()):
        self.settings = settings
        models = load_manifest(settings.manifest)
        detector = verify_model(require(models, "plate-detector", settings.manifest))
        recogniser = verify_model(require(models, "plate-reader", settings.manifest))
        self.detector = PlateDetector(detector, settings.runtime, settings.detector_min_score, settings.max_plates * 2)
        # plates seen steeply from the side (a side camera, parked cars) are another detector's: trained on them,
        # the one detector lost straight views (docs/reading.md)
        self.side = None
        if "plate-detector-side" in models:
            self.side = PlateDetector(verify_model(models["plate-detector-side"]), settings.runtime,
                                      settings.detector_min_score, settings.max_plates * 2)
        self.recogniser = PlateRecogniser(recogniser, settings.runtime)
        # the fine-tuned text recogniser reads the characters where the manifest lists it
        self.text = None
        if "plate-text-reader" in models:
            self.text = PlateTextReader(verify_model(models["plate-text-reader"]), settings.runtime)
        self.names = None
        if settings.read_state_names:
            names = verify_model(require(models, "state-name-reader", settings.manifest))
            self.names = StateNameReader(names, settings.runtime)

    def read(self, image: np.ndarray) -> list[PlateReading]:
        """Plates in a BGR picture of any kind (a file: a frame, a photograph of a car or of a plate, another
        system's crop), most likely first."""
        return self._read(image, picture=True)

    def read_frame(self, image: np.ndarray, seen: NamesSeen | None = None,
                   side_view: bool = False) -> list[PlateReading]:
        """Plates in a camera's frame, most likely first: the detectors' boxes alone. A patrol camera sees
        scenes, never a plate filling its frame, so reading the whole frame as one would only cost time.
        `seen`: the camera's names read clearly on its last frames, not read again. `side_view`: the camera
        looks out to the side, and the side-view detector searches its frames too."""
        return self._read(image, picture=False, seen=seen, side_view=side_view)

    def _read(self, image: np.ndarray, picture: bool, seen: NamesSeen | None = None,
              side_view: bool = False) -> list[PlateReading]:
        image = as_bgr8(image)
        boxes, outputs, found = self.read_boxes(image, picture, side_view)
        if not boxes:
            return []
        return self.readings(boxes, outputs, self.names_of(image, boxes, found, seen), found)

    def read_boxes(self, image: np.ndarray, picture: bool = True,
                   side_view: bool = False) -> tuple[list[FoundBox], list, list]:
        """The boxes read in a BGR image, the readers' outputs for them (`outputs`) and each box's candidates
        (`candidates`). A picture (not a camera's frame) of a plate's shape is read whole first; where that
        gives no plate (a frame, a close photograph of a car's back), the detectors search it: a picture may be
        taken from any side, a camera's frame (`side_view` False) from ahead. A picture of another shape in
        whose boxes the detectors find no plate is read whole last: a plate seen steeply from the side is
        narrower than 1:1, and fills the picture."""
        whole = self.whole_picture(image) if picture else None
        first = whole is not None and self.plate_shaped(image)
        if first:
            read = self._read_whole(image, whole)
            if read is not None:
                return read
        boxes = self.found_boxes(image, self.boxes(image, side_view=picture or side_view))
        outputs = self.outputs(image, boxes) if boxes else []
        found = [self.candidates(probs) for probs, _ in outputs]
        self.read_unsure_streaks(image, boxes, outputs, found)
        if whole is not None and not first and not any(found):
            read = self._read_whole(image, whole)
            if read is not None:
                return read
        return boxes, outputs, found

    def _read_whole(self, image: np.ndarray, whole: tuple) -> tuple[list[FoundBox], list, list] | None:
        """The whole picture read as one plate box, or None where it gives no plate."""
        boxes = self.found_boxes(image, [whole])
        outputs = self.outputs(image, boxes)
        found = [self.candidates(probs) for probs, _ in outputs]
        self.read_unsure_streaks(image, boxes, outputs, found)
        return (boxes, outputs, found) if found[0] is not None else None

    def found_boxes(self, image: np.ndarray, boxes: list) -> list[FoundBox]:
        """The boxes (box, score) with the turn of the plate in each and its streak, found once for all the
        models that read it."""
        return [FoundBox(box, score, plate_tilt(image, box) if self.settings.level_tilted else 0.0,
                         self._streak(image, box) if self.settings.undo_streaks else 0) for box, score in boxes]

    @staticmethod
    def _streak(image: np.ndarray, box: tuple[float, float, float, float]) -> int:
        if box[3] <= crops.STREAK_TALLEST:  # fitted: read where it is (`fit_rules.fit_streaks`)
            return streak_length(image, box)
        return streak_in_bands(image, band_boxes(box))

    def read_unsure_streaks(self, image: np.ndarray, boxes: list[FoundBox], outputs: list, found: list) -> None:
        """Boxes that gave no plate, in which no streak was found, and of which the detector is at least
        `second_look_score` sure (few boxes that are not plates are), read again with their likeliest streak
        undone (`crops.likeliest_streak`) and one pixel either side of it, the surest plate read kept in place:
        under a sensor's noise a passing plate's streak is often too faint for `streak_length` to be sure of,
        and the cepstrum's trough then falls a pixel off as often as not. Only boxes that gave nothing pay
        for the second look."""
        if not self.settings.undo_streaks:
            return
        for i, (box, candidates) in enumerate(zip(boxes, found)):
            unsure = candidates is None and not box.streak and box.score >= self.settings.second_look_score
            likeliest = likeliest_streak(image, box.box) if unsure else 0
            if not likeliest:
                continue
            tries = [box._replace(streak=streak) for streak in (likeliest - 1, likeliest, likeliest + 1) if streak >= 3]
            for tried, output in zip(tries, self.outputs(image, tries)):
                read = self.candidates(output[0])
                if read is not None and (found[i] is None or read[0].confidence > found[i][0].confidence):
                    boxes[i], outputs[i], found[i] = tried, output, read

    @staticmethod
    def whole_picture(image: np.ndarray) -> tuple | None:
        """The whole picture as a box (box, score); None where it is too small to read."""
        height, width = image.shape[:2]
        return ((0.0, 0.0, float(width), float(height)), 1.0) if min(height, width) >= 8 else None

    @staticmethod
    def plate_shaped(image: np.ndarray) -> bool:
        """Whether the picture has a plate's shape (`CROP_ASPECT`): then it is read whole before it is searched."""
        height, width = image.shape[:2]
        return CROP_ASPECT[0] <= width / height <= CROP_ASPECT[1]

    def boxes(self, image: np.ndarray, side_view: bool = False) -> list:
        """The detector's boxes (box, score) in a frame, and with `side_view`, the side-view detector's beside."""
        if min(image.shape[:2]) < 8:
            return []
        found = self.detector.detect(image)
        if side_view and self.side is not None:
            found = with_side_boxes(found, self.side.detect(image))
        return [(b.box, b.score) for b in found]

    def outputs(self, image: np.ndarray, boxes: list[FoundBox]) -> list:
        """For each box: (each reader's character probabilities, state probabilities)."""
        plain, tilts, streaks = [b.box for b in boxes], [b.tilt for b in boxes], [b.streak for b in boxes]
        outputs = self.recogniser.read(image, plain, tilts, streaks)
        if self.text is None or not outputs:
            return [((chars,), states) for chars, states in outputs]
        # the plate reader is the first look: where it reads no plate at all (a badge, a grille, a sign) the
        # text reader, eight times its multiply-adds, is not asked
        worth = [i for i, (chars, _) in enumerate(outputs) if self._reads_a_plate(chars)]
        texts = dict(zip(worth, self.text.read(image, [plain[i] for i in worth], [tilts[i] for i in worth],
                                               [streaks[i] for i in worth])))
        return [((chars, texts[i]) if i in texts else (chars,), states) for i, (chars, states) in enumerate(outputs)]

    def _reads_a_plate(self, chars: np.ndarray) -> bool:
        return any(is_valid_plate(c.text) for c in plate_candidates(chars, self.settings.candidates,
                                                                     o_as_zero=self.settings.o_as_zero))

    def names_of(self, image: np.ndarray, boxes: list[FoundBox], found: list,
                 seen: NamesSeen | None = None) -> list | None:
        """For each box, the texts where the state's name is printed, read only where the box gives a plate
        (`found`: its candidates, or None) big enough to show it, and its reading's name is not in `seen`:
        the text recogniser costs more than the readers, and a frame has more boxes than plates. None where
        names are not read."""
        if self.names is None:
            return None
        wanted = [i for i, (b, candidates) in enumerate(zip(boxes, found))
                  if candidates and b.box[3] >= self.settings.state_name_min_height]
        names: list = [None] * len(boxes)
        if seen is not None:
            for i in wanted:
                names[i] = seen.get(found[i][0].text)
        unread = [i for i in wanted if names[i] is None]
        # the name bands are read upright: read level, the name recogniser's readings of nearly level plates
        # moved (two validation states) and it read plates turned 8 degrees worse (docs/reading.md)
        for i, texts in zip(unread, self.names.read(image, [boxes[i].box for i in unread],
                                                    [boxes[i].streak for i in unread])):
            names[i] = texts
            if seen is not None and name_decides(name_scores(texts), self.settings.state_name_sharpness):
                seen.put(found[i][0].text, texts)
        return names

    def candidates(self, probs) -> list | None:
        """The ranked candidates of one box from its readers' character probabilities; None if it is no plate."""
        weights = (self.settings.plate_reader_weight,) + (1.0,) * (len(probs) - 1)
        found = [c for c in joint_candidates(list(probs), self.settings.candidates, o_as_zero=self.settings.o_as_zero,
                                             weights=weights, log_odds=self.settings.character_log_odds,
                                             prior_weight=self.settings.character_prior_weight)
                 if is_valid_plate(c.text)]
        if not found or looks_like_year(found[0].text):
            return None
        if not is_a_plate(list(probs), found[0], self.settings.min_confidence, self.settings.o_as_zero):
            return None
        return found

    def readings(self, boxes: list[FoundBox], outputs: list, names: list | None = None,
                 found: list | None = None) -> list[PlateReading]:
        """The plates of a frame from its boxes (`FoundBox`), the readers' outputs for them, the texts
        read where states print their names (None, or None for a box: not read) and each box's candidates
        (`candidates`, worked out here if not given), most likely first. Pure: the rules can be tried on
        stored outputs."""
        readings = []
        for i, (found_box, (probs, states)) in enumerate(zip(boxes, outputs)):
            box, score = found_box.box, found_box.score
            candidates = self.candidates(probs) if found is None else found[i]
            if candidates is None:
                continue
            if names is not None and names[i] is not None:
                states = fuse_states(states, name_scores(names[i]), self.settings.state_name_sharpness)
            reading = self._reading(box, candidates, states)
            readings.append((score * reading.confidence, reading))
        readings.sort(key=lambda item: item[0], reverse=True)
        kept: list[PlateReading] = []
        for _, reading in readings:
            # the detector can box a big plate more than once: the box that reads best stands for it
            if not any(same_plate(reading.box, other.box) for other in kept):
                kept.append(reading)
        return kept[: self.settings.max_plates]

    def _reading(self, box, candidates: list, states: np.ndarray) -> PlateReading:
        k = int(states.argmax())
        state, state_p = STATE_CODES[k], float(states[k])
        if state_p >= self.settings.state_for_format:
            candidates = rank_by_state_format(candidates, state)[: self.settings.candidates]
        best = candidates[0]
        x, y, w, h = box
        return PlateReading(best.text, best.confidence, (int(x), int(y), max(1, int(w)), max(1, int(h))),
                            tuple(candidates), state, round(state_p, 4))

