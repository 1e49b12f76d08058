"""Benchmarks over labelled plate sets: `NAME.jpg` + `NAME.txt` frames, or a `groundtruth.csv` of crops."""

from __future__ import annotations

import csv
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from edge_agent.bench.split import PARTS, load_split, part_of
from edge_agent.capture import decode_image
from edge_agent.errors import EdgeAgentError, ImageError
from edge_agent.recognise.detector import box_iou
from edge_agent.recognise.plate import normalise_plate
from edge_agent.recognise.reader import PlateReader


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    plate: str
    state: str | None = None  # two upper-case letters where the labels give it
    box: tuple[int, int, int, int] | None = None


def _tilted(image: np.ndarray, degrees: float) -> np.ndarray:
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)


def seen_from_the_side(image: np.ndarray, yaw: float, slant: float,
                       boxes: tuple = ()) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """The picture as a camera turned `yaw` degrees to the side sees it: as much narrower as the plate's
    face is turned away, and its level lines sloping `slant` degrees (the camera above or below the plate),
    the verticals upright; made taller to hold the slope. With it, the upright boxes of `boxes` (x, y, w, h)
    in the new picture."""
    height, width = image.shape[:2]
    keep = float(np.cos(np.deg2rad(yaw)))
    narrow = cv2.resize(image, (max(8, round(width * keep)), height), interpolation=cv2.INTER_AREA)
    slope = float(np.tan(np.deg2rad(slant)))
    width = narrow.shape[1]
    lift = abs(slope) * width / 2 - slope * width / 2
    shear = np.float64([[1, 0, 0], [slope, 1, lift]])
    seen = cv2.warpAffine(narrow, shear, (width, round(height + abs(slope) * width)), borderMode=cv2.BORDER_REPLICATE)
    moved = []
    for x, y, w, h in boxes:
        left, right = x * keep, (x + w) * keep
        top = [y + slope * left + lift, y + slope * right + lift]
        moved.append((left, min(top), right - left, h + abs(top[1] - top[0])))
    return seen, moved


def streaked(image: np.ndarray, length: int) -> np.ndarray:
    """The picture streaked `length` pixels along the road: a plate passing while the shutter is open."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    return cv2.filter2D(image, -1, kernel)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_UNCHANGED)


def through_a_sensor(image: np.ndarray) -> np.ndarray:
    """The picture as a camera's sensor and encoder give it: noise of sigma 4 and JPEG at 60."""
    return _jpeg(_noisy(image, 4.0), 60)


def _noisy(image: np.ndarray, sigma: float) -> np.ndarray:
    """The picture with a sensor's noise, the same for the same picture size."""
    rng = np.random.default_rng(image.shape[0] * 7919 + image.shape[1])
    return (image + rng.normal(0.0, sigma, image.shape)).clip(0, 255).astype(np.uint8)


# How `bench accuracy` can see a labelled set otherwise, to tell how the reader does away from the light, size
# and focus its photographs were taken at: a night camera's infrared grey, a camera of half or twice the
# resolution, heavy compression, dusk, soft focus, a plate tilted 8 degrees, a side camera's view of parked cars,
# a plate streaked 9 px as it passes (a side camera at 25 mph with a 1/170 s shutter, 1280 px over 9 m), and
# the same through a sensor's noise and a camera's JPEG encoder.
LOOKS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as-is": lambda image: image,
    "grey": lambda image: cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image,
    "half": lambda image: cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
    "double": lambda image: cv2.resize(image, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC),
    "jpeg20": lambda image: _jpeg(image, 20),
    "dark": lambda image: (image * 0.3).astype(image.dtype),
    "blur": lambda image: cv2.GaussianBlur(image, (0, 0), 1.5),
    "tilt8": lambda image: _tilted(image, 8.0),
    "side30": lambda image: seen_from_the_side(image, 30.0, 8.0)[0],
    "motion9": lambda image: streaked(image, 9),
    "motion9-noisy": lambda image: through_a_sensor(streaked(image, 9)),
}


