"""Our plate detector (models/plate-detector.onnx): plate boxes in a whole frame, from a centre heat map.

The network sees the frame letterboxed into DETECTOR_SIZE (`crops.detector_input`) and gives, on a grid
DETECTOR_STRIDE pixels a cell, a plate-centre score and the box's offset and size at each centre. A cell
that is the highest of its 3x3 neighbourhood and scores at least `min_score` is a plate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_agent.errors import ModelError
from edge_agent.recognise.crops import DETECTOR_SIZE, DETECTOR_STRIDE, detector_input


@dataclass(frozen=True)
class PlateBox:
    box: tuple[float, float, float, float]  # x, y, width, height in frame pixels
    score: float


def box_intersection(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """The area two boxes (x, y, width, height) share."""
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    return max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0)) * max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two boxes (x, y, width, height)."""
    inter = box_intersection(a, b)
    return inter / max(1e-6, a[2] * a[3] + b[2] * b[3] - inter)


def same_plate(box: tuple[float, ...], other: tuple[float, ...]) -> bool:
    """Whether two boxes (x, y, width, height) hold the same plate: most of the smaller lies inside the larger."""
    return box_intersection(box, other) > 0.5 * min(box[2] * box[3], other[2] * other[3])


def with_side_boxes(ahead: list[PlateBox], side: list[PlateBox]) -> list[PlateBox]:
    """The boxes of the detector of plates seen from ahead, then those of the detector of plates seen from the
    side that hold no plate the first one boxed: where both find a plate, the box is the first one's. Pure."""
    return ahead + [b for b in side if not any(same_plate(b.box, a.box) for a in ahead)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decode(output: np.ndarray, scale: float, frame_shape: tuple[int, int], min_score: float,
           max_boxes: int) -> list[PlateBox]:
    """Boxes from one (5, H/8, W/8) output: local maxima of the heat, best first. Pure."""
    heat = _sigmoid(output[0])
    padded = np.pad(heat, 1, constant_values=0.0)
    h, w = heat.shape
    neighbourhood = np.max([padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
    peaks = np.argwhere((heat >= neighbourhood) & (heat >= min_score))
    if not len(peaks):
        return []
    scores = heat[peaks[:, 0], peaks[:, 1]]
    order = np.argsort(-scores)[:max_boxes]
    height, width = frame_shape
    boxes = []
    for iy, ix in peaks[order]:
        cx = (ix + output[1, iy, ix]) * DETECTOR_STRIDE / scale
        cy = (iy + output[2, iy, ix]) * DETECTOR_STRIDE / scale
        bw = np.exp(np.clip(output[3, iy, ix], -3, 6)) * DETECTOR_STRIDE / scale
        bh = np.exp(np.clip(output[4, iy, ix], -3, 6)) * DETECTOR_STRIDE / scale
        x0, y0 = max(0.0, cx - bw / 2), max(0.0, cy - bh / 2)
        x1, y1 = min(float(width), cx + bw / 2), min(float(height), cy + bh / 2)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            boxes.append(PlateBox((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), float(heat[iy, ix])))
    return boxes


# A box scoring below this is not a plate (`recognition.plate_min_score`).
MIN_SCORE = 0.3


class PlateDetector:
    def __init__(self, model: Path, options, min_score: float = MIN_SCORE, max_boxes: int = 8):
        from edge_agent.recognise.runtime import make_session

        self.session = make_session(Path(model), options)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape[1:]) != [3, *DETECTOR_SIZE]:
            raise ModelError(f"{model}: plate detector input must be (N, 3, {DETECTOR_SIZE[0]}, {DETECTOR_SIZE[1]}), "
                             f"got {[(i.name, i.shape) for i in inputs]}")
        outputs = self.session.get_outputs()
        grid = [5, DETECTOR_SIZE[0] // DETECTOR_STRIDE, DETECTOR_SIZE[1] // DETECTOR_STRIDE]
        if len(outputs) != 1 or list(outputs[0].shape[1:]) != grid:
            raise ModelError(f"{model}: plate detector output must be (N, {', '.join(map(str, grid))}), "
                             f"got {[(o.name, o.shape) for o in outputs]}")
        self.input_name = inputs[0].name
        self.min_score = min_score
        self.max_boxes = max_boxes

    def detect(self, image: np.ndarray) -> list[PlateBox]:
        """Plate boxes in a BGR frame, best first."""
        blob, scale = detector_input(image)
        output = self.session.run(None, {self.input_name: blob})[0][0]
        return decode(output, scale, image.shape[:2], self.min_score, self.max_boxes)
