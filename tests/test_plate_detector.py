"""A YOLO-layout plate detector configured by path: its boxes are read, its layouts understood, bad models refused.

The detectors here are real ONNX models built by the test and run by ONNX
Runtime; their output does not depend on the picture (they stand in for an
agency's trained detector, which we cannot ship), but every step after the
model's output (layout, letterbox, scores, NMS, reading the crop) is real.
"""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge_agent.errors import ModelError
from edge_agent.recognise.reader import PlateReader, ReaderSettings
from edge_agent.synthetic import render_plate

FRAME_W, FRAME_H = 1280, 720
PLATE_AT = (820, 430)  # where the plate is pasted in the frame
INPUT = 640


def detector_model(path: Path, rows: np.ndarray) -> Path:
    """An ONNX model with one (1, 3, 640, 640) input whose output is `rows` (plus nothing from the input)."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, INPUT, INPUT])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(rows.shape))
    const = helper.make_tensor("boxes", TensorProto.FLOAT, rows.shape, rows.astype(np.float32).ravel().tolist())
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["boxes", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, "plates", [x], [y],
                              initializer=[const, helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def scene() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    frame = np.full((FRAME_H, FRAME_W, 3), 80, np.uint8)
    # clutter elsewhere that the text path alone might read
    sign = render_plate("4XYZ890", width=200)
    frame[100:100 + sign.shape[0], 100:100 + sign.shape[1]] = sign
    plate = render_plate("7ABC123", width=160)
    x, y = PLATE_AT
    frame[y:y + plate.shape[0], x:x + plate.shape[1]] = plate
    return frame, (x, y, plate.shape[1], plate.shape[0])


def in_model_pixels(box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    scale = INPUT / FRAME_W
    pad_y = (INPUT - round(FRAME_H * scale)) // 2
    x, y, w, h = box
    return (x + w / 2) * scale, (y + h / 2) * scale + pad_y, w * scale, h * scale


def v8(*boxes) -> np.ndarray:
    """(1, 4 + classes, 8400): attributes first, the boxes given then empty ones, as YOLOv8 exports give."""
    out = np.zeros((len(boxes[0]), 8400))
    out[:, : len(boxes)] = np.array(boxes).T
    return out[np.newaxis]


def test_v8_layout_plate_is_read_from_the_detector_box(tmp_path: Path):
    frame, box = scene()
    cx, cy, w, h = in_model_pixels(box)
    rows = v8([cx, cy, w, h, 0.9], [300.0, 300.0, 40.0, 20.0, 0.1])
    reader = PlateReader(ReaderSettings(plate_detector=detector_model(tmp_path / "v8.onnx", rows)))
    (plate,) = reader.read(frame)
    assert plate.text == "7ABC123"
    x, y, bw, bh = plate.box
    assert abs(x - box[0]) <= 3 and abs(y - box[1]) <= 3 and abs(bw - box[2]) <= 4 and abs(bh - box[3]) <= 4


def test_v5_layout_with_objectness_and_overlapping_boxes(tmp_path: Path):
    frame, box = scene()
    cx, cy, w, h = in_model_pixels(box)
    rows = np.zeros((1, 25200, 6))  # (1, boxes, 5 + classes), as YOLOv5 exports give
    rows[0, :3] = [
        [cx, cy, w, h, 0.95, 0.9],  # the plate
        [cx + 2, cy + 1, w, h, 0.9, 0.8],  # the same plate again: NMS keeps one
        [100.0, 100.0, 50.0, 20.0, 0.2, 0.9],  # too unsure to read
    ]
    reader = PlateReader(ReaderSettings(plate_detector=detector_model(tmp_path / "v5.onnx", rows)))
    assert [p.text for p in reader.read(frame)] == ["7ABC123"]
    assert reader.plate_detector.detect(frame)[0][1] == pytest.approx(0.855)


def test_plate_class_picks_the_plate_scores(tmp_path: Path):
    frame, box = scene()
    cx, cy, w, h = in_model_pixels(box)
    rows = v8([cx, cy, w, h, 0.9, 0.05])  # class 0 scores high, class 1 low
    model = detector_model(tmp_path / "two.onnx", rows)
    assert PlateReader(ReaderSettings(plate_detector=model, plate_class=1)).read(frame) == []
    assert [p.text for p in PlateReader(ReaderSettings(plate_detector=model, plate_class=0)).read(frame)] == ["7ABC123"]
    with pytest.raises(ModelError, match="plate_class 5"):
        PlateReader(ReaderSettings(plate_detector=model, plate_class=5)).read(frame)


def test_model_that_is_not_a_detector_is_refused_clearly(tmp_path: Path):
    model = detector_model(tmp_path / "odd.onnx", np.zeros((1, 3)))
    with pytest.raises(ModelError, match="not a YOLO layout"):
        PlateReader(ReaderSettings(plate_detector=model)).read(scene()[0])
    with pytest.raises(ModelError, match="not found"):
        PlateReader(ReaderSettings(plate_detector=tmp_path / "missing.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="junk.onnx"):
        PlateReader(ReaderSettings(plate_detector=tmp_path / "junk.onnx"))
