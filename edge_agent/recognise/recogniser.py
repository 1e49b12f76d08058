"""Our plate reader network (models/plate-reader.onnx): a plate box in, per-step character distributions and
the issuing state's distribution out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_agent.errors import ModelError
from edge_agent.recognise.crops import READER_CHANNELS, READER_SIZE, reader_input
from edge_agent.recognise.plate import US_STATES
from edge_agent.recognise.runtime import PLATE_ALPHABET, RuntimeOptions, make_session

STEPS = 32
STATE_CODES = tuple(sorted(US_STATES))  # the network's state classes, in this order


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


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

    def read(self, image: np.ndarray, boxes: list[tuple[float, float, float, float]]):
        """For each box: (per-step probabilities (32, 37), column 0 the blank; state probabilities (51,))."""
        if not boxes:
            return []
        strips = np.stack([reader_input(image, box) for box in boxes])
        chars, states = self.session.run(None, {self.input_name: strips})
        return list(zip(_softmax(chars), _softmax(states)))
