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
# A plate turned in the picture (the camera rolled, the road banked, the plate hung crooked) is read level:
# the readers learned real plates nearly level, as the photographs show them. Its turn is searched within
# TILT_RANGE degrees either way, a degree at a time, on the window's edges seen TILT_HEIGHT pixels high.
# Training reads its samples as they are (tilt 0): its synthetic plates are drawn sheared and turned a little.
TILT_RANGE = 15
TILT_HEIGHT = 64
# A plate that passes while the shutter is open is streaked along the road. Streaks of STREAK_SHORTEST to
# STREAK_LONGEST pixels are found in the window's rows (`streak_length`: a trough at least STREAK_DEPTH deep in
# the rows' cepstrum, or where noise hides it, rows more unlike themselves than the columns by STREAK_CONTRAST) and
# undone before the readers see the window (a Wiener filter for the streak, STREAK_NOISE the noise it allows
# for), in plates at most STREAK_TALLEST pixels high: a camera frame's (1280x720: 20-50). A plate seen bigger
# has strokes as wide as streaks, and found streaks there cost plates as taken; so do shorter streaks than
# STREAK_SHORTEST, which a small or far plate's strokes, 3-5 px wide, pass for. All five are fitted by
# `scripts/train rules` on plates that the readers trained without never saw, as taken, at half the
# resolution and streaked, as is STREAK_ROWS: the streak is looked for in the window's rows averaged that many
# at a time (a streak runs along the rows and stays, a sensor's noise is averaged down).
# Training sees its samples as they are.
STREAK_LONGEST = 24
STREAK_SHORTEST = 6
STREAK_NOISE = 0.003
STREAK_DEPTH = 0.4
STREAK_CONTRAST = 0.3
STREAK_TALLEST = 80
STREAK_ROWS = 1


