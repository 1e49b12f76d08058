"""Which part of a frame is worth reading, and whether the frame is worth reading at all.

A region gate keeps recognition to the part of the picture where plates pass
(not the hood, not the sky): the frame is sliced, never copied, and boxes are
moved back to frame pixels afterwards. A motion gate skips frames in which
nothing has moved since the last one read: a parked car facing an empty road
spends no CPU on it. A moving patrol car sees motion everywhere, so the gate
costs it one small difference image a frame and skips nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import cv2
import numpy as np

from edge_agent.records import PlateReading


@dataclass(frozen=True)
class Region:
    """A rectangle as fractions of the frame (0..1): left, top, right, bottom."""

    left: float = 0.0
    top: float = 0.0
    right: float = 1.0
    bottom: float = 1.0

    @property
    def whole(self) -> bool:
        return (self.left, self.top, self.right, self.bottom) == (0.0, 0.0, 1.0, 1.0)

    def pixels(self, height: int, width: int) -> tuple[int, int, int, int]:
        x0, y0 = int(self.left * width), int(self.top * height)
        x1, y1 = max(x0 + 1, int(round(self.right * width))), max(y0 + 1, int(round(self.bottom * height)))
        return x0, y0, x1, y1

    def view(self, image: np.ndarray) -> tuple[np.ndarray, int, int]:
        """The region of `image` (a view) and its offset in the frame."""
        if self.whole:
            return image, 0, 0
        x0, y0, x1, y1 = self.pixels(*image.shape[:2])
        return image[y0:y1, x0:x1], x0, y0


def read_in(region: Region, read: Callable[[np.ndarray], list[PlateReading]], image: np.ndarray) -> list[PlateReading]:
    """`read` over the region of `image`, with boxes in frame pixels."""
    view, dx, dy = region.view(image)
    return moved_to_frame(read(view), dx, dy)


def moved_to_frame(readings: list[PlateReading], dx: int, dy: int) -> list[PlateReading]:
    if not dx and not dy:
        return readings
    return [replace(r, box=(r.box[0] + dx, r.box[1] + dy, r.box[2], r.box[3])) for r in readings]


class MotionGate:
    """Says whether a frame differs enough from the last frame read to be worth reading."""

    SIZE = (160, 90)  # small enough to cost well under a millisecond, big enough to see a plate-sized change

    def __init__(self, min_changed: float = 0.002, pixel_delta: int = 18, keyframe_s: float = 2.0):
        self.min_changed = min_changed  # share of the small picture's pixels that must change
        self.pixel_delta = pixel_delta
        self.keyframe_s = keyframe_s  # read a frame at least this often even when nothing moves
        self._last: dict[str, tuple[np.ndarray, float]] = {}
        self.skipped = 0

    def should_read(self, camera_id: str, image: np.ndarray, at: float) -> bool:
        small = cv2.resize(image, self.SIZE, interpolation=cv2.INTER_AREA)
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        small = cv2.GaussianBlur(small, (3, 3), 0)  # sensor noise is not motion
        previous = self._last.get(camera_id)
        if previous is not None and at - previous[1] < self.keyframe_s:
            changed = np.count_nonzero(cv2.absdiff(small, previous[0]) > self.pixel_delta) / small.size
            if changed < self.min_changed:
                self.skipped += 1
                return False
        self._last[camera_id] = (small, at)
        return True
