"""The issuing state from the name printed on the plate, beside the plate reader's state head.

The state head learned each state's design from a few real crops a state and is often sure and wrong about
a design it saw little of; the name printed above or below the number ("California", "TEXAS", "Washington,
D.C.") says it outright where it is legible. A general-purpose text recogniser from a pinned wheel (the
PP-OCR recogniser that ships in `rapidocr`, listed in the model manifest with its sha256) reads the plate's
top and bottom bands; `name_scores` says how well each state's printed name is found in what it read beyond
chance, and `fuse_states` weighs that against the head. The bands' share of the plate, how far each name is
found by chance and the sharpness of that weighing are learned, by `scripts/train rules` on the train part;
the names are general knowledge.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import onnx
from onnx import numpy_helper

from edge_agent.errors import ModelError
from edge_agent.recognise.crops import window_view
from edge_agent.recognise.plate import US_STATES
from edge_agent.recognise.recogniser import STATE_CODES
from edge_agent.recognise.runtime import RuntimeOptions, make_session

# How each state's name is printed, letters only; DC's plates say "Washington, D.C." and carry the slogan
# "Taxation without representation".
PRINTED_NAMES: dict[str, tuple[str, ...]] = {
    code: (name.replace(" ", ""),) for code, name in US_STATES.items()
} | {"DC": ("DISTRICTOFCOLUMBIA", "WASHINGTONDC", "TAXATIONWITHOUTREPRESENTATION")}

# What the text recogniser sees: a band of the plate (the top or bottom BAND of its height: fitted by
# `scripts/train rules`, where the name is likeliest read on the train crops) scaled to TEXT_HEIGHT pixels
# high, at most TEXT_MAX_WIDTH wide (a band of a 2:1 plate is about 340, squeezed to 320). The recogniser's
# memory grows with its batch's size and width (16 bands 640 wide: 450 MB), so a plate's two bands go
# through at a time.
BAND = 0.28
TEXT_HEIGHT = 48
TEXT_MAX_WIDTH = 320

_NAMES = [(code, name) for code in STATE_CODES for name in PRINTED_NAMES[code]]
_NAME_CODES = np.array([STATE_CODES.index(code) for code, _ in _NAMES])
_NAME_LENGTHS = np.array([len(name) for _, name in _NAMES])
_NAME_MATRIX = np.zeros((len(_NAMES), int(_NAME_LENGTHS.max())), np.uint8)
for _row, (_, _name) in enumerate(_NAMES):
    _NAME_MATRIX[_row, :len(_name)] = np.frombuffer(_name.encode(), np.uint8)
# How much of each printed name is found, by chance, in what is read off plates of other states: a short name
# ("IOWA", "OHIO") is three-quarters found in many a misread line, a long one ("CALIFORNIA") hardly ever. A
# name counts only as far as it is found beyond that (`state_scores`). Fitted by `scripts/train rules`: the
# 0.9 quantile (the likeliest of `fit_rules.CHANCE_QUANTILES`) over the train crops of other states
# (`chance_levels`).
NAME_CHANCE: dict[str, float] = {
    "ALASKA": 0.5, "ALABAMA": 0.429, "ARKANSAS": 0.375, "ARIZONA": 0.571, "CALIFORNIA": 0.4, "COLORADO": 0.375,
    "CONNECTICUT": 0.364, "DISTRICTOFCOLUMBIA": 0.278, "WASHINGTONDC": 0.333,
    "TAXATIONWITHOUTREPRESENTATION": 0.276, "DELAWARE": 0.375, "FLORIDA": 0.429, "GEORGIA": 0.429, "HAWAII": 0.333,
    "IOWA": 0.5, "IDAHO": 0.58, "ILLINOIS": 0.375, "INDIANA": 0.571, "KANSAS": 0.5, "KENTUCKY": 0.375,
    "LOUISIANA": 0.444, "MASSACHUSETTS": 0.308, "MARYLAND": 0.5, "MAINE": 0.6, "MICHIGAN": 0.375,
    "MINNESOTA": 0.444, "MISSOURI": 0.375, "MISSISSIPPI": 0.273, "MONTANA": 0.429, "NORTHCAROLINA": 0.385,
    "NORTHDAKOTA": 0.455, "NEBRASKA": 0.375, "NEWHAMPSHIRE": 0.417, "NEWJERSEY": 0.422, "NEWMEXICO": 0.444,
    "NEVADA": 0.5, "NEWYORK": 0.429, "OHIO": 0.5, "OKLAHOMA": 0.375, "OREGON": 0.5, "PENNSYLVANIA": 0.333,
    "RHODEISLAND": 0.455, "SOUTHCAROLINA": 0.385, "SOUTHDAKOTA": 0.455, "TENNESSEE": 0.444, "TEXAS": 0.4,
    "UTAH": 0.5, "VIRGINIA": 0.375, "VERMONT": 0.429, "WASHINGTON": 0.4, "WISCONSIN": 0.444, "WESTVIRGINIA": 0.417,
    "WYOMING": 0.429,
}
CHANCE_MOST = 0.95  # a name found this far by chance would tell nothing
_CHANCE = np.array([NAME_CHANCE.get(name, 0.0) for _, name in _NAMES])
# (short, long): a name found inside a longer one ("VIRGINIA" in "WESTVIRGINIA", "KANSAS" in "ARKANSAS")
_INSIDE = [(i, j) for i, (_, a) in enumerate(_NAMES) for j, (_, b) in enumerate(_NAMES) if i != j and a in b]


def letters(text: str) -> str:
    return "".join(c for c in text.upper() if "A" <= c <= "Z")


def substring_distances(text: str) -> np.ndarray:
    """For every printed name (in `_NAMES` order), the least edit distance between it and any part of
    `text` (Sellers' approximate substring match), all names at once."""
    t = np.frombuffer(text.encode(), np.uint8)
    k = len(_NAMES)
    ramp = np.arange(len(t) + 1)
    previous = np.zeros((k, len(t) + 1), np.int32)  # a match may start anywhere in the text
    out = np.zeros(k, np.int32)
    for i in range(_NAME_MATRIX.shape[1]):
        step = np.empty_like(previous)
        step[:, 0] = i + 1
        step[:, 1:] = np.minimum(previous[:, :-1] + (_NAME_MATRIX[:, i:i + 1] != t[None, :]), previous[:, 1:] + 1)
        # an inserted text character costs one: the running minimum of (step - j) + j
        current = np.minimum.accumulate(step - ramp, axis=1) + ramp
        ends = _NAME_LENGTHS == i + 1
        out[ends] = current[ends].min(axis=1)
        previous = current
    return out


def name_scores(texts: Sequence[str]) -> np.ndarray:
    """(51,) in STATE_CODES order: for each state, how far its printed name is found in the texts read off
    the plate beyond chance (`state_scores` of `found_names`, at NAME_CHANCE)."""
    return state_scores(found_names(texts))


def found_names(texts: Sequence[str]) -> np.ndarray:
    """For each printed name (`_NAMES` order), how much of it is in the texts read off the plate (1 - edit
    distance / name length, the best of the texts; 0 where none)."""
    best = np.zeros(len(_NAMES))
    for text in texts:
        text = letters(text)
        if len(text) >= 3:
            best = np.maximum(best, 1.0 - substring_distances(text) / _NAME_LENGTHS)
    return best.clip(0.0, 1.0)


def chance_levels(found_rows: np.ndarray, truth: Sequence[int], quantile: float) -> np.ndarray:
    """Per printed name, the `quantile` of how much of it is found (`found_names` rows) on plates of
    other states (`truth`: each row's state index): how far a name is found by chance."""
    found_rows, truth = np.asarray(found_rows), np.asarray(truth)
    levels = np.zeros(len(_NAMES))
    for k in range(len(_NAMES)):
        others = found_rows[truth != _NAME_CODES[k], k]
        levels[k] = float(np.quantile(others, quantile)) if len(others) else 0.0
    return levels.clip(0.0, CHANCE_MOST).round(3)


def state_scores(found: np.ndarray, chance: np.ndarray | None = None) -> np.ndarray:
    """(51,) in STATE_CODES order from `found_names`: each name found beyond its chance level, scaled to
    0-1, the best of a state's names. A name inside a longer one that is found at least as well counts only
    for its share of the longer ("West Virginia" is not evidence for Virginia)."""
    chance = _CHANCE if chance is None else chance
    best = ((found - chance) / (1.0 - chance)).clip(0.0, 1.0)
    adjusted = best.copy()
    for short, long in _INSIDE:
        if best[long] >= best[short]:
            adjusted[short] = min(adjusted[short], best[short] * _NAME_LENGTHS[short] / _NAME_LENGTHS[long])
    scores = np.zeros(len(STATE_CODES))
    np.maximum.at(scores, _NAME_CODES, adjusted)
    return scores


def name_distribution(scores: np.ndarray, sharpness: float) -> np.ndarray:
    """The printed name's own state distribution: softmax(sharpness * scores)."""
    evidence = sharpness * scores
    weights = np.exp(evidence - evidence.max())
    return weights / weights.sum()


def name_decides(scores: np.ndarray, sharpness: float) -> bool:
    """Whether the name read is more likely right than wrong (above one half), and so decides the state."""
    return _decides(name_distribution(scores, sharpness))


def _decides(name: np.ndarray) -> bool:
    return bool(name.max() > 0.5)


def fuse_states(head: np.ndarray, scores: np.ndarray, sharpness: float) -> np.ndarray:
    """The state distribution from the head's (51,) and the printed name's scores.

    Where the name decides (`name_decides`) its distribution is the state's: the head's probabilities are
    not calibrated (it has learned its train crops by heart and is as sure of a design it never saw, such
    as a state's new issue); elsewhere it weighs into the head's (their product, normalised). Nothing read
    leaves the head as it is."""
    name = name_distribution(scores, sharpness)
    if _decides(name):
        return name
    fused = head * name
    total = fused.sum()
    return fused / total if total > 0 else head


def name_log_likelihood(score_rows: np.ndarray, truth: Sequence[int], sharpness: float) -> float:
    """Mean log-likelihood of the true states (indices) under softmax(sharpness * scores), the name's own
    distribution; log(51) above it is chance."""
    truth = np.asarray(truth)
    z = sharpness * score_rows
    z = z - z.max(axis=1, keepdims=True)
    return float((z[np.arange(len(truth)), truth] - np.log(np.exp(z).sum(axis=1))).mean())


def fit_sharpness(score_rows: np.ndarray, truth: Sequence[int], grid=np.arange(0.5, 60.01, 0.5)) -> float:
    """The sharpness that makes softmax(sharpness * scores) likeliest for the true states (maximum
    likelihood over a grid), from the name scores alone: the head plays no part, so it may be fitted on
    the train part that the head has learned by heart."""
    return float(max(grid, key=lambda s: name_log_likelihood(score_rows, truth, s)))


class NamesSeen:
    """The printed names one camera has read clearly on its recent frames, by the plate's reading.

    A plate is on many frames of a pass, and its name, once read clearly enough to decide the state, would
    give the same answer at 25 ms a frame again; a name that did not decide is read again on the next
    frame, where the plate is often nearer. Entries go after `ttl_s` (longer than a pass) and the oldest
    beyond `size`, so it stays small whatever drives past."""

    def __init__(self, ttl_s: float = 10.0, size: int = 64, clock=time.monotonic):
        self.ttl_s, self.size, self.clock = ttl_s, size, clock
        self._seen: OrderedDict[str, tuple[list[str], float]] = OrderedDict()

    def get(self, plate: str) -> list[str] | None:
        entry = self._seen.get(plate)
        if entry is None or self.clock() - entry[1] > self.ttl_s:
            return None
        return entry[0]

    def put(self, plate: str, texts: list[str]) -> None:
        self._seen[plate] = (texts, self.clock())
        self._seen.move_to_end(plate)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)


