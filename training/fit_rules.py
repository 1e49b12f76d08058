"""Fits the two rules that stand beside the models (`edge_agent.recognise.reader`: STATE_FOR_FORMAT and
O_AS_ZERO) on the train part of the shared photographs, and reports every choice on the validation part.

    scripts/train rules --data ../shared/data/us-plates

The committed models read each image once; the rules are then tried on their stored outputs. The choice is
the one with the most exact first readings on the train part (then the most in the top three); the
validation figures are printed beside it and play no part in it. Put the chosen values into reader.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)  # 1.01: the formats never re-rank


def _outputs(reader, items):
    """Per image: its label and (boxes, reader outputs), read once."""
    from edge_agent.capture import decode_image
    from edge_agent.errors import ImageError
    from edge_agent.imaging import as_bgr8
    from edge_agent.recognise.reader import CROP_ASPECT, CROP_MAX_WIDTH

    out = []
    for item in items:
        try:
            image = as_bgr8(decode_image(item.path))
        except ImageError:
            continue
        height, width = image.shape[:2]
        if CROP_ASPECT[0] <= width / height <= CROP_ASPECT[1] and width <= CROP_MAX_WIDTH:
            boxes = [((0.0, 0.0, float(width), float(height)), 1.0)]
        else:
            boxes = [(b.box, b.score) for b in reader.detector.detect(image)]
        out.append((item, boxes, reader.recogniser.read(image, [b for b, _ in boxes])))
    return out


def _score(reader, outputs) -> tuple[int, int, int]:
    exact = top3 = state = 0
    for item, boxes, result in outputs:
        plates = reader.readings(boxes, result)
        first = plates[0] if plates else None
        exact += bool(first and first.text == item.plate)
        top3 += bool(first and item.plate in [c.text for c in first.candidates[:3]])
        state += bool(first and item.state and first.state == item.state)
    return exact, top3, state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/train rules")
    parser.add_argument("--data", required=True, help="the shared plate photographs (../shared/data/us-plates)")
    args = parser.parse_args(argv)

    from edge_agent.bench import load_dataset
    from edge_agent.recognise.reader import PlateReader
    from training.data import check_folder

    check_folder(Path(args.data))
    reader = PlateReader()
    base = reader.settings
    parts = {}
    for part in ("train", "validation"):
        items = [i for kind in ("crops", "endtoend") for i in load_dataset(Path(args.data) / kind, part=part)]
        parts[part] = _outputs(reader, items)
        print(f"{part}: {len(parts[part])} images read", flush=True)
    rows = []
    for threshold, o_as_zero in itertools.product(THRESHOLDS, (True, False)):
        reader.settings = dataclasses.replace(base, state_for_format=threshold, o_as_zero=o_as_zero)
        rows.append(((threshold, o_as_zero), _score(reader, parts["train"]), _score(reader, parts["validation"])))
    reader.settings = base
    n_train, n_val = len(parts["train"]), len(parts["validation"])
    print(f"{'state_for_format':>16} {'o_as_zero':>9} | train exact / top3 (of {n_train}) | "
          f"validation exact / top3 (of {n_val})")
    for (threshold, o_as_zero), train, val in rows:
        print(f"{threshold:>16} {str(o_as_zero):>9} | {train[0]:>5} / {train[1]:<5} | {val[0]:>5} / {val[1]}")
    (threshold, o_as_zero), train, val = max(rows, key=lambda r: (r[1][0], r[1][1]))
    print(f"chosen on the train part: STATE_FOR_FORMAT = {threshold}, O_AS_ZERO = {o_as_zero} "
          f"(train {train[0]}/{n_train} exact; validation {val[0]}/{n_val} exact, {val[1]} top 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
