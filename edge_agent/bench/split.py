"""The one split of the shared plate photographs into a train part and a validation part.

The split is by a hash of the plate text, not by file: 17 plate texts repeat among the crops, and a split
by file would put one plate on both sides. `us_plates_split.csv` beside this file is the list this rule
made once; it is committed, and it is what training and the benchmarks read.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

SPLIT_FILE = Path(__file__).with_name("us_plates_split.csv")
TRAIN_SHARE = 70  # of 100 hash buckets
PARTS = ("train", "validation")


def part_of(plate: str) -> str:
    """'train' or 'validation' for a plate text (upper case, no spaces)."""
    bucket = int(hashlib.sha256(plate.encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < TRAIN_SHARE else "validation"


def fold_of(plate: str, folds: int) -> int:
    """Which of `folds` folds of its part a plate text falls in (other bits of the same hash as `part_of`),
    for models trained without one fold to read it as they would read a plate never seen."""
    return int(hashlib.sha256(plate.encode()).hexdigest()[8:16], 16) % folds


def load_split(path: Path = SPLIT_FILE) -> dict[tuple[str, str], str]:
    """(set, file name) -> part, as committed."""
    with Path(path).open(newline="") as fh:
        return {(row["set"], row["file"]): row["part"] for row in csv.DictReader(fh)}


def write_split(data_dir: Path, path: Path = SPLIT_FILE) -> dict[str, int]:
    """Make the list from ../shared/data/us-plates (run once; the committed list is the split)."""
    data_dir = Path(data_dir)
    rows = []
    with (data_dir / "crops" / "groundtruth.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            plate = row["plate"].strip().upper()
            rows.append(("crops", row["file"], plate, part_of(plate)))
    for label in sorted((data_dir / "endtoend").glob("*.txt")):
        fields = label.read_text().split()
        rows.append(("endtoend", fields[0], fields[5].upper(), part_of(fields[5].upper())))
    with Path(path).open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["set", "file", "plate", "part"])
        out.writerows(rows)
    counts: dict[str, int] = {}
    for kind, _, _, part in rows:
        counts[f"{kind}/{part}"] = counts.get(f"{kind}/{part}", 0) + 1
    return counts


if __name__ == "__main__":
    import sys

    print(write_split(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/us-plates")))