def band_boxes(box: tuple[float, float, float, float]) -> list[tuple[float, float, float, float]]:
    """The plate box's top and bottom bands, where states print their name (and slogans)."""
    x, y, w, h = box
    return [(x, y, w, h * BAND), (x, y + h * (1 - BAND), w, h * BAND)]


def text_input(image: np.ndarray, boxes: list[tuple[float, float, float, float]], streak: int = 0) -> np.ndarray:
    """(N, 3, TEXT_HEIGHT, W) float32 of the boxes as the PP-OCR recogniser expects them: BGR scaled to
    -1..1, each box TEXT_HEIGHT high at its aspect (at most TEXT_MAX_WIDTH wide), padded right with zeros
    to TEXT_MAX_WIDTH; a streak of `streak` pixels along the road undone (`crops.unstreaked`)."""
    height, width = image.shape[:2]
    strips = []
    for x, y, w, h in boxes:
        x0, y0 = max(0, int(x)), max(0, int(y))
        x1, y1 = min(width, int(np.ceil(x + w))), min(height, int(np.ceil(y + h)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            strips.append(np.zeros((TEXT_HEIGHT, 16, 3), np.float32))
            continue
        view = window_view(image, (x0, y0, x1 - x0, y1 - y0), streak)
        out_w = int(min(TEXT_MAX_WIDTH, max(16, round(TEXT_HEIGHT * (x1 - x0) / (y1 - y0)))))
        strip = cv2.resize(view, (out_w, TEXT_HEIGHT), interpolation=cv2.INTER_LINEAR)
        if strip.ndim == 2:
            strip = cv2.cvtColor(strip, cv2.COLOR_GRAY2BGR)
        strips.append(strip.astype(np.float32) * (2.0 / 255.0) - 1.0)
    # one width for all: one input shape, so ONNX Runtime's memory stays what the first call took
    batch = np.zeros((len(strips), 3, TEXT_HEIGHT, TEXT_MAX_WIDTH), np.float32)
    for i, strip in enumerate(strips):
        batch[i, :, :, :strip.shape[1]] = strip.transpose(2, 0, 1)
    return batch


def greedy_text(probs: np.ndarray, charset: Sequence[str]) -> str:
    """The best CTC path of one (T, C) output, collapsed; column 0 the blank, column k charset[k - 1]."""
    best = probs.argmax(axis=1)
    keep = (best != 0) & np.concatenate(([True], best[1:] != best[:-1]))
    return "".join(charset[k - 1] if k - 1 < len(charset) else " " for k in best[keep])


def character_list(model: onnx.ModelProto, source: Path) -> list[str]:
    """The PP-OCR recogniser's characters, from its metadata (its output's column k is character k - 1)."""
    charset = next((p.value for p in model.metadata_props if p.key == "character"), "").splitlines()
    if not charset:
        raise ModelError(f"{source}: text recogniser carries no character list in its metadata")
    return charset


def cut_output_layer(model: onnx.ModelProto, columns: Sequence[int], source: Path):
    """Cuts the PP-OCR recogniser's output layer (the product and bias whose width is its character list's
    plus the blank and the space) to `columns`, in place; returns the bias's Add node, the logits."""
    width = len(character_list(model, source)) + 2  # the blank first, the space last
    weights = {i.name: i for i in model.graph.initializer}
    products = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights
                and tuple(weights[n.input[1]].dims[-1:]) == (width,)]
    product = products[0].output[0] if len(products) == 1 else None
    biases = [n for n in model.graph.node if n.op_type == "Add" and n.input[0] == product
              and n.input[1] in weights and tuple(weights[n.input[1]].dims) == (width,)]
    if len(biases) != 1:
        raise ModelError(f"{source}: text recogniser's output layer (a {width}-column product and bias) not found")
    for name in (products[0].input[1], biases[0].input[1]):
        cut = numpy_helper.to_array(weights[name])[..., list(columns)]
        weights[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(cut), name))
    # the shapes recorded for the old width would contradict the new one
    del model.graph.value_info[:]
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if dims and dims[-1].dim_value == width:
            dims[-1].dim_value = len(columns)
    return biases[0]


