"""Fits the rules that stand beside the models (`edge_agent.recognise.reader`) on the train part of the
shared photographs, and reports every choice on the validation part.

    scripts/train rules --data ../shared/data/us-plates [--fold-models K/N=DIR ...]

First the state's printed name (`statename.py`), from the text recogniser's readings of the train crops
alone (the state head plays no part: it has learned the train part by heart): the share of the plate's
height read at its top and bottom (`statename.BAND`), how far each name is found by chance on plates of
other states (`statename.NAME_CHANCE`, a quantile of `CHANCE_QUANTILES`) and STATE_NAME_SHARPNESS, the
likeliest for the name's evidence, and STATE_NAME_MIN_HEIGHT, the least plate height at which the
name, read off the train crops scaled down to it, tells the state better than chance (a mean
log-likelihood above the uniform's). SECOND_LOOK_SCORE, the least detector score at which a box that read as
nothing is read again for a faint streak, from the detector's boxes in the train frames
(`fit_second_look_score`). Then, given models trained without a fold of the train part
(`scripts/train reader|text --leave-out K/N --out DIR`), PLATE_READER_WEIGHT: those models read the fold
they never saw, and the weight is the one with the most exact first readings there (then the most in the
top three, then the likeliest true plates); the committed readers have learned the train part by heart and
read it alike at every weight. CHARACTER_LOG_ODDS counts each character on the train part's plates, and
CHARACTER_PRIOR_WEIGHT, how much those odds count in ranking candidates, is fitted on the folds as the weight
is (each fold ranked with the odds of the train plates outside it); so are the rules that find and undo a
passing plate's streak (`crops.STREAK_*`), on the folds seen as taken, at half the resolution and streaked
(`fit_streaks`). Then STATE_FOR_FORMAT and O_AS_ZERO: the committed models read each image once, the rules
are tried on their stored outputs, and the choice is the one with the most exact first readings on the train
part (then the most in the top three, then the first tried: the lowest threshold); the folds' readings, where
given, are printed beside as a check. The validation figures are printed beside each choice and play no part in it.
Put the chosen values into reader.py (BAND and NAME_CHANCE into statename.py, the streaks' into crops.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)  # 1.01: the formats never re-rank
HEIGHTS = (16, 20, 24, 28, 32, 40, 48)  # plate heights (pixels) tried for STATE_NAME_MIN_HEIGHT
BANDS = (0.22, 0.26, 0.28, 0.30, 0.32, 0.34, 0.38, 0.42)  # shares of the plate's height tried for statename.BAND
# quantiles tried with each band for statename.NAME_CHANCE: how far a name is found by chance
CHANCE_QUANTILES = (0.0, 0.5, 0.75, 0.85, 0.9, 0.93, 0.95)
WEIGHTS = (0.0, 0.1, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5)  # tried for PLATE_READER_WEIGHT
PRIOR_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)  # tried for CHARACTER_PRIOR_WEIGHT
# how a passing plate's streak is found and undone (`crops.streak_length`, `crops.unstreaked`): each tried in
# turn, the others at their best so far, on the folds seen as taken, at half the resolution and streaked
# (`bench.LOOKS`)
STREAK_GRIDS = (("STREAK_ROWS", (1, 2, 3)), ("STREAK_SHORTEST", (3, 5, 6, 7)),
                ("STREAK_TALLEST", (30, 40, 60, 80, 10000)), ("STREAK_DEPTH", (0.3, 0.4, 0.5)),
                ("STREAK_CONTRAST", (0.05, 0.1, 0.15, 0.2, 0.3)), ("STREAK_NOISE", (0.003, 0.01, 0.03)))
# the first STREAK_GUARDED looks are plates that were not streaked: as taken, and at half the resolution (a far
# or small plate, whose thin strokes can pass for a short streak): undoing streaks must not cost them
STREAK_LOOKS = ("as-is", "half", "motion9", "motion9-noisy")
STREAK_GUARDED = 2
SCORE_STEP = 0.05  # the width of the detector score bins of `fit_second_look_score`


def _crops(items):
    """The state-labelled crops of `items` as (image, true state's index)."""
    from edge_agent.capture import decode_image
    from edge_agent.errors import ImageError
    from edge_agent.imaging import as_bgr8
    from edge_agent.recognise.statename import STATE_CODES

    out = []
    for item in items:
        if item.state not in STATE_CODES:
            continue
        try:
            out.append((as_bgr8(decode_image(item.path)), STATE_CODES.index(item.state)))
        except ImageError:
            continue
    return out


def _found_names(names, crops, height=None):
    """(N, names) `statename.found_names` rows of the crops, each first scaled down to `height` pixels if taller."""
    import cv2
    import numpy as np

    from edge_agent.recognise.statename import found_names

    rows = []
    for image, _ in crops:
        h, w = image.shape[:2]
        if height is not None and h > height:
            image = cv2.resize(image, (max(2, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
        rows.append(found_names(names.read(image, [(0.0, 0.0, float(w), float(h))])[0]))
    return np.array(rows)


def fit_state_name(reader, train_crops, validation_crops) -> tuple[float, float, float, int]:
    """statename.BAND and the names' chance levels (statename.NAME_CHANCE; both left set to the choice), and
    the chance quantile, STATE_NAME_SHARPNESS and STATE_NAME_MIN_HEIGHT."""
    import numpy as np

    from edge_agent.recognise import statename
    from edge_agent.recognise.statename import chance_levels, fit_sharpness, name_log_likelihood, state_scores

    truth = np.array([t for _, t in train_crops])
    vtruth = np.array([t for _, t in validation_crops])

    def scored(found_rows, chance):
        return np.array([state_scores(row, chance) for row in found_rows])

    rows = []
    print(f"{'band':>12} | train crops ({len(truth)}): chance quantile, sharpness, mean log-likelihood, name's state "
          f"right | validation crops ({len(vtruth)}): the same at those")
    for band in BANDS:
        statename.BAND = band
        found, vfound = _found_names(reader.names, train_crops), _found_names(reader.names, validation_crops)
        tried = []
        for quantile in CHANCE_QUANTILES:
            chance = chance_levels(found, truth, quantile)
            scores = scored(found, chance)
            sharpness = fit_sharpness(scores, truth)
            tried.append((name_log_likelihood(scores, truth, sharpness), band, quantile, sharpness, chance, scores,
                          scored(vfound, chance)))
        best = max(tried, key=lambda r: r[0])
        rows.append(best)
        ll, _, quantile, sharpness, _, scores, vscores = best
        print(f"{band:>12} | {quantile:>5} {sharpness:>5} {ll:+.3f} {int((scores.argmax(axis=1) == truth).sum()):>4} | "
              f"{name_log_likelihood(vscores, vtruth, sharpness):+.3f} {int((vscores.argmax(axis=1) == vtruth).sum()):>4}")
    _, statename.BAND, quantile, sharpness, chance, _, _ = max(rows, key=lambda r: r[0])
    statename._CHANCE = chance
    print(f"BAND: {statename.BAND}, NAME_CHANCE_QUANTILE: {quantile}, STATE_NAME_SHARPNESS: {sharpness} (maximum "
          f"likelihood of the name alone over {len(truth)} train crops)")
    print(f"NAME_CHANCE: { {name: float(level) for (_, name), level in zip(statename._NAMES, chance) if level > 0} }")
    min_height = None
    print(f"{'plate height':>12} | train: mean log-likelihood ratio against chance")
    for height in HEIGHTS:
        scores = scored(_found_names(reader.names, train_crops, height), chance)
        llr = name_log_likelihood(scores, truth, sharpness) + np.log(scores.shape[1])  # against chance
        print(f"{height:>12} | {llr:+.3f}")
        if min_height is None and llr > 0:
            min_height = height
    min_height = min_height if min_height is not None else 10**6
    print(f"STATE_NAME_MIN_HEIGHT: {min_height}")
    return statename.BAND, quantile, sharpness, min_height


def fit_second_look_score(reader, frames: list, validation: list) -> float:
    """SECOND_LOOK_SCORE (`reader.read_unsure_streaks`): the detector's boxes in the train part's frames as
    taken (`frames`, labelled with their plate's box), in bins SCORE_STEP wide from the detector's least
    score; the least score from which every bin holds the labelled plate at least as often as other boxes.
    The validation frames' counts are printed beside and play no part."""
    from edge_agent.capture import decode_image
    from edge_agent.errors import ImageError
    from edge_agent.recognise.detector import box_iou

    def scores(items) -> tuple[list, list]:
        plates, others = [], []
        for item in items:
            try:
                image = decode_image(item.path)
            except ImageError:
                continue
            for box in reader.detector.detect(image):
                (plates if box_iou(box.box, item.box) > 0.3 else others).append(box.score)
        return plates, others

    least = reader.settings.detector_min_score
    edges = [round(least + SCORE_STEP * i, 4) for i in range(int(round((1 - least) / SCORE_STEP)))]
    (plates, others), (v_plates, v_others) = scores(frames), scores(validation)

    def count(values: list, low: float) -> int:
        return sum(low <= v < low + SCORE_STEP for v in values)

    print(f"{'detector score':>14} | train frames: plates / other boxes | validation frames")
    for low in edges:
        print(f"{low:>14} | {count(plates, low):>5} / {count(others, low):<5} | "
              f"{count(v_plates, low):>5} / {count(v_others, low)}")
    chosen = next((low for i, low in enumerate(edges)
                   if all(count(plates, e) >= count(others, e) for e in edges[i:])), 1.0)
    print(f"SECOND_LOOK_SCORE: {chosen}")
    return chosen


def _outputs(reader, items, look: str = "as-is"):
    """Per image (seen as `look`, `bench.LOOKS`): its label and (boxes, outputs, names), read once."""
    from edge_agent.bench import LOOKS
    from edge_agent.capture import decode_image
    from edge_agent.errors import ImageError
    from edge_agent.imaging import as_bgr8

    out = []
    for item in items:
        try:
            image = as_bgr8(LOOKS[look](decode_image(item.path)))
        except ImageError:
            continue
        boxes, outputs, found = reader.read_boxes(image)
        out.append((item, boxes, outputs, reader.names_of(image, boxes, found)))
    return out


def _score(reader, outputs, floor: float = 1e-4) -> tuple[int, int, int, float]:
    """Exact first readings, true plates in the top three, right states, and the mean log confidence of the
    true plate among the first reading's candidates (`floor` where absent), from one reading of each."""
    import math

    exact = top3 = state = 0
    total = 0.0
    for item, boxes, result, names in outputs:
        plates = reader.readings(boxes, result, names)
        first = plates[0] if plates else None
        confidence = {c.text: c.confidence for c in first.candidates} if first else {}
        exact += bool(first and first.text == item.plate)
        top3 += bool(first and item.plate in [c.text for c in first.candidates[:3]])
        state += bool(first and item.state and first.state == item.state)
        total += math.log(max(floor, confidence.get(item.plate, 0.0)))
    return exact, top3, state, total / max(1, len(outputs))


def fold_reader(reader, folder: Path):
    """A copy of `reader` whose plate reader and text reader are those trained into `folder` (its manifest)."""
    import copy

    from edge_agent.recognise.models import load_manifest, require, verify_model
    from edge_agent.recognise.recogniser import PlateRecogniser, PlateTextReader

    manifest = folder / "manifest.toml"
    models = load_manifest(manifest)
    other = copy.copy(reader)
    other.recogniser = PlateRecogniser(verify_model(require(models, "plate-reader", manifest)), reader.settings.runtime)
    other.text = PlateTextReader(verify_model(require(models, "plate-text-reader", manifest)), reader.settings.runtime)
    return other


def read_folds(reader, train: list, fold_models: list, look: str = "as-is", quiet: bool = False) -> list:
    """Each fold's images of the train part (`train`, labelled items, seen as `look`) read by the models
    trained without it: (the character log odds of the train plates outside the fold, the readings)."""
    from edge_agent.recognise.plate import character_log_odds
    from training.data import in_fold

    held = []
    for fold, folder in fold_models:
        items = [i for i in train if in_fold(i.plate, fold)]
        outside = character_log_odds(i.plate for i in train if not in_fold(i.plate, fold))
        held.append((outside, _outputs(fold_reader(reader, folder), items, look)))
        if not quiet:
            print(f"fold {fold[0]}/{fold[1]}: {len(items)} train images read by the models of {folder}", flush=True)
    return held


def _held_count(held: list) -> int:
    return sum(len(outputs) for _, outputs in held)


def _score_folds(reader, held: list) -> tuple[int, int, int, float]:
    """`_score` over all the folds' readings, each fold's candidates ranked with the character odds of the
    train plates outside it (the plates of the fold are as unseen by the odds as by the models)."""
    base = reader.settings
    exact = top3 = state = 0
    total = 0.0
    for outside, outputs in held:
        reader.settings = dataclasses.replace(base, character_log_odds=outside)
        e, t, s, ll = _score(reader, outputs)
        exact, top3, state, total = exact + e, top3 + t, state + s, total + ll * len(outputs)
    reader.settings = base
    return exact, top3, state, total / max(1, _held_count(held))


def _fit_on_folds(reader, name: str, field: str, values, held: list, validation):
    """The value of `field` (a reader setting) with the most exact first readings of the folds by the models
    that never saw them (then the most in the top three, then the likeliest true plates); the validation
    part's figures, with the committed models, are printed beside and play no part."""
    base = reader.settings
    rows = []
    for value in values:
        reader.settings = dataclasses.replace(base, **{field: value})
        exact, top3, _, ll = _score_folds(reader, held)
        rows.append((value, (exact, top3), ll, _score(reader, validation)[:2]))
    reader.settings = base
    print(f"{field:>22} | folds unseen: exact / top3 (of {_held_count(held)}), mean log-likelihood of the truth | "
          f"validation exact / top3 (of {len(validation)}), committed models")
    for value, (exact, top3), ll, (v_exact, v_top3) in rows:
        print(f"{value:>22} | {exact:>5} / {top3:<5} {ll:+.3f} | {v_exact:>5} / {v_top3}")
    value = max(rows, key=lambda r: (r[1], r[2]))[0]
    print(f"{name}: {value}")
    return value


def fit_streaks(reader, train: list, fold_models: list, validation: list) -> dict:
    """STREAK_ROWS, STREAK_SHORTEST, STREAK_TALLEST, STREAK_DEPTH, STREAK_CONTRAST and STREAK_NOISE (`crops`): each value of
    each in turn (`STREAK_GRIDS`) read over the folds by the models that never saw them, seen as taken, at half
    the resolution and streaked (`STREAK_LOOKS`); the values with the most plates and states right as taken
    and at half the resolution (most plates are not streaked: undoing streaks must not cost them), then the
    most streaked, then the most in the top three, then the likeliest true plates. The validation part
    (`validation`, labelled items), read by the committed models with streaks left as they are and undone at
    the chosen values, is printed beside and plays no part."""
    from edge_agent.recognise import crops
    from training.data import in_fold

    chosen = {name: getattr(crops, name) for name, _ in STREAK_GRIDS}

    def use(values: dict) -> None:  # the rules are the module's: the readers' windows are cut there
        for name, value in values.items():
            setattr(crops, name, value)

    def over_folds(look: str) -> tuple[int, int, int, float]:
        return _score_folds(reader, read_folds(reader, train, fold_models, look, quiet=True))

    def key(scores: list) -> tuple:
        guarded, streaked = scores[:STREAK_GUARDED], scores[STREAK_GUARDED:]
        return (sum(e + s for e, _, s, _ in guarded), sum(e + s for e, _, s, _ in streaked),
                sum(t for _, t, _, _ in scores), sum(ll for *_, ll in scores))

    looks = " | ".join(STREAK_LOOKS)
    held = sum(any(in_fold(i.plate, fold) for fold, _ in fold_models) for i in train)
    for name, values in STREAK_GRIDS:
        rows = []
        for value in values:
            use({**chosen, name: value})
            rows.append((value, [over_folds(look) for look in STREAK_LOOKS]))
        print(f"{name:>16} | folds unseen (of {held}), exact / top3 / state, as {looks}")
        for value, scores in rows:
            print(f"{value:>16} | " + " | ".join(f"{e} / {t} / {st}" for e, t, st, _ in scores))
        chosen[name] = max(rows, key=lambda row: key(row[1]))[0]
        print(f"{name}: {chosen[name]}", flush=True)
    use(chosen)
    base = reader.settings
    reader.settings = dataclasses.replace(base, undo_streaks=False)
    left = [over_folds(look) for look in STREAK_LOOKS]
    left_v = [_score(reader, _outputs(reader, validation, look)) for look in STREAK_LOOKS]
    reader.settings = base
    undone = [over_folds(look) for look in STREAK_LOOKS]
    undone_v = [_score(reader, _outputs(reader, validation, look)) for look in STREAK_LOOKS]
    print(f"{'streaks':>16} | folds unseen: exact / top3 / state, as {looks} | validation ({len(validation)}), "
          f"committed models, the same")
    for label, folds, val in (("left", left, left_v), ("undone", undone, undone_v)):
        print(f"{label:>16} | " + " | ".join(f"{e} / {t} / {st}" for e, t, st, _ in folds) + " | "
              + " | ".join(f"{e} / {t} / {st}" for e, t, st, _ in val))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/train rules")
    parser.add_argument("--data", required=True, help="the shared plate photographs (../shared/data/us-plates)")
    parser.add_argument("--fold-models", type=_fold_models, action="append", default=[], metavar="K/N=DIR",
                        help="a folder of a plate reader and text reader trained with --leave-out K/N (repeat "
                             "for each fold); without any, PLATE_READER_WEIGHT is not fitted")
    args = parser.parse_args(argv)

    from edge_agent.bench import load_dataset
    from edge_agent.recognise.reader import PlateReader
    from training.data import check_folder

    check_folder(Path(args.data))
    reader = PlateReader()
    crops = {part: _crops(load_dataset(Path(args.data) / "crops", part=part)) for part in ("train", "validation")}
    band, quantile, sharpness, min_height = fit_state_name(reader, crops["train"], crops["validation"])
    reader.settings = dataclasses.replace(reader.settings, state_name_sharpness=sharpness,
                                          state_name_min_height=min_height)
    base = reader.settings
    labelled = {part: [i for kind in ("crops", "endtoend") for i in load_dataset(Path(args.data) / kind, part=part)]
                for part in ("train", "validation")}
    second_look = fit_second_look_score(reader, *[[i for i in labelled[part] if i.box is not None]
                                                   for part in ("train", "validation")])
    reader.settings = base = dataclasses.replace(base, second_look_score=second_look)
    parts = {}
    for part, items in labelled.items():
        parts[part] = _outputs(reader, items)
        print(f"{part}: {len(parts[part])} images read", flush=True)
    from edge_agent.recognise.plate import character_log_odds

    log_odds = character_log_odds(i.plate for i in labelled["train"])
    print(f"CHARACTER_LOG_ODDS (the train part's {len(labelled['train'])} plates): {log_odds}")
    reader.settings = base = dataclasses.replace(base, character_log_odds=log_odds)
    weight, prior_weight, held = reader.settings.plate_reader_weight, reader.settings.character_prior_weight, []
    streaks: dict = {}
    if args.fold_models:
        held = read_folds(reader, labelled["train"], args.fold_models)
        validation = parts["validation"]
        weight = _fit_on_folds(reader, "PLATE_READER_WEIGHT", "plate_reader_weight", WEIGHTS, held, validation)
        reader.settings = base = dataclasses.replace(base, plate_reader_weight=weight)
        prior_weight = _fit_on_folds(reader, "CHARACTER_PRIOR_WEIGHT", "character_prior_weight", PRIOR_WEIGHTS,
                                     held, validation)
        reader.settings = base = dataclasses.replace(base, character_prior_weight=prior_weight)
        streaks = fit_streaks(reader, labelled["train"], args.fold_models, labelled["validation"])
    rows = []
    for threshold, o_as_zero in itertools.product(THRESHOLDS, (True, False)):
        reader.settings = dataclasses.replace(base, state_for_format=threshold, o_as_zero=o_as_zero)
        rows.append(((threshold, o_as_zero), _score(reader, parts["train"]), _score(reader, parts["validation"]),
                     _score_folds(reader, held)))
    reader.settings = base
    n_train, n_val, n_held = len(parts["train"]), len(parts["validation"]), _held_count(held)
    # the folds' readings (where given) are shown as a check: the choice stays with the train part's
    print(f"{'state_for_format':>16} {'o_as_zero':>9} | train exact / top3 / state (of {n_train}) | "
          f"validation exact / top3 / state (of {n_val})" + (f" | folds unseen (of {n_held})" if held else ""))
    for (threshold, o_as_zero), train, val, folds in rows:
        print(f"{threshold:>16} {str(o_as_zero):>9} | {train[0]:>5} / {train[1]:<5} / {train[2]:<5} | "
              f"{val[0]:>5} / {val[1]} / {val[2]}" + (f" | {folds[0]:>5} / {folds[1]} / {folds[2]}" if held else ""))
    (threshold, o_as_zero), train, val, _ = max(rows, key=lambda r: (r[1][0], r[1][1]))
    print(f"chosen on the train part: BAND = {band}, NAME_CHANCE_QUANTILE = {quantile}, "
          f"STATE_NAME_SHARPNESS = {sharpness}, "
          f"STATE_NAME_MIN_HEIGHT = {min_height}, "
          f"PLATE_READER_WEIGHT = {weight}, CHARACTER_PRIOR_WEIGHT = {prior_weight}, "
          f"STATE_FOR_FORMAT = {threshold}, O_AS_ZERO = {o_as_zero}, SECOND_LOOK_SCORE = {second_look}"
          + "".join(f", {name} = {value}" for name, value in streaks.items()) + " "
          f"(train {train[0]}/{n_train} exact; validation {val[0]}/{n_val} exact, {val[1]} top 3)")
    return 0


def _fold_models(text: str) -> tuple[tuple[int, int], Path]:
    import argparse

    from training.loop import fold

    spec, sep, folder = text.partition("=")
    if not sep or not folder:
        raise argparse.ArgumentTypeError(f"{text!r}: expected K/N=DIR")
    if not (Path(folder) / "manifest.toml").is_file():
        raise argparse.ArgumentTypeError(f"{folder}: no manifest.toml (train there with --out {folder})")
    return fold(spec), Path(folder)


if __name__ == "__main__":
    sys.exit(main())
