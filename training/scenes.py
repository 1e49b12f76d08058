"""Training patches for the plate detector: frames of the train part and street-like backgrounds with plates
pasted in at known boxes, and print that is not a plate (signs, stickers, badges) pasted beside them."""

from __future__ import annotations

import random

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edge_agent.bench import seen_from_the_side
from edge_agent.recognise.crops import DETECTOR_STRIDE
from training import augment, fonts, render
from training.data import Sample

PATCH = (192, 320)  # height, width of a training patch (multiples of 32)
WORDS = ("STOP", "ONE WAY", "SALE", "OPEN", "PIZZA", "TOYOTA", "HONDA", "CAMRY", "ACCORD", "F-150", "4X4",
         "HYBRID", "EXIT 12", "SPEED LIMIT 35", "NO PARKING", "TAXI", "UBER", "BUS 1042", "MAIN ST",
         "CALL 555-0199", "COEXIST", "BABY ON BOARD", "2024", "LIVE FREE", "SCHOOL", "POLICE", "FIRE")


def _paste(canvas: np.ndarray, patch: np.ndarray, quad: np.ndarray) -> None:
    h, w = patch.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    m = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    ch, cw = canvas.shape[:2]
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(cw, x1 + 1), min(ch, y1 + 1)
    if x1 <= x0 or y1 <= y0:
        return
    shift = np.float32([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]])
    m = shift @ m
    warped = cv2.warpPerspective(patch, m, (x1 - x0, y1 - y0), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, (x1 - x0, y1 - y0))
    region = canvas[y0:y1, x0:x1]
    region[mask > 127] = warped[mask > 127]


def _quad(rng: random.Random, cx: float, cy: float, w: float, h: float) -> np.ndarray:
    q = np.float32([[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2], [cx + w / 2, cy + h / 2], [cx - w / 2, cy + h / 2]])
    q += np.float32([[rng.gauss(0, 0.04 * w), rng.gauss(0, 0.04 * h)] for _ in range(4)])
    q[[1, 2], 1] += rng.gauss(0, 0.06) * h * 2
    return q


def _sign(rng: random.Random) -> np.ndarray:
    text = rng.choice(WORDS)
    font = ImageFont.truetype(str(rng.choice(fonts.available(fonts.PLATE_FONTS + fonts.LABEL_FONTS))), rng.randint(14, 40))
    field = tuple(rng.randint(0, 255) for _ in range(3))
    ink = tuple(255 - c for c in field) if rng.random() < 0.7 else tuple(rng.randint(0, 255) for _ in range(3))
    probe = ImageDraw.Draw(Image.new("RGB", (4, 4)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), text, font=font)
    pad = rng.randint(2, 12)
    image = Image.new("RGB", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), field)
    ImageDraw.Draw(image).text((pad - x0, pad - y0), text, fill=ink, font=font)
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)


def _plate_patch(rng: random.Random, crops: list[Sample]) -> np.ndarray:
    if crops and rng.random() < 0.4:
        return rng.choice(crops).image
    plate, _, _ = render.render(rng, width=rng.choice([160, 240]))
    return plate


def side_view(rng: random.Random) -> tuple[float, float]:
    """How a camera turned to the side (parked cars to the right or left) sees a plate: the turn of the
    plate's face away from it (25-65 degrees) and the slope of its level lines (within 12 degrees)."""
    return rng.uniform(25, 65), rng.uniform(-12, 12)


