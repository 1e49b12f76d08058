"""Training samples for the reader: a plate (synthetic, a real crop or a real frame's plate) seen as the agent
would see it through a detector's box, in any light and any weather a patrol camera meets."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np

from edge_agent.recognise.crops import reader_input, reader_window
from training import data, render
from training.data import Sample


def backgrounds(frames: list[np.ndarray], rng: random.Random, w: int, h: int) -> np.ndarray:
    """A w x h background: a patch of a real frame, or noise and colour."""
    if frames and rng.random() < 0.6:
        frame = rng.choice(frames)
        fh, fw = frame.shape[:2]
        scale = rng.uniform(0.3, 1.2)
        pw, ph = min(fw, int(w / scale)), min(fh, int(h / scale))
        x, y = rng.randint(0, fw - pw), rng.randint(0, fh - ph)
        return cv2.resize(frame[y:y + ph, x:x + pw], (w, h))
    colour = np.array([rng.randint(0, 255) for _ in range(3)], np.float32)
    nprng = np.random.default_rng(rng.randint(0, 2**31))
    noise = cv2.resize(nprng.normal(0, rng.uniform(5, 40), (max(2, h // 8), max(2, w // 8), 3)).astype(np.float32), (w, h))
    return (colour + noise).clip(0, 255).astype(np.uint8)


def synthetic_scene(rng: random.Random, frames: list[np.ndarray], plate_width: int | None = None,
                    die_look: float = 0.0):
    """A rendered plate warped onto a background: (image, plate box, serial, state)."""
    plate, serial, state = render.render(rng, width=rng.choice([200, 240, 300]), die_look=die_look)
    ph, pw = plate.shape[:2]
    target_w = plate_width or rng.randint(60, 260)
    s = target_w / pw
    cw, ch = int(target_w * rng.uniform(1.5, 2.2)), int(ph * s * rng.uniform(2.0, 3.0))
    canvas = backgrounds(frames, rng, cw, ch)
    x0, y0 = rng.uniform(0.1, 0.9) * (cw - target_w), rng.uniform(0.1, 0.9) * (ch - ph * s)
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    jitter = 0.08 * target_w
    dst = np.float32([[x0, y0], [x0 + target_w, y0], [x0 + target_w, y0 + ph * s], [x0, y0 + ph * s]])
    dst += np.float32([[rng.gauss(0, jitter * 0.5), rng.gauss(0, jitter * 0.3)] for _ in range(4)])
    shear = rng.gauss(0, 0.08) * ph * s  # the camera looks at plates from the side and from above
    dst[[1, 2], 1] += shear
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(plate, matrix, (cw, ch), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), matrix, (cw, ch))
    canvas = np.where(mask[..., None] > 127, warped, canvas)
    bx0, by0 = dst.min(axis=0)
    bx1, by1 = dst.max(axis=0)
    return canvas, (float(bx0), float(by0), float(bx1 - bx0), float(by1 - by0)), serial, state


def photometric(region: np.ndarray, rng: random.Random, longest_streak: int = 9) -> np.ndarray:
    """Light, optics and encoding: colour or night infrared, contrast, blur, motion blur (streaks of 3 to
    `longest_streak` px), noise, glare, JPEG."""
    img = region.astype(np.float32)
    if rng.random() < 0.25:  # grey-scale infrared look: plates bright, paint dark, low contrast
        weights = np.array([rng.uniform(0.0, 0.3), rng.uniform(0.1, 0.5), rng.uniform(0.4, 1.0)], np.float32)
        grey = img @ (weights / weights.sum())
        img = np.repeat(grey[..., None], 3, axis=2)
    else:
        img = img * np.float32([rng.uniform(0.7, 1.3) for _ in range(3)])
    a, b = rng.uniform(0.5, 1.4), rng.uniform(-60, 60)
    img = img * a + b
    if rng.random() < 0.15:  # glare or a shadow across the plate
        h, w = img.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.2, 0.8) * w
        spot = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        img = img + spot[..., None] * rng.uniform(-120, 160)
    img = img.clip(0, 255)
    if rng.random() < 0.3:
        gamma = rng.uniform(0.6, 1.6)
        img = 255.0 * (img / 255.0) ** gamma
    out = img.astype(np.uint8)
    r = rng.random()
    if r < 0.25:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.6))
    elif r < 0.4:  # motion blur along the road
        k = rng.randint(3, max(3, longest_streak))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        angle = rng.uniform(-20, 20)
        kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), angle, 1.0), (k, k))
        out = cv2.filter2D(out, -1, kernel / max(kernel.sum(), 1e-6))
    if rng.random() < 0.5:
        sigma = rng.uniform(2, 14)
        noise = np.random.default_rng(rng.randint(0, 2**31)).normal(0, sigma, out.shape)
        out = (out + noise).clip(0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(15, 90)])
        out = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    return out


def jitter_box(box, rng: random.Random, amount: float = 0.06):
    """A detector's box for the plate: each edge off by a little."""
    x, y, w, h = box
    left, right = rng.gauss(0, amount) * w, rng.gauss(0, amount) * w
    top, bottom = rng.gauss(0, amount * 1.5) * h, rng.gauss(0, amount * 1.5) * h
    return x + left, y + top, max(4.0, w - left + right), max(3.0, h - top + bottom)


