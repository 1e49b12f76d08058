"""Plate boxes from an ONNX plate detector with a YOLO output layout, configured by path.

No such model ships with the agent (none we found is redistributable); an
agency that has one sets `recognition.plate_detector`. Two output layouts are
understood, told apart by shape:

- YOLOv8/v9/v11: (1, 4 + classes, boxes): cx, cy, w, h, then one score per class;
- YOLOv5/v7: (1, boxes, 5 + classes): cx, cy, w, h, objectness, then class scores.

Boxes are in the model's input pixels; the frame is letterboxed to that size
(grey padding, RGB, 0..1) as Ultralytics-style exports expect.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_agent.errors import ModelError
from edge_agent.recognise.ocr import RuntimeOptions, make_session

DEFAULT_INPUT = 640


class YoloPlateDetector:
    def __init__(self, model: Path, options: RuntimeOptions, min_score: float = 0.35, iou: float = 0.45,
                 plate_class: int = -1):
        if not Path(model).is_file():
            raise ModelError(f"{model}: plate detector model not found")
        self.session = make_session(Path(model), options)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError(f"{model}: expected one image input (1, 3, H, W), got {[(i.name, i.shape) for i in inputs]}")
        self.input_name = inputs[0].name
        _, _, h, w = inputs[0].shape
        self.height = h if isinstance(h, int) else DEFAULT_INPUT
        self.width = w if isinstance(w, int) else DEFAULT_INPUT
        self.min_score = min_score
        self.iou = iou
        self.plate_class = plate_class  # -1: any class is a plate
        self.model = Path(model)

    def detect(self, image: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """Plate boxes (x, y, width, height in frame pixels) with their scores, best first."""
        height, width = image.shape[:2]
        scale = min(self.width / width, self.height / height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        pad_x, pad_y = (self.width - new_w) // 2, (self.height - new_h) // 2
        canvas = np.full((self.height, self.width, 3), 114, np.uint8)
        canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        blob = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1)[np.newaxis] / 255.0
        output = np.asarray(self.session.run(None, {self.input_name: blob})[0])
        rows, scores = self._rows(output)
        keep = scores >= self.min_score
        rows, scores = rows[keep], scores[keep]
        if not len(rows):
            return []
        cx, cy, bw, bh = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        x0 = np.clip((cx - bw / 2 - pad_x) / scale, 0, width)
        y0 = np.clip((cy - bh / 2 - pad_y) / scale, 0, height)
        x1 = np.clip((cx + bw / 2 - pad_x) / scale, 0, width)
        y1 = np.clip((cy + bh / 2 - pad_y) / scale, 0, height)
        boxes = [(int(a), int(b), max(1, int(c - a)), max(1, int(d - b))) for a, b, c, d in zip(x0, y0, x1, y1)]
        order = cv2.dnn.NMSBoxes(boxes, scores.astype(float).tolist(), self.min_score, self.iou)
        kept = [(boxes[i], float(scores[i])) for i in np.array(order).reshape(-1)]
        return sorted(kept, key=lambda item: item[1], reverse=True)

    def _rows(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(boxes, 4 + n) rows of cx, cy, w, h and per-class scores, and each box's plate score."""
        if output.ndim == 3:
            output = output[0]
        if output.ndim != 2 or min(output.shape) < 5:
            raise ModelError(f"{self.model}: output shape {output.shape} is not a YOLO layout")
        if output.shape[0] < output.shape[1]:  # v8 style: attributes first
            rows = output.T
            classes = rows[:, 4:]
        else:  # v5 style: objectness, then classes
            rows = output
            classes = rows[:, 5:] * rows[:, 4:5] if rows.shape[1] > 5 else rows[:, 4:5]
        if self.plate_class >= 0:
            if self.plate_class >= classes.shape[1]:
                raise ModelError(f"{self.model}: plate_class {self.plate_class} but the model has {classes.shape[1]} classes")
            scores = classes[:, self.plate_class]
        else:
            scores = classes.max(axis=1)
        return rows, scores
