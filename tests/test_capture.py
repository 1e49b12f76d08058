"""Frame sources: files, folders and videos for real; cameras as far as this machine allows."""

from datetime import timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.capture import decode_image, open_source
from edge_agent.config import CameraConfig
from edge_agent.errors import ImageError


def _frames(camera: CameraConfig):
    errors: list[str] = []
    source = open_source(camera, errors.append)
    return list(source.frames()), errors


def test_folder_source_skips_unreadable_files_and_reports_them(tmp_path: Path):
    folder = tmp_path / "shots"
    folder.mkdir()
    image = np.full((120, 160, 3), 200, np.uint8)
    cv2.imwrite(str(folder / "a.jpg"), image)
    (folder / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cv2.imwrite(str(folder / "c.png"), image)
    (folder / "notes.txt").write_text("not an image")
    frames, errors = _frames(CameraConfig(id="rear", source="folder", path=folder))
    assert [Path(f.source).name for f in frames] == ["a.jpg", "c.png"]
    assert all(f.camera_id == "rear" and f.captured_at.tzinfo == timezone.utc for f in frames)
    assert len(errors) == 1 and "b.jpg" in errors[0]


def test_video_source_reads_every_frame_with_camera_and_time(tmp_path: Path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(12):
        writer.write(np.full((240, 320, 3), i * 20, np.uint8))
    writer.release()
    frames, errors = _frames(CameraConfig(id="front", source="video", path=path))
    assert errors == []
    assert len(frames) == 12
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].image.shape == (240, 320, 3)
    strided, _ = _frames(CameraConfig(id="front", source="video", path=path, frame_stride=3))
    assert len(strided) == 4


def test_broken_video_is_reported_not_raised(tmp_path: Path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    frames, errors = _frames(CameraConfig(id="front", source="video", path=path))
    assert frames == []
    assert len(errors) == 1 and "broken.mp4" in errors[0]


def test_missing_camera_device_is_reported(tmp_path: Path):
    frames, errors = _frames(CameraConfig(id="usb", source="v4l2", device="/dev/video99"))
    assert frames == [] and "usb" in errors[0] and "/dev/video99" in errors[0]


def test_gstreamer_pipeline_that_cannot_open_is_reported():
    frames, errors = _frames(CameraConfig(id="csi", source="gstreamer", pipeline="nosuchsrc ! appsink"))
    assert frames == [] and "csi" in errors[0]


def test_pi_camera_without_picamera2_says_how_to_install():
    pytest.importorskip("cv2")
    try:
        import picamera2  # noqa: F401
        pytest.skip("picamera2 is installed here")
    except ImportError:
        pass
    frames, errors = _frames(CameraConfig(id="pi", source="picamera2"))
    assert frames == [] and "python3-picamera2" in errors[0]


@pytest.mark.parametrize(
    "image",
    [
        np.full((50, 60), 128, np.uint8),  # grey
        np.full((50, 60), 40000, np.uint16),  # 16-bit grey
        np.full((50, 60, 3), 40000, np.uint16),  # 16-bit colour
        np.full((50, 60, 4), 255, np.uint8),  # with alpha
    ],
)
def test_decode_gives_8bit_bgr_for_any_png(tmp_path: Path, image):
    path = tmp_path / "x.png"
    cv2.imwrite(str(path), image)
    decoded = decode_image(path)
    assert decoded.dtype == np.uint8 and decoded.shape == (50, 60, 3)


def test_truncated_empty_and_non_image_files_name_the_file(tmp_path: Path):
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), np.full((100, 100, 3), 90, np.uint8))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:40])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_text("hello")
    for path in (truncated, empty, text, tmp_path / "missing.jpg"):
        with pytest.raises(ImageError) as info:
            decode_image(path)
        assert path.name in str(info.value)


def test_live_camera_never_waits_for_recognition_and_the_newest_frame_wins(tmp_path: Path):
    import threading
    import time

    from edge_agent.capture import OpenCVSource
    from edge_agent.pipeline import FrameBoard
    from edge_agent.synthetic import render_drive_by

    clip = render_drive_by(tmp_path / "clip.avi", ["7ABC123", "5TRK442"], frames_per_car=10)
    camera = OpenCVSource("front", str(clip.path), live=True)  # a stream: it does not wait for the reader
    board = FrameBoard([camera])
    stop = threading.Event()
    captured = []

    def capture():
        for frame in camera.frames():
            board.put(frame, stop)
            captured.append(time.monotonic())
        board.finish("front")

    thread = threading.Thread(target=capture)
    thread.start()
    seen = []
    while (frame := board.get(stop)) is not None:
        seen.append(frame.index)
        time.sleep(0.05)  # a slow reader
    thread.join()
    assert len(captured) == clip.frames  # capture kept going at its own pace
    assert board.dropped > 0 and len(seen) + board.dropped == clip.frames
    assert seen == sorted(seen) and seen[-1] == clip.frames - 1  # always the newest, and the last one too
