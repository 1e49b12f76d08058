"""What the plate models see: the one definition of their inputs, used by the agent and by training alike.

Pure functions over numpy arrays. A change here changes what the committed models were trained on: retrain.
"""

from __future__ import annotations

import cv2
import numpy as np

# The reader sees a plate box, widened by READER_MARGIN of its width and height on each side (a detector's
# box clips the first or last character now and then), as a colour READER_SIZE (height, width) strip: the
# colours tell the issuing state's design apart where its printed name is a few pixels tall.
READER_SIZE = (48, 128)
READER_CHANNELS = 3  # RGB
READER_MARGIN = (0.06, 0.12)
# The text reader (a PP-OCR recogniser fine-tuned on plates) sees the same window as a BGR TEXT_READER_SIZE strip.
TEXT_READER_SIZE = (48, 160)
# The detector sees the frame letterboxed into DETECTOR_SIZE (height, width); a frame of another shape is
# scaled to fit and padded on the right and bottom.
DETECTOR_SIZE = (384, 640)
DETECTOR_STRIDE = 8


def reader_window(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The part of the image (x, y, width, height) the reader sees for a plate box."""
    x, y, w, h = box
    mx, my = READER_MARGIN[0] * w, READER_MARGIN[1] * h
    return x - mx, y - my, w + 2 * mx, h + 2 * my


def _window_strip(image: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray | None:
    """The reader's window of the box scaled to `size` (height, width), BGR (or grey) float32; parts of the
    window outside the image repeat its edge. None where the window misses the image."""
    x, y, w, h = reader_window(box)
    height, width = image.shape[:2]
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = max(x0 + 2, int(np.ceil(x + w))), max(y0 + 2, int(np.ceil(y + h)))
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    view = image[cy0:cy1, cx0:cx1]
    if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
        view = cv2.copyMakeBorder(view, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE)
    out_h, out_w = size
    shrink = view.shape[1] > out_w or view.shape[0] > out_h
    strip = cv2.resize(view, (out_w, out_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return strip.astype(np.float32)


def reader_input(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(3, H, W) float32 RGB strip of the plate box, every channel normalised by the strip's grey mean and
    spread (night infrared and daylight alike; a grey image gives three equal channels)."""
    strip = _window_strip(image, box, READER_SIZE)
    if strip is None:
        return np.zeros((READER_CHANNELS, *READER_SIZE), np.float32)
    if strip.ndim == 2:
        strip = np.repeat(strip[..., np.newaxis], 3, axis=2)
    else:
        strip = strip[..., ::-1]  # BGR -> RGB
    grey = strip @ np.float32([0.299, 0.587, 0.114])
    return ((strip - grey.mean()) * (1.0 / (grey.std() + 8.0))).transpose(2, 0, 1)


def text_reader_input(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(3, 48, 160) float32 of the plate box as the PP-OCR recogniser family takes text: BGR scaled to -1..1.
    The window is stretched to the input (a plate is about 2:1) so that its characters get 20 CTC steps."""
    strip = _window_strip(image, box, TEXT_READER_SIZE)
    if strip is None:
        return np.zeros((3, *TEXT_READER_SIZE), np.float32)
    if strip.ndim == 2:
        strip = np.repeat(strip[..., np.newaxis], 3, axis=2)
    return (strip * (2.0 / 255.0) - 1.0).transpose(2, 0, 1)


def detector_input(image: np.ndarray) -> tuple[np.ndarray, float]:
    """(1, 3, H, W) float32 RGB 0..1 of the frame letterboxed into DETECTOR_SIZE, and the scale applied."""
    out_h, out_w = DETECTOR_SIZE
    height, width = image.shape[:2]
    scale = min(out_w / width, out_h / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    canvas = np.zeros((out_h, out_w, 3), np.float32)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if resized.ndim == 2:
        resized = cv2.cvtColor(resized, cv2.COLOR_GRAY2BGR)
    canvas[:new_h, :new_w] = resized[..., ::-1]
    canvas *= 1.0 / 255.0
    return canvas.transpose(2, 0, 1)[np.newaxis], scale
