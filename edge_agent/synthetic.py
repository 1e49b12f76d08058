"""Synthetic plates, scenes and drive-by clips for the demo and the tests (nothing from outside is needed)."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
)


def _font(size: int):
    from PIL import ImageFont

    for path in FONT_PATHS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return None


def render_plate(text: str, state: str = "California", width: int = 360) -> np.ndarray:
    """A US-style plate: white field, dark border, state name in red above, characters in dark blue."""
    height = width // 2
    from PIL import Image, ImageDraw

    plate = Image.new("RGB", (width, height), (245, 245, 240))
    draw = ImageDraw.Draw(plate)
    draw.rectangle([2, 2, width - 3, height - 3], outline=(40, 40, 60), width=max(2, width // 90))
    state_font = _font(height // 6)
    char_font = _font(int(height * 0.5))
    if char_font is None:  # no TrueType font on this machine: OpenCV's built-in stroke font
        image = cv2.cvtColor(np.asarray(plate), cv2.COLOR_RGB2BGR)
        cv2.putText(image, state, (width // 4, height // 5), cv2.FONT_HERSHEY_SIMPLEX, height / 180, (30, 30, 200), 2)
        scale = height / 75
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 3)
        cv2.putText(image, text, ((width - tw) // 2, (height + th) // 2 + height // 12), cv2.FONT_HERSHEY_DUPLEX,
                    scale, (90, 30, 20), 3)
        return image
    sw = draw.textlength(state, font=state_font)
    draw.text(((width - sw) / 2, height * 0.06), state, fill=(200, 30, 30), font=state_font)
    cw = draw.textlength(text, font=char_font)
    if cw > width * 0.9:
        char_font = _font(int(height * 0.5 * width * 0.9 / cw))
        cw = draw.textlength(text, font=char_font)
    draw.text(((width - cw) / 2, height * 0.28), text, fill=(20, 30, 90), font=char_font)
    return cv2.cvtColor(np.asarray(plate), cv2.COLOR_RGB2BGR)


def render_scene(plates: list[tuple[str, str]], size: tuple[int, int] = (1280, 720), seed: int = 0,
                 plate_width: int = 200) -> np.ndarray:
    """A still street scene with one car per plate, side by side."""
    rng = np.random.default_rng(seed)
    w, h = size
    scene = _background(w, h, rng)
    slot = w // max(1, len(plates))
    for i, (text, state) in enumerate(plates):
        cx = slot * i + slot // 2
        _draw_car(scene, cx, int(h * 0.62), plate_width, text, state, _car_colour(rng))
    return scene


def _background(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    scene = np.empty((h, w, 3), dtype=np.uint8)
    scene[: h // 2] = (200, 170, 140)  # sky
    scene[h // 2 :] = (90, 90, 95)  # road
    noise = rng.integers(-12, 12, size=(h, w, 1), dtype=np.int16)
    return np.clip(scene.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _car_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(30, 220, size=3))


def _draw_car(scene: np.ndarray, cx: int, cy: int, plate_width: int, text: str, state: str,
              colour: tuple[int, int, int]) -> None:
    body_w, body_h = int(plate_width * 3.2), int(plate_width * 1.6)
    x0, y0 = cx - body_w // 2, cy - body_h // 2
    cv2.rectangle(scene, (x0, y0), (x0 + body_w, y0 + body_h), colour, -1)
    cv2.rectangle(scene, (x0 + body_w // 8, y0 - body_h // 3), (x0 + body_w * 7 // 8, y0), tuple(c // 2 for c in colour), -1)
    plate = render_plate(text, state, plate_width)
    ph, pw = plate.shape[:2]
    px, py = cx - pw // 2, cy + body_h // 8
    _paste(scene, plate, px, py)


def _paste(scene: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    h, w = scene.shape[:2]
    ph, pw = patch.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + pw), min(h, y + ph)
    if x1 > x0 and y1 > y0:
        scene[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]


@dataclass(frozen=True)
class DriveBy:
    path: Path
    plates: list[str]
    frames: int


def render_drive_by(path: Path, plates: list[str], fps: int = 10, frames_per_car: int = 14,
                    size: tuple[int, int] = (1280, 720), seed: int = 7) -> DriveBy:
    """A clip of cars passing the camera one after another, each plate growing as the car approaches."""
    rng = np.random.default_rng(seed)
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    background = _background(w, h, rng)
    count = 0
    for text in plates:
        colour = _car_colour(rng)
        for step in range(frames_per_car):
            progress = step / max(1, frames_per_car - 1)
            frame = background.copy()
            plate_width = int(150 + 110 * progress)
            cx = int(w * (0.25 + 0.5 * progress))
            _draw_car(frame, cx, int(h * 0.55 + h * 0.1 * progress), plate_width, text, "California", colour)
            writer.write(frame)
            count += 1
        for _ in range(3):  # empty road between cars
            writer.write(background)
            count += 1
    writer.release()
    return DriveBy(path, plates, count)


def random_plate(rng: random.Random) -> str:
    """A California-format plate: digit, three letters, three digits."""
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"  # I, O and Q are not issued
    return f"{rng.randint(1, 9)}{''.join(rng.choice(letters) for _ in range(3))}{rng.randint(0, 999):03d}"


HOTLIST_HEADER = ["LIC", "LIS", "LIY", "LIT", "VMA", "VYR", "VCO", "NIC", "ORI", "OCA", "DOE", "EXP", "LIST", "MIS"]


def write_hotlist(path: Path, listed: dict[str, str], others: int = 200, seed: int = 3) -> Path:
    """A synthetic DOJ-layout hotlist: the `listed` plates (plate -> list) plus random filler entries."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [(plate, list_name) for plate, list_name in listed.items()]
    lists = ["STOLEN_VEHICLE", "STOLEN_PLATE", "FELONY_VEHICLE", "WANTED_PERSON"]
    rows += [(random_plate(rng), rng.choice(lists)) for _ in range(others)]
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HOTLIST_HEADER)
        for i, (plate, list_name) in enumerate(rows):
            out.writerow([plate, "CA", "2027", "PC", "HOND", "2015", "SIL", f"S{100000000 + i}", "CA0000000",
                          f"26-{i:06d}", "20260101", "", list_name, "SYNTHETIC DEMO RECORD"])
    return path


