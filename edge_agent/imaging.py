"""Small image helpers shared by capture, recognition and storage."""

from __future__ import annotations

import cv2
import numpy as np


def as_bgr8(image: np.ndarray) -> np.ndarray:
    """3-channel 8-bit BGR from grey, BGRA or 16-bit images; returns the frame itself (no copy) when it already is."""
    if image.dtype != np.uint8:
        if image.dtype.kind in "ui":
            image = (image.astype(np.float32) * (255.0 / np.iinfo(image.dtype).max)).astype(np.uint8)
        else:
            image = (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def encode_jpeg(image: np.ndarray, quality: int = 85, max_side: int = 0) -> bytes:
    if max_side and max(image.shape[:2]) > max_side:
        scale = max_side / max(image.shape[:2])
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else b""


def crop_box(image: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.15) -> np.ndarray:
    """The plate's box with a margin, clipped to the image (a view, not a copy)."""
    x, y, w, h = box
    mx, my = int(w * margin), int(h * margin)
    x0, y0 = max(0, x - mx), max(0, y - my)
    x1, y1 = min(image.shape[1], x + w + mx), min(image.shape[0], y + h + my)
    return image[y0:y1, x0:x1]


def mask_boxes(image: np.ndarray, boxes: list[tuple[int, int, int, int]], margin: float = 0.25) -> np.ndarray:
    """A copy of the image with each box (and a margin) pixelated past reading: other vehicles' plates in a
    public release."""
    out = image.copy()
    for box in boxes:
        region = crop_box(out, box, margin)
        if region.size:
            small = cv2.resize(region, (max(1, region.shape[1] // 12), max(1, region.shape[0] // 12)),
                               interpolation=cv2.INTER_AREA)
            region[:] = cv2.resize(small, (region.shape[1], region.shape[0]), interpolation=cv2.INTER_NEAREST)
    return out


def boxed(image: np.ndarray, readings, region=None) -> np.ndarray:
    """A copy of the frame with each plate's box and reading drawn, and the region read outlined: what a
    technician aims a camera by."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    thick = max(2, out.shape[1] // 400)
    if region is not None and not region.whole:
        x0, y0, x1, y1 = region.pixels(*out.shape[:2])
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (255, 200, 0), thick)
    for r in readings:
        x, y, w, h = r.box
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 255, 0), thick)
        label = f"{r.text} {r.confidence:.2f}"
        scale = max(0.6, out.shape[1] / 1600)
        cv2.putText(out, label, (x, max(20, y - 8)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2)
        cv2.putText(out, label, (x, max(20, y - 8)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 0), thick)
    return out
