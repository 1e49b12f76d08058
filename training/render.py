"""Synthetic US plates with their labels: the reader's main training data and the detector's pasted plates.

Every plate is drawn from a style (field and print colours, the state name above or below, a slogan) and
a serial in one of its state's formats, then dressed with what real plates carry: registration stickers,
a dealer frame, stacked characters beside the number, bolts, dirt. Label: the serial only (stickers,
frames, stacked characters and state names are not part of the plate number, as in the shared labels).
With `die_look`, a share of them is drawn as real plates look: tall condensed characters pressed into the
metal (raised edges lit on one side), groups apart, over a coloured band, hills or a sky.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edge_agent.recognise.formats import SERIAL_FORMATS
from edge_agent.recognise.plate import US_STATES
from training import fonts

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"


@dataclass(frozen=True)
class Style:
    state: str
    field: tuple[int, int, int]  # RGB
    ink: tuple[int, int, int]
    name_ink: tuple[int, int, int]
    name_at_top: bool = True
    slogan: str = ""


# Approximate looks of common issues (California first); other states get random looks.
STYLES = (
    Style("CA", (245, 245, 242), (20, 30, 110), (200, 30, 30), True, "DMV.CA.GOV"),
    Style("CA", (245, 245, 242), (20, 30, 110), (200, 30, 30), True, ""),
    Style("CA", (245, 245, 242), (20, 30, 110), (20, 30, 110), False, "Lake Tahoe"),
    Style("CA", (30, 30, 35), (235, 200, 60), (235, 200, 60), True, ""),
    Style("TX", (245, 245, 240), (20, 20, 20), (20, 20, 20), True, "THE LONE STAR STATE"),
    Style("AZ", (240, 225, 200), (120, 40, 30), (120, 40, 30), True, "GRAND CANYON STATE"),
    Style("NV", (200, 220, 240), (20, 40, 110), (20, 40, 110), True, "HOME MEANS NEVADA"),
    Style("OR", (240, 245, 240), (20, 60, 40), (20, 60, 40), True, "PACIFIC WONDERLAND"),
    Style("WA", (240, 240, 240), (20, 40, 120), (20, 40, 120), True, "Evergreen State"),
    Style("NY", (240, 235, 200), (20, 30, 90), (20, 30, 90), True, "EMPIRE STATE"),
    Style("FL", (245, 245, 240), (20, 90, 60), (230, 110, 30), True, "SUNSHINE STATE"),
    Style("IL", (245, 245, 245), (140, 20, 30), (20, 40, 120), True, "LAND OF LINCOLN"),
    Style("PA", (250, 250, 250), (20, 30, 100), (20, 30, 100), True, "visitPA.com"),
    Style("OH", (240, 240, 235), (20, 20, 60), (20, 20, 60), True, "BIRTHPLACE OF AVIATION"),
    Style("GA", (240, 240, 240), (20, 20, 20), (20, 20, 20), True, "In God We Trust"),
    Style("NJ", (240, 230, 170), (20, 20, 20), (20, 20, 20), False, "Garden State"),
    Style("CO", (230, 240, 230), (250, 250, 250), (250, 250, 250), True, ""),
    Style("MA", (245, 245, 245), (170, 30, 30), (20, 40, 130), False, "The Spirit of America"),
    Style("VA", (245, 245, 245), (20, 30, 110), (20, 30, 110), True, ""),
    Style("NM", (240, 210, 50), (190, 30, 30), (190, 30, 30), True, "Land of Enchantment"),
)
CODES = tuple(sorted(US_STATES))


def random_serial(rng: random.Random, state: str) -> str:
    formats = SERIAL_FORMATS.get(state) or ("AAA999", "999AAA", "9AAA999", "AAA9999", "AA9999", "99AA99")
    if rng.random() < 0.15:  # vanity and specialty plates follow no format
        n = rng.randint(2, 8)
        return "".join(rng.choice(LETTERS + DIGITS) for _ in range(n))
    pattern = rng.choice(formats)
    out = []
    for p in pattern:
        pool = LETTERS if p == "A" else DIGITS if p == "9" else LETTERS + DIGITS
        out.append(rng.choice(pool))
    return "".join(out)


def random_style(rng: random.Random) -> Style:
    if rng.random() < 0.55:
        return rng.choice(STYLES)
    state = rng.choice(CODES)
    light = rng.random() < 0.85
    field = tuple(rng.randint(180, 255) for _ in range(3)) if light else tuple(rng.randint(0, 90) for _ in range(3))
    ink = tuple(rng.randint(0, 90) for _ in range(3)) if light else tuple(rng.randint(180, 255) for _ in range(3))
    name_ink = ink if rng.random() < 0.5 else tuple(rng.randint(0, 200) for _ in range(3))
    return Style(state, field, ink, name_ink, rng.random() < 0.8, "")


def _font(path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), max(6, size))


def _state_text(rng: random.Random, state: str) -> str:
    name = US_STATES[state]
    r = rng.random()
    if r < 0.6:
        return name
    if r < 0.8:
        return name.title()
    return " ".join(name)[: 40] if len(name) < 9 else name


def render(rng: random.Random, serial: str | None = None, style: Style | None = None,
           width: int = 240, die_look: float = 0.0) -> tuple[np.ndarray, str, str]:
    """(BGR plate image about width x width/2, serial, state code). `die_look`: the share of plates drawn as
    the states' dies press them (`_die_print`, `_pressed`) over a picture (`_scenery`), not flat print."""
    die = die_look > 0 and rng.random() < die_look  # no draw at 0: the recipes without it stay as they were
    style = style or random_style(rng)
    serial = serial or random_serial(rng, style.state)
    height = width // 2
    plate_fonts = fonts.available(fonts.PLATE_FONTS)
    label_fonts = fonts.available(fonts.LABEL_FONTS)
    field = tuple(int(np.clip(c + rng.randint(-15, 15), 0, 255)) for c in style.field)
    image = Image.new("RGB", (width, height), field)
    draw = ImageDraw.Draw(image)
    if rng.random() < 0.3:  # a graphic or gradient behind the print
        for _ in range(rng.randint(1, 3)):
            colour = tuple(int(np.clip(c + rng.randint(-70, 70), 0, 255)) for c in field)
            x, y = rng.randint(-width // 2, width), rng.randint(-height // 2, height)
            r = rng.randint(height // 4, height)
            draw.ellipse([x, y, x + r * 2, y + r], fill=colour)
    if die and rng.random() < 0.6:
        _scenery(draw, field, width, height, rng)
    if rng.random() < 0.8:
        draw.rectangle([1, 1, width - 2, height - 2], outline=style.ink, width=rng.randint(1, 4))
    # the state's name, and a slogan on the other edge
    name_face = rng.choice(label_fonts + plate_fonts)  # drawn before its size, as before die_look
    name_font = _font(name_face, int(height * (rng.uniform(0.15, 0.26) if die else rng.uniform(0.13, 0.22))))
    name = _state_text(rng, style.state)
    name_y = height * rng.uniform(0.03, 0.08) if style.name_at_top else height * rng.uniform(0.78, 0.84)
    nw = draw.textlength(name, font=name_font)
    if nw < width * 0.95:
        draw.text(((width - nw) / 2 + rng.uniform(-width * 0.05, width * 0.05), name_y), name,
                  fill=style.name_ink, font=name_font)
    slogan = style.slogan if style.slogan and rng.random() < 0.8 else ""
    if slogan:
        slogan_font = _font(rng.choice(label_fonts), int(height * rng.uniform(0.09, 0.14)))
        sw = draw.textlength(slogan, font=slogan_font)
        sy = height * 0.82 if style.name_at_top else height * 0.05
        draw.text(((width - sw) / 2, sy), slogan, fill=style.name_ink, font=slogan_font)
    # the serial
    font_path = rng.choice(plate_fonts)
    if die:
        stacked = rng.random() < 0.1
        mask, top, bottom = _die_print((width, height), _groups(serial, rng), font_path, rng,
                                       width * 0.12 if stacked else 0.0)
        image = Image.fromarray(_pressed(np.asarray(image), mask, style.ink, rng))
        draw = ImageDraw.Draw(image)
    else:
        top, bottom, stacked = _flat_print(draw, serial, font_path, style.ink, rng, width, height)
    if stacked:  # two small characters stacked beside the number (DP, a county code): not part of it
        th = bottom - top
        small = _font(rng.choice(plate_fonts), int(th * 0.45))
        for i, ch in enumerate(rng.choice(["DP", "DV", "TR", "AM", "CL"])):
            draw.text((width * 0.04, top + i * th * 0.52), ch, fill=style.ink, font=small)
    if rng.random() < 0.5:  # registration stickers in the corners
        for _ in range(rng.randint(1, 2)):
            sw_, sh_ = int(width * rng.uniform(0.1, 0.16)), int(height * rng.uniform(0.14, 0.22))
            sx = rng.choice([int(width * 0.03), width - sw_ - int(width * 0.03)])
            sy = rng.choice([int(height * 0.04), height - sh_ - int(height * 0.04)])
            colour = tuple(rng.randint(0, 255) for _ in range(3))
            draw.rectangle([sx, sy, sx + sw_, sy + sh_], fill=colour)
            draw.text((sx + 2, sy + 1), str(rng.randint(0, 99)).zfill(2), fill=(0, 0, 0) if sum(colour) > 380 else (255, 255, 255),
                      font=_font(plate_fonts[0], int(sh_ * 0.7)))
    for bx in (width * 0.2, width * 0.8):  # bolts
        if rng.random() < 0.5:
            r = height * 0.035
            by = height * rng.choice([0.12, 0.88])
            draw.ellipse([bx - r, by - r, bx + r, by + r], fill=tuple(int(c * 0.6) for c in field))
    plate = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
    if rng.random() < 0.35:
        plate = _dealer_frame(plate, rng, label_fonts)
    if rng.random() < 0.3:
        plate = _dirt(plate, rng)
    return plate, serial, style.state


def _flat_print(draw: ImageDraw.ImageDraw, serial: str, font_path, ink, rng: random.Random, width: int,
                height: int) -> tuple[float, float, bool]:
    """The serial printed flat in the font as it is; (top, bottom, whether characters are stacked beside it)."""
    char_h = height * rng.uniform(0.42, 0.56)
    font = _font(font_path, int(char_h * 1.25))
    gap_kind = rng.random()
    groups = _groups(serial, rng)
    sep = "" if gap_kind < 0.45 else " " if gap_kind < 0.75 else "-" if gap_kind < 0.9 else "·"
    text = sep.join(groups)
    left_room = 0.0
    stacked = rng.random() < 0.1
    if stacked:
        left_room = width * 0.12
    tw = draw.textlength(text, font=font)
    limit = (width - left_room) * rng.uniform(0.78, 0.92)
    if tw > limit:
        font = _font(font_path, int(char_h * 1.25 * limit / tw))
        tw = draw.textlength(text, font=font)
    bbox = draw.textbbox((0, 0), text, font=font)
    th = bbox[3] - bbox[1]
    x = left_room + (width - left_room - tw) / 2 + rng.uniform(-width * 0.03, width * 0.03)
    y = (height - th) / 2 - bbox[1] + height * rng.uniform(-0.04, 0.06)
    draw.text((x, y), text, fill=ink, font=font)
    return y + bbox[1], y + bbox[1] + th, stacked


def _groups(serial: str, rng: random.Random) -> list[str]:
    if len(serial) < 5 or rng.random() < 0.4:
        return [serial]
    cut = rng.randint(2, len(serial) - 2)
    for i in range(1, len(serial)):  # where letters meet digits, as most states print
        if serial[i].isdigit() != serial[i - 1].isdigit():
            cut = i
            break
    return [serial[:cut], serial[cut:]]


def _dealer_frame(plate: np.ndarray, rng: random.Random, label_fonts) -> np.ndarray:
    h, w = plate.shape[:2]
    top, bottom, side = int(h * rng.uniform(0.02, 0.12)), int(h * rng.uniform(0.08, 0.22)), int(w * rng.uniform(0.01, 0.05))
    colour = tuple(rng.randint(0, 60) for _ in range(3)) if rng.random() < 0.7 else tuple(rng.randint(150, 255) for _ in range(3))
    framed = cv2.copyMakeBorder(plate, top, bottom, side, side, cv2.BORDER_CONSTANT, value=colour)
    image = Image.fromarray(cv2.cvtColor(framed, cv2.COLOR_BGR2RGB))
    draw = ImageDraw.Draw(image)
    words = rng.choice(["HONDA OF SANTA MONICA", "TOYOTA", "AUTONATION", "CARMAX", "FORD LINCOLN",
                        "I'D RATHER BE FISHING", "GO BEARS", "ALUMNI"])
    font = _font(rng.choice(label_fonts), max(6, int(bottom * 0.7)))
    tw = draw.textlength(words, font=font)
    ink = (230, 230, 230) if sum(colour) < 380 else (20, 20, 20)
    draw.text(((framed.shape[1] - tw) / 2, h + top + bottom * 0.1), words, fill=ink, font=font)
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)


def _dirt(plate: np.ndarray, rng: random.Random) -> np.ndarray:
    h, w = plate.shape[:2]
    nprng = np.random.default_rng(rng.randint(0, 2**31))
    mask = cv2.resize(nprng.random((max(2, h // 16), max(2, w // 16))).astype(np.float32), (w, h))
    strength = rng.uniform(0.1, 0.45)
    dirt = np.array([rng.randint(40, 110)] * 3, np.float32)
    out = plate.astype(np.float32) * (1 - strength * mask[..., None]) + dirt * strength * mask[..., None]
    return out.clip(0, 255).astype(np.uint8)


def _die_print(draw_size: tuple[int, int], groups: list[str], font_path, rng: random.Random,
               left_room: float) -> tuple[np.ndarray, float, float]:
    """The serial as the states' plate dies press it: tall, condensed characters across most of the plate,
    the groups apart (a gap, a dash or a small shape between them). (mask 0-1 of the print, top, bottom)."""
    width, height = draw_size
    char_h = height * rng.uniform(0.46, 0.6)
    font = _font(font_path, int(char_h * 1.3))
    layers = []
    for g in groups:
        box = font.getbbox(g)
        layer = Image.new("L", (box[2] - box[0] + 2, box[3] - box[1] + 2), 0)
        ImageDraw.Draw(layer).text((1 - box[0], 1 - box[1]), g, fill=255, font=font)
        squeeze = rng.uniform(0.55, 0.85)  # die faces are about half as wide as they are tall
        layers.append(layer.resize((max(1, int(layer.width * squeeze)), layer.height), Image.BILINEAR))
    th = max(layer.height for layer in layers)
    gap = th * rng.uniform(0.25, 0.7) if len(layers) > 1 else 0.0
    total = sum(layer.width for layer in layers) + gap * (len(layers) - 1)
    room = (width - left_room) * rng.uniform(0.8, 0.95)
    scale = min(1.0, room / total, height * 0.66 / th)
    layers = [layer.resize((max(1, int(layer.width * scale)), max(1, int(layer.height * scale))), Image.BILINEAR)
              for layer in layers]
    gap, total, th = gap * scale, total * scale, th * scale
    mask = Image.new("L", (width, height), 0)
    x = left_room + (width - left_room - total) / 2 + rng.uniform(-width * 0.02, width * 0.02)
    top = (height - th) / 2 + height * rng.uniform(-0.03, 0.06)
    draw = ImageDraw.Draw(mask)
    for i, layer in enumerate(layers):
        mask.paste(layer, (int(x), int(top)), layer)
        x += layer.width
        if i < len(layers) - 1:
            mark = rng.random()
            cx, cy, r = x + gap / 2, top + th / 2, th * 0.12
            if mark < 0.3:  # a dash
                draw.rectangle([cx - r * 1.5, cy - r * 0.4, cx + r * 1.5, cy + r * 0.4], fill=255)
            elif mark < 0.5:  # a heart, a star, a state's outline: a small shape
                radii = [r * (1.6 if k % 2 == 0 else 0.7) for k in range(10)]
                angles = [np.pi * k / 5 - np.pi / 2 for k in range(10)]
                points = [(cx + q * np.cos(a), cy + q * np.sin(a)) for q, a in zip(radii, angles)]
                draw.polygon(points, fill=255)
            x += gap
    return np.asarray(mask, np.float32) / 255.0, top, top + th


def _pressed(plate: np.ndarray, mask: np.ndarray, ink: tuple[int, int, int], rng: random.Random) -> np.ndarray:
    """Print pressed into metal: the paint, and the raised edges lit from one side and shaded on the other."""
    paint = np.array(ink[::-1], np.float32)
    out = plate.astype(np.float32) * (1 - mask[..., None]) + paint * mask[..., None]
    relief = cv2.GaussianBlur(mask, (0, 0), max(0.6, plate.shape[0] * 0.012))
    angle = rng.uniform(0, 2 * np.pi)
    slope = (np.cos(angle) * cv2.Sobel(relief, cv2.CV_32F, 1, 0, ksize=3)
             + np.sin(angle) * cv2.Sobel(relief, cv2.CV_32F, 0, 1, ksize=3))
    out += slope[..., None] * rng.uniform(10, 45)
    return out.clip(0, 255).astype(np.uint8)


def _scenery(draw: ImageDraw.ImageDraw, field: tuple[int, int, int], width: int, height: int, rng: random.Random) -> None:
    """The pictures behind many states' print: a coloured band, hills or a skyline, a gradient sky."""
    kind = rng.random()
    tint = tuple(int(np.clip(c + rng.randint(-90, 60), 0, 255)) for c in field)
    if kind < 0.35:  # a band of colour along the top, where the name sits
        draw.rectangle([0, 0, width, int(height * rng.uniform(0.12, 0.28))], fill=tint)
    elif kind < 0.7:  # hills, mountains or a skyline along the bottom
        points = [(0, height)]
        for x in np.linspace(0, width, rng.randint(4, 9)):
            points.append((float(x), height * rng.uniform(0.55, 0.85)))
        points.append((width, height))
        draw.polygon(points, fill=tint)
    else:  # a sky darkening towards the top
        for y in range(0, int(height * 0.5)):
            a = 1 - y / (height * 0.5)
            colour = tuple(int(c * (1 - 0.5 * a) + t * 0.5 * a) for c, t in zip(field, tint))
            draw.line([(0, y), (width, y)], fill=colour)