class SyntheticReads:
    """Reads as the agent stores them, with real JPEGs of rendered plates and scenes, for tests and benchmarks.

    A few plate and scene images are rendered and encoded once and shared between reads, so that making
    100,000 reads costs seconds; every read has its own UUID, plate text and time.
    """

    def __init__(self, seed: int = 0, scene: bool = False, variants: int = 16):
        from edge_agent.imaging import encode_jpeg

        self.rng = random.Random(seed)
        plates = [random_plate(self.rng) for _ in range(variants)]
        self.plate_jpegs = [encode_jpeg(render_plate(p, width=240)) for p in plates]
        self.scene_jpegs = [encode_jpeg(render_scene([(p, "California")], seed=i), 85)
                            for i, p in enumerate(plates[:4])] if scene else []

    def make(self, n: int, hits_every: int = 0, start=None, step_s: float = 1.0) -> "list":
        import uuid as uuidlib
        from datetime import datetime, timedelta, timezone

        from edge_agent.records import Candidate, Hit, PlateReading, Read

        start = start or datetime.now(timezone.utc)
        reads = []
        for i in range(n):
            text = random_plate(self.rng)
            hits = [Hit(text, "CA", "STOLEN_VEHICLE", "exact", "V123456789")] if hits_every and i % hits_every == 0 else []
            reading = PlateReading(text, 0.93, (410, 380, 160, 52), (Candidate(text, 0.93), Candidate(text[:-1] + "8", 0.41)),
                                   "CA", 0.8)
            reads.append(Read(str(uuidlib.uuid4()), start + timedelta(seconds=i * step_s), "front", reading,
                              self.plate_jpegs[i % len(self.plate_jpegs)],
                              self.scene_jpegs[i % len(self.scene_jpegs)] if self.scene_jpegs else b"", hits))
        return reads