def machine() -> dict:
    """What a figure was measured on: CPU model, cores, ONNX Runtime's threads (0: one per core)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    return {**describe_cpu(cpuinfo), "cores": os.cpu_count()}


def describe_cpu(cpuinfo: str) -> dict:
    """The CPU of a /proc/cpuinfo text: its name, `cpu_id` and `simd`.

    A virtual machine often names its CPU only "AMD EPYC": `cpu_id` (vendor, family, model; or an Arm
    core's part number) and `simd` (the widest vector instructions it has) tell one generation from
    another, and the models' convolutions run at about twice the speed on some of them."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first processor tells for all; a Pi names its board last
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    cpu = fields.get("model name") or fields.get("Model") or platform.processor() or platform.machine()
    if "cpu family" in fields:
        cpu_id = f"{fields.get('vendor_id', '?')} family {fields['cpu family']} model {fields.get('model', '?')}"
    elif "CPU part" in fields:
        cpu_id = f"implementer {fields.get('CPU implementer', '?')} part {fields['CPU part']}"
    else:
        cpu_id = platform.machine()
    simd = next((name for name, flag in (("avx512", "avx512f"), ("avx2", "avx2"), ("neon", "asimd"), ("neon", "neon"))
                 if flag in flags), "")
    return {"cpu": cpu, "cpu_id": cpu_id, "simd": simd}


def load_dataset(folder: Path, limit: int = 0, part: str = "all") -> list[LabelledImage]:
    """Either layout of ../shared/data/us-plates: groundtruth.csv (file,state,plate) or NAME.txt beside each
    image; `part` 'train' or 'validation' keeps that part of the committed split ('all': everything); with
    `limit`, only the first that many."""
    items = _load_dataset(Path(folder))
    if part != "all":
        if part not in PARTS:
            raise EdgeAgentError(f"part must be all, {' or '.join(PARTS)}, not {part!r}")
        kind = "crops" if (Path(folder) / "groundtruth.csv").is_file() else "endtoend"
        split = load_split()
        items = [i for i in items if split.get((kind, i.path.name), part_of(i.plate)) == part]
    return items[:limit] if limit else items


def _load_dataset(folder: Path) -> list[LabelledImage]:
    if not folder.is_dir():
        raise EdgeAgentError(f"{folder}: dataset folder does not exist")
    truth = folder / "groundtruth.csv"
    items: list[LabelledImage] = []
    if truth.is_file():
        with truth.open(newline="") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                if not row.get("file") or not row.get("plate"):
                    raise EdgeAgentError(f"{truth}: line {line}: needs file and plate columns")
                state = (row.get("state") or "").strip().upper() or None
                items.append(LabelledImage(folder / row["file"], normalise_plate(row["plate"]), state))
        return items
    for label in sorted(folder.glob("*.txt")):
        fields = label.read_text().split()
        if len(fields) < 6:
            raise EdgeAgentError(f"{label}: expected 'NAME.jpg X Y WIDTH HEIGHT PLATE'")
        try:
            box = tuple(int(v) for v in fields[1:5])
        except ValueError:
            raise EdgeAgentError(f"{label}: box values are not whole numbers") from None
        items.append(LabelledImage(folder / fields[0], normalise_plate(fields[5]), None, box))  # type: ignore[arg-type]
    if not items:
        raise EdgeAgentError(f"{folder}: no groundtruth.csv and no NAME.txt labels")
    return items


# Of the labelled plate's width and height: its frame, bolts and stickers are painted out too.
PAINT_MARGIN = (0.15, 0.3)


def paint_out(image: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Paint a plate, with its frame, in the colour of the car just above it (in place)."""
    x, y, w, h = box
    height, width = image.shape[:2]
    mx, my = int(PAINT_MARGIN[0] * w), int(PAINT_MARGIN[1] * h)
    x0, x1 = max(0, x - mx), min(width, x + w + mx)
    y0, y1 = max(0, y - my), min(height, y + h + my)
    if x1 <= x0 or y1 <= y0:
        return
    channels = 1 if image.ndim == 2 else image.shape[2]
    above = image[max(0, y0 - 3):y0, x0:x1]
    source = above if above.size else image[y0:y1, x0:x1]
    image[y0:y1, x0:x1] = source.reshape(-1, channels).mean(axis=0)


def bench_false_reads(reader: PlateReader, items: list[LabelledImage]) -> dict:
    """Frames that still give a read once their labelled plate is painted out: badges, signs,
    stickers and stamps taken for plates. Another car's plate in the frame counts too, so this
    is an upper bound on false reads."""
    framed = [item for item in items if item.box is not None]
    if not framed:
        raise EdgeAgentError("false reads need frames labelled with the plate's box (NAME.txt beside NAME.jpg)")
    reads: list[dict] = []
    errors = 0
    for item in framed:
        try:
            image = decode_image(item.path)
        except ImageError:
            errors += 1
            continue
        paint_out(image, item.box)  # type: ignore[arg-type]
        plates = reader.read(image)
        if plates:
            reads.append({"image": item.path.name, "read": plates[0].text})
    frames = len(framed) - errors
    return {
        "frames": frames,
        "frames_with_a_read": len(reads),
        "false_read_rate": round(len(reads) / frames, 4) if frames else 0.0,
        "unreadable_files": errors,
        "reads": reads,
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# Of the labelled plate's width: a plate's box narrower than this is counted as cutting its ends.
BOX_NARROW = 0.9


def bench_accuracy(reader: PlateReader, items: list[LabelledImage],
                   on_result: Callable[[LabelledImage, list, float], None] | None = None, look: str = "as-is") -> dict:
    """Exact and top-3 rates of the first plate reported per image, timing, memory and state accuracy; each
    image seen as `look` (`LOOKS`) before it is timed. Where images are labelled with the plate's box (frames),
    as they are: how well the boxes read fit it (the mean IoU of the best, 0 where none overlaps) and how
    many of them are narrower than BOX_NARROW of the plate."""
    if look not in LOOKS:
        raise EdgeAgentError(f"look must be one of {', '.join(LOOKS)}, not {look!r}")
    exact = top3 = state_right = state_total = errors = narrow = 0
    times: list[float] = []
    overlaps: list[float] = []
    cpu = 0.0
    for item in items:
        try:
            image = LOOKS[look](decode_image(item.path))
        except ImageError:
            errors += 1
            continue
        start, cpu_start = time.perf_counter(), time.process_time()
        plates = reader.read(image)
        times.append((time.perf_counter() - start) * 1000)
        cpu += time.process_time() - cpu_start
        first = plates[0] if plates else None
        if first is not None and first.text == item.plate:
            exact += 1
        if first is not None and item.plate in [c.text for c in first.candidates[:3]]:
            top3 += 1
        if item.state:
            state_total += 1
            state_right += bool(first and first.state == item.state)
        if item.box is not None and look == "as-is":  # a look may move the plate from its labelled box
            iou, box = max(((box_iou(p.box, item.box), p.box) for p in plates), default=(0.0, None))
            overlaps.append(iou)
            # a box much narrower than its plate cuts the characters at its ends
            narrow += bool(iou > 0 and box[2] < BOX_NARROW * item.box[2])
        if on_result:
            on_result(item, plates, times[-1])
    n = len(items)
    result = {
        "images": n,
        "look": look,
        "exact": exact,
        "exact_rate": round(exact / n, 4) if n else 0.0,
        "top3": top3,
        "top3_rate": round(top3 / n, 4) if n else 0.0,
        "median_ms": round(statistics.median(times), 1) if times else 0.0,
        "p95_ms": round(percentile(times, 0.95), 1),
        "cpu_s_per_image": round(cpu / len(times), 4) if times else 0.0,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "unreadable_files": errors,
    }
    if overlaps:
        result["box_iou_mean"] = round(float(np.mean(overlaps)), 3)
        result["boxes_narrow"] = narrow
    if state_total:
        result["state_rate"] = round(state_right / state_total, 4)
        result["state_labelled"] = state_total
    return result