def reader_sample(image: np.ndarray, box, rng: random.Random, width_range=(36, 220), to_input=reader_input,
                  streak: float = 0.0) -> np.ndarray:
    """The reader's (1, H, W) input for the plate at `box`, through a jittered box, at a random size,
    after `photometric`; with `streak`, its motion blur streaks up to that share of the plate's width (else
    3-9 px at any size)."""
    box = jitter_box(box, rng)
    wx, wy, ww, wh = reader_window(box)
    # the region around the window, at the resolution the plate is seen at
    pad_x, pad_y = 0.1 * ww, 0.1 * wh
    x0, y0 = int(max(0, wx - pad_x)), int(max(0, wy - pad_y))
    x1, y1 = int(min(image.shape[1], wx + ww + pad_x)) + 1, int(min(image.shape[0], wy + wh + pad_y)) + 1
    region = image[y0:y1, x0:x1]
    if region.size == 0 or min(region.shape[:2]) < 2:
        region, x0, y0 = image, 0, 0
    seen_w = rng.uniform(*width_range)
    scale = min(4.0, seen_w / max(box[2], 1.0))
    small = cv2.resize(region, (max(2, int(region.shape[1] * scale)), max(2, int(region.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x, y, w, h = box
    small = photometric(small, rng, max(9, round(streak * w * scale)))  # streak 0: 3-9 px, as at any size
    return to_input(small, ((x - x0) * scale, (y - y0) * scale, w * scale, h * scale))


def reader_sample_options(parser, *, rearrange: float) -> None:
    """The options of the reader recipes that say how their plates are seen (`sample_for_reader`): the real
    ones warped or rearranged, the synthetic ones drawn as dies press them."""
    parser.add_argument("--real-warp", type=float, default=0.0,
                        help="share of real plates seen turned, stretched, sheared and tilted (augment.seen_otherwise)")
    parser.add_argument("--rearrange", type=float, default=rearrange,
                        help="share of real plates seen with their characters rearranged (training/shuffle.py)")
    parser.add_argument("--die-look", type=float, default=0.0,
                        help="share of synthetic plates drawn as dies press them, over a picture (render.render)")
    parser.add_argument("--streak", type=float, default=0.0,
                        help="motion blur streaks up to this share of the plate's width (0: 3-9 px at any size)")


def reader_sources(data_dir, rearrange: float, leave_out: tuple[int, int] | None = None):
    """What `sample_for_reader` draws from: the train part's samples (without fold `leave_out`), its frames
    (backgrounds), and where each real plate's characters sit (None unless some are to be rearranged)."""
    real = data.load(Path(data_dir), "train", leave_out=leave_out) if data_dir else []
    frames = [s.image for s in real if s.name.endswith(".jpg")]
    centres = None
    if rearrange and real:
        from training.shuffle import char_centres

        centres = char_centres(real)
    return real, frames, centres


def sample_for_reader(rng: random.Random, real: list[Sample], frames: list[np.ndarray], synthetic_share: float,
                      real_warp: float = 0.0, warp_below: float | None = None, rearrange: float = 0.0,
                      centres: dict[str, list[float]] | None = None, to_input=reader_input,
                      die_look: float = 0.0, streak: float = 0.0):
    """(input, plate text, state code or None) drawn from synthetic or real plates; with `rearrange`, that
    share of the real plates has its characters rearranged (`shuffle.rearranged`, no state); `streak`:
    `reader_sample`'s."""
    if not real or rng.random() < synthetic_share:
        image, box, serial, state = synthetic_scene(rng, frames, die_look=die_look)
        # beside real crops, no state: the synthetic looks are not the states' real designs, and teaching
        # the state head them would be label noise; it learns the designs from the real crops alone (with
        # synthetic plates alone it has nothing else, and learns the rendered names and colours)
        return reader_sample(image, box, rng, to_input=to_input, streak=streak), serial, state if not real else None
    s = rng.choice(real)
    image, box, text, state = s.image, s.box, s.plate, s.state
    if rearrange and centres and s.name in centres and rng.random() < rearrange:
        from training.shuffle import rearranged

        image, box, text = rearranged(s, centres[s.name], rng)
        state = None
    if real_warp and (warp_below is None or box[2] < warp_below) and rng.random() < real_warp:
        image, box = seen_otherwise(image, box, rng)
    elif rng.random() < 0.3:  # a small turn of the whole picture
        h, w = image.shape[:2]
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        m = cv2.getRotationMatrix2D((cx, cy), rng.gauss(0, 4), 1.0)
        image = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return reader_sample(image, box, rng, width_range=(40, 200), to_input=to_input, streak=streak), text, state


def seen_otherwise(image: np.ndarray, box, rng: random.Random):
    """The real plate as another camera would see it: turned, stretched, sheared and tilted a little about
    its centre; (image, the plate's new box). A few hundred real plates are otherwise learned by heart."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    corners = np.float32([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
    angle = np.deg2rad(rng.gauss(0, 4))
    sx, sy = rng.uniform(0.8, 1.2), rng.uniform(0.85, 1.15)
    shear = rng.gauss(0, 0.12)
    tilt = rng.gauss(0, 0.06)  # one side nearer the camera than the other
    moved = []
    for px, py in corners - [cx, cy]:
        near = 1.0 + tilt * (1 if px > 0 else -1)
        qx, qy = px * sx, (py + shear * px) * sy * near
        moved.append([cx + qx * np.cos(angle) - qy * np.sin(angle), cy + qx * np.sin(angle) + qy * np.cos(angle)])
    moved = np.float32(moved)
    m = cv2.getPerspectiveTransform(corners, moved)
    out = cv2.warpPerspective(image, m, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    (x0, y0), (x1, y1) = moved.min(axis=0), moved.max(axis=0)
    return out, (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
