"""PP-OCR text detection (DB) and recognition (CTC) through ONNX Runtime.

Pre- and post-processing are written here rather than taken from the rapidocr
package so that the plate reader can see the recogniser's per-step character
distributions (for candidates and confusions), and so that nothing per frame is
done that can be done once (normalisation constants, column maps, sessions).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import onnxruntime as ort

from edge_agent.errors import ModelError

log = logging.getLogger(__name__)

PLATE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# ImageNet statistics, applied to the BGR image as PaddleOCR's detector expects.
_DET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_DET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_DET_SCALE = (1.0 / (255.0 * _DET_STD)).astype(np.float32)
_DET_SHIFT = (_DET_MEAN / _DET_STD).astype(np.float32)

REC_HEIGHT = 48
MAX_UPSCALE = 2.0  # the most the detector enlarges an image smaller than its max_side
MIN_STRIP_WIDTH = 320


@dataclass(frozen=True)
class RuntimeOptions:
    """How ONNX Runtime runs the models (CPU on a Pi; CUDA or TensorRT on a Jetson)."""

    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_threads: int = 0  # 0 lets ONNX Runtime choose (one per core)
    inter_op_threads: int = 1
    memory_arena: bool = True
    spin_wait: bool = False  # let idle ONNX Runtime threads spin (only worth it with cores to spare)
    trt_cache_dir: Path | None = None  # where TensorRT keeps built engines (else each start builds them again)
    trt_fp16: bool = True  # TensorRT may run layers in half precision (Jetson GPUs are built for it)


def provider_list(options: RuntimeOptions, available: set[str]) -> list[tuple[str, dict[str, str]]]:
    """The configured providers that are available here, in order, each with its options."""
    chosen = []
    for name in options.providers:
        if name not in available:
            continue
        settings: dict[str, str] = {}
        if name == "TensorrtExecutionProvider":
            settings["trt_fp16_enable"] = "True" if options.trt_fp16 else "False"
            if options.trt_cache_dir is not None:
                # building engines takes minutes on a Jetson: keep them across restarts
                settings["trt_engine_cache_enable"] = "True"
                settings["trt_engine_cache_path"] = str(options.trt_cache_dir)
        chosen.append((name, settings))
    return chosen


def latin_classifier(path: Path) -> tuple[Path | bytes, list[str]]:
    """The recogniser with its classifier cut down to the blank and the printable ASCII characters.

    PP-OCR's multilingual recogniser scores 18,710 characters at every step;
    a US plate needs 37 of them, and the dash, dot and symbols beside them to
    tell a gap from a character. Keeping those ~100 columns of the last layer
    saves most of its work and the (batch, steps, 18,710) output, and leaves
    the model file as the manifest pinned it (the cut is made in memory).
    Returns the model (bytes, or the path when its layout is not the expected
    MatMul, Add, Softmax tail) and its character set, blank first.
    """
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises its own untyped errors
        raise ModelError(f"{path}: not a readable ONNX model: {exc}") from None
    meta = {p.key: p.value for p in model.metadata_props}
    if "character" not in meta:
        raise ModelError(f"{path}: recogniser has no 'character' metadata")
    charset = ["<blank>"] + meta["character"].splitlines() + [" "]
    graph = model.graph
    nodes = {n.output[0]: n for n in graph.node}
    inits = {i.name: i for i in graph.initializer}
    softmax = nodes.get(graph.output[0].name)
    chain = [softmax]
    while chain[-1] is not None and chain[-1].op_type in ("Softmax", "Identity"):
        chain.append(nodes.get(chain[-1].input[0]))
    add = chain[-1]
    matmul = nodes.get(add.input[0]) if add is not None and add.op_type == "Add" else None
    if softmax is None or softmax.op_type != "Softmax" or matmul is None or matmul.op_type != "MatMul" \
            or matmul.input[1] not in inits or add.input[1] not in inits:
        return path, charset
    weight = numpy_helper.to_array(inits[matmul.input[1]])
    bias = numpy_helper.to_array(inits[add.input[1]])
    if weight.shape[-1] != len(charset) or bias.shape[-1] != len(charset):
        return path, charset
    keep = [0] + [i for i, ch in enumerate(charset) if i > 0 and len(ch) == 1 and " " <= ch <= "~"]
    inits[matmul.input[1]].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(weight[..., keep]), matmul.input[1]))
    inits[add.input[1]].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(bias[..., keep]), add.input[1]))
    graph.output[0].type.tensor_type.shape.dim[-1].dim_value = len(keep)
    resized = {matmul.output[0], add.output[0]} | {n.output[0] for n in chain[:-1]}  # shapes now wrong
    for info in [i for i in graph.value_info if i.name in resized]:
        graph.value_info.remove(info)
    return model.SerializeToString(), [charset[i] for i in keep]


def make_session(path: Path | bytes, options: RuntimeOptions) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = options.inter_op_threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # The arena keeps the peak allocation of every input size: about 15% faster,
    # about 120 MB more resident; a 2 GB unit may turn it off.
    so.enable_cpu_mem_arena = options.memory_arena
    # Two sessions (detector, recogniser) each keep a thread pool; spinning
    # threads of the idle one steal the cores the busy one needs, which on a
    # 2-core unit costs a third of the frame time.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.spin_wait else "0")
    available = set(ort.get_available_providers())
    providers = provider_list(options, available)
    missing = [p for p in options.providers if p not in available]
    if providers and missing:
        # a Jetson whose GPU runtime is broken still reads plates, slowly; say so once per model
        log.warning("ONNX Runtime providers %s are not available here; running on %s", missing, [p for p, _ in providers])
    if not providers:
        raise ModelError(
            f"none of the configured ONNX Runtime providers {list(options.providers)} is available here "
            f"(available: {sorted(available)})"
        )
    try:
        if options.trt_cache_dir is not None and any(p == "TensorrtExecutionProvider" for p, _ in providers):
            Path(options.trt_cache_dir).mkdir(parents=True, exist_ok=True)
        return ort.InferenceSession(path if isinstance(path, bytes) else str(path), sess_options=so,
                                    providers=[p for p, _ in providers], provider_options=[o for _, o in providers])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        name = "the recogniser (cut down in memory)" if isinstance(path, bytes) else path
        raise ModelError(f"{name}: ONNX Runtime cannot load the model: {exc}") from None


@dataclass
class TextBox:
    """A detected text region: four corners (tl, tr, br, bl) in frame pixels."""

    quad: np.ndarray  # (4, 2) float32
    score: float
    plate: TextBox | None = None  # for a number band cut from a whole plate's box, that box

    @property
    def width(self) -> float:
        return float(np.linalg.norm(self.quad[1] - self.quad[0]))

    @property
    def height(self) -> float:
        return float(np.linalg.norm(self.quad[3] - self.quad[0]))

    def bounds(self) -> tuple[int, int, int, int]:
        """Axis-aligned x, y, width, height."""
        x0, y0 = np.floor(self.quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(self.quad.max(axis=0)).astype(int)
        return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def order_corners(pts: np.ndarray) -> np.ndarray:
    """tl, tr, br, bl from any four points."""
    pts = pts[np.argsort(pts[:, 0])]
    left, right = pts[:2], pts[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


@dataclass(frozen=True)
class TextMap:
    """The detector's text probability map of an image, and the scale from map to image pixels."""

    prob: np.ndarray
    sx: float
    sy: float


