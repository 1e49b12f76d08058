"""Frame sources behind one interface: iterate frames until the source ends or is closed.

Image files, folders and video files end; cameras (V4L2/USB, RTSP, GStreamer,
Pi camera) run until `close()`. A file that cannot be decoded is reported
through `on_error` and skipped, never raised, so one bad image does not stop a
folder or a shift.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Protocol

import cv2
import numpy as np

from edge_agent.config import IMAGE_SUFFIXES, CameraConfig
from edge_agent.errors import ImageError
from edge_agent.imaging import as_bgr8
from edge_agent.records import Frame

log = logging.getLogger(__name__)
# OpenCV warns on stderr at every failed open of a camera that is out; the agent says it once, in words
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
ErrorHandler = Callable[[str], None]

# A decoded image larger than this (8K is 33 Mpx) is refused rather than risking the unit's memory.
MAX_PIXELS = 80_000_000
LIVE_TIMEOUT_MS = 5000


def _log_error(message: str) -> None:
    log.warning(message)


class FrameSource(Protocol):
    camera_id: str
    live: bool  # a live camera drops old frames; a file source delivers every frame

    def frames(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def decode_image(path: Path) -> np.ndarray:
    """Decode an image file as BGR uint8 (grey, 16-bit and alpha images converted); ImageError names the file."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if data.size == 0:
        raise ImageError(f"{path}: file is empty")
    return decode_image_bytes(data, str(path))


def decode_image_bytes(data: np.ndarray, name: str) -> np.ndarray:
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"{name}: not a decodable image (truncated, or not an image format)")
    if image.size == 0 or min(image.shape[:2]) < 1:
        raise ImageError(f"{name}: image has no pixels")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError(f"{name}: image is {image.shape[1]}x{image.shape[0]}, over the {MAX_PIXELS} pixel limit")
    return as_bgr8(image)


class ImageFileSource:
    live = False

    def __init__(self, camera_id: str, paths: list[Path], on_error: ErrorHandler = _log_error):
        self.camera_id = camera_id
        self.paths = paths
        self.on_error = on_error
        self._closed = False

    def frames(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            if self._closed:
                return
            try:
                image = decode_image(path)
            except ImageError as exc:
                self.on_error(str(exc))
                continue
            yield Frame(self.camera_id, now_utc(), index, image, str(path))

    def close(self) -> None:
        self._closed = True


def folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class OpenCVSource:
    """Video files, V4L2/USB cameras, RTSP streams and GStreamer pipelines through cv2.VideoCapture."""

    def __init__(
        self,
        camera_id: str,
        target: str | int,
        live: bool,
        api: int = cv2.CAP_ANY,
        frame_stride: int = 1,
        loop: bool = False,
        width: int = 0,
        height: int = 0,
        max_fps: float = 0.0,
        on_error: ErrorHandler = _log_error,
    ):
        self.camera_id = camera_id
        self.target = target
        self.live = live
        self.api = api
        self.frame_stride = frame_stride
        self.loop = loop
        self.width, self.height = width, height
        self.min_interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self.on_error = on_error
        self._closed = False

    def _open(self) -> cv2.VideoCapture | None:
        if self.live and self.api == cv2.CAP_FFMPEG:
            # a stream that stalls must end the read, so that the camera is opened again, not wait forever
            capture = cv2.VideoCapture(self.target, self.api, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, LIVE_TIMEOUT_MS,
                                                               cv2.CAP_PROP_READ_TIMEOUT_MSEC, LIVE_TIMEOUT_MS])
        else:
            capture = cv2.VideoCapture(self.target, self.api)
        if not capture.isOpened():
            self.on_error(f"camera {self.camera_id}: cannot open {self.target!r}")
            return None
        if self.width and self.height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        return capture

    def frames(self) -> Iterator[Frame]:
        capture = self._open()
        if capture is None:
            return
        index = 0
        last = 0.0
        try:
            while not self._closed:
                if self.frame_stride > 1 and not self.live:
                    # grab() skips decoding the frames we do not read
                    for _ in range(self.frame_stride - 1):
                        capture.grab()
                ok, image = capture.read()
                if (not ok or image is None) and self.loop and index > 0:
                    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, image = capture.read()
                if not ok or image is None:
                    if index == 0:
                        self.on_error(f"camera {self.camera_id}: {self.target!r} gave no frames (broken or empty video)")
                    elif self.live:
                        self.on_error(f"camera {self.camera_id}: stream ended after {index} frames")
                    return
                if self.min_interval:
                    wait = last + self.min_interval - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    last = time.monotonic()
                yield Frame(self.camera_id, now_utc(), index, image, str(self.target))
                index += 1
        finally:
            capture.release()

    def close(self) -> None:
        self._closed = True


class PiCameraSource:
    """The Raspberry Pi camera through picamera2, which comes from the OS, so it is imported only here."""

    live = True

    def __init__(self, camera_id: str, width: int = 1280, height: int = 720, on_error: ErrorHandler = _log_error):
        self.camera_id = camera_id
        self.size = (width or 1280, height or 720)
        self.on_error = on_error
        self._closed = False

    def frames(self) -> Iterator[Frame]:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError:
            self.on_error(
                f"camera {self.camera_id}: picamera2 is not installed (apt install python3-picamera2 on Raspberry Pi OS)"
            )
            return
        camera = Picamera2()
        camera.configure(camera.create_video_configuration(main={"size": self.size, "format": "BGR888"}))
        camera.start()
        index = 0
        try:
            while not self._closed:
                yield Frame(self.camera_id, now_utc(), index, camera.capture_array("main"), "picamera2")
                index += 1
        finally:
            camera.stop()

    def close(self) -> None:
        self._closed = True


def open_source(camera: CameraConfig, on_error: ErrorHandler = _log_error) -> FrameSource:
    """The frame source a camera's configuration describes."""
    kind = camera.source
    if kind == "file":
        return ImageFileSource(camera.id, [Path(camera.path)], on_error)
    if kind == "folder":
        folder = Path(camera.path)
        if not folder.is_dir():
            on_error(f"camera {camera.id}: folder {folder} does not exist")
            return ImageFileSource(camera.id, [], on_error)
        return ImageFileSource(camera.id, folder_images(folder), on_error)
    if kind == "video":
        if not Path(camera.path).is_file():
            on_error(f"camera {camera.id}: video {camera.path} does not exist")
            return ImageFileSource(camera.id, [], on_error)
        return OpenCVSource(camera.id, str(camera.path), live=False, frame_stride=camera.frame_stride,
                            loop=camera.loop, max_fps=camera.max_fps, on_error=on_error)
    if kind == "v4l2":
        return OpenCVSource(
            camera.id, camera.device, live=True, api=cv2.CAP_V4L2, width=camera.width, height=camera.height,
            max_fps=camera.max_fps, on_error=on_error,
        )
    if kind == "rtsp":
        return OpenCVSource(camera.id, camera.url, live=True, api=cv2.CAP_FFMPEG, max_fps=camera.max_fps, on_error=on_error)
    if kind == "gstreamer":
        return OpenCVSource(camera.id, camera.pipeline, live=True, api=cv2.CAP_GSTREAMER, max_fps=camera.max_fps, on_error=on_error)
    if kind == "picamera2":
        return PiCameraSource(camera.id, camera.width, camera.height, on_error)
    raise ValueError(f"unknown source kind {kind!r}")
