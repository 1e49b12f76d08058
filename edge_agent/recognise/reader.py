"""PlateReader: an image in, the plates in it out (text, confidence, box, candidates, state)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_agent.imaging import as_bgr8
from edge_agent.recognise import plate as grammar
from edge_agent.recognise.models import DEFAULT_MANIFEST, load_manifest, verify_model
from edge_agent.recognise.ocr import (
    LineReading,
    RuntimeOptions,
    TextBox,
    TextDetector,
    TextRecogniser,
    crop_line,
)
from edge_agent.records import PlateReading


@dataclass(frozen=True)
class ReaderSettings:
    runtime: RuntimeOptions = RuntimeOptions()
    detector_max_side: int = 960
    min_confidence: float = 0.3  # below this a line is not reported as a plate
    candidates: int = 5
    max_plates: int = 4
    manifest: Path = DEFAULT_MANIFEST


class PlateReader:
    def __init__(self, settings: ReaderSettings = ReaderSettings()):
        self.settings = settings
        models = load_manifest(settings.manifest)
        self.detector = TextDetector(verify_model(models["detect"]), settings.runtime, max_side=settings.detector_max_side)
        self.recogniser = TextRecogniser(verify_model(models["recognise"]), settings.runtime)

    def read(self, image: np.ndarray) -> list[PlateReading]:
        """Plates in a BGR image, most plate-like first."""
        image = as_bgr8(image)
        boxes = [b for b in self.detector.detect(image) if _could_hold_text(b)]
        boxes += _joined_neighbours(boxes)
        if not boxes:
            return []
        lines = self.recogniser.recognise([crop_line(image, _widened(b.quad, LINE_MARGIN)) for b in boxes])
        plates: list[tuple[float, PlateReading]] = []
        for box, line in zip(boxes, lines):
            scored = self._plate_from_line(box, line, boxes, lines)
            if scored is not None:
                plates.append(scored)
        plates.sort(key=lambda item: item[0], reverse=True)
        return [r for score, r in plates if score > 0][: self.settings.max_plates]

    def _plate_from_line(
        self, box: TextBox, line: LineReading, boxes: list[TextBox], lines: list[LineReading]
    ) -> tuple[float, PlateReading] | None:
        """The plate a text line holds, with its rank score (confidence times plate-likeness), or None."""
        candidates = [
            c for c in grammar.plate_candidates(line.plate_probs, limit=self.settings.candidates * 2, max_length=grammar.MAX_CHARS)
            if grammar.is_valid_plate(c.text)
        ][: self.settings.candidates]
        if not candidates or candidates[0].confidence < self.settings.min_confidence:
            return None
        likeness = grammar.plate_likeness(candidates[0].text, line.text)
        if likeness == 0:
            return None
        if not any(c.isdigit() for c in candidates[0].text) and grammar.state_from_text(line.text, min_ratio=0.9):
            return None  # the state name printed on the plate, not its number
        state = _state_near(box, boxes, lines)
        return candidates[0].confidence * likeness * _prominence(box, boxes), PlateReading(
            text=candidates[0].text,
            confidence=candidates[0].confidence,
            box=box.bounds(),
            candidates=tuple(candidates),
            state=state[0] if state else None,
            state_confidence=state[1] if state else 0.0,
        )


# Detector boxes often clip the first or last character of a small plate;
# a tenth of the line height at each end brings it back without taking in the
# plate frame's bolts and edges.
LINE_MARGIN = 0.1


def _widened(quad: np.ndarray, by: float) -> np.ndarray:
    """The quad grown along its baseline by `by` of its height at each end."""
    along = quad[1] - quad[0]
    length = float(np.linalg.norm(along))
    if length < 1:
        return quad
    height = float(np.linalg.norm(quad[3] - quad[0]))
    step = along / length * by * height
    return np.array([quad[0] - step, quad[1] + step, quad[2] + step, quad[3] - step], dtype=np.float32)


def _could_hold_text(box: TextBox) -> bool:
    return box.height >= 6 and box.width >= 6


def _joined_neighbours(boxes: list[TextBox]) -> list[TextBox]:
    """Character groups the detector split at a gap or a sticker ("832 AXV") joined into one line."""
    joined = []
    for a in boxes:
        for b in boxes:
            if a is b:
                continue
            ha, hb = a.height, b.height
            h = max(ha, hb)
            gap = b.quad[0, 0] - a.quad[1, 0]
            centre_a, centre_b = a.quad[:, 1].mean(), b.quad[:, 1].mean()
            if abs(ha - hb) < 0.3 * h and abs(centre_a - centre_b) < 0.3 * h and -0.2 * h <= gap <= 1.5 * h:
                quad = np.array([a.quad[0], b.quad[1], b.quad[2], a.quad[3]], dtype=np.float32)
                joined.append(TextBox(quad, min(a.score, b.score)))
    return joined


def _prominence(box: TextBox, boxes: list[TextBox]) -> float:
    """1 for the tallest text on its plate, less for smaller print beside it (stickers, counties, frames)."""
    x, y, w, h = box.bounds()
    tallest = h
    for other in boxes:
        ox, oy, ow, oh = other.bounds()
        cx, cy = ox + ow / 2, oy + oh / 2
        if x - 0.5 * w <= cx <= x + 1.5 * w and y - 1.5 * h <= cy <= y + 2.5 * h and ow < 2 * w:
            tallest = max(tallest, oh)
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