def printable_output(model: onnx.ModelProto, source: Path) -> tuple[bytes, list[str]]:
    """The recogniser with its output layer cut to the blank, printable ASCII and the space, and its
    character list to match (column k of the cut output is the list's k - 1, the last column the space).

    It reads 18708 characters of many scripts, and a step's scores for them all cost a third of a band's
    time (a 120 x 18710 product and a softmax over it, 40 steps a band); a US plate prints ASCII, and
    `name_scores` keeps its letters alone. Where the full recogniser's best at a step lies outside ASCII,
    the cut one takes the best inside it, blank included."""
    charset = character_list(model, source)
    kept = [0] + [k + 1 for k, c in enumerate(charset) if len(c) == 1 and " " < c <= "~"] + [len(charset) + 1]
    cut_output_layer(model, kept, source)
    return model.SerializeToString(), [charset[k - 1] for k in kept[1:-1]]


class StateNameReader:
    """Reads the printed text of plates' top and bottom bands with the PP-OCR recogniser, cut to ASCII
    (`printable_output`) once at start."""

    def __init__(self, model: Path, options: RuntimeOptions = RuntimeOptions()):
        try:
            graph = onnx.load(str(model))
        except Exception as exc:  # onnx raises DecodeError and others for a file that is no model
            raise ModelError(f"{model}: not an ONNX model: {exc}") from None
        serialized, self.charset = printable_output(graph, Path(model))
        del graph  # the parsed model (21 MB) need not stay while ONNX Runtime builds its own
        self.session = make_session(serialized, options)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].shape[1:3] != [3, TEXT_HEIGHT]:
            raise ModelError(f"{model}: text recogniser input must be (N, 3, {TEXT_HEIGHT}, W), "
                             f"got {[(i.name, i.shape) for i in inputs]}")
        self.input_name = inputs[0].name

    def read(self, image: np.ndarray, boxes: list[tuple[float, float, float, float]],
             streaks: list[int] | None = None) -> list[list[str]]:
        """For each plate box (streaked `streaks` pixels, where given), the texts of its top and bottom bands."""
        if not boxes:
            return []
        out = []
        for box, streak in zip(boxes, streaks or [0] * len(boxes)):
            (probs,) = self.session.run(None, {self.input_name: text_input(image, band_boxes(box), streak)})
            out.append([greedy_text(p, self.charset) for p in probs])
        return out