def reader_window(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The part of the image (x, y, width, height) the reader sees for a plate box."""
    x, y, w, h = box
    mx, my = READER_MARGIN[0] * w, READER_MARGIN[1] * h
    return x - mx, y - my, w + 2 * mx, h + 2 * my


def plate_tilt(image: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """The degrees (counter-clockwise as seen, OpenCV's sense) by which the plate in `box` is turned: the
    turn that lines up the window's strongest edges (the characters' tops and feet, the plate's own edges)
    into the fewest rows. 0 for a level plate and where the window misses the image."""
    view = window_view(image, reader_window(box))
    if view is None:
        return 0.0
    if view.ndim == 3:
        view = cv2.cvtColor(view, cv2.COLOR_BGR2GRAY)
    scale = TILT_HEIGHT / view.shape[0]
    small = cv2.resize(view, (max(8, round(view.shape[1] * scale)), TILT_HEIGHT),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR).astype(np.float32)
    edges = cv2.magnitude(cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3))
    strongest = int(edges.size * 0.8)
    ys, xs = np.nonzero(edges > np.partition(edges.ravel(), strongest)[strongest])
    if len(xs) < 8:
        return 0.0
    weights = edges[ys, xs].astype(np.float64)
    xs = (xs - small.shape[1] / 2).astype(np.float32)
    ys = (ys - TILT_HEIGHT / 2).astype(np.float32)
    turns = np.arange(-TILT_RANGE, TILT_RANGE + 1)
    radians = np.deg2rad(turns).astype(np.float32)[:, np.newaxis]
    # each point's row once the window is turned back by each candidate angle, each angle its own rows
    half = (small.shape[1] + TILT_HEIGHT) // 2 + 2
    span = 2 * half + 1
    rows = (ys * np.cos(radians) + xs * np.sin(radians) + (half + 0.5)).astype(np.int32)
    rows += (span * np.arange(len(turns), dtype=np.int32))[:, np.newaxis]
    profiles = np.bincount(rows.ravel(), weights=np.broadcast_to(weights, rows.shape).ravel(),
                           minlength=span * len(turns))
    sharpness = (profiles.reshape(len(turns), span) ** 2).sum(axis=1)
    return float(turns[int(sharpness.argmax())])


def streak_length(image: np.ndarray, box: tuple[float, float, float, float]) -> int:
    """How many pixels (STREAK_SHORTEST to STREAK_LONGEST) the plate in `box` is streaked along the road, as it
    passed while the shutter was open; 0 where it is not, or the window is too small to tell, or the plate is
    more than STREAK_TALLEST pixels high."""
    seen = _streak_cepstrum(image, box)
    if seen is None:
        return 0
    view, steps, cepstrum = seen
    length = 3 + int(cepstrum[3:STREAK_LONGEST + 1].argmin())
    if cepstrum[length] <= -STREAK_DEPTH:
        return length if length >= STREAK_SHORTEST else 0
    across = _alike(steps, axis=1)
    length = 2 + int(across[2:].argmin())
    if length < max(3, STREAK_SHORTEST):
        return 0
    down = _alike(np.diff(view, axis=0), axis=0)
    return length if across[length] - down[length] <= -STREAK_CONTRAST else 0


def streak_in_bands(image: np.ndarray, bands: list[tuple[float, float, float, float]]) -> int:
    """The streak of a plate seen more than STREAK_TALLEST high, found in its top and bottom bands (`bands`),
    where its name and slogan are printed small: its characters' strokes are as wide as a streak, the small
    print's are not. Both bands must find it, within a pixel: a blurred plate's small print can pass for a
    short streak in one."""
    found = [streak_length(image, band) for band in bands]
    return max(found) if min(found) and max(found) - min(found) <= 1 else 0


def likeliest_streak(image: np.ndarray, box: tuple[float, float, float, float]) -> int:
    """The streak (STREAK_SHORTEST to STREAK_LONGEST pixels) that the rows' cepstrum points to most, however
    faint: for a plate that read as nothing where `streak_length` was not sure enough to say (a sensor's noise
    fills the streak's zeros). 0 where the window is too small, or the plate more than STREAK_TALLEST high."""
    seen = _streak_cepstrum(image, box)
    if seen is None:
        return 0
    cepstrum = seen[2]
    return STREAK_SHORTEST + int(cepstrum[STREAK_SHORTEST:STREAK_LONGEST + 1].argmin())


def _streak_cepstrum(image: np.ndarray, box: tuple[float, float, float, float]) -> tuple | None:
    """The window's grey view, its rows' gradients and their cepstrum (`streak_length`), or None where the
    window cannot show a streak."""
    if box[3] > STREAK_TALLEST:
        return None
    view = window_view(image, reader_window(box))
    if view is None or view.shape[1] < 2 * STREAK_LONGEST or view.shape[0] < 8:
        return None
    if view.ndim == 3:
        view = cv2.cvtColor(view, cv2.COLOR_BGR2GRAY)
    view = view.astype(np.float32)
    if STREAK_ROWS > 1:
        view = cv2.blur(view, (1, STREAK_ROWS))
    # A streak of L pixels multiplies the rows' spectrum by a sinc with zeros every 1/L cycles a pixel: in the
    # log of their power those zeros are a comb whose spacing the cepstrum shows as one deep trough at L (the
    # strokes' widths vary, and their troughs blur; the rows' gradients, not their levels, keep the plate's
    # overall shading out of it). Noise fills the zeros; then the streak shows in the rows' gradients, whose
    # steps repeat L pixels on with the sign turned, more than the columns' do (a stroke is as wide up and down
    # as across).
    steps = np.diff(view, axis=1)
    n = cv2.getOptimalDFTSize(2 * steps.shape[1])
    power = (np.abs(np.fft.rfft(steps * np.hanning(steps.shape[1]).astype(np.float32), n, axis=1)) ** 2).mean(axis=0)
    return view, steps, np.fft.irfft(np.log(power + 1e-3 * power.mean() + 1e-12), n)


def _alike(steps: np.ndarray, axis: int) -> np.ndarray:
    """How alike `steps` (a window's differences along `axis`) are with themselves 0 to STREAK_LONGEST pixels
    on along that axis, as a share of their power (the autocorrelation, from the power spectra, padded)."""
    steps = steps - steps.mean(axis=axis, keepdims=True)
    n = cv2.getOptimalDFTSize(steps.shape[axis] + STREAK_LONGEST)
    power = (np.abs(np.fft.rfft(steps, n, axis=axis)) ** 2).sum(axis=1 - axis)
    alike = np.fft.irfft(power, n)[:STREAK_LONGEST + 1]
    return alike / max(float(alike[0]), 1e-6)


def unstreaked(view: np.ndarray, streak: int) -> np.ndarray:
    """`view` with a streak of `streak` pixels along its rows undone (a Wiener filter allowing for noise of
    STREAK_NOISE the signal's power). The rows are taken as repeating: keep what is read at least
    2 * STREAK_LONGEST pixels from the sides."""
    kernel = np.zeros(view.shape[1], np.float32)
    kernel[:streak] = 1.0 / streak
    spectrum = np.fft.rfft(np.roll(kernel, -(streak // 2)))
    inverse = np.conj(spectrum) / (np.abs(spectrum) ** 2 + STREAK_NOISE)
    inverse = inverse[:, np.newaxis] if view.ndim == 3 else inverse
    out = np.fft.irfft(np.fft.rfft(view.astype(np.float32), axis=1) * inverse, view.shape[1], axis=1)
    return out.clip(0, 255).astype(view.dtype)


def window_view(image: np.ndarray, window: tuple[float, float, float, float], streak: int = 0) -> np.ndarray | None:
    """The pixels of a window (x, y, width, height), parts outside the image repeating its edge, a streak of
    `streak` pixels along the road undone; None where the window misses the image."""
    if streak:
        x, y, w, h = window
        pad = 2 * STREAK_LONGEST
        view = window_view(image, (x - pad, y, w + 2 * pad, h))
        return None if view is None else unstreaked(view, streak)[:, pad:view.shape[1] - pad]
    x, y, w, h = window
    height, width = image.shape[:2]
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = max(x0 + 2, int(np.ceil(x + w))), max(y0 + 2, int(np.ceil(y + h)))
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    view = image[cy0:cy1, cx0:cx1]
    if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
        view = cv2.copyMakeBorder(view, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE)
    return view


def level_box(box: tuple[float, float, float, float], tilt: float) -> tuple[float, float, float, float]:
    """The plate's own box, level, about the same centre, where `box` is the upright box around the plate
    turned `tilt` degrees."""
    x, y, w, h = box
    c, s = np.cos(np.deg2rad(tilt)), abs(np.sin(np.deg2rad(tilt)))
    inner_w, inner_h = (w * c - h * s) / (c * c - s * s), (h * c - w * s) / (c * c - s * s)
    if inner_w <= 0.25 * w or inner_h <= 0.25 * h:
        # no plate turned so much has such an upright box (a long band of print read as turned): keep its size
        inner_w, inner_h = w, h
    return x + (w - inner_w) / 2, y + (h - inner_h) / 2, inner_w, inner_h


def _window_strip(image: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int],
                  tilt: float = 0.0, streak: int = 0) -> np.ndarray | None:
    """The reader's window of the box scaled to `size` (height, width), BGR (or grey) float32, turned back
    level where the plate is turned `tilt` degrees, its streak of `streak` pixels undone; parts of the window
    outside the image repeat its edge. None where the window misses the image."""
    if tilt:
        return turned_strip(image, reader_window(level_box(box, tilt)), tilt, size, streak)
    view = window_view(image, reader_window(box), streak)
    if view is None:
        return None
    out_h, out_w = size
    shrink = view.shape[1] > out_w or view.shape[0] > out_h
    strip = cv2.resize(view, (out_w, out_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return strip.astype(np.float32)


def turned_strip(image: np.ndarray, box: tuple[float, float, float, float], tilt: float,
                 size: tuple[int, int], streak: int = 0) -> np.ndarray | None:
    """The rectangle of `box`'s centre and size, turned `tilt` degrees in the image, sampled level into `size`
    (height, width), float32, a streak of `streak` pixels along the road (the image's rows) undone first;
    parts outside the image repeat its edge. None where it misses the image."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    out_h, out_w = size
    # the upright part of the image that holds the turned rectangle, shrunk first (as the level path does)
    # where the rectangle is bigger than the strip, so that the turn samples no finer than the strip
    c, s = np.cos(np.deg2rad(tilt)), np.sin(np.deg2rad(tilt))
    half_w, half_h = (abs(c) * w + abs(s) * h) / 2 + 1, (abs(s) * w + abs(c) * h) / 2 + 1
    view = window_view(image, (cx - half_w, cy - half_h, 2 * half_w, 2 * half_h), streak)
    if view is None:
        return None
    scale = min(1.0, out_h / h)
    if scale < 1.0:
        view = cv2.resize(view, (max(2, round(view.shape[1] * scale)), max(2, round(view.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    sx, sy = view.shape[1] / (2 * half_w), view.shape[0] / (2 * half_h)
    # output pixel (u, v) -> the view's pixel: from the strip's centre, scaled to the rectangle, turned with it
    ax, ay = w / out_w, h / out_h
    turn = np.float64([[c * ax * sx, s * ay * sx], [-s * ax * sy, c * ay * sy]])
    centre_out = np.float64([(out_w - 1) / 2, (out_h - 1) / 2])
    centre_view = np.float64([(view.shape[1] - 1) / 2, (view.shape[0] - 1) / 2])
    matrix = np.hstack([turn, (centre_view - turn @ centre_out)[:, np.newaxis]])
    strip = cv2.warpAffine(view, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    return strip.astype(np.float32)


def reader_input(image: np.ndarray, box: tuple[float, float, float, float], tilt: float = 0.0,
                 streak: int = 0) -> np.ndarray:
    """(3, H, W) float32 RGB strip of the plate box (turned `tilt` degrees: read level; streaked `streak`
    pixels: undone), every channel normalised by the strip's grey mean and spread (night infrared and
    daylight alike; a grey image gives three equal channels)."""
    strip = _window_strip(image, box, READER_SIZE, tilt, streak)
    if strip is None:
        return np.zeros((READER_CHANNELS, *READER_SIZE), np.float32)
    if strip.ndim == 2:
        strip = np.repeat(strip[..., np.newaxis], 3, axis=2)
    else:
        strip = strip[..., ::-1]  # BGR -> RGB
    grey = strip @ np.float32([0.299, 0.587, 0.114])
    return ((strip - grey.mean()) * (1.0 / (grey.std() + 8.0))).transpose(2, 0, 1)


def text_reader_input(image: np.ndarray, box: tuple[float, float, float, float], tilt: float = 0.0,
                      streak: int = 0) -> np.ndarray:
    """(3, 48, 160) float32 of the plate box (turned `tilt` degrees: read level; streaked `streak` pixels:
    undone) as the PP-OCR recogniser family takes text: BGR scaled to -1..1. The window is stretched to the
    input (a plate is about 2:1) so that its characters get 20 CTC steps."""
    strip = _window_strip(image, box, TEXT_READER_SIZE, tilt, streak)
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