class TextDetector:
    """DB text detector: probability map, threshold, boxes expanded back to full text size."""

    def __init__(
        self,
        model: Path,
        options: RuntimeOptions,
        max_side: int = 960,
        binary_threshold: float = 0.3,
        box_threshold: float = 0.5,
        unclip_ratio: float = 1.6,
        max_boxes: int = 200,
    ):
        self.session = make_session(model, options)
        self.input_name = self.session.get_inputs()[0].name
        self.max_side = max_side
        self.binary_threshold = binary_threshold
        self.box_threshold = box_threshold
        self.unclip_ratio = unclip_ratio
        self.max_boxes = max_boxes

    def input_size(self, height: int, width: int, long_side: int = 0) -> tuple[int, int]:
        # Images smaller than max_side are brought up to it too: the network sees too little of
        # a small frame or a plate crop at its own size (its coarsest maps are 1/32 of the input).
        scale = long_side / max(height, width) if long_side else min(MAX_UPSCALE, self.max_side / max(height, width))
        h = max(32, int(round(height * scale / 32)) * 32)
        w = max(32, int(round(width * scale / 32)) * 32)
        return h, w

    def detect(self, image: np.ndarray, long_side: int = 0) -> list[TextBox]:
        """Text boxes in frame pixels; `long_side` scales the image to that size (up or down) instead of max_side."""
        return self.boxes(self.text_map(image, long_side))

    def text_map(self, image: np.ndarray, long_side: int = 0) -> TextMap:
        height, width = image.shape[:2]
        in_h, in_w = self.input_size(height, width, long_side)
        # one C++ pass resizes into a contiguous NCHW float blob; normalised in place per channel
        blob = cv2.dnn.blobFromImage(image, 1.0, (in_w, in_h))
        for channel in range(3):
            plane = blob[0, channel]
            plane *= _DET_SCALE[channel]
            plane -= _DET_SHIFT[channel]
        prob = self.session.run(None, {self.input_name: blob})[0][0, 0]
        return TextMap(prob, width / in_w, height / in_h)

    def boxes(self, text_map: TextMap) -> list[TextBox]:
        """The map's text boxes, in image pixels."""
        prob, sx, sy = text_map.prob, text_map.sx, text_map.sy
        mask = (prob > self.binary_threshold).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[TextBox] = []
        for contour in contours[: self.max_boxes * 4]:
            if len(contour) < 4:
                continue
            (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
            if min(w, h) < 2:
                continue
            score = self._mean_score(prob, contour)
            if score < self.box_threshold:
                continue
            # DB shrinks text regions when training; grow the box back by the
            # offset distance the paper uses (area * ratio / perimeter).
            grow = (w * h * self.unclip_ratio) / (2 * (w + h))
            w, h = w + 2 * grow, h + 2 * grow
            if min(w, h) < 4:
                continue
            quad = cv2.boxPoints(((cx, cy), (w, h), angle))
            quad[:, 0] *= sx
            quad[:, 1] *= sy
            boxes.append(TextBox(order_corners(quad), score))
            if len(boxes) >= self.max_boxes:
                break
        return boxes

    def faint_regions(self, text_map: TextMap, level: float, limit: int,
                      min_size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
        """Up to `limit` regions of the map over `level` that mostly stay under the binary threshold
        (text too blurred or too small to be boxed) and are at least `min_size` (width, height) image
        pixels, as x, y, width, height in image pixels, the most text-like first."""
        prob = text_map.prob
        count, labels, stats, _ = cv2.connectedComponentsWithStats((prob > level).astype(np.uint8))
        found = []
        for i in range(1, count):
            x, y, w, h, _area = stats[i]
            if w * text_map.sx < min_size[0] or h * text_map.sy < min_size[1]:
                continue
            inside = labels[y:y + h, x:x + w] == i
            region = prob[y:y + h, x:x + w][inside]
            if (region > self.binary_threshold).mean() > 0.3:
                continue  # boxed already, or the faint rim of a box
            bounds = (int(x * text_map.sx), int(y * text_map.sy), int(w * text_map.sx), int(h * text_map.sy))
            found.append((float(region.max()), bounds))
        found.sort(reverse=True)
        return [bounds for _, bounds in found[:limit]]

    @staticmethod
    def _mean_score(prob: np.ndarray, contour: np.ndarray) -> float:
        x, y, w, h = cv2.boundingRect(contour)
        region = prob[y : y + h, x : x + w]
        mask = np.zeros((h, w), dtype=np.uint8)
        cv2.fillPoly(mask, [contour - np.array([x, y])], 1)
        return float(cv2.mean(region, mask)[0])


def crop_line(image: np.ndarray, quad: np.ndarray, height: int = REC_HEIGHT, max_width: int = 640) -> np.ndarray:
    """Straighten a text quad straight into a recogniser-height strip (one warp, no extra resize)."""
    w = max(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[3]))
    h = max(np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1]))
    if h < 1 or w < 1:
        return np.zeros((height, height), dtype=image.dtype)
    out_w = int(min(max_width, max(height // 4, round(height * w / h))))
    target = np.array([[0, 0], [out_w, 0], [out_w, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    return cv2.warpPerspective(image, matrix, (out_w, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def plate_columns(charset: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The recogniser's columns of plate characters (either case), and a 0/1 matrix summing them onto A-Z 0-9."""
    columns, targets = [], []
    for i, ch in enumerate(charset):
        if i > 0 and len(ch) == 1 and ch.isascii() and ch.upper() in PLATE_ALPHABET:
            columns.append(i)
            targets.append(PLATE_ALPHABET.index(ch.upper()))
    fold = np.zeros((len(columns), len(PLATE_ALPHABET)), dtype=np.float32)
    fold[np.arange(len(columns)), targets] = 1.0
    return np.array(columns, dtype=np.intp), fold


def fold_to_plate_alphabet(probs: np.ndarray, columns: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Per-step distributions over blank + A-Z 0-9 from the recogniser's full character set.

    Everything that is not a plate character (the dash or dot between character
    groups, an emblem read as a symbol, other scripts) counts as blank: dropping
    that mass instead would hand it to whichever plate character came next and
    insert a phantom character ("AG4-V3U" read as AG4AV3U).
    """
    folded = np.empty((len(probs), 1 + fold.shape[1]), dtype=np.float32)
    folded[:, 1:] = probs[:, columns] @ fold
    folded[:, 0] = np.clip(1.0 - folded[:, 1:].sum(axis=1), 0.0, 1.0)
    return folded


@dataclass
class LineReading:
    """What the recogniser saw in one text line."""

    text: str  # best path over the full character set
    confidence: float
    plate_probs: np.ndarray = field(repr=False)  # (steps, 1 + len(PLATE_ALPHABET)); column 0 is the CTC blank
    step_px: float = 8.0  # strip pixels a step covers


class TextRecogniser:
    """SVTR/CTC line recogniser; keeps per-step distributions folded onto A-Z 0-9."""

    def __init__(self, model: Path, options: RuntimeOptions, batch_size: int = 8):
        source, charset = latin_classifier(model)
        self.session = make_session(source, options)
        self.input_name = self.session.get_inputs()[0].name
        self.batch_size = batch_size
        self.charset = charset
        self._fold_columns, self._fold = plate_columns(self.charset)

    def recognise(self, strips: Sequence[np.ndarray]) -> list[LineReading]:
        results: list[LineReading | None] = [None] * len(strips)
        for width, chunk in self._batches(strips):
            # padding is 0 after normalisation (mid grey), as PP-OCR pads when it trains
            batch = np.full((len(chunk), 3, REC_HEIGHT, width), 127.5, dtype=np.float32)
            for row, i in enumerate(chunk):
                strip = strips[i]
                batch[row, :, :, : strip.shape[1]] = strip.transpose(2, 0, 1)
            batch *= 2.0 / 255.0
            batch -= 1.0
            probs = self.session.run(None, {self.input_name: batch})[0]
            for row, i in enumerate(chunk):
                steps = max(1, int(np.ceil(probs.shape[1] * strips[i].shape[1] / width)))
                results[i] = self._decode(probs[row, :steps], width / probs.shape[1])
        return [r for r in results if r is not None]

    def _batches(self, strips: Sequence[np.ndarray]) -> list[tuple[int, list[int]]]:
        """Strips grouped by the width they are padded to, so that a strip reads the same whatever
        else is in the frame: at least 320 pixels (PP-OCR pads to that when it trains), else up to
        the next multiple of 32."""
        groups: dict[int, list[int]] = {}
        for i, strip in enumerate(strips):
            width = max(MIN_STRIP_WIDTH, -(-strip.shape[1] // 32) * 32)
            groups.setdefault(width, []).append(i)
        return [(width, members[start:start + self.batch_size])
                for width, members in sorted(groups.items())
                for start in range(0, len(members), self.batch_size)]

    def _decode(self, probs: np.ndarray, step_px: float) -> LineReading:
        best = probs.argmax(axis=1)
        best_p = probs[np.arange(len(best)), best]
        chars, confs, prev = [], [], -1
        for idx, p in zip(best, best_p):
            if idx != prev and idx != 0:
                chars.append(self.charset[idx])
                confs.append(p)
            prev = idx
        folded = fold_to_plate_alphabet(probs, self._fold_columns, self._fold)
        return LineReading("".join(chars), float(np.mean(confs)) if confs else 0.0, folded, step_px)
