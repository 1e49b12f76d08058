"""Real plates with their characters rearranged: new plates in the real fonts, paint, dirt and light of the
train part, so that the reader learns characters and not the few hundred plates it has seen.

Where each character stands comes from the committed reader's CTC path over the train part (each emitted
character's step, in the picture's columns); plates it does not read exactly are left as they are. A
rearranged plate is its columns between the first and the last character cut at the midpoints between
characters and put back in another order (or with characters repeated), over the whole height: the state's
name above the number is cut too, so such a plate teaches the characters and not the state.
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np

from edge_agent.recognise.crops import READER_SIZE, reader_input, reader_window
from edge_agent.recognise.runtime import PLATE_ALPHABET
from training.data import Sample

DEFAULT_READER = Path(__file__).resolve().parent.parent / "edge_agent" / "models" / "plate-reader.onnx"


def char_centres(samples: list[Sample], reader: Path = DEFAULT_READER) -> dict[str, list[float]]:
    """{sample name: each character's centre column in its picture} for the plates the reader reads exactly."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(reader), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out: dict[str, list[float]] = {}
    step_px = READER_SIZE[1] / 32
    for i in range(0, len(samples), 64):
        batch = samples[i:i + 64]
        chars = session.run(None, {name: np.stack([reader_input(s.image, s.box) for s in batch])})[0]
        for s, steps in zip(batch, chars.argmax(-1)):
            text, where, prev = [], [], 0
            for k, c in enumerate(steps):
                if c != prev and c != 0:
                    text.append(PLATE_ALPHABET[c - 1])
                    where.append(k)
                prev = c
            if "".join(text) != s.plate or len(where) < 2:
                continue
            wx, _, ww, _ = reader_window(s.box)
            out[s.name] = [wx + (k + 0.5) * step_px * ww / READER_SIZE[1] for k in where]
    return out


def rearranged(s: Sample, centres: list[float], rng: random.Random) -> tuple[np.ndarray, tuple, str]:
    """(picture, the plate's box in it, its new text): the plate's characters in another order, or some
    repeated in place of others."""
    x, y, w, h = s.box
    pad_x, pad_y = 0.4 * w, 0.6 * h
    x0, y0 = int(max(0, x - pad_x)), int(max(0, y - pad_y))
    x1, y1 = int(min(s.image.shape[1], x + w + pad_x)), int(min(s.image.shape[0], y + h + pad_y))
    region = s.image[y0:y1, x0:x1].copy()
    edges = cut_columns(region, (x - x0, y - y0, w, h), [c - x0 for c in centres])
    n = len(centres)
    order = rng.sample(range(n), n) if rng.random() < 0.6 else [rng.randrange(n) for _ in range(n)]
    pieces = [region[:, edges[j]:edges[j + 1]] for j in order if edges[j + 1] > edges[j]]
    left, right = edges[0], edges[-1]
    if len(pieces) == n and right - left >= n:
        band = np.concatenate(pieces, axis=1)
        region[:, left:right] = cv2.resize(band, (right - left, region.shape[0]), interpolation=cv2.INTER_AREA)
        text = "".join(s.plate[j] for j in order)
    else:  # a character narrower than a column: the plate as it is
        text = s.plate
    return region, (x - x0, y - y0, w, h), text


def cut_columns(region: np.ndarray, box, centres: list[float]) -> np.ndarray:
    """Where to cut between characters: in each gap between two centres (and beyond the first and the last),
    the column with the least ink in the characters' band, ink being a pixel's distance from the band's
    median: cuts through a wide W or M at the midpoint would split it."""
    x, y, w, h = box
    band = region[int(max(0, y + 0.25 * h)):int(max(y + 0.25 * h + 1, y + 0.8 * h))]
    grey = cv2.cvtColor(band, cv2.COLOR_BGR2GRAY).astype(np.float32) if band.ndim == 3 else band.astype(np.float32)
    ink = np.abs(grey - np.median(grey)).sum(axis=0)
    c = np.asarray(centres, np.float64)
    d = float(np.median(np.diff(c)))
    spans = [(c[0] - 0.65 * d, c[0] - 0.3 * d)] + [(a + 0.25 * (b - a), b - 0.25 * (b - a)) for a, b in zip(c[:-1], c[1:])] \
        + [(c[-1] + 0.3 * d, c[-1] + 0.65 * d)]
    out = []
    for lo, hi in spans:
        lo_i, hi_i = int(np.clip(np.floor(lo), 0, len(ink) - 1)), int(np.clip(np.ceil(hi), 0, len(ink) - 1))
        out.append(lo_i + int(np.argmin(ink[lo_i:hi_i + 1])) if hi_i > lo_i else lo_i)
    return np.maximum.accumulate(np.asarray(out))
