"""The shared plate photographs as training material, by the committed split; checks their labels first."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_agent.bench.split import fold_of, load_split, part_of


class DataError(SystemExit):
    """A data folder that cannot be trained on: one message naming the file and what is wrong (exit 2)."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # BGR
    plate: str
    state: str | None  # two upper-case letters, or None where the labels do not say
    box: tuple[float, float, float, float]  # the plate in the image (x, y, w, h)
    name: str


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: not a readable image")
    return image


def check_folder(data_dir: Path) -> None:
    """Refuse a data folder whose labels and images do not match (one message, exit 2)."""
    data_dir = Path(data_dir)
    crops, frames = data_dir / "crops", data_dir / "endtoend"
    if not crops.is_dir() and not frames.is_dir():
        raise DataError(f"{data_dir}: no crops/ or endtoend/ folder")
    if crops.is_dir():
        truth = crops / "groundtruth.csv"
        if not truth.is_file():
            raise DataError(f"{truth}: missing")
        with truth.open(newline="") as fh:
            listed = set()
            for line, row in enumerate(csv.DictReader(fh), start=2):
                if not row.get("file") or not row.get("plate"):
                    raise DataError(f"{truth}: line {line}: needs file, state and plate")
                if not (crops / row["file"]).is_file():
                    raise DataError(f"{truth}: line {line}: {row['file']} is not in {crops}")
                listed.add(row["file"])
        unlabelled = sorted(p.name for p in crops.glob("*.png") if p.name not in listed)
        if unlabelled:
            raise DataError(f"{crops}: {unlabelled[0]} has no line in groundtruth.csv ({len(unlabelled)} images unlabelled)")
    if frames.is_dir():
        for label in sorted(frames.glob("*.txt")):
            fields = label.read_text().split()
            if len(fields) < 6 or not all(f.lstrip("-").isdigit() for f in fields[1:5]):
                raise DataError(f"{label}: expected 'NAME.jpg X Y WIDTH HEIGHT PLATE'")
            if not (frames / fields[0]).is_file():
                raise DataError(f"{label}: names {fields[0]}, which is not in {frames}")
        for image in sorted(frames.glob("*.jpg")):
            if not image.with_suffix(".txt").is_file():
                raise DataError(f"{image}: no {image.with_suffix('.txt').name} beside it")


def load(data_dir: Path, part: str, kinds: tuple[str, ...] = ("crops", "endtoend"),
         leave_out: tuple[int, int] | None = None) -> list[Sample]:
    """The samples of one part ('train' or 'validation') of the committed split; files the split does not
    list (another agency's photographs) go by the same hash of their plate text. `leave_out` (K, N): without
    the plates of fold K of N (`split.fold_of`)."""
    data_dir = Path(data_dir)
    check_folder(data_dir)
    split = load_split()
    out: list[Sample] = []
    if "crops" in kinds and (data_dir / "crops").is_dir():
        with (data_dir / "crops" / "groundtruth.csv").open(newline="") as fh:
            for row in csv.DictReader(fh):
                plate = row["plate"].strip().upper()
                if split.get(("crops", row["file"]), part_of(plate)) != part or _left_out(plate, leave_out):
                    continue
                image = _read(data_dir / "crops" / row["file"])
                h, w = image.shape[:2]
                out.append(Sample(image, row["plate"].strip().upper(), row["state"].strip().upper() or None,
                                  (0.0, 0.0, float(w), float(h)), row["file"]))
    if "endtoend" in kinds and (data_dir / "endtoend").is_dir():
        for label in sorted((data_dir / "endtoend").glob("*.txt")):
            fields = label.read_text().split()
            plate = fields[5].upper()
            if split.get(("endtoend", fields[0]), part_of(plate)) != part or _left_out(plate, leave_out):
                continue
            image = _read(data_dir / "endtoend" / fields[0])
            x, y, w, h = (float(v) for v in fields[1:5])
            out.append(Sample(image, plate, None, (x, y, w, h), fields[0]))
    return out


def in_fold(plate: str, fold: tuple[int, int]) -> bool:
    """Whether a plate text is in fold K of N, (K, N) = `fold` (`split.fold_of`)."""
    return fold_of(plate, fold[1]) == fold[0]


def _left_out(plate: str, leave_out: tuple[int, int] | None) -> bool:
    return leave_out is not None and in_fold(plate, leave_out)
