"""Small characters stacked two high beside a plate's number (plate-type and county codes).

Many states print a code such as "PC", "MC" or "HH" as two small letters, one
above the other, at one end of the number. The text detector takes them into
the number's line, and the recogniser reads the pair as one character
("PC" + 197659 read as E197659). They are not part of the plate number, so
the reader finds them in the line's strip and reads their steps as blank.
"""

from __future__ import annotations

import cv2
import numpy as np

# A full-height character of the line: at least this share of the strip's height.
MAIN_MIN_HEIGHT = 0.45
# Each of a stacked pair is this share of the line's character height. A full-height character
# that binarising broke in two (glare, a thin waist like an 8's) gives parts of unequal height,
# parts that touch or thin slivers, which the ratio, the gap and the width rule out.
STACK_MIN_HEIGHT, STACK_MAX_HEIGHT = 0.2, 0.6
STACK_HEIGHT_RATIO = 0.7  # the shorter of the two is at least this share of the taller
STACK_MIN_WIDTH = 0.25  # of the character height, the pair's width
STACK_MIN_GAP = 0.06  # of the character height, between the upper and the lower character
STACK_ALIGN = 0.2  # of the character height: the pair spans the line's characters, top to bottom


Box = tuple[int, int, int, int, int]  # x, y, width, height, ink pixels


def _components(ink: np.ndarray) -> list[Box]:
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    return [tuple(int(v) for v in stats[i]) for i in range(1, count)]  # type: ignore[misc]


def _is_main_character(box: Box, strip_height: int) -> bool:
    _, y, w, h, area = box
    # not the plate's edge or frame, which run the strip's whole height or are long and thin
    return (h >= MAIN_MIN_HEIGHT * strip_height and y > 0 and y + h < strip_height
            and 0.2 * h <= w <= 1.2 * h and area >= 0.15 * w * h)


def stacked_pairs(strip: np.ndarray) -> list[tuple[int, int]]:
    """x ranges (strip pixels) of pairs of small characters printed one above the other beside
    the line's full-height characters."""
    grey = cv2.cvtColor(strip, cv2.COLOR_BGR2GRAY) if strip.ndim == 3 else strip
    height = grey.shape[0]
    _, dark = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    # dark characters on a light plate or light on dark: the reading with more characters of the line's height
    readings = []
    for ink in (dark, 1 - dark):
        boxes = _components(ink)
        readings.append((boxes, [b for b in boxes if _is_main_character(b, height)]))
    boxes, main = max(readings, key=lambda reading: len(reading[1]))
    # the holes of an 8 or a B are a stacked pair in the other reading, inside a full-height character
    enclosing = readings[0][1] + readings[1][1]
    if len(main) < 2:
        return []
    top = float(np.median([b[1] for b in main]))
    bottom = float(np.median([b[1] + b[3] for b in main]))
    size = bottom - top
    small = [b for b in boxes
             if STACK_MIN_HEIGHT * size <= b[3] <= STACK_MAX_HEIGHT * size and b[2] <= 1.5 * b[3] and b[4] >= 8]
    pairs = []
    for upper in small:
        if abs(upper[1] - top) > STACK_ALIGN * size:
            continue
        for lower in small:
            if abs(lower[1] + lower[3] - bottom) > STACK_ALIGN * size \
                    or lower[1] - (upper[1] + upper[3]) < STACK_MIN_GAP * size \
                    or min(upper[3], lower[3]) < STACK_HEIGHT_RATIO * max(upper[3], lower[3]):
                continue
            overlap = min(upper[0] + upper[2], lower[0] + lower[2]) - max(upper[0], lower[0])
            if overlap < 0.5 * min(upper[2], lower[2]):
                continue
            x0, x1 = min(upper[0], lower[0]), max(upper[0] + upper[2], lower[0] + lower[2])
            if x1 - x0 < STACK_MIN_WIDTH * size or any(b[0] < (x0 + x1) / 2 < b[0] + b[2] for b in enclosing):
                continue  # slivers of a broken stroke, or parts of a full-height character
            pairs.append((x0, x1))
    return pairs
