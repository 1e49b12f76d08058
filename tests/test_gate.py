"""Region and motion gates in front of the reader, and `edge-agent bench speed`."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.capture.gate import MotionGate, Region, moved_to_frame
from edge_agent.synthetic import render_drive_by, render_plate
from conftest import run_cli


def _scene_with_plate(x: int, y: int) -> np.ndarray:
    scene = np.full((720, 1280, 3), 90, np.uint8)
    plate = render_plate("5TRK442", width=240)
    scene[y:y + plate.shape[0], x:x + plate.shape[1]] = plate
    return scene


def test_region_reads_only_its_part_and_boxes_stay_in_frame_pixels(reader):
    scene = _scene_with_plate(700, 480)
    lower = Region(0.0, 0.5, 1.0, 1.0)
    view, dx, dy = lower.view(scene)
    assert view.base is scene or view.base is scene.base  # a view of the frame, not a copy
    (plate,) = moved_to_frame(reader.read_frame(view), dx, dy)
    assert plate.text == "5TRK442"
    x, y, w, h = plate.box
    # in frame pixels: the plate (240x120) is centred at (820, 540), its top at 480 (at 120 in the view)
    assert abs(x + w / 2 - 820) <= 40 and abs(y + h / 2 - 540) <= 40
    upper, _, _ = Region(0.0, 0.0, 1.0, 0.5).view(scene)
    assert reader.read_frame(upper) == []


def test_motion_gate_skips_still_frames_and_reads_changed_ones():
    gate = MotionGate(keyframe_s=2.0)
    road = _scene_with_plate(200, 400)
    assert gate.should_read("front", road, 0.0)
    noisy = np.clip(road.astype(np.int16) + np.random.default_rng(1).integers(-4, 5, road.shape), 0, 255).astype(np.uint8)
    assert not gate.should_read("front", noisy, 0.1)  # sensor noise is not motion
    assert gate.should_read("front", _scene_with_plate(260, 400), 0.2)  # the car moved
    assert not gate.should_read("front", _scene_with_plate(260, 400), 0.3)
    assert gate.should_read("front", _scene_with_plate(260, 400), 2.5)  # a keyframe now and then
    assert gate.should_read("rear", road, 0.3)  # cameras are gated apart
    assert gate.skipped == 2


def test_region_and_motion_gate_in_the_config(tmp_path: Path):
    from edge_agent.config import ConfigError, parse_config

    config = parse_config({"camera": [{"id": "front", "source": "v4l2", "region": [0, 0.3, 1, 1]}],
                           "recognition": {"motion_gate": True, "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
                                           "intra_op_threads": 4}})
    assert config.cameras[0].region == (0.0, 0.3, 1.0, 1.0)
    assert config.recognition.motion_gate and config.recognition.intra_op_threads == 4
    for bad, key in [({"camera": [{"id": "f", "source": "v4l2", "region": [0.5, 0, 0.2, 1]}]}, "camera[0].region"),
                     ({"camera": [{"id": "f", "source": "v4l2", "region": [0, 0, 1]}]}, "camera[0].region"),
                     ({"recognition": {"providers": ["GPUExecutionProvider"]}}, "recognition.providers"),
                     ({"recognition": {"providers": []}}, "recognition.providers"),
                     ({"recognition": {"plate_min_score": 1.5}}, "recognition.plate_min_score")]:
        with pytest.raises(ConfigError) as err:
            parse_config(bad, "unit.toml")
        assert key in str(err.value) and "unit.toml" in str(err.value)


def test_an_older_units_recognition_keys_are_ignored_with_a_warning(caplog):
    from edge_agent.config import parse_config

    with caplog.at_level("WARNING"):
        config = parse_config({"recognition": {"detector_max_side": 960, "plate_detector_min_score": 0.35}}, "unit.toml")
    assert config.recognition.plate_min_score == 0.3
    assert "recognition.detector_max_side is no longer used" in caplog.text and "unit.toml" in caplog.text


def test_unavailable_provider_is_a_clear_error(tmp_path: Path):
    config = tmp_path / "unit.toml"
    config.write_text('[recognition]\nproviders = ["TensorrtExecutionProvider"]\n')
    image = tmp_path / "car.png"
    cv2.imwrite(str(image), _scene_with_plate(100, 100))
    result = run_cli("--config", config, "read", image)
    assert result.code == 2
    assert "TensorrtExecutionProvider" in result.err and "available" in result.err


def test_bench_speed_over_a_video(tmp_path: Path):
    clip = render_drive_by(tmp_path / "clip.avi", ["7ABC123", "5TRK442"], frames_per_car=6)
    result = run_cli("bench", "speed", "--source", clip.path, "--json")
    assert result.code == 0, result.err
    figures = json.loads(result.out)
    assert figures["frames"] == clip.frames - 2  # two warm-up frames are not timed
    assert figures["frame_sizes"] == ["1280x720"]
    assert figures["fps"] > 0 and 0 < figures["median_ms"] <= figures["p95_ms"]
    assert figures["cpu_s_per_frame"] > 0 and figures["peak_rss_mb"] > 0
    assert figures["passes"] == 2 and figures["first_frame_to_read_s_max"] < 1.0


def test_bench_speed_over_a_folder_reports_bad_files(tmp_path: Path):
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"f{i}.jpg"), _scene_with_plate(100 + 50 * i, 300))
    (tmp_path / "f9.jpg").write_bytes(b"not a jpeg")
    result = run_cli("bench", "speed", "--source", tmp_path, "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["frames"] == 2
    assert "f9.jpg" in result.err


def test_bench_speed_on_nothing_is_a_clear_error(tmp_path: Path):
    result = run_cli("bench", "speed", "--source", tmp_path / "missing.mp4")
    assert result.code == 2 and "missing.mp4" in result.err


def test_tensorrt_gets_its_engine_cache_and_precision_and_missing_providers_are_skipped(tmp_path: Path):
    from edge_agent.config import parse_config
    from edge_agent.pipeline import reader_settings
    from edge_agent.recognise.runtime import provider_list

    config = parse_config({"agent": {"data_dir": str(tmp_path / "data")}, "recognition": {
        "providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]}})
    runtime = reader_settings(config).runtime
    on_jetson = provider_list(runtime, {"TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"})
    assert [name for name, _ in on_jetson] == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    trt = on_jetson[0][1]
    assert trt["trt_engine_cache_enable"] == "True" and trt["trt_fp16_enable"] == "True"
    assert trt["trt_engine_cache_path"] == str(tmp_path / "data" / "trt-cache")
    assert provider_list(runtime, {"CPUExecutionProvider"}) == [("CPUExecutionProvider", {})]
