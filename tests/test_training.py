"""The training recipes, run for a few steps on a handful of rendered samples in the training extra's
environment (.venv-train, made by scripts/setup-train), as `scripts/train` runs them."""

from __future__ import annotations

import ast
import csv
import json
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.synthetic import render_plate, render_scene

REPO = Path(__file__).resolve().parents[1]
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"

pytestmark = pytest.mark.slow


def _train(*args: str) -> subprocess.CompletedProcess:
    if not TRAIN_PYTHON.is_file():
        pytest.fail("the training extra is not installed (scripts/setup-train; scripts/test runs it)")
    return subprocess.run([str(TRAIN_PYTHON), "-m", "training", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """A data folder in the shared layout: 12 plate crops and 6 frames, half of each on either side of the split."""
    from edge_agent.bench.split import part_of

    root = tmp_path_factory.mktemp("plates")
    crops, frames = root / "crops", root / "endtoend"
    crops.mkdir()
    frames.mkdir()
    plates = ["7ABC123", "5TRK442", "6WNP018", "8LMN905", "4GHT271", "3KPD550", "2XYZ781", "1MNO333", "9QRS246",
              "6TUV135", "5WXY864", "4JKL975"]
    assert {part_of(p) for p in plates} == {"train", "validation"}
    with (crops / "groundtruth.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "state", "plate"])
        for i, plate in enumerate(plates):
            cv2.imwrite(str(crops / f"ca{i}.png"), render_plate(plate, width=200))
            out.writerow([f"ca{i}.png", "ca", plate])
    for i, plate in enumerate(plates[:6]):
        scene = render_scene([(plate, "California")], size=(1280, 720), seed=i, plate_width=120)
        cv2.imwrite(str(frames / f"f{i}.jpg"), scene)
        # render_scene's one car: plate centred at x = 640, its top an eighth of the body below y = 446
        (frames / f"f{i}.txt").write_text(f"f{i}.jpg 580 470 120 60 {plate}\n")
    return root


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_reader_recipe_lowers_its_loss_and_exports_a_model_the_agent_loads(small_data: Path, tmp_path: Path):
    from edge_agent.recognise.models import load_manifest, verify_model
    from edge_agent.recognise.recogniser import PlateRecogniser

    run, out = tmp_path / "run", tmp_path / "models"
    done = _train("reader", "--data", str(small_data), "--run", str(run), "--out", str(out), "--steps", "24",
                  "--every", "8", "--batch", "16", "--rearrange", "0.5", "--ema", "0.9", "--streak", "0.2")
    assert done.returncode == 0, done.stderr[-2000:]
    losses = _losses(run)
    assert len(losses) == 3 and losses[-1] < losses[0]
    spec = load_manifest(out / "manifest.toml")["plate-reader"]
    reads = PlateRecogniser(verify_model(spec)).read(render_plate("7ABC123"), [(0, 0, 360, 180)])
    (probs, states), = reads
    assert probs.shape == (32, 37) and states.shape == (51,)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    card = (out / "plate-reader.md").read_text()
    assert spec.sha256 in card and "AGPL-3.0" in card
    # a second call resumes the run where it stopped
    again = _train("reader", "--data", str(small_data), "--run", str(run), "--out", str(out), "--steps", "32",
                   "--every", "8", "--batch", "16", "--rearrange", "0.5", "--ema", "0.9", "--streak", "0.2")
    assert again.returncode == 0 and "resuming" in again.stdout and len(_losses(run)) == 4
    # the running average of the weights (--ema) is validated beside them and kept across the resume
    last = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert {"val_exact", "ema_val_exact"} <= set(last)
    assert "ema" in (out / "plate-reader.md").read_text()


def test_detector_recipe_lowers_its_loss_and_exports_a_model_the_agent_loads(small_data: Path, tmp_path: Path):
    from edge_agent.recognise.detector import PlateDetector
    from edge_agent.recognise.models import load_manifest, verify_model
    from edge_agent.recognise.runtime import RuntimeOptions

    run, out = tmp_path / "run", tmp_path / "models"
    done = _train("detector", "--data", str(small_data), "--run", str(run), "--out", str(out), "--steps", "24",
                  "--every", "8", "--batch", "8")
    assert done.returncode == 0, done.stderr[-2000:]
    losses = _losses(run)
    assert len(losses) == 3 and losses[-1] < losses[0]
    detector = PlateDetector(verify_model(load_manifest(out / "manifest.toml")["plate-detector"]), RuntimeOptions())
    boxes = detector.detect(np.zeros((720, 1280, 3), np.uint8))
    assert isinstance(boxes, list)
    assert "GMAC a frame" in (out / "plate-detector.md").read_text()
    # the side-view detector is the same recipe published under its own name (here: the finished run again)
    side = _train("detector", "--data", str(small_data), "--run", str(run), "--out", str(out), "--steps", "24",
                  "--every", "8", "--batch", "8", "--name", "plate-detector-side")
    assert side.returncode == 0, side.stderr[-2000:]
    models = load_manifest(out / "manifest.toml")
    assert models["plate-detector-side"].name == "plate-detector-side" and "plate-detector" in models
    PlateDetector(verify_model(models["plate-detector-side"]), RuntimeOptions())
    assert "seen steeply from the side" in (out / "plate-detector-side.md").read_text()


def test_training_refuses_labels_that_do_not_match_their_images_and_writes_no_model(small_data: Path, tmp_path: Path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(small_data, bad)
    (bad / "crops" / "ca3.png").unlink()
    out = tmp_path / "models"
    done = _train("reader", "--data", str(bad), "--run", str(tmp_path / "run"), "--out", str(out), "--steps", "4")
    assert done.returncode == 2
    assert "ca3.png" in done.stderr and "groundtruth.csv" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()
    (bad / "endtoend" / "f1.txt").unlink()
    shutil.copy(small_data / "crops" / "ca3.png", bad / "crops" / "ca3.png")
    done = _train("detector", "--data", str(bad), "--run", str(tmp_path / "run2"), "--out", str(out), "--steps", "4")
    assert done.returncode == 2 and "f1.jpg" in done.stderr and not out.exists()


def test_a_fold_of_the_train_part_is_left_out_by_plate_and_its_models_never_go_into_models(small_data: Path,
                                                                                          tmp_path: Path):
    from training.data import load

    train = {s.name for s in load(small_data, "train")}
    folds = [load(small_data, "train", leave_out=(k, 2)) for k in (0, 1)]
    kept = [{s.name for s in fold} for fold in folds]
    assert kept[0] | kept[1] == train and kept[0] and kept[1]
    # leaving out fold 0 keeps fold 1's plates and the reverse: each plate on one side only
    assert kept[0].isdisjoint(kept[1]) and not {s.plate for s in folds[0]} & {s.plate for s in folds[1]}
    for recipe in ("reader", "text"):
        done = _train(recipe, "--data", str(small_data), "--leave-out", "0/2", "--run", str(tmp_path / recipe),
                      "--steps", "2")
        assert done.returncode == 2 and "--leave-out needs --out other than models" in done.stderr
    done = _train("reader", "--data", str(small_data), "--leave-out", "2/2", "--out", str(tmp_path / "m"))
    assert done.returncode == 2 and "K must be from 0 to N-1" in done.stderr


def test_the_rules_beside_the_models_are_fitted_on_the_train_part_and_reported_on_the_validation_part(small_data: Path,
                                                                                                   tmp_path: Path):
    import shutil

    # stand-ins for readers trained without fold 0 (the committed ones): the fit's mechanics, not its figure
    folder = tmp_path / "fold0"
    folder.mkdir()
    for name in ("manifest.toml", "plate-reader.onnx", "plate-text-reader.onnx"):
        shutil.copy(REPO / "models" / name, folder / name)
    done = _train("rules", "--data", str(small_data), "--fold-models", f"0/2={folder}")
    assert done.returncode == 0, done.stderr
    counts = {part: int(n) for part, n in re.findall(r"^(train|validation): (\d+) images read$", done.stdout, re.M)}
    assert counts["train"] > 0 and counts["validation"] > 0 and sum(counts.values()) == 18
    chosen = done.stdout.strip().splitlines()[-1]
    assert chosen.startswith("chosen on the train part: ") and "validation" in chosen
    for rule in ("BAND", "NAME_CHANCE_QUANTILE", "STATE_NAME_SHARPNESS", "STATE_NAME_MIN_HEIGHT", "PLATE_READER_WEIGHT",
                 "CHARACTER_PRIOR_WEIGHT", "STATE_FOR_FORMAT", "O_AS_ZERO", "STREAK_SHORTEST", "STREAK_TALLEST",
                 "STREAK_DEPTH", "STREAK_CONTRAST", "STREAK_NOISE", "STREAK_ROWS", "SECOND_LOOK_SCORE"):
        assert f"{rule} = " in chosen
    # the second look's least detector score: boxes of the train frames counted by score, the validation's beside
    scores = re.findall(r"^\s+([\d.]+) \|\s+\d+ / \d+\s+\|\s+\d+ / \d+$", done.stdout, re.M)
    assert [float(s) for s in scores] == [round(0.3 + 0.05 * i, 2) for i in range(14)]
    assert re.search(r"^SECOND_LOOK_SCORE: [\d.]+$", done.stdout, re.M)
    fold = re.search(r"^fold 0/2: (\d+) train images read", done.stdout, re.M)
    assert fold and 0 < int(fold.group(1)) < counts["train"]
    weights = re.findall(r"^\s+([\d.]+) \|\s+\d+ / \d+\s+[+-][\d.]+ \|", done.stdout, re.M)
    # the plate reader's weight, then the character prior's, each tried on the fold's readings
    assert [float(w) for w in weights] == [0.0, 0.1, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5] + [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
    odds = re.search(r"^CHARACTER_LOG_ODDS \(the train part's \d+ plates\): (\{.*\})$", done.stdout, re.M)
    assert odds and set(ast.literal_eval(odds.group(1))) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    pairs = re.findall(r"^\s+[\d.]+\s+(?:True|False) \|[^|]*\|[^|]*\| +\d+ / \d+ / \d+$", done.stdout, re.M)
    assert len(pairs) == 14  # every pair tried, the fold's readings beside
    # how streaks are found and undone: each value read over the fold as taken, at half the resolution,
    # streaked, streaked and noisy
    from training.fit_rules import STREAK_GRIDS, STREAK_LOOKS

    assert STREAK_LOOKS == ("as-is", "half", "motion9", "motion9-noisy")
    looks = len(STREAK_LOOKS)
    streaks = re.findall(r"^\s+([\d.]+)" + r" \| \d+ / \d+ / \d+" * looks + "$", done.stdout, re.M)
    assert [float(v) for v in streaks] == [v for _, grid in STREAK_GRIDS for v in grid]
    assert re.search(r"^\s+left" + r" \|.*" * 2 * looks, done.stdout, re.M)
    assert re.search(r"^\s+undone" + r" \|.*" * 2 * looks, done.stdout, re.M)
    # the name's bands: each share of the plate's height tried on the train crops, the validation's beside
    from training.fit_rules import BANDS

    from training.fit_rules import CHANCE_QUANTILES

    bands = re.findall(r"^\s+([\d.]+) \|\s+([\d.]+)\s+[\d.]+ [+-][\d.]+\s+\d+ \| [+-][\d.]+\s+\d+$", done.stdout, re.M)
    assert [float(b) for b, _ in bands] == list(BANDS)
    assert all(float(q) in CHANCE_QUANTILES for _, q in bands)  # each band at its likeliest chance quantile
    assert re.search(r"^NAME_CHANCE: \{.*\}$", done.stdout, re.M)
    heights = re.findall(r"^\s+(\d+) \| ([+-][\d.]+)$", done.stdout, re.M)
    assert [int(h) for h, _ in heights] == [16, 20, 24, 28, 32, 40, 48]


def test_a_rearranged_real_plate_reads_as_its_new_text(small_data: Path):
    """The committed reader finds where each character stands; the plate's characters put in another order
    are read as that order: the new label is the plate in the picture."""
    import random

    from edge_agent.recognise.reader import PlateReader
    from training.data import load
    from training.shuffle import char_centres, rearranged

    samples = [s for s in load(small_data, "train", ("crops",))]
    centres = char_centres(samples)
    assert len(centres) >= len(samples) - 1  # rendered plates: read exactly, so each has its characters' places
    reader = PlateReader()
    rng = random.Random(3)
    read, changed = 0, 0
    for _ in range(3):
        for s in samples:
            if s.name not in centres:
                continue
            image, box, text = rearranged(s, centres[s.name], rng)
            assert len(text) == len(s.plate) and set(text) <= set(s.plate)
            assert image.shape[0] == s.image.shape[0] and box[2:] == s.box[2:]
            if text != s.plate:
                changed += 1
                found = reader.read(image)
                read += bool(found) and found[0].text == text
    print(f"rearranged plates read as their new text: {read} of {changed}")
    assert changed >= 10 and read >= 0.8 * changed  # seams and squeezed repeats cost a few


def test_text_recipe_fine_tunes_the_wheel_s_recogniser_twice_and_exports_the_average_the_agent_loads(small_data: Path, tmp_path: Path):
    import pickle

    import onnx
    from onnx import numpy_helper

    from edge_agent.recognise.models import load_manifest, verify_model
    from edge_agent.recognise.recogniser import PlateTextReader

    run, out = tmp_path / "run", tmp_path / "models"
    done = _train("text", "--data", str(small_data), "--run", str(run), "--out", str(out), "--steps", "12",
                  "--every", "4", "--batch", "8", "--lr", "5e-5", "--rearrange", "0.5", "--real-warp", "0.3",
                  "--seeds", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "before fine-tuning: validation" in done.stdout
    first, second = run / "seed-20261204", run / "seed-20261205"
    losses = _losses(first)
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert len(_losses(second)) == 3  # twelve steps of batch 8 are too few to see a loss fall every time
    spec = load_manifest(out / "manifest.toml")["plate-text-reader"]
    (probs,) = PlateTextReader(verify_model(spec)).read(render_plate("7ABC123"), [(0, 0, 360, 180)])
    assert probs.shape == (20, 37) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    # the published weights are the two runs' last weights averaged
    trained = [pickle.loads((r / "checkpoint.pkl").read_bytes())["params"] for r in (first, second)]
    published = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(out / "plate-text-reader.onnx")).graph.initializer}
    name = max(trained[0], key=lambda k: trained[0][k].size)
    assert not np.allclose(trained[0][name], trained[1][name])
    assert np.allclose(published[name].ravel(), ((trained[0][name] + trained[1][name]) / 2).ravel(), atol=1e-6)
    card = (out / "plate-text-reader.md").read_text()
    assert "2 runs (seeds 20261204 to 20261205) with their weights averaged" in card
    assert spec.sha256 in card and "Apache-2.0" in card and "AGPL-3.0" in card


def test_synthetic_plates_drawn_as_dies_press_them_read_as_their_labels():
    """The die look (tall condensed pressed print over a picture, `render.render(die_look=...)`) still shows
    its label: the committed readers, trained without it, read most of them as their serial."""
    import random

    from edge_agent.recognise.reader import PlateReader
    from training import render

    reader, rng = PlateReader(), random.Random(11)
    read, states = 0, set()
    for _ in range(30):
        plate, serial, state = render.render(rng, die_look=1.0)
        assert plate.shape[1] >= 240 and plate.shape[0] >= 120  # a dealer frame adds to it
        found = reader.read(plate)
        read += bool(found) and found[0].text == serial
        states.add(state)
    print(f"die-look plates read as their serial: {read} of 30, {len(states)} states")
    assert read >= 22 and len(states) >= 10


def test_a_run_resumes_after_an_option_is_added_at_its_off_value_and_refuses_other_settings(tmp_path: Path):
    from training.loop import Run

    Run(tmp_path / "run", {"seed": 1, "lr": 0.002, "steps": 100})
    Run(tmp_path / "run", {"seed": 1, "lr": 0.002, "steps": 200, "die_look": 0.0})  # a newer recipe, option off
    with pytest.raises(SystemExit, match="other settings"):
        Run(tmp_path / "run", {"seed": 1, "lr": 0.002, "steps": 200, "die_look": 0.7})
    with pytest.raises(SystemExit, match="other settings"):
        Run(tmp_path / "run", {"seed": 2, "lr": 0.002, "steps": 200, "die_look": 0.0})
    Run(tmp_path / "fold", {"seed": 1, "leave_out": (0, 2)})
    Run(tmp_path / "fold", {"seed": 1, "leave_out": (0, 2)})  # saved as JSON, read back as a list: the same run
    with pytest.raises(SystemExit, match="other settings"):
        Run(tmp_path / "fold", {"seed": 1, "leave_out": (1, 2)})


@pytest.mark.parametrize("yaw, slant", [(60, 10), (37, -12), (0, 0)])
def test_a_frame_seen_from_the_side_keeps_its_plate_inside_the_plate_s_new_box(yaw: float, slant: float):
    from edge_agent.bench import seen_from_the_side

    frame = np.full((360, 640, 3), 90, np.uint8)
    frame[200:240, 400:480] = (0, 0, 255)  # the plate, red
    seen, (moved,) = seen_from_the_side(frame, yaw, slant, boxes=[(400.0, 200.0, 80.0, 40.0)])
    assert seen.shape[1] == round(640 * np.cos(np.deg2rad(yaw)))
    ys, xs = np.nonzero((seen[..., 2] > 200) & (seen[..., 0] < 60))
    x, y, w, h = moved
    assert abs(xs.min() - x) <= 2 and abs(xs.max() + 1 - (x + w)) <= 2
    assert abs(ys.min() - y) <= 2 and abs(ys.max() + 1 - (y + h)) <= 2

