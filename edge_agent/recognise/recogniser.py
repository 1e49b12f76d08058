"""Our plate reader network (models/plate-reader.onnx): a plate box in, per-step character distributions and
the issuing state's distribution out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_agent.errors import ModelError
from edge_agent.recognise.crops import (READER_CHANNELS, READER_SIZE, TEXT_READER_SIZE, reader_input,
                                       text_reader_input)
from edge_agent.recognise.plate import US_STATES
from edge_agent.recognise.runtime import PLATE_ALPHABET, RuntimeOptions, make_session

STEPS = 32
STATE_CODES = tuple(sorted(US_STATES))  # the network's state classes, in this order


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _views(boxes: list, tilts: list[float] | None, streaks: list[int] | None):
    """Each box with its plate's turn and streak, none where not given."""
    return zip(boxes, tilts or [0.0] * len(boxes), streaks or [0] * len(boxes))


class PlateRecogniser:
    def __init__(self, model: Path, options: RuntimeOptions = RuntimeOptions()):
        self.session = make_session(Path(model), options)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or list(inputs[0].shape[1:]) != [READER_CHANNELS, *READER_SIZE]:
            raise ModelError(f"{model}: plate reader input must be (N, {READER_CHANNELS}, {READER_SIZE[0]}, {READER_SIZE[1]}), "
                             f"got {[(i.name, i.shape) for i in inputs]}")
        shapes = [list(o.shape[1:]) for o in outputs]
        if shapes != [[STEPS, 1 + len(PLATE_ALPHABET)], [len(STATE_CODES)]]:
            raise ModelError(f"{model}: plate reader outputs must be (N, {STEPS}, {1 + len(PLATE_ALPHABET)}) and "
                             f"(N, {len(STATE_CODES)}), got {[(o.name, o.shape) for o in outputs]}")
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("states", ",".join(STATE_CODES)) != ",".join(STATE_CODES):
            raise ModelError(f"{model}: its state classes are not the agent's ({meta.get('states')})")
        self.input_name = inputs[0].name

    def read(self, image: np.ndarray, boxes: list[tuple[float, float, float, float]], tilts: list[float] | None = None,
             streaks: list[int] | None = None):
        """For each box (its plate turned by `tilts` degrees and streaked by `streaks` pixels, where given):
        (per-step probabilities (32, 37), column 0 the blank; state probabilities (51,))."""
        if not boxes:
            return []
        strips = np.stack([reader_input(image, *view) for view in _views(boxes, tilts, streaks)])
        chars, states = self.session.run(None, {self.input_name: strips})
        return list(zip(_softmax(chars), _softmax(states)))


class PlateTextReader:
    """The PP-OCR text recogniser fine-tuned on plates (models/plate-text-reader.onnx, `scripts/train text`): a
    plate box in, per-step character distributions out. Where the manifest lists it, it reads the characters
    and the plate reader above gives the state."""

    def __init__(self, model: Path, options: RuntimeOptions = RuntimeOptions()):
        self.session = make_session(Path(model), options)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = list(inputs[0].shape[1:]) if len(inputs) == 1 else []
        width_fits = len(shape) == 3 and (shape[2] == TEXT_READER_SIZE[1] or not isinstance(shape[2], int))  # or free
        if not width_fits or shape[:2] != [3, TEXT_READER_SIZE[0]]:
            raise ModelError(f"{model}: plate text reader input must be (N, 3, {TEXT_READER_SIZE[0]}, {TEXT_READER_SIZE[1]}), "
                             f"got {[(i.name, i.shape) for i in inputs]}")
        if len(outputs) != 1 or outputs[0].shape[-1] != 1 + len(PLATE_ALPHABET):
            raise ModelError(f"{model}: plate text reader output must be (N, T, {1 + len(PLATE_ALPHABET)}), "
                             f"got {[(o.name, o.shape) for o in outputs]}")
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("alphabet") != PLATE_ALPHABET:
            raise ModelError(f"{model}: its characters are not the agent's ({meta.get('alphabet')})")
        self.input_name = inputs[0].name

    def read(self, image: np.ndarray, boxes: list[tuple[float, float, float, float]],
             tilts: list[float] | None = None, streaks: list[int] | None = None) -> list[np.ndarray]:
        """For each box (its plate turned by `tilts` degrees and streaked by `streaks` pixels, where given):
        per-step probabilities (T, 37), column 0 the blank."""
        if not boxes:
            return []
        strips = np.stack([text_reader_input(image, *view) for view in _views(boxes, tilts, streaks)])
        (chars,) = self.session.run(None, {self.input_name: strips})
        return list(_softmax(chars))