def detector_patch(rng: random.Random, frames: list[Sample], crops: list[Sample], side_share: float = 0.0):
    """(patch H x W x 3 BGR, boxes [(x, y, w, h)] in patch pixels). `side_share` of the frames and pasted plates
    are seen from the side (`side_view`)."""
    ph, pw = PATCH
    boxes: list[tuple[float, float, float, float]] = []
    kind = rng.random()
    if frames and kind < 0.65:
        s = rng.choice(frames)
        # the frame at about the detector's scale (1280 -> 640), a little nearer or farther
        scale = 0.5 * rng.uniform(0.6, 1.7)
        image = cv2.resize(s.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas_boxes = [tuple(v * scale for v in s.box)]
        if side_share and rng.random() < side_share:
            image, canvas_boxes = seen_from_the_side(image, *side_view(rng), boxes=canvas_boxes)
        x, y, w, h = canvas_boxes[0]
        ih, iw = image.shape[:2]
        if rng.random() < 0.75:  # a patch with the plate in it
            cx0 = rng.uniform(max(0, x + w - pw), max(0, min(iw - pw, x))) if iw > pw else 0
            cy0 = rng.uniform(max(0, y + h - ph), max(0, min(ih - ph, y))) if ih > ph else 0
        else:
            cx0, cy0 = rng.uniform(0, max(0, iw - pw)), rng.uniform(0, max(0, ih - ph))
        cx0, cy0 = int(cx0), int(cy0)
        canvas = np.zeros((ph, pw, 3), np.uint8)
        view = image[cy0:cy0 + ph, cx0:cx0 + pw]
        canvas[:view.shape[0], :view.shape[1]] = view
        boxes = [(bx - cx0, by - cy0, bw, bh) for bx, by, bw, bh in canvas_boxes]
    else:
        bg_frames = [f.image for f in frames]
        canvas = augment.backgrounds(bg_frames, rng, pw, ph)
    # pasted plates, at the sizes plates have in a 640-wide frame (and larger: a plate crop given whole)
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
        plate = _plate_patch(rng, crops)
        w = rng.uniform(18, 70) if rng.random() < 0.8 else rng.uniform(70, 300)
        h = w * plate.shape[0] / plate.shape[1] * rng.uniform(0.85, 1.15)
        cx, cy = rng.uniform(0, pw), rng.uniform(0, ph)
        q = _quad(rng, cx, cy, w, h)
        if side_share and rng.random() < side_share:
            yaw, slant = side_view(rng)
            q[:, 0] = cx + (q[:, 0] - cx) * np.cos(np.deg2rad(yaw))
            q[:, 1] += np.tan(np.deg2rad(slant)) * (q[:, 0] - cx)
        if any(_overlap(b, q) for b in boxes):
            continue
        _paste(canvas, plate, q)
        x0, y0 = q.min(axis=0)
        x1, y1 = q.max(axis=0)
        boxes.append((float(x0), float(y0), float(x1 - x0), float(y1 - y0)))
    for _ in range(rng.choice([0, 1, 2, 3])):  # print that is not a plate
        sign = _sign(rng)
        w = rng.uniform(15, 160)
        h = w * sign.shape[0] / sign.shape[1]
        q = _quad(rng, rng.uniform(0, pw), rng.uniform(0, ph), w, h)
        if any(_overlap(b, q) for b in boxes):
            continue
        _paste(canvas, sign, q)
    canvas = augment.photometric(canvas, rng)
    keep = []
    for x, y, w, h in boxes:
        cx, cy = x + w / 2, y + h / 2
        if 0 <= cx < pw and 0 <= cy < ph and w >= 6:
            keep.append((x, y, w, h))
    return canvas, keep


def _overlap(box, quad) -> bool:
    x, y, w, h = box
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    return not (x1 < x - 4 or x0 > x + w + 4 or y1 < y - 4 or y0 > y + h + 4)


def targets(boxes, shape=PATCH, stride: int = DETECTOR_STRIDE):
    """CenterNet targets on the stride grid: heat (gaussian at each centre), and at each centre cell the
    offset within the cell and the log width and height in cells; mask of those cells."""
    gh, gw = shape[0] // stride, shape[1] // stride
    heat = np.zeros((gh, gw), np.float32)
    reg = np.zeros((4, gh, gw), np.float32)
    mask = np.zeros((gh, gw), np.float32)
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    for x, y, w, h in boxes:
        cx, cy = (x + w / 2) / stride, (y + h / 2) / stride
        ix, iy = min(gw - 1, int(cx)), min(gh - 1, int(cy))
        sx, sy = max(0.5, w / stride / 6), max(0.5, h / stride / 6)
        g = np.exp(-((xx - cx + 0.5) ** 2 / (2 * sx * sx) + (yy - cy + 0.5) ** 2 / (2 * sy * sy)))
        heat = np.maximum(heat, g)
        heat[iy, ix] = 1.0
        reg[:, iy, ix] = (cx - ix, cy - iy, np.log(w / stride), np.log(h / stride))
        mask[iy, ix] = 1.0
    return heat, reg, mask
